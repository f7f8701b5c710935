"""Where between grid points the best learning rate lies, and how sure the seeds make us.

:mod:`matbal.lab.lr_protocol` picks the best lr *on the grid*. To compare optima across arms more
finely than the grid ratio, :func:`subgrid_lr` fits a parabola in ``u = log2(lr)`` through the
grid's best point and its two neighbours and returns its vertex. For points ``(u₋, y₋)``,
``(u₀, y₀)``, ``(u₊, y₊)`` with ``y₀`` the smallest, the vertex is

.. math::

   u^* = u_0 - \\tfrac12\\,\\frac{(u_0-u_-)^2 (y_0-y_+) - (u_0-u_+)^2 (y_0-y_-)}
                               {(u_0-u_-)(y_0-y_+) - (u_0-u_+)(y_0-y_-)}

(the three-point step of successive parabolic interpolation, Brent, *Algorithms for
Minimization without Derivatives* (1973), ch. 5); it lies between ``u₋`` and ``u₊`` because the
middle point is the lowest. An optimum on the edge of the grid, or next to a diverged (non-finite)
neighbour, has no bracket: the grid point itself is returned and ``bracketed`` is False.

:func:`bootstrap_seeds` resamples *seeds* (the same resampled seed indices for every arm, since
seed ``i`` gives every arm the same initialisation and data order) and recomputes a statistic of
all arms' per-lr means — e.g. the slope of ``log2(best lr)`` against a per-arm covariate — giving
a percentile interval (Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13).

>>> lrs = [0.01, 0.02, 0.04, 0.08]
>>> loss = [(math.log2(lr) - math.log2(0.03)) ** 2 for lr in lrs]   # exact parabola, vertex 0.03
>>> round(subgrid_lr(lrs, loss)["lr"], 12)
0.03
>>> subgrid_lr([0.01, 0.02], [1.0, 2.0])["bracketed"]
False
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["subgrid_lr", "bootstrap_seeds"]


def subgrid_lr(lrs: Sequence[float], values: Sequence[float]) -> dict:
    """Vertex of the parabola in ``log2(lr)`` through the lowest of ``values`` and its neighbours.

    Parameters
    ----------
    lrs : increasing positive learning rates (≥ 2)
    values : the metric at each lr (lower is better; ``inf``/``nan`` = diverged, worst)

    Returns
    -------
    dict with ``lr`` (the estimate), ``grid_lr`` (the best grid point), ``bracketed`` (a finite
    neighbour on each side) and ``log2_lr``.
    """
    lr = np.asarray(lrs, dtype=float)
    y = np.asarray(values, dtype=float)
    if lr.ndim != 1 or lr.size < 2:
        raise ValueError(f"lrs must hold at least 2 learning rates, got {list(lrs)}")
    if y.shape != lr.shape:
        raise ValueError(f"values must have one entry per lr: {y.size} values for {lr.size} lrs")
    if not np.all(np.isfinite(lr)) or np.any(lr <= 0) or np.any(np.diff(lr) <= 0):
        raise ValueError(f"lrs must be positive, finite and strictly increasing, got {list(lrs)}")
    u = np.log2(lr)
    y = np.where(np.isfinite(y), y, np.inf)
    if not np.any(np.isfinite(y)):
        raise ValueError("values holds no finite entry: every lr diverged")
    i = int(np.argmin(y))
    out = {"grid_lr": float(lrs[i]), "lr": float(lrs[i]), "bracketed": False,
           "log2_lr": float(u[i])}
    if i == 0 or i == u.size - 1 or not (np.isfinite(y[i - 1]) and np.isfinite(y[i + 1])):
        return out
    (a, b, c), (fa, fb, fc) = u[i - 1:i + 2], y[i - 1:i + 2]
    num = (b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)
    den = (b - a) * (fb - fc) - (b - c) * (fb - fa)
    v = b if den == 0 else b - 0.5 * num / den
    v = float(min(max(v, a), c))  # a flat triple can put it on an end, never outside
    return {**out, "lr": float(2.0 ** v), "bracketed": True, "log2_lr": v}


def bootstrap_seeds(values: Mapping[str, np.ndarray], stat: Callable[[Mapping[str, np.ndarray]], float],
                    *, resamples: int = 2000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Percentile interval of ``stat`` over seed resamples.

    ``values``: arm → array of shape ``(n_lr, n_seeds)`` (column ``j`` = seed ``j``, the same seed
    list for every arm). Each resample draws ``n_seeds`` column indices with replacement — the same
    indices for all arms — and calls ``stat`` with arm → per-lr mean over the drawn columns.
    Resamples whose statistic is not finite are dropped (their count is returned).

    Returns ``{"estimate", "ci", "resamples", "dropped", "alpha"}``; ``estimate`` is ``stat`` on
    the full data.

    >>> v = {"a": np.array([[1.0, 1.2], [0.5, 0.7], [0.9, 1.1]])}
    >>> r = bootstrap_seeds(v, lambda m: float(m["a"].min()), resamples=200)
    >>> r["estimate"], r["ci"][0] >= 0.5, r["ci"][1] <= 0.7
    (0.6, True, True)
    """
    if not values:
        raise ValueError("values is empty: no arm to resample")
    arrs = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    n = {a.shape[1] if a.ndim == 2 else -1 for a in arrs.values()}
    if len(n) != 1 or min(n) < 2:
        raise ValueError(f"every arm needs an (n_lr, n_seeds) array with the same n_seeds ≥ 2; "
                         f"got shapes {[a.shape for a in arrs.values()]}")
    if not (isinstance(resamples, int) and resamples >= 100):
        raise ValueError(f"resamples must be an int ≥ 100, got {resamples!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    n_seeds = n.pop()
    est = float(stat({k: a.mean(axis=1) for k, a in arrs.items()}))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        idx = rng.integers(0, n_seeds, size=n_seeds)
        draws.append(float(stat({k: a[:, idx].mean(axis=1) for k, a in arrs.items()})))
    d = np.array(draws)
    ok = d[np.isfinite(d)]
    lo, hi = (np.quantile(ok, [alpha / 2, 1 - alpha / 2]) if ok.size else (math.nan, math.nan))
    return {"estimate": est, "ci": [float(lo), float(hi)], "resamples": resamples,
            "dropped": int(d.size - ok.size), "alpha": float(alpha)}
