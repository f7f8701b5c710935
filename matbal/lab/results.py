"""Stored experiment results: one tidy CSV of rows plus one JSON of everything needed to trust them.

``save_results(name, rows, config)`` writes, under the results directory,

- ``<name>.csv`` — the rows (a list of flat dicts: numbers, strings, bools, None), one per line,
  columns in first-seen order, floats with 10 significant digits;
- ``<name>.json`` — ``config`` (what was run), ``summary`` (headline numbers), ``claims`` (measured
  value and verdict per claim id, see :mod:`matbal.lab.claims`), ``columns`` with their types (so
  :func:`load_results` restores ints, floats, bools and None exactly), and ``provenance``: code
  version (git SHA + dirty flag), library versions, date, command line.

The results directory is, in order: the ``results_dir`` argument, ``$MATBAL_RESULTS_DIR``, or
``experiments/results/`` of the source checkout this package lives in.

Example
-------
>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> _ = save_results("demo", [{"k": 1, "err": 0.5}, {"k": 2, "err": 0.25}], {"seed": 0}, results_dir=d)
>>> res = load_results("demo", results_dir=d)
>>> res.rows[1]["err"], res.config["seed"], res.column("k")
(0.25, 0, [1, 2])
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["Results", "save_results", "load_results", "results_dir", "list_results", "provenance",
           "REPO_ROOT"]

#: The source checkout this package lives in (``experiments/``, ``paper_figs/`` sit beside it).
REPO_ROOT = Path(__file__).resolve().parents[2]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FLOAT_FMT = ".10g"


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """The results directory: ``path``, else ``$MATBAL_RESULTS_DIR``, else ``experiments/results``."""
    return _resolve_dir(path)


def _resolve_dir(path) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("MATBAL_RESULTS_DIR")
    return Path(env) if env else REPO_ROOT / "experiments" / "results"


#: generated outputs: a change there does not make a result's tree dirty (a run of several
#: experiments rewrites them as it goes)
GENERATED = ("experiments/results/", "CLAIMS.md", "paper_figs/out/")


def script_hash(name: str) -> str | None:
    """SHA-256 (hex) of ``experiments/<name>.py`` — the script that makes result ``name`` — or
    None when there is no such script (results written by other code)."""
    path = REPO_ROOT / "experiments" / f"{name}.py"
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(name: str | None = None) -> dict[str, Any]:
    """Code version (git SHA, dirty flag), library versions, UTC date, the command line and, for
    result ``name``, the hash of the experiment script that made it (:func:`script_hash`)."""
    from ..train.rundir import code_version, library_versions  # the one code-version helper

    libs = library_versions()
    for mod in ("scipy", "sympy", "matplotlib"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:  # pragma: no cover - all are dependencies
                continue
        libs[mod] = getattr(m, "__version__", "unknown")
    from .. import __version__

    libs["matbal"] = __version__
    return {
        "code_version": code_version(REPO_ROOT, ignore=GENERATED),
        "libraries": libs,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "script_sha256": script_hash(name) if name else None,
    }


def _plain(v: Any) -> Any:
    """numpy / torch scalars → Python scalars; refuse containers (rows are flat)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        return v.item()
    if isinstance(v, (list, tuple, dict, set)) or hasattr(v, "__len__"):
        raise TypeError(f"row values must be scalars (number, str, bool, None), got {type(v).__name__}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"row values must be scalars, got {v!r}") from None


def _kind(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return "str"


def _column_type(kinds: set[str]) -> str:
    kinds = kinds - {"none"}
    if not kinds:
        return "float"
    if kinds <= {"int"}:
        return "int"
    if kinds <= {"int", "float"}:
        return "float"
    if kinds == {"bool"}:
        return "bool"
    return "str"


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return ""
    if kind == "float":
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return format(v, _FLOAT_FMT)
    return str(v)


def _parse(s: str, kind: str) -> Any:
    if s == "":  # None (an empty string, which CSV cannot tell apart, also loads as None)
        return None
    if kind == "float":
        return float(s)
    if kind == "int":
        return int(s)
    if kind == "bool":
        return s == "True"
    return s


def _portable(text: str) -> str:
    """A path inside the repository becomes repo-relative: stored results never carry a path of
    the machine that made them."""
    root = str(REPO_ROOT) + os.sep
    return text.replace(root, "") if root in text else text


def _json_safe(obj: Any) -> Any:
    """JSON-ready copy: tuples → lists, numpy/torch scalars → numbers, non-finite floats → str,
    paths inside the repository → repo-relative (:func:`_portable`)."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, str):
        return _portable(obj)
    if isinstance(obj, os.PathLike):
        return _portable(os.fspath(obj))
    if obj is None or isinstance(obj, (bool, int)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0:
        return _json_safe(obj.item())
    if hasattr(obj, "tolist"):
        return _json_safe(obj.tolist())
    return str(obj)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Results:
    """What :func:`load_results` returns (and :func:`save_results`, for the record it wrote)."""

    name: str
    rows: list[dict]
    config: dict
    summary: dict = field(default_factory=dict)
    claims: list[dict] = field(default_factory=list)
    columns: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def where(self, **match: Any) -> list[dict]:
        """Rows whose fields equal every ``key=value`` given (a list/tuple/set value: any of them)."""
        def ok(row):
            for k, v in match.items():
                if isinstance(v, (list, tuple, set)):
                    if row.get(k) not in v:
                        return False
                elif row.get(k) != v:
                    return False
            return True

        return [r for r in self.rows if ok(r)]

    def column(self, key: str, **match: Any) -> list:
        """Values of ``key`` over the rows matching ``match`` (see :meth:`where`), in file order."""
        return [r.get(key) for r in self.where(**match)]

    def unique(self, key: str, **match: Any) -> list:
        """Distinct values of ``key`` (first-seen order)."""
        return list(dict.fromkeys(self.column(key, **match)))

    def claim(self, claim_id: str) -> dict | None:
        """The stored claim record with this id, or None."""
        return next((c for c in self.claims if c.get("id") == claim_id), None)


def save_results(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    *,
    summary: Mapping[str, Any] | None = None,
    claims: Iterable[Mapping[str, Any]] = (),
    results_dir: str | os.PathLike | None = None,
) -> Results:
    """Write ``<name>.csv`` (rows) and ``<name>.json`` (config, summary, claims, column types,
    provenance) atomically into the results directory; return the :class:`Results` written.

    ``rows``: flat dicts of scalars (numbers, str, bool, None; numpy/torch scalars are converted);
    missing keys are written empty and load as None (so do empty strings). ``name``: letters, digits, ``_ . -``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be letters, digits, '_', '.', '-' (not starting with a symbol), "
                         f"got {name!r}")
    plain = [{str(k): _json_safe(_plain(v)) if isinstance(_plain(v), str) else _plain(v)
              for k, v in dict(r).items()} for r in rows]
    columns: dict[str, set[str]] = {}
    for r in plain:
        for k, v in r.items():
            columns.setdefault(k, set()).add(_kind(v))
    types = {k: _column_type(v) for k, v in columns.items()}
    for r in plain:  # a float column keeps floats (an int there is written as a float)
        for k, t in types.items():
            if t == "float" and isinstance(r.get(k), int) and not isinstance(r.get(k), bool):
                r[k] = float(r[k])
            elif t == "str" and k in r and r[k] is not None and not isinstance(r[k], str):
                r[k] = str(r[k])

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(types))
    for r in plain:
        w.writerow([_fmt(r.get(k), t) for k, t in types.items()])
    meta = {
        "name": name,
        "config": _json_safe(dict(config)),
        "summary": _json_safe(dict(summary or {})),
        "claims": _json_safe([dict(c) for c in claims]),
        "columns": types,
        "n_rows": len(plain),
        "provenance": _json_safe(provenance(name)),
    }
    out = _resolve_dir(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / f"{name}.csv", buf.getvalue())
    _atomic_write(out / f"{name}.json", json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return load_results(name, results_dir=out)


def load_results(name: str, *, results_dir: str | os.PathLike | None = None) -> Results:
    """Read ``<name>.csv`` and ``<name>.json`` back (values restored to their stored types)."""
    d = _resolve_dir(results_dir)
    jpath, cpath = d / f"{name}.json", d / f"{name}.csv"
    if not jpath.exists() or not cpath.exists():
        raise FileNotFoundError(
            f"no stored results {name!r} in {d} (run: python experiments/{name}.py)")
    meta = json.loads(jpath.read_text())
    types = meta.get("columns", {})
    with open(cpath, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = [{k: _parse(v, types.get(k, "str")) for k, v in zip(header, line)} for line in reader]
    return Results(
        name=meta.get("name", name),
        rows=rows,
        config=meta.get("config", {}),
        summary=meta.get("summary", {}),
        claims=meta.get("claims", []),
        columns=types,
        provenance=meta.get("provenance", {}),
    )


def list_results(results_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the stored results (those with both a ``.json`` and a ``.csv``), sorted."""
    d = _resolve_dir(results_dir)
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.json") if (d / f"{p.stem}.csv").exists())
