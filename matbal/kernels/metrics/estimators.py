"""Cheap spectral-norm and stable-rank estimators that say which side of the truth they are on.

For every-step probes an SVD is too expensive; these cost a few matrix-vector products (power
iteration) or a few ``r × r`` matmuls (Schatten bound, ``r = min(m, n)``). Each returns an
:class:`Estimate` whose ``is_upper_bound`` states the direction, which holds in exact arithmetic and,
after a safety margin, in floating point (below).

Directions
----------
- ``spectral_norm_estimate(kind="lower")``: power iteration on ``XᵀX`` from a seeded Gaussian start;
  the value ``max_k ‖X v_k‖`` over unit iterates is ``≤ ‖X‖_2`` and converges to it **from below**.
  Relative error after ``k`` iterations ≈ ``(σ_2/σ_1)^{2k}`` with a gap, ``O(log(n)/k)`` without one.
  Measured (float64, median of 8 seeds, 256×256): Gaussian −4.6 % at 5 iterations, −2.4 % at 10,
  −0.9 % at 20, −0.08 % at 50; geometric spectrum κ = 1e3: −3.2 %, −1.2 %, −0.2 %, −0.005 %.
- ``spectral_norm_estimate(kind="upper")``: ``min(‖X‖_F, √(‖X‖_1‖X‖_∞), ‖G^p‖_F^{1/(2p)})`` with the
  wide-side Gram ``G`` and ``p = 2^{iters−1}``: the last is the Schatten-``4p`` norm
  ``(Σσ_i^{4p})^{1/(4p)} ≥ σ_1``, computed by ``iters − 1`` normalized squarings of ``G``; it
  overestimates by at most ``r^{1/(4p)}`` (iters = 2 is MuonEq's "spc" ``‖A²‖_F^{1/4}``).
  Measured (same matrices, iters = 1…6): Gaussian +142 %, +42 %, +13 %, +4.1 %, +1.1 %, +0.24 %;
  geometric κ = 1e3: +77 %, +23 %, +6.8 %, +1.7 %, +0.3 %, +0.02 %. ``iters = 0`` uses the
  Frobenius and Hölder bounds only (O(mn); ≈ √sr too high for a Gaussian matrix).
- ``stable_rank_estimate``: ``‖X‖_F² / est²``. With the *lower* norm estimate it is an **upper**
  bound on ``sr`` (``kind="upper"``, the cheap default for probes); with the upper norm estimate
  a **lower** bound (``kind="lower"``). Its relative error is about twice that of the norm.

Rounding: the matrix is scaled by its max-abs entry (no overflow for 1e±30 entries) and cast to
``dtype``; a norm beyond the dtype's max (finite float32 entries near 3e38) is reported as the
largest finite number by the lower bounds and as ``inf`` by the upper ones. The matrix is cast to
``dtype`` (default float32 for 16-bit input, the input dtype otherwise). The computed value is moved
outward by ``γ = max(m, n)·eps(dtype)`` (lower bounds × ``(1−γ)``, upper bounds × ``(1+γ)``), which
exceeds the typical ``√n·eps`` rounding error of the products by a wide margin (float32,
n = 4096: γ ≈ 5e-4).

Example
-------
>>> import torch
>>> from matbal.kernels.metrics import spectral_norm_estimate, svdvals
>>> x = torch.randn(64, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> lo = spectral_norm_estimate(x, iters=20, kind="lower")
>>> hi = spectral_norm_estimate(x, iters=4, kind="upper")
>>> bool(lo.value <= svdvals(x)[0] <= hi.value), lo.is_upper_bound, hi.is_upper_bound
(True, False, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import accum_dtype, as_matrix, check_choice, check_positive, numpy_io
from .._matvec import matvec, vecmat

__all__ = [
    "Estimate",
    "QuickStats",
    "spectral_norm_estimate",
    "stable_rank_estimate",
    "quick_stats",
]

_KINDS = ("lower", "upper")


@dataclass(frozen=True)
class Estimate:
    """An estimate with its direction: ``value`` (shape ``batch``) is a lower bound of the true
    quantity when ``is_upper_bound`` is False, an upper bound when True. ``method`` names the
    estimator, ``iters`` its iteration count."""

    value: torch.Tensor
    is_upper_bound: bool
    method: str
    iters: int


@dataclass(frozen=True)
class QuickStats:
    """Cheap per-step statistics with honest brackets (fields of shape ``batch``):

    ``spectral_lower ≤ ‖X‖_2 ≤ spectral_upper`` and ``stable_rank_lower ≤ sr ≤ stable_rank_upper``;
    ``frobenius_norm`` is exact up to rounding."""

    frobenius_norm: torch.Tensor
    spectral_lower: torch.Tensor
    spectral_upper: torch.Tensor
    stable_rank_lower: torch.Tensor
    stable_rank_upper: torch.Tensor

    def as_dict(self) -> dict:
        """Field name → Python float (unbatched) or nested list (batched)."""
        return {k: getattr(self, k).tolist() for k in self.__dataclass_fields__}


def _prepare(x, dtype):
    x = as_matrix(x, "x")
    if dtype is None:
        dtype = accum_dtype(x.dtype)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    # scale in the input precision (at least float32) *before* casting, so 1e±30 (or float64 1e200
    # with dtype=float32) neither overflows nor underflows
    xw = x.detach().to(torch.promote_types(x.dtype, torch.float32))
    scale = xw.abs().amax(dim=(-2, -1))
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    y = (xw / safe[..., None, None]).to(dtype)
    gamma = max(x.shape[-2:]) * torch.finfo(dtype).eps
    return y, scale, gamma


def _check_iters(iters, name="iters"):
    check_positive(iters, name, allow_zero=True, integer=True)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")


def _power_lower(y: torch.Tensor, iters: int, seed: int) -> torch.Tensor:
    """``max_k ‖Y v_k‖`` over unit power iterates of ``YᵀY`` (a lower bound of ``‖Y‖_2``)."""
    n = y.shape[-1]
    gen = torch.Generator().manual_seed(seed)
    # one start vector shared by every batch element: a batched call equals the loop
    v = torch.randn(n, generator=gen, dtype=torch.float64).expand(*y.shape[:-2], n)
    v = v.to(dtype=y.dtype, device=y.device)
    v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    tiny = torch.finfo(y.dtype).tiny
    u = matvec(y, v)
    nu = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
    best = nu
    for _ in range(iters):
        u = u / nu.clamp_min(tiny)
        v = vecmat(u, y)
        nv = torch.linalg.vector_norm(v, dim=-1, keepdim=True)  # ‖Yᵀu‖, ‖u‖ = 1
        v = v / nv.clamp_min(tiny)
        u = matvec(y, v)
        nu = torch.linalg.vector_norm(u, dim=-1, keepdim=True)  # ‖Yv‖, ‖v‖ = 1
        best = torch.maximum(best, torch.maximum(nu, nv))
    return best[..., 0]


def _upper(y: torch.Tensor, iters: int) -> torch.Tensor:
    """``min(‖Y‖_F, √(‖Y‖_1‖Y‖_∞), Schatten-4p)`` with ``p = 2^{iters-1}`` (only the first two if 0)."""
    a = y.abs()
    holder = torch.sqrt(a.sum(-2).amax(-1) * a.sum(-1).amax(-1))
    best = torch.minimum(torch.linalg.vector_norm(y, 2, dim=(-2, -1)), holder)
    if iters == 0:
        return best
    m, n = y.shape[-2:]
    yt = y.transpose(-2, -1)
    g = y @ yt if m <= n else yt @ y
    log_c = torch.zeros(g.shape[:-2], dtype=g.dtype, device=g.device)
    for _ in range(iters - 1):
        f = torch.linalg.vector_norm(g, 2, dim=(-2, -1))
        f = torch.where(f > 0, f, torch.ones_like(f))
        g = g / f[..., None, None]
        g = g @ g
        g = 0.5 * (g + g.transpose(-2, -1))
        log_c = 2 * (log_c + torch.log(f))
    p = 2 ** (iters - 1)
    schatten = torch.exp((log_c + torch.log(torch.linalg.vector_norm(g, 2, dim=(-2, -1)))) / (2 * p))
    return torch.minimum(best, schatten)


def _spectral(y, scale, gamma, iters, kind, seed) -> torch.Tensor:
    if kind == "lower":
        return _lower_bound(_power_lower(y, iters, seed) * (1 - gamma), scale)
    val = _upper(y, iters) * (1 + gamma)
    return val.clamp_min(0) * scale  # an upper bound may overflow to inf: still >= the truth


def _lower_bound(val: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``val * scale`` for a lower bound: where the product overflows the dtype (a finite input
    whose norm exceeds the dtype's max), the largest finite number, which is still below the
    truth (``inf`` would not be)."""
    prod = val.clamp_min(0) * scale
    return prod.clamp_max(torch.finfo(prod.dtype).max)


