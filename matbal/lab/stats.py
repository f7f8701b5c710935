"""Small summaries that several experiments and figures need (so none re-implements them).

>>> rows = [{"g": "a", "v": 1.0}, {"g": "a", "v": 3.0}, {"g": "b", "v": 2.0}]
>>> aggregate(rows, by=("g",), values=("v",))
[{'g': 'a', 'v': 2.0, 'n': 2}, {'g': 'b', 'v': 2.0, 'n': 1}]
>>> round(asymptotic_rate([1.0, 0.5, 0.25, 0.125]), 6)
0.5
>>> f = fit_trend([64, 128, 256], [[2 / 64], [2 / 128], [2 / 256]], level=1e-3, direction="down")
>>> round(f["slope"], 9), round(f["crossing"], 6)  # y = 2·x⁻¹ reaches 1e-3 at x = 2000
(-1.0, 2000.0)
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["aggregate", "asymptotic_rate", "loglog_slope", "geomean", "seed_band", "fit_trend"]


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


def _fit_line(t: np.ndarray, u: np.ndarray) -> tuple[float, float, float]:
    """Least squares ``u ≈ a + b·t``: ``(b, a, R²)`` (R² = 1 when ``u`` is constant)."""
    b, a = np.polyfit(t, u, 1)
    ss = float(((u - u.mean()) ** 2).sum())
    r2 = 1.0 - float(((u - (a + b * t)) ** 2).sum()) / ss if ss > 0 else 1.0
    return float(b), float(a), r2


def fit_trend(x: Sequence[float], samples: Sequence[Sequence[float]], *, logx: bool = True,
              logy: bool = True, level: float | None = None, direction: str = "down",
              resamples: int = 2000, alpha: float = 0.05, seed: int = 0) -> dict:
    """A straight-line trend through the medians of ``samples[i]`` (repeated measurements at
    ``x[i]``) with a bootstrap interval, and where the line reaches ``level``.

    The fit is least squares of ``T(median_i)`` on ``S(x_i)``, with ``S = log`` when ``logx`` and
    ``T = log`` when ``logy`` (``logx`` and ``logy``: the power law ``y = c·x^slope``; ``logx``
    only: ``y = a + slope·ln x``). The ``1 − alpha`` percentile intervals (Efron & Tibshirani,
    1993, ch. 13) come from ``resamples`` bootstrap replicates that redraw each ``samples[i]`` with
    replacement (fixed ``seed``: reproducible). ``crossing`` is the smallest ``x`` beyond which
    the line stays at or below (``direction="down"``) or at or above (``"up"``) ``level``: the
    solution of ``line(x) = level`` when the line moves that way, ``inf`` when it moves away or is
    flat (it never gets there as ``x`` grows); a crossing below ``min(x)`` means the line is past
    ``level`` already. ``crossing_ci`` is its percentile interval over the replicates (an
    infinite end: some replicates never cross).

    Returns ``slope``, ``intercept``, ``r2`` (of the fit to the medians), ``slope_ci``,
    ``crossing``, ``crossing_ci`` (``None`` without ``level``), ``medians``, ``n`` (samples per x)
    and the settings.
    """
    xs = np.asarray(x, dtype=float)
    if xs.ndim != 1 or xs.size < 2 or len({float(v) for v in xs}) < 2:
        raise ValueError(f"x needs at least two distinct values, got {list(x)!r}")
    if len(samples) != xs.size:
        raise ValueError(f"samples must have one sequence per x ({xs.size}), got {len(samples)}")
    ss = [np.asarray(s, dtype=float).ravel() for s in samples]
    if any(s.size == 0 for s in ss):
        raise ValueError("samples: every x needs at least one value")
    if not all(np.isfinite(s).all() for s in ss) or not np.isfinite(xs).all():
        raise ValueError("x and samples must be finite")
    if logx and (xs <= 0).any():
        raise ValueError("x must be positive with logx=True")
    if logy and any((s <= 0).any() for s in ss):
        raise ValueError("samples must be positive with logy=True")
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    if level is not None and (not math.isfinite(level) or (logy and level <= 0)):
        raise ValueError(f"level must be finite (and positive with logy=True), got {level!r}")
    if not (isinstance(resamples, int) and resamples >= 1):
        raise ValueError(f"resamples must be a positive int, got {resamples!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    S = np.log if logx else (lambda v: np.asarray(v, dtype=float))
    T = np.log if logy else (lambda v: np.asarray(v, dtype=float))
    t = S(xs)
    lv = float(T(level)) if level is not None else None
    sign = -1.0 if direction == "down" else 1.0

    def crossing(b: float, a: float) -> float:
        if lv is None or not b * sign > 0:
            return math.inf
        c = (lv - a) / b
        if not logx:
            return float(c)
        return math.exp(c) if c < 700 else math.inf

    meds = np.array([np.median(s) for s in ss])
    b, a, r2 = _fit_line(t, T(meds))
    rng = np.random.default_rng(seed)
    boot_b, boot_c = np.empty(resamples), np.empty(resamples)
    for k in range(resamples):
        m = np.array([np.median(s[rng.integers(0, s.size, s.size)]) for s in ss])
        bb, aa, _ = _fit_line(t, T(m))
        boot_b[k], boot_c[k] = bb, crossing(bb, aa)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    out = {"slope": b, "intercept": a, "r2": r2,
           "slope_ci": [float(v) for v in np.percentile(boot_b, q, method="inverted_cdf")],
           "crossing": None, "crossing_ci": None, "medians": [float(v) for v in meds],
           "n": [int(s.size) for s in ss], "logx": logx, "logy": logy, "level": level,
           "direction": direction, "resamples": resamples, "alpha": alpha}
    if level is not None:
        out["crossing"] = crossing(b, a)
        out["crossing_ci"] = [float(v) for v in np.percentile(boot_c, q, method="inverted_cdf")]
    return out
