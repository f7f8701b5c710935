"""Synthetic test matrices with known structure: seeded, any shape, dtype and device.

Spectra (float64 vectors for :func:`prescribed_spectrum`): ``geometric_spectrum``,
``power_law_spectrum``, ``marchenko_pastur_spectrum``. Matrices with a named structure — and the
balancing that should (or should not) remove it: ``gaussian`` (control), ``scale_mismatch``
(R / C / RC), ``heavy_rows`` (R), ``heavy_cols`` (C), ``heavy_tailed`` (partly RC),
``low_rank_plus_noise`` (none: intrinsic). ``GALLERY`` names ready-made instances for demos.

Every generator takes ``seed`` (int) and returns a float tensor of shape ``(*batch, m, n)``.
Randomness is drawn in float64 on the CPU from ``torch.Generator().manual_seed(seed)`` and only then
cast and moved, so the same seed gives the same matrix (to rounding) on every device and dtype.

Example
-------
>>> import torch, matbal.synthetic as syn
>>> x = syn.prescribed_spectrum(64, 128, syn.geometric_spectrum(64, kappa=1e3), seed=0)
>>> s = torch.linalg.svdvals(x.double())
>>> bool(torch.allclose(s[0] / s[-1], torch.tensor(1e3, dtype=torch.float64), rtol=1e-6))
True
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import scipy.special
import torch

__all__ = [
    "random_orthogonal",
    "prescribed_spectrum",
    "geometric_spectrum",
    "power_law_spectrum",
    "marchenko_pastur_spectrum",
    "gaussian",
    "scale_mismatch",
    "low_rank_plus_noise",
    "heavy_rows",
    "heavy_cols",
    "heavy_tailed",
    "GALLERY",
]


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _finish(x: torch.Tensor, dtype: torch.dtype, device) -> torch.Tensor:
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    return x.to(dtype=dtype, device=device)


def _check_shape(m: int, n: int, batch: Sequence[int]) -> tuple[int, ...]:
    for name, v in (("m", m), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    batch = tuple(batch)
    if any((not isinstance(b, int)) or b < 1 for b in batch):
        raise ValueError(f"batch must be a tuple of positive ints, got {batch!r}")
    return batch


def random_orthogonal(
    m: int, k: int, *, batch: Sequence[int] = (), generator: torch.Generator
) -> torch.Tensor:
    """Haar-distributed ``(*batch, m, k)`` matrix with orthonormal columns (``k <= m``), float64.

    QR of a Gaussian matrix with the signs of ``diag(R)`` folded into ``Q`` (Mezzadri 2007)."""
    if k > m:
        raise ValueError(f"k must be <= m for orthonormal columns, got m={m}, k={k}")
    g = torch.randn(*batch, m, k, dtype=torch.float64, generator=generator)
    q, r = torch.linalg.qr(g)
    d = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    d = torch.where(d == 0, torch.ones_like(d), d)
    return q * d.unsqueeze(-2)


def prescribed_spectrum(
    m: int,
    n: int,
    s,
    *,
    seed: int = 0,
    batch: Sequence[int] = (),
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """``X = U diag(s) Vᵀ`` with Haar-random ``U (m×r)``, ``V (n×r)``, ``r = min(m, n)``.

    ``s`` is a length-``r`` sequence/tensor of nonnegative singular values (any order; they are
    sorted descending). The singular values of the result equal ``s`` up to the rounding of
    ``dtype``. Shapes: returns ``(*batch, m, n)``.
    """
    batch = _check_shape(m, n, batch)
    r = min(m, n)
    s = torch.as_tensor(s, dtype=torch.float64).flatten()
    if s.numel() != r:
        raise ValueError(f"s must have min(m, n) = {r} entries, got {s.numel()}")
    if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise ValueError("s must be finite and nonnegative")
    s = torch.sort(s, descending=True).values
    gen = _generator(seed)
    u = random_orthogonal(m, r, batch=batch, generator=gen)
    v = random_orthogonal(n, r, batch=batch, generator=gen)
    x = (u * s) @ v.transpose(-2, -1)
    return _finish(x, dtype, device)


def geometric_spectrum(r: int, *, kappa: float, top: float = 1.0) -> torch.Tensor:
    """``r`` singular values spaced geometrically from ``top`` down to ``top / kappa`` (float64)."""
    if r < 1:
        raise ValueError(f"r must be >= 1, got {r}")
    if not (kappa >= 1 and math.isfinite(kappa)):
        raise ValueError(f"kappa must be finite and >= 1, got {kappa!r}")
    if r == 1:
        return torch.tensor([float(top)], dtype=torch.float64)
    return top * torch.logspace(0, -math.log10(kappa), r, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------
# Spectra (float64 vectors, descending) — feed them to prescribed_spectrum
# ------------------------------------------------------------------------------------------------


def _check_number(value, name: str, *, low: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (strict and value == low)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return value


def _check_count(value, name: str, *, high: int | None = None, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    low = 0 if allow_zero else 1
    if value < low or (high is not None and value > high):
        hi = f" and <= {high}" if high is not None else ""
        raise ValueError(f"{name} must be >= {low}{hi}, got {value!r}")
    return int(value)


def power_law_spectrum(r: int, *, alpha: float, top: float = 1.0) -> torch.Tensor:
    """``σ_i = top · i^{-α}``, ``i = 1..r`` (float64, descending): κ = r^α, a heavy head and long tail.

    The spectrum of trained weights and gradients is often close to a power law; ``alpha = 0`` is
    flat (orthogonal up to scale), ``alpha = 1`` gives ``sr ≈ π²/6`` whatever ``r``.

    >>> power_law_spectrum(4, alpha=1.0).tolist()
    [1.0, 0.5, 0.3333333333333333, 0.25]
    """
    r = _check_count(r, "r")
    alpha = _check_number(alpha, "alpha", low=0.0)
    top = _check_number(top, "top", low=0.0, strict=True)
    i = torch.arange(1, r + 1, dtype=torch.float64)
    return top * i.pow(-alpha)


def _mp_quantiles(r: int, gamma: float) -> torch.Tensor:
    """Upper ``(i − ½)/r`` quantiles of the Marchenko–Pastur law with ratio ``gamma ∈ (0, 1]``.

    The density ``sqrt((b−λ)(λ−a)) / (2π γ λ)`` on ``[a, b] = [(1−√γ)², (1+√γ)²]`` is integrated in
    ``λ = a + (b−a)(1−cos θ)/2``, where the integrand is smooth (also at the γ = 1 pole), on a fine
    grid; the CDF is then inverted by interpolation (accuracy ~1e-8 in λ)."""
    a, b = (1 - math.sqrt(gamma)) ** 2, (1 + math.sqrt(gamma)) ** 2
    theta = np.linspace(0.0, math.pi, 200_001)
    lam = a + (b - a) * (1 - np.cos(theta)) / 2
    half = (b - a) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(lam > 0, (half * np.sin(theta)) ** 2 / (2 * math.pi * gamma * lam), 0.0)
    if a == 0.0:  # γ = 1: the integrand tends to b/(2π) as θ → 0 (λ ≈ bθ²/4)
        f[0] = b / (2 * math.pi)
    cdf = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(theta))])
    cdf /= cdf[-1]
    q = 1 - (np.arange(1, r + 1) - 0.5) / r  # descending eigenvalues
    return torch.from_numpy(np.interp(q, cdf, lam))


def marchenko_pastur_spectrum(
    m: int, n: int, *, seed: int = 0, method: str = "sample"
) -> torch.Tensor:
    """Singular values (``r = min(m, n)``, float64, descending) of a Gaussian ``G/√max(m, n)``.

    ``method="sample"``: the exact singular values of ``G/√max(m, n)``, ``G`` an ``m × n`` i.i.d.
    N(0, 1) matrix drawn from ``seed``. ``method="quantiles"``: deterministic (``seed`` unused) —
    ``σ_i = √λ_i`` with ``λ_i`` the upper ``(i − ½)/r`` quantile of the Marchenko–Pastur law of ratio
    ``γ = r/max(m, n)``, support ``[(1−√γ)², (1+√γ)²]``, mean 1. Either way ``σ ∈ ≈[1−√γ, 1+√γ]``:
    the "generic random matrix" spectrum (no scale structure, κ ≈ (1+√γ)/(1−√γ)).

    >>> s = marchenko_pastur_spectrum(100, 400, method="quantiles")
    >>> 0.5 < float(s[-1]) < float(s[0]) < 1.5
    True
    """
    _check_shape(m, n, ())
    if method not in ("sample", "quantiles"):
        raise ValueError(f"method must be one of ['quantiles', 'sample'], got {method!r}")
    r, big = min(m, n), max(m, n)
    if method == "quantiles":
        return torch.sqrt(_mp_quantiles(r, r / big))
    g = torch.randn(m, n, dtype=torch.float64, generator=_generator(seed))
    return torch.linalg.svdvals(g / math.sqrt(big))


# ------------------------------------------------------------------------------------------------
# Matrices with a named structure (each: seed, batch, dtype, device as prescribed_spectrum)
# ------------------------------------------------------------------------------------------------


def _randn(batch, m, n, gen) -> torch.Tensor:
    return torch.randn(*batch, m, n, dtype=torch.float64, generator=gen)


def gaussian(
    m: int, n: int, *, seed: int = 0, batch: Sequence[int] = (), dtype=torch.float32, device=None
) -> torch.Tensor:
    """``X = G/√n``, ``G_ij ~ N(0, 1)`` i.i.d.: rows of norm ≈ 1, Marchenko–Pastur spectrum; the control.

    Balanced on average (no balancing changes its spectrum much).

    >>> gaussian(3, 4, batch=(2,), dtype=torch.float64).shape
    torch.Size([2, 3, 4])
    """
    batch = _check_shape(m, n, batch)
    return _finish(_randn(batch, m, n, _generator(seed)) / math.sqrt(n), dtype, device)


def _check_range(rng, name: str) -> tuple[float, float]:
    try:
        lo, hi = rng
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (lo, hi), got {rng!r}") from None
    lo = _check_number(lo, f"{name}[0]", low=0.0, strict=True)
    hi = _check_number(hi, f"{name}[1]", low=0.0, strict=True)
    if lo > hi:
        raise ValueError(f"{name} must have lo <= hi, got {rng!r}")
    return lo, hi


def _scales(batch, k: int, lo: float, hi: float, spacing: str, gen) -> torch.Tensor:
    if spacing == "geometric":
        t = torch.linspace(0.0, 1.0, k, dtype=torch.float64) if k > 1 else torch.zeros(1, dtype=torch.float64)
        return (lo * (hi / lo) ** t).expand(*batch, k)
    u = torch.rand(*batch, k, dtype=torch.float64, generator=gen)
    return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def scale_mismatch(
    m: int,
    n: int,
    *,
    row_range: tuple[float, float] = (1.0, 1.0),
    col_range: tuple[float, float] = (1.0, 1.0),
    spacing: str = "log_uniform",
    seed: int = 0,
    batch: Sequence[int] = (),
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """``X = D_r (G/√n) D_c``, diagonal scales in ``row_range``/``col_range``: ill-conditioning by scale.

    ``spacing="log_uniform"``: scales i.i.d. ``exp(U[log lo, log hi])``; ``"geometric"``: evenly spaced
    in log from ``lo`` (first row/column) to ``hi`` (last), deterministic. With ``col_range=(1, 1)``
    row ``i`` has norm ≈ ``d_i`` (so the row-norm spread is ≈ hi/lo). R (row normalization) removes
    a row mismatch, C a column mismatch; RACS-2 (Sinkhorn on ``X⊙X``) removes both, since it is
    invariant to ``D_r, D_c`` (MuonEq arXiv 2603.28254 claim EQ-1).

    >>> x = scale_mismatch(4, 4096, row_range=(1e-2, 1.0), spacing="geometric", dtype=torch.float64)
    >>> r = x.norm(dim=1)
    >>> round(float(r.max() / r.min()), -1)
    100.0
    """
    batch = _check_shape(m, n, batch)
    rlo, rhi = _check_range(row_range, "row_range")
    clo, chi = _check_range(col_range, "col_range")
    if spacing not in ("log_uniform", "geometric"):
        raise ValueError(f"spacing must be one of ['geometric', 'log_uniform'], got {spacing!r}")
    gen = _generator(seed)
    g = _randn(batch, m, n, gen) / math.sqrt(n)
    dr = _scales(batch, m, rlo, rhi, spacing, gen)
    dc = _scales(batch, n, clo, chi, spacing, gen)
    return _finish(dr.unsqueeze(-1) * g * dc.unsqueeze(-2), dtype, device)


def low_rank_plus_noise(
    m: int,
    n: int,
    *,
    rank: int,
    noise: float,
    seed: int = 0,
    batch: Sequence[int] = (),
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """``X = U_k V_kᵀ + noise·G/√max(m, n)`` (Haar ``U_k, V_k``, ``k = rank``): intrinsic low rank.

    ``k`` singular values ≈ 1 above a Marchenko–Pastur bulk of width ≈ ``noise·(1 + √(r/max(m, n)))``,
    so κ ≈ 1/noise-ish and ``sr ≈ k``. Ill-conditioning lives in the spectrum, not in row/column
    scales: no balancing should fix it (claim EQ-6). ``noise = 0`` gives an exactly rank-``k`` matrix.

    >>> x = low_rank_plus_noise(20, 30, rank=3, noise=0.0, dtype=torch.float64)
    >>> int(torch.linalg.matrix_rank(x))
    3
    """
    batch = _check_shape(m, n, batch)
    rank = _check_count(rank, "rank", high=min(m, n))
    noise = _check_number(noise, "noise", low=0.0)
    gen = _generator(seed)
    u = random_orthogonal(m, rank, batch=batch, generator=gen)
    v = random_orthogonal(n, rank, batch=batch, generator=gen)
    x = u @ v.transpose(-2, -1) + noise * _randn(batch, m, n, gen) / math.sqrt(max(m, n))
    return _finish(x, dtype, device)


def _pick(batch, count: int, k: int, gen) -> torch.Tensor:
    """Boolean mask ``(*batch, count)`` with ``k`` True entries at random positions."""
    ranks = torch.rand(*batch, count, generator=gen).argsort(-1).argsort(-1)
    return ranks < k


def heavy_rows(
    m: int,
    n: int,
    *,
    k: int,
    factor: float,
    seed: int = 0,
    batch: Sequence[int] = (),
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """``X = D (G/√n)`` with ``D = factor`` on ``k`` random rows, 1 elsewhere: a few dominant neurons.

    ``k`` singular values ≈ ``factor``, the rest ≈ 1: κ and ``1/x_min`` grow with ``factor``. Row
    normalization (R, MuonEq's default) removes it exactly; column normalization (C) does not.

    >>> x = heavy_rows(8, 16, k=2, factor=10.0, dtype=torch.float64)
    >>> int((x.norm(dim=1) > 5).sum())
    2
    """
    batch = _check_shape(m, n, batch)
    k = _check_count(k, "k", high=m, allow_zero=True)
    factor = _check_number(factor, "factor", low=0.0, strict=True)
    gen = _generator(seed)
    g = _randn(batch, m, n, gen) / math.sqrt(n)
    d = torch.where(_pick(batch, m, k, gen), factor, 1.0).to(torch.float64)
    return _finish(d.unsqueeze(-1) * g, dtype, device)


def heavy_cols(
    m: int,
    n: int,
    *,
    k: int,
    factor: float,
    seed: int = 0,
    batch: Sequence[int] = (),
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """``X = (G/√n) D`` with ``D = factor`` on ``k`` random columns, 1 elsewhere: a few dominant inputs.

    The transpose situation of :func:`heavy_rows`: column normalization (C) removes it, R does not.

    >>> x = heavy_cols(16, 8, k=1, factor=10.0, dtype=torch.float64)
    >>> int((x.norm(dim=0) > 5).sum())
    1
    """
    batch = _check_shape(m, n, batch)
    k = _check_count(k, "k", high=n, allow_zero=True)
    factor = _check_number(factor, "factor", low=0.0, strict=True)
    gen = _generator(seed)
    g = _randn(batch, m, n, gen) / math.sqrt(n)
    d = torch.where(_pick(batch, n, k, gen), factor, 1.0).to(torch.float64)
    return _finish(g * d.unsqueeze(-2), dtype, device)


def heavy_tailed(
    m: int,
    n: int,
    *,
    df: float,
    seed: int = 0,
    batch: Sequence[int] = (),
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """``X = T/√n``, ``T_ij`` i.i.d. Student-t with ``df ≥ 1`` degrees of freedom: spiky entries.

    Drawn by inverse CDF (``scipy.special.stdtrit``) of seeded uniforms. For ``df < 4`` the top
    singular values are set by the largest entries (Auffinger, Ben Arous & Péché 2009), so single
    rows *and* columns dominate: R or C alone helps partly, RC/RACS more. ``df → ∞`` is
    :func:`gaussian`; ``df = 1`` is Cauchy (no mean).

    >>> heavy_tailed(5, 6, df=3.0, batch=(2,)).shape
    torch.Size([2, 5, 6])
    """
    batch = _check_shape(m, n, batch)
    df = _check_number(df, "df", low=1.0)
    gen = _generator(seed)
    u = torch.rand(*batch, m, n, dtype=torch.float64, generator=gen)
    u = u.clamp(2.0**-54, 1 - 2.0**-54)
    t = torch.from_numpy(scipy.special.stdtrit(df, u.numpy()))
    return _finish(t / math.sqrt(n), dtype, device)


# ------------------------------------------------------------------------------------------------
# Gallery for demos: name -> factory(m, n, seed=0, *, batch=(), dtype=float32, device=None)
# ------------------------------------------------------------------------------------------------


def _g_gaussian(m, n, seed=0, **kw):
    return gaussian(m, n, seed=seed, **kw)


def _g_row_mismatch(m, n, seed=0, **kw):
    return scale_mismatch(m, n, row_range=(1e-3, 1.0), seed=seed, **kw)


def _g_col_mismatch(m, n, seed=0, **kw):
    return scale_mismatch(m, n, col_range=(1e-3, 1.0), seed=seed, **kw)


def _g_rowcol_mismatch(m, n, seed=0, **kw):
    return scale_mismatch(m, n, row_range=(1e-3, 1.0), col_range=(1e-3, 1.0), seed=seed, **kw)


def _g_low_rank(m, n, seed=0, **kw):
    return low_rank_plus_noise(m, n, rank=max(1, min(m, n) // 16), noise=1e-3, seed=seed, **kw)


def _g_heavy_rows(m, n, seed=0, **kw):
    return heavy_rows(m, n, k=max(1, m // 32), factor=100.0, seed=seed, **kw)


def _g_heavy_cols(m, n, seed=0, **kw):
    return heavy_cols(m, n, k=max(1, n // 32), factor=100.0, seed=seed, **kw)


def _g_heavy_tailed(m, n, seed=0, **kw):
    return heavy_tailed(m, n, df=3.0, seed=seed, **kw)


def _g_geometric_k1e3(m, n, seed=0, **kw):
    _check_shape(m, n, ())
    return prescribed_spectrum(m, n, geometric_spectrum(min(m, n), kappa=1e3), seed=seed, **kw)


def _g_power_law(m, n, seed=0, **kw):
    _check_shape(m, n, ())
    return prescribed_spectrum(m, n, power_law_spectrum(min(m, n), alpha=1.0), seed=seed, **kw)


GALLERY: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian": _g_gaussian,  # G/√n, the control
    "row_mismatch": _g_row_mismatch,  # row scales log-uniform in [1e-3, 1]: R fixes it
    "col_mismatch": _g_col_mismatch,  # column scales log-uniform in [1e-3, 1]: C fixes it
    "rowcol_mismatch": _g_rowcol_mismatch,  # both: RC/RACS fix it, R or C alone only half
    "low_rank": _g_low_rank,  # rank r/16 + 1e-3 noise: intrinsic, balancing should not help
    "heavy_rows": _g_heavy_rows,  # m/32 rows ×100: R fixes it
    "heavy_cols": _g_heavy_cols,  # n/32 columns ×100: C fixes it
    "heavy_tailed": _g_heavy_tailed,  # Student-t(3) entries: spiky rows and columns
    "geometric_k1e3": _g_geometric_k1e3,  # Haar U, V, geometric σ with κ = 1e3: intrinsic
    "power_law": _g_power_law,  # Haar U, V, σ_i = 1/i: intrinsic
}
"""Named test matrices for demos: ``GALLERY[name](m, n, seed=0, batch=(), dtype=torch.float32,
device=None)`` returns a ``(*batch, m, n)`` tensor. Each comment says what balancing should do."""