@numpy_io
def spectral_norm_estimate(
    x, *, iters: int, kind: str = "lower", seed: int = 0, dtype: torch.dtype | None = None
) -> Estimate:
    """Estimate ``‖X‖_2 = σ_1`` from below (power iteration) or above (Schatten/Frobenius bound).

    ``x``: ``(..., m, n)``. ``kind="lower"``: ``iters`` power-iteration steps on ``XᵀX`` from a
    Gaussian start seeded by ``seed`` (2 mat-vecs each); ``kind="upper"``: ``min(‖X‖_F,
    √(‖X‖_1‖X‖_∞), ‖G^p‖_F^{1/(2p)})``, ``G`` the ``r×r`` wide-side Gram, ``p = 2^{iters−1}``
    (``iters = 0``: Frobenius/Hölder only). ``dtype``: compute dtype (float32 or float64; default
    float32 for 16-bit input, else the input dtype). Returns an :class:`Estimate` (value shape
    ``x.shape[:-2]``, float32 or float64); see the module docstring for directions and typical errors.

    >>> import torch
    >>> e = spectral_norm_estimate(torch.diag(torch.tensor([3.0, 1.0])), iters=3, kind="upper")
    >>> e.is_upper_bound, 3.0 <= float(e.value) < 3.01
    (True, True)
    """
    check_choice(kind, "kind", _KINDS)
    _check_iters(iters)
    _check_seed(seed)
    y, scale, gamma = _prepare(x, dtype)
    val = _spectral(y, scale, gamma, iters, kind, seed)
    if kind == "lower":
        method = "power_iteration"
    else:
        method = f"schatten_{4 * 2 ** (iters - 1)}" if iters else "frobenius_holder"
    return Estimate(val, kind == "upper", method, iters)


