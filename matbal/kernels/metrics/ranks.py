"""Rank-like spectral metrics: stable rank, condition number, numerical rank, effective rank, x_min.

All take ``x`` of shape ``(..., m, n)`` (any real float dtype, numpy or torch) and return one value
per batch element, shape ``x.shape[:-2]``, in float64 (``numerical_rank``: int64). They are exact
functions of one float64 SVD (see :mod:`.svd`). Notation: ``σ_1 ≥ … ≥ σ_r``, ``r = min(m, n)``.

Conventions for the zero matrix (all singular values 0), chosen so that no metric is NaN and each
agrees with the rank (0) of the zero matrix: ``stable_rank = 0``, ``effective_rank = 0``,
``numerical_rank = 0``, ``x_min = 0``, ``condition_number = inf``.

Tolerances (two different questions, two different defaults):

- :func:`numerical_rank` asks "how many singular values does the *data* resolve?" Its default is
  the LAPACK/``numpy.linalg.matrix_rank`` convention with the machine epsilon of the **input**
  dtype (that is the accuracy the data were stored with): ``σ_i > rtol·σ_1``,
  ``rtol = max(m, n)·eps(x.dtype)``. For 16-bit inputs that rule is useless (bf16: ``eps = 2⁻⁷``,
  so ``rtol ≥ 1`` once ``max(m, n) ≥ 128`` and every matrix would have rank 0); there the default
  is the Weyl bound of the storage rounding instead: rounding every entry to relative accuracy
  ``eps`` moves every singular value by at most ``eps·‖X‖_F``, so ``rtol = eps·‖X‖_F/σ_1
  = eps·√sr ≤ eps·√r``.
- :func:`condition_number` asks "what is κ of the matrix *as stored*?" (that is what a Newton–Schulz
  iteration sees). Its default only refuses singular values below the float64 SVD's own
  resolution: ``κ = inf`` when ``σ_r ≤ rtol·σ_1`` with ``rtol = max(m, n)·eps(float64)``, so an
  exactly rank-deficient matrix gives ``inf`` while a float32 matrix with κ = 1e6 keeps its finite
  κ. Pass the same ``rtol`` to both functions to get ``κ = inf ⇔ numerical_rank < r``.

References: stable rank — Rudelson & Vershynin, "Sampling from large matrices: an approach through
geometric functional analysis", J. ACM 54(4), 2007. Effective rank — Roy & Vetterli, "The effective
rank: a measure of effective dimensionality", EUSIPCO 2007. ``x_min = 1/(κ√sr)`` — MuonEq,
arXiv 2603.28254.
"""
from __future__ import annotations

import math

import torch

from .._checks import check_positive, numpy_io
from .svd import _Spectrum, _spectrum

__all__ = ["stable_rank", "condition_number", "numerical_rank", "effective_rank", "x_min"]

_HALF = (torch.float16, torch.bfloat16)


def _safe(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v > 0, v, torch.ones_like(v))


def _check_rtol(rtol) -> None:
    if rtol is not None:
        check_positive(rtol, "rtol", allow_zero=True)


# --- functions of a precomputed spectrum (shared with spectrum_report: one SVD for all) ---------


def _stable_rank(sp: _Spectrum) -> torch.Tensor:
    s1 = sp.s[..., 0]
    return torch.where(s1 > 0, (sp.fro / _safe(s1)) ** 2, torch.zeros_like(s1))


def _condition_number(sp: _Spectrum, rtol) -> torch.Tensor:
    if rtol is None:
        rtol = max(sp.m, sp.n) * torch.finfo(torch.float64).eps
    s1, sr = sp.s[..., 0], sp.s[..., -1]
    singular = (sr <= rtol * s1) | (s1 == 0)
    return torch.where(singular, torch.full_like(s1, math.inf), s1 / _safe(sr))


def _default_rank_rtol(sp: _Spectrum):
    eps = torch.finfo(sp.dtype).eps
    if sp.dtype in _HALF:
        return eps * sp.fro / _safe(sp.s[..., 0])
    return max(sp.m, sp.n) * eps


