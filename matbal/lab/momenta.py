"""Per-matrix measurements the momentum studies share (RM-1, NM-1, the MiniLM recording).

- :func:`row_vs_polar` — EQ-4/RM-1's comparison of row normalization with orthogonalization on one
  matrix ``M`` (float64): the spectral error ``‖s·R(M) − polar(M)‖₂`` with ``s = min(1, √(n/m))``,
  the cosines ``cos(R(M), polar(M))``, ``cos(R(M), NS5(M))``, ``cos(NS5(M), polar(M))``, the
  Gram deviation of the scaled rows and their mean/max absolute row cosine. ``polar`` drops
  singular values below ``rtol·σ₁`` (:func:`matbal.polar`).
- :func:`spectrum_summary` — ``x_min = σ_r/‖M‖_F``, the second smallest ``σ_{r−1}/‖M‖_F`` and the
  stable rank.
- :func:`spectrum_quantiles` — SC-1's profile of ``σ_i/‖M‖_F``: the smallest value after dropping
  the ``drop`` smallest singular values (structural null directions), quantiles over the kept
  values, and the fraction of kept directions below a threshold (e.g. NS5's half-lift ``x₀.₅``).
- :func:`row_norm_spread` — NM-1's row-norm statistics of an orthogonalized update: coefficient of
  variation and largest deviation from 1 of the row norms, with the matrix oriented tall.

>>> import torch
>>> x = torch.eye(4, dtype=torch.float64)
>>> round(row_vs_polar(x)["cos_r_polar"], 12), round(spectrum_summary(x)["stable_rank"], 12)
(1.0, 4.0)
>>> p = spectrum_quantiles(torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.0])), (0.5,), drop=1, level=0.3)
>>> round(p["x_eff"], 6), round(p["q50"], 6), p["frac_below"]  # σ/‖M‖_F = 4, 2, 1 over √21
(0.218218, 0.436436, 0.333333)
"""
from __future__ import annotations

import math

import torch

import matbal

from .training import cosine

__all__ = ["row_vs_polar", "spectrum_summary", "spectrum_quantiles", "row_norm_spread"]


def row_vs_polar(x: torch.Tensor, rtol: float = 1e-6) -> dict:
    """Row normalization vs the polar factor and Muon NS5 on one matrix (module docstring)."""
    x = x.double()
    m, n = x.shape
    r = matbal.normalize_rows(x)
    q = matbal.polar(x, rtol=rtol)
    o = matbal.newton_schulz(x.float(), schedule="muon", steps=5).double()
    s = min(1.0, math.sqrt(n / m))
    off = (r @ r.T)[~torch.eye(m, dtype=torch.bool)].abs()
    return {"error": float(torch.linalg.matrix_norm(s * r - q, ord=2)),
            "cos_r_polar": cosine(r, q), "cos_r_ns5": cosine(r, o), "cos_ns5_polar": cosine(o, q),
            "gram_dev": float(matbal.orthogonality_error(r if m <= n else r * s).gram_spectral),
            "mean_abs_row_cos": float(off.mean()) if off.numel() else 0.0,
            "max_abs_row_cos": float(off.max()) if off.numel() else 0.0}


def spectrum_summary(x: torch.Tensor) -> dict:
    """``x_min``, ``x_min2`` (σ_r and σ_{r−1} over ‖x‖_F) and the stable rank of ``x``; a zero
    matrix gives zeros (as :func:`matbal.x_min` and :func:`matbal.stable_rank` do), never NaN."""
    sv = matbal.svdvals(x)
    fro = float(torch.linalg.norm(x.double()))
    if fro == 0:
        return {"x_min": 0.0, "x_min2": 0.0 if len(sv) > 1 else math.nan, "stable_rank": 0.0}
    return {"x_min": float(sv[-1]) / fro, "x_min2": float(sv[-2]) / fro if len(sv) > 1 else math.nan,
            "stable_rank": float((sv ** 2).sum() / sv[0] ** 2)}


def spectrum_quantiles(x: torch.Tensor, quantiles=(0.1, 0.25, 0.5, 0.75, 0.9), *, drop: int = 0,
                       level: float | None = None) -> dict:
    """Profile of the normalized spectrum ``x_i = σ_i/‖x‖_F`` (``σ_1 ≥ … ≥ σ_r``, ``r = min(m, n)``)
    after dropping the ``drop`` smallest singular values: ``x_eff`` (the smallest kept ``x_i``,
    i.e. ``σ_{r−drop}/‖x‖_F``), ``q<100·q>`` for each quantile of the kept values (linear
    interpolation, ``numpy.quantile``), ``frac_below`` (fraction of kept values ``< level``, rounded
    to 6 digits; ``None`` without ``level``) and ``n_kept``. A zero matrix gives zeros (and
    ``frac_below`` 1 when ``level > 0``)."""
    import numpy as np

    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise TypeError(f"x must be a 2-D tensor, got {type(x).__name__}")
    if not (isinstance(drop, int) and not isinstance(drop, bool) and 0 <= drop < min(x.shape)):
        raise ValueError(f"drop must be an int in [0, min(m, n)) = [0, {min(x.shape)}), got {drop!r}")
    qs = [float(q) for q in quantiles]
    if not all(0.0 <= q <= 1.0 for q in qs):
        raise ValueError(f"quantiles must lie in [0, 1], got {list(quantiles)!r}")
    if level is not None and (isinstance(level, bool) or not math.isfinite(level)):
        raise ValueError(f"level must be a finite number or None, got {level!r}")
    sv = matbal.svdvals(x.double()).cpu().numpy()
    fro = float(np.sqrt((sv ** 2).sum()))
    kept = (sv / fro if fro > 0 else np.zeros_like(sv))[: len(sv) - drop]
    out = {"x_eff": float(kept[-1]), "n_kept": int(kept.size)}
    for q in qs:
        out[f"q{round(100 * q):g}"] = float(np.quantile(kept, q))
    out["frac_below"] = None if level is None else round(float((kept < level).mean()), 6)
    return out


def row_norm_spread(o: torch.Tensor) -> dict:
    """Row norms of ``o`` oriented tall (rows = the longer side): ``cv`` (std/mean) and
    ``max_dev_from_1``."""
    o = o.double()
    if o.shape[0] < o.shape[1]:
        o = o.T
    r = o.norm(dim=1)
    return {"cv": float(r.std(unbiased=False) / r.mean()), "max_dev_from_1": float((r - 1).abs().max())}
