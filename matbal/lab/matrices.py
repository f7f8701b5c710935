"""Test matrices the experiments share beyond :mod:`matbal.synthetic` (candidates to move there).

``scaled_core``: ``X = D_r C D_c`` with ``C`` a prescribed-spectrum core (Haar singular vectors,
geometric singular values with condition number ``core_kappa``) and log-uniform diagonal scales
spanning ``row_range`` and ``col_range`` — ill-conditioning from scale (removable by balancing)
times ill-conditioning in the spectrum (not removable), each with its own knob.
``coherent_rows``: rows sharing a common direction, ``x_i = √ρ z + √(1−ρ) g_i`` (unit-variance
entries), so the expected cosine between two rows is ρ.

>>> import torch
>>> x = scaled_core(8, 16, core_kappa=10.0, scale_range=100.0, seed=0)
>>> x.shape, x.dtype
(torch.Size([8, 16]), torch.float32)
"""
from __future__ import annotations

import math

import torch

from .. import synthetic as syn

__all__ = ["scaled_core", "coherent_rows"]


def scaled_core(m: int, n: int, *, core_kappa: float, scale_range: float = 1.0,
                row_range: float | None = None, col_range: float | None = None, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``D_r · U diag(s) Vᵀ · D_c``: ``s`` geometric from 1 to ``1/core_kappa``; ``D_r`` entries
    log-uniform in ``[1, row_range]``, ``D_c`` in ``[1, col_range]`` (both default
    ``scale_range``). Built in float64, cast to ``dtype``."""
    for name, v in (("core_kappa", core_kappa), ("scale_range", scale_range),
                    ("row_range", row_range), ("col_range", col_range)):
        if v is not None and not (math.isfinite(v) and v >= 1):
            raise ValueError(f"{name} must be finite and >= 1, got {v!r}")
    rr = scale_range if row_range is None else row_range
    cr = scale_range if col_range is None else col_range
    core = syn.prescribed_spectrum(m, n, syn.geometric_spectrum(min(m, n), kappa=core_kappa),
                                   seed=seed, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 7919)
    dr = torch.exp(torch.rand(m, dtype=torch.float64, generator=gen) * math.log(float(rr)))
    dc = torch.exp(torch.rand(n, dtype=torch.float64, generator=gen) * math.log(float(cr)))
    x = dr[:, None] * core * dc[None, :]
    return x.to(dtype)


def coherent_rows(m: int, n: int, *, rho: float, seed: int = 0,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``x_i = √ρ z + √(1−ρ) g_i`` with ``z, g_i ~ N(0, I_n)``, scaled by ``1/√n``: row cosines ≈ ρ."""
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    g = syn.gaussian(m + 1, n, seed=seed, dtype=torch.float64)
    z, rest = g[:1], g[1:]
    return (math.sqrt(rho) * z + math.sqrt(1.0 - rho) * rest).to(dtype)