def _sr_from(fro, est, gamma, upper: bool) -> torch.Tensor:
    safe = torch.where(est > 0, est, torch.ones_like(est))
    if upper:  # est is a lower bound of σ_1 → fro²/est² ≥ sr
        sr = (fro * (1 + gamma) / safe) ** 2
        sr = torch.where(est > 0, sr, torch.full_like(sr, math.inf))
    else:  # est is an upper bound of σ_1 → fro²/est² ≤ sr; sr ≥ 1 for X ≠ 0
        sr = ((fro * (1 - gamma) / safe) ** 2).clamp_min(1.0)
    return torch.where(fro > 0, sr, torch.zeros_like(sr))


@numpy_io
def stable_rank_estimate(
    x, *, iters: int, kind: str = "upper", seed: int = 0, dtype: torch.dtype | None = None
) -> Estimate:
    """Bound on the stable rank ``sr = ‖X‖_F²/‖X‖_2²`` from a cheap spectral-norm estimate.

    ``kind="upper"``: ``‖X‖_F²/lower²`` with the power-iteration lower bound of ``‖X‖_2`` (``iters``
    steps) — an upper bound on ``sr`` (``inf`` if the estimate is 0 for ``X ≠ 0``).
    ``kind="lower"``: ``max(1, ‖X‖_F²/upper²)`` with the Schatten upper bound — a lower bound.
    0 for the zero matrix. Other parameters as :func:`spectral_norm_estimate`.
    Ref: Rudelson & Vershynin, J. ACM 2007 (stable rank).

    >>> import torch
    >>> e = stable_rank_estimate(torch.eye(3), iters=2)
    >>> e.is_upper_bound, round(float(e.value), 4)
    (True, 3.0)
    """
    check_choice(kind, "kind", _KINDS)
    _check_iters(iters)
    _check_seed(seed)
    y, scale, gamma = _prepare(x, dtype)
    fro = torch.linalg.vector_norm(y, 2, dim=(-2, -1))
    norm_kind = "lower" if kind == "upper" else "upper"
    est = _spectral(y, torch.ones_like(scale), gamma, iters, norm_kind, seed)
    method = "fro2_over_power_iteration" if kind == "upper" else "fro2_over_schatten"
    return Estimate(_sr_from(fro, est, gamma, kind == "upper"), kind == "upper", method, iters)


@numpy_io
def quick_stats(
    x,
    *,
    power_iters: int = 10,
    upper_iters: int = 4,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> QuickStats:
    """Frobenius norm and two-sided brackets of ``‖X‖_2`` and ``sr`` in one cheap pass.

    Cost: ``2·power_iters + 1`` mat-vecs plus one Gram and ``upper_iters − 1`` ``r×r`` matmuls.
    Returns a :class:`QuickStats` (fields of shape ``x.shape[:-2]``); every bracket holds
    (``lower ≤ true ≤ upper``), see the module docstring for typical widths.

    >>> import torch
    >>> q = quick_stats(torch.eye(4))
    >>> q.spectral_lower <= 1.0 <= q.spectral_upper, float(q.frobenius_norm)
    (tensor(True), 2.0)
    """
    _check_iters(power_iters, "power_iters")
    _check_iters(upper_iters, "upper_iters")
    _check_seed(seed)
    y, scale, gamma = _prepare(x, dtype)
    fro = torch.linalg.vector_norm(y, 2, dim=(-2, -1))
    one = torch.ones_like(scale)
    lo = _spectral(y, one, gamma, power_iters, "lower", seed)
    hi = _spectral(y, one, gamma, upper_iters, "upper", seed)
    return QuickStats(
        frobenius_norm=fro * scale,
        spectral_lower=_lower_bound(lo, scale),
        spectral_upper=hi * scale,
        stable_rank_lower=_sr_from(fro, hi, gamma, upper=False),
        stable_rank_upper=_sr_from(fro, lo, gamma, upper=True),
    )
