"""``analyze_store``: spectral effects of equilibration on recorded matrices.

For every selected record ``X`` (a gradient, momentum, … stored by a
:class:`~matbal.instruments.probes.Recorder`) and every balancing ``B`` in ``methods`` (none, R, C,
RC, RACS), one tidy row of :func:`matbal.analysis.equilibration_rows` — ``κ``, stable rank,
effective rank, ``x_min = σ_r/‖B(X)‖_F``, imbalance, NS error measured and predicted exactly from
the spectrum — prefixed with the record's ``run, step, layer, kind, record_id``. With ``out``, the
rows go to ``equilibration.csv``, medians per (run, kind, balancing, metric) to ``summary.csv``
(a store holding several runs is summarized run by run), and a figure (:mod:`.figures`; one row
of panels per kind, or per (run, kind) for several runs) to ``equilibration.png``/``.pdf``.

Records are read one at a time (memory: one matrix); 16-bit records are widened to float32
(exactly) and >2-D ones viewed as ``(shape[0], -1)``; 1-D records are skipped (counted).

>>> import tempfile, torch
>>> from matbal.instruments import MatrixStore
>>> d = tempfile.mkdtemp()
>>> with MatrixStore(d) as s:
...     _ = s.put("r", 1, "w", "grad", torch.randn(8, 16))
>>> res = analyze_store(d, methods=("none", "R"), progress=False)
>>> [(r["layer"], r["balancing"]) for r in res.rows]
[('w', 'none'), ('w', 'R')]

References: MuonEq arXiv 2603.28254 (R/C/RC, x_min); REG arXiv 2510.03691 (RACS).
"""
from __future__ import annotations

import csv
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...analysis.equilibration import BALANCINGS, equilibration_rows
from ..store import MatrixStore, StoreError

__all__ = ["AnalysisResult", "analyze_store", "EmptyStoreError", "NoMatchError", "METRICS",
           "summarize", "runs_of"]

#: Metrics of the figure and of ``summary.csv``.
METRICS = ("condition_number", "stable_rank", "x_min", "ns_error")
_KEYS = ("run", "step", "layer", "kind", "record_id")


class EmptyStoreError(StoreError):
    """The store has no records at all."""


class NoMatchError(StoreError, LookupError):
    """The store has records, but none match the filters."""


@dataclass(frozen=True)
class AnalysisResult:
    """Rows (one per record × balancing), the records skipped (``(id, reason)``) and the files
    written (``name → path``; empty without ``out``)."""

    rows: list[dict]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def _open(store) -> tuple[MatrixStore, bool]:
    if isinstance(store, MatrixStore):
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return MatrixStore(store, mode="r"), True
    raise TypeError(f"store must be a MatrixStore or a path, got {type(store).__name__}")


def select_records(store: MatrixStore, *, run=None, kinds=None, layer=None, step=None,
                   limit=None) -> list:
    """``store.query`` with clear errors: empty store, unknown run (strict), no match."""
    if len(store) == 0:
        raise EmptyStoreError(f"store {str(store.path)!r} is empty (no records)")
    recs = store.query(run=run, step=step, layer=layer, kind=kinds, strict=True, limit=limit)
    if not recs:
        filt = {k: v for k, v in dict(run=run, kind=kinds, layer=layer, step=step).items()
                if v is not None}
        s = store.summary()
        known = {r.run: list(r.kinds) for r in s.runs}
        raise NoMatchError(f"no record in {str(store.path)!r} matches {filt} "
                           f"(runs and their kinds: {known})")
    return recs


def _as_matrix(t: torch.Tensor) -> torch.Tensor | None:
    if t.ndim < 2 or t.numel() == 0:
        return None
    if t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t