def _numerical_rank(sp: _Spectrum, rtol) -> torch.Tensor:
    if rtol is None:
        rtol = _default_rank_rtol(sp)
    rtol = torch.as_tensor(rtol, dtype=torch.float64, device=sp.s.device)
    tol = (rtol * sp.s[..., 0]).unsqueeze(-1)
    return (sp.s > tol).sum(-1)


def _effective_rank(sp: _Spectrum) -> torch.Tensor:
    total = sp.s.sum(-1, keepdim=True)
    p = sp.s / _safe(total)
    plogp = torch.where(p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), 0.0)
    er = torch.exp(-plogp.sum(-1))
    return torch.where(total.squeeze(-1) > 0, er, torch.zeros_like(er))


def _x_min(sp: _Spectrum) -> torch.Tensor:
    return torch.where(sp.fro > 0, sp.s[..., -1] / _safe(sp.fro), torch.zeros_like(sp.fro))


# --- public API ---------------------------------------------------------------------------------


@numpy_io
def stable_rank(x) -> torch.Tensor:
    """Stable rank ``sr = ‖X‖_F² / ‖X‖_2² = Σσ_i²/σ_1²`` ∈ [1, rank], per batch element, float64.

    Scale invariant; 0 for the zero matrix (by convention, see module docstring).
    Ref: Rudelson & Vershynin, J. ACM 2007.

    >>> import torch
    >>> float(stable_rank(torch.eye(4)))
    4.0
    """
    return _stable_rank(_spectrum(x))


@numpy_io
def condition_number(x, *, rtol: float | None = None) -> torch.Tensor:
    """Condition number ``κ = σ_1/σ_r`` (``r = min(m, n)``), float64; ``inf`` when rank deficient.

    ``κ = inf`` when ``σ_r ≤ rtol·σ_1`` (zero matrix included). ``rtol=None``: ``max(m, n)·eps(float64)``,
    the float64 SVD's own resolution, i.e. κ of the matrix as stored (module docstring); ``rtol=0``:
    ``inf`` only for an exactly zero ``σ_r``.

    >>> import torch
    >>> float(condition_number(torch.diag(torch.tensor([4.0, 2.0])))), float(condition_number(torch.ones(2, 2)))
    (2.0, inf)
    """
    _check_rtol(rtol)
    return _condition_number(_spectrum(x), rtol)


@numpy_io
def numerical_rank(x, *, rtol: float | None = None) -> torch.Tensor:
    """Numerical rank ``#{i : σ_i > rtol·σ_1}``, int64 per batch element.

    ``rtol=None``: ``max(m, n)·eps(x.dtype)`` as ``numpy.linalg.matrix_rank`` (float32/float64 input);
    ``eps(x.dtype)·‖X‖_F/σ_1`` (Weyl bound of the rounding) for float16/bfloat16 input — see the
    module docstring. 0 for the zero matrix.

    >>> import torch
    >>> int(numerical_rank(torch.ones(3, 3, dtype=torch.float64)))
    1
    """
    _check_rtol(rtol)
    return _numerical_rank(_spectrum(x), rtol)


@numpy_io
def effective_rank(x) -> torch.Tensor:
    """Effective rank ``exp(H(p))``, ``p_i = σ_i/Σ_j σ_j``, ``H(p) = -Σ p_i log p_i`` (0·log 0 = 0).

    Lies in ``[1, r]``; equals ``k`` for ``k`` equal nonzero singular values; 0 for the zero matrix.
    Ref: Roy & Vetterli, EUSIPCO 2007.

    >>> import torch
    >>> round(float(effective_rank(torch.eye(5))), 12)
    5.0
    """
    return _effective_rank(_spectrum(x))


@numpy_io
def x_min(x) -> torch.Tensor:
    """Smallest singular value after Frobenius normalization: ``x_min = σ_r/‖X‖_F = 1/(κ√sr)``.

    The quantity that decides how well a finite Newton–Schulz iteration (started at ``X/‖X‖_F``)
    can orthogonalize ``X``. In ``[0, 1/√r]``; 0 for a rank-deficient or zero matrix.
    Ref: MuonEq, arXiv 2603.28254.

    >>> import torch
    >>> float(x_min(torch.eye(4)))
    0.5
    """
    return _x_min(_spectrum(x))
