"""Small summaries that several experiments and figures need (so none re-implements them).

>>> rows = [{"g": "a", "v": 1.0}, {"g": "a", "v": 3.0}, {"g": "b", "v": 2.0}]
>>> aggregate(rows, by=("g",), values=("v",))
[{'g': 'a', 'v': 2.0, 'n': 2}, {'g': 'b', 'v': 2.0, 'n': 1}]
>>> round(asymptotic_rate([1.0, 0.5, 0.25, 0.125]), 6)
0.5
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["aggregate", "asymptotic_rate", "loglog_slope", "geomean", "seed_band"]


def aggregate(rows: Iterable[Mapping], *, by: Sequence[str], values: Sequence[str],
              stat: str | Callable = "median") -> list[dict]:
    """Group ``rows`` by the ``by`` fields (first-seen order) and reduce each of ``values`` with
    ``stat`` (``"median"``, ``"mean"``, ``"min"``, ``"max"``, ``"geomean"`` or a callable on a
    1-D array); each output row also has ``n``, the group size. None values are skipped."""
    fns = {"median": np.median, "mean": np.mean, "min": np.min, "max": np.max, "geomean": geomean}
    fn = fns[stat] if isinstance(stat, str) else stat
    groups: dict[tuple, list[Mapping]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, rs in groups.items():
        row = dict(zip(by, key))
        for v in values:
            arr = np.array([r[v] for r in rs if r.get(v) is not None], dtype=float)
            row[v] = float(fn(arr)) if arr.size else None
        row["n"] = len(rs)
        out.append(row)
    return out


def geomean(a) -> float:
    """Geometric mean of positive numbers."""
    a = np.asarray(a, dtype=float)
    return float(np.exp(np.mean(np.log(a))))


def asymptotic_rate(history: Sequence[float], *, floor: float = 0.0, last: int = 3) -> float:
    """Linear convergence rate of a residual history: the geometric mean of the last ``last``
    ratios ``h[k+1]/h[k]`` among the entries above ``floor`` (rounding noise). NaN if fewer than
    two entries qualify."""
    h = np.asarray(history, dtype=float)
    h = h[h > floor]
    if h.size < 2:
        return math.nan
    ratios = h[1:] / h[:-1]
    return geomean(ratios[-last:])


def loglog_slope(k: Sequence[float], h: Sequence[float]) -> float:
    """Least-squares slope of ``log h`` against ``log k`` (``h ∝ k^slope``; −1 is sublinear 1/k)."""
    k, h = np.asarray(k, dtype=float), np.asarray(h, dtype=float)
    ok = (k > 0) & (h > 0)
    return float(np.polyfit(np.log(k[ok]), np.log(h[ok]), 1)[0])


def seed_band(rows: Iterable[Mapping], key: str, *, step: str = "step"):
    """Mean and sample std over seeds per step: ``(steps, mean, std)`` as arrays, from rows that
    hold one value of ``key`` per (step, seed); std is 0 with a single seed.

    >>> rows = [{"step": 1, "v": 1.0}, {"step": 1, "v": 3.0}, {"step": 2, "v": 2.0}, {"step": 2, "v": 2.0}]
    >>> steps, mean, std = seed_band(rows, "v")
    >>> steps.tolist(), mean.tolist(), std.tolist()
    ([1, 2], [2.0, 2.0], [1.4142135623730951, 0.0])
    """
    import numpy as np

    rows = [r for r in rows if r.get(key) is not None]
    steps = sorted({r[step] for r in rows})
    vals = np.array([[r[key] for r in rows if r[step] == t] for t in steps])
    std = vals.std(1, ddof=1) if vals.shape[1] > 1 else 0 * vals[:, 0]
    return np.array(steps), vals.mean(1), std