def _write_csv(path: Path, rows: list[dict]) -> None:
    cols = list(rows[0]) if rows else list(_KEYS)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def summarize(rows: list[dict], metrics=METRICS) -> list[dict]:
    """Median and count of finite values per (run, kind, balancing, metric), runs in order of
    appearance (rows without a ``run`` form the run ``""``).

    >>> rows = [{"run": r, "kind": "grad", "balancing": "none", "x_min": v}
    ...         for r, v in (("a", 0.1), ("a", 0.3), ("b", 0.5))]
    >>> [(s["run"], s["median"], s["n_finite"]) for s in summarize(rows, metrics=("x_min",))]
    [('a', 0.2, 2), ('b', 0.5, 1)]
    """
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        for m in metrics:
            key = (r.get("run", ""), r["kind"], r["balancing"], m)
            groups.setdefault(key, [])
            if math.isfinite(r[m]):
                groups[key].append(r[m])
    return [{"run": run, "kind": k, "balancing": b, "metric": m,
             "median": statistics.median(v) if v else math.nan, "n_finite": len(v)}
            for (run, k, b, m), v in groups.items()]


def runs_of(rows: list[dict]) -> list[str]:
    """The runs of ``rows`` in order of appearance."""
    return list(dict.fromkeys(r.get("run", "") for r in rows))


def analyze_store(store, *, run=None, kinds=None, layer=None, step=None,
                  methods=tuple(BALANCINGS), schedule="muon", steps: int | None = 5,
                  out=None, formats=("png", "pdf"), progress: bool = True,
                  limit: int | None = None, threads: int | None = None) -> AnalysisResult:
    """Tidy equilibration rows for the selected records; with ``out``, CSV + figure files.

    Parameters
    ----------
    store : MatrixStore or path (opened read-only)
    run, kinds, layer, step, limit : filters as :meth:`MatrixStore.query` (``run`` strict: an
        unknown run raises ``UnknownRunError``; ``kinds`` ``None``: every kind).
    methods : labels from :data:`matbal.analysis.BALANCINGS` (``none, R, C, RC, RACS``).
    schedule, steps : the NS iteration whose error is measured and predicted (Muon NS5).
    out : folder for ``equilibration.csv``, ``summary.csv``, ``equilibration.<fmt>``.
    progress : tqdm progress bar over records (stderr).
    threads : torch CPU threads for the SVDs (``torch.set_num_threads``; restored afterwards);
        ``None``: leave the setting alone.

    Raises ``EmptyStoreError`` (no records), ``UnknownRunError``, ``NoMatchError`` (filters match
    nothing), ``StoreNotFoundError`` (no store at the path).
    """
    methods = tuple(methods)
    bad = [m for m in methods if m not in BALANCINGS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(BALANCINGS)}, got {methods}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    st, owned = _open(store)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        recs = select_records(st, run=run, kinds=kinds, layer=layer, step=step, limit=limit)
        from tqdm.auto import tqdm

        rows, skipped = [], []
        for rec in tqdm(recs, desc="analyze", unit="matrix", disable=not progress):
            x = _as_matrix(st.get(rec))
            if x is None:
                skipped.append((rec.id, f"shape {rec.shape} is not a matrix"))
                continue
            for r in equilibration_rows({rec.layer: x}, methods=methods, schedule=schedule,
                                        steps=steps):
                r.pop("matrix")
                rows.append({"run": rec.run, "step": rec.step, "layer": rec.layer,
                             "kind": rec.kind, "record_id": rec.id, **r})
    finally:
        torch.set_num_threads(old_threads)
        if owned:
            st.close()
    files: dict[str, Path] = {}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files["table"] = out / "equilibration.csv"
        _write_csv(files["table"], rows)
        files["summary"] = out / "summary.csv"
        _write_csv(files["summary"], summarize(rows))
        if rows:
            from .figures import equilibration_figure

            fig = equilibration_figure(rows, methods=methods, schedule=schedule, steps=steps)
            for fmt in formats:
                files[fmt] = out / f"equilibration.{fmt}"
                fig.savefig(files[fmt], dpi=120)
    return AnalysisResult(rows, skipped, files)
