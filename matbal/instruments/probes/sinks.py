"""Where probe rows go: tidy rows ``{run, step, layer, kind, metric, value}``, one number each.

- :class:`CSVSink` / :class:`JSONLSink`: append to a file and flush after every ``write`` (the
  probes write once per optimizer step), so a crash loses at most the step being computed.
  Reopening appends; a torn last line left by a crash is cut off (with a warning) first; a CSV whose
  header differs is refused. ``fsync=True`` also survives power loss (slower).
- :class:`MemorySink`: a list in memory for notebooks; ``frame()`` gives a pandas DataFrame when
  pandas is installed (matbal does not depend on it).
- :func:`read_rows`: read a CSV/JSONL sink file back (``step`` int, ``value`` float).

Non-finite values (``condition_number = inf`` of a rank-deficient matrix) are written as ``inf``
(CSV) and ``Infinity`` (JSONL, Python's ``json`` convention) and read back as ``float("inf")``.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "probes.csv")
>>> with CSVSink(p) as s:
...     s.write([{"run": "r", "step": 1, "layer": "w", "kind": "grad", "metric": "rms", "value": 0.5}])
>>> read_rows(p)
[{'run': 'r', 'step': 1, 'layer': 'w', 'kind': 'grad', 'metric': 'rms', 'value': 0.5}]
"""
from __future__ import annotations

import csv
import io
import json
import os
import warnings
from pathlib import Path

__all__ = ["FIELDS", "Sink", "CSVSink", "JSONLSink", "MemorySink", "read_rows"]

#: Columns of every probe row, in order.
FIELDS = ("run", "step", "layer", "kind", "metric", "value")


class Sink:
    """Base class: ``write(rows)`` appends (durably up to the OS) and ``close()`` ends."""

    def write(self, rows: list[dict]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cut_torn_tail(path: Path) -> None:
    """Truncate a partial last line (a crash mid-write) so appending starts on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        size = f.seek(0, os.SEEK_END)
        pos = max(0, size - 65536)
        while True:
            f.seek(pos)
            chunk = f.read(size - pos)
            cut = chunk.rfind(b"\n")
            if cut >= 0 or pos == 0:
                keep = pos + cut + 1 if cut >= 0 else 0
                break
            pos = max(0, pos - 65536)
        f.truncate(keep)
    warnings.warn(f"{str(path)!r}: removed a torn last line left by an interrupted writer",
                  RuntimeWarning, stacklevel=3)


class _FileSink(Sink):
    def __init__(self, path, *, fsync: bool = False):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or PathLike, got {type(path).__name__} {path!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self.fsync = bool(fsync)
        self._f = open(self.path, "a", newline="", encoding="utf-8")

    def _encode(self, rows: list[dict]) -> str:
        raise NotImplementedError

    def write(self, rows: list[dict]) -> None:
        """Append ``rows`` (dicts with the keys of :data:`FIELDS`) and flush."""
        if self._f is None:
            raise ValueError(f"sink {str(self.path)!r} is closed")
        if not rows:
            return
        self._f.write(self._encode(rows))
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class CSVSink(_FileSink):
    """Append tidy rows to a CSV file with header ``run,step,layer,kind,metric,value``."""

    def __init__(self, path, *, fsync: bool = False):
        super().__init__(path, fsync=fsync)
        if self.path.stat().st_size == 0:
            self._f.write(",".join(FIELDS) + "\n")
            self._f.flush()
        else:
            with open(self.path, encoding="utf-8") as f:
                header = f.readline().strip()
            if header != ",".join(FIELDS):
                self.close()
                raise ValueError(f"{str(self.path)!r} has header {header!r}, not a probe CSV "
                                 f"({','.join(FIELDS)}); pick another path")

    def _encode(self, rows):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow([r[k] for k in FIELDS])
        return buf.getvalue()


class JSONLSink(_FileSink):
    """Append tidy rows to a JSON-lines file (one object per line)."""

    def _encode(self, rows):
        return "".join(json.dumps({k: r[k] for k in FIELDS}) + "\n" for r in rows)


class MemorySink(Sink):
    """Keep rows in a list (``.rows``); ``to_rows()`` copies them, ``frame()`` → pandas."""

    def __init__(self):
        self.rows: list[dict] = []

    def write(self, rows: list[dict]) -> None:
        self.rows.extend({k: r[k] for k in FIELDS} for r in rows)

    def to_rows(self) -> list[dict]:
        """A copy of the rows (list of dicts)."""
        return [dict(r) for r in self.rows]

    def frame(self):
        """The rows as a ``pandas.DataFrame`` (needs pandas, which matbal does not install)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("MemorySink.frame() needs pandas (pip install pandas); "
                              "to_rows() gives the same rows as dicts") from None
        return pd.DataFrame(self.rows, columns=list(FIELDS))

    def __len__(self) -> int:
        return len(self.rows)


def read_rows(path) -> list[dict]:
    """Rows of a CSV or JSONL sink file (by suffix ``.csv``/``.jsonl``/``.json``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no probe file at {str(path)!r}")
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(f))
        elif path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            rows = [json.loads(line) for line in f if line.strip()]
        else:
            raise ValueError(f"path must end in .csv or .jsonl, got {str(path)!r}")
    for r in rows:
        out.append({"run": r["run"], "step": int(r["step"]), "layer": r["layer"],
                    "kind": r["kind"], "metric": r["metric"], "value": float(r["value"])})
    return out
