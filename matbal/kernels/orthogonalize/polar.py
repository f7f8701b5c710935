"""Exact polar factor via a float64 SVD: the reference every Newton–Schulz result is checked against."""
from __future__ import annotations

from typing import Any

import torch

from .._checks import as_matrix, check_positive, numpy_io

__all__ = ["polar"]


class _Polar(torch.autograd.Function):
    """``UVᵀ`` of a float64 ``(..., m, n)`` batch with the closed-form derivative of the polar factor.

    With ``X = UΣVᵀ`` (thin, ``r = min(m, n)``, all ``σ_i > 0``), ``Ĝ = UᵀGV`` and
    ``K_ij = 1/(σ_i + σ_j)``, the gradient of ``⟨G, Q⟩`` is
    ``U (K∘(Ĝ − Ĝᵀ)) Vᵀ + U Σ⁻¹(UᵀG − ĜVᵀ) + (GV − UĜ) Σ⁻¹Vᵀ`` (the last two terms vanish
    for a square ``X``; one of them for a wide/tall one). It follows from ``X = HQ``,
    ``H = (XXᵀ)^{1/2}``: ``dQ = U (K∘(M − Mᵀ)) Vᵀ + H⁻¹ dX (I − VVᵀ)`` (wide), ``M = UᵀdXV``.
    Unlike autograd through ``torch.linalg.svd`` it stays finite for repeated singular values."""

    @staticmethod
    def forward(ctx, x, rtol):
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        keep = s > rtol * s[..., :1]
        ctx.save_for_backward(u, s, vh)
        ctx.rtol = rtol
        return (u * keep.unsqueeze(-2).to(u.dtype)) @ vh

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        u, s, vh = ctx.saved_tensors
        if not bool((s[..., -1] > ctx.rtol * s[..., 0]).all()):
            raise ValueError("polar: the polar factor is not differentiable at a rank-deficient x "
                             "(smallest singular value <= rtol * largest); it is only at full rank")
        v = vh.mT
        gv = g @ v
        gh = u.mT @ gv  # Ĝ = UᵀGV, (r, r)
        k = 1.0 / (s.unsqueeze(-1) + s.unsqueeze(-2))
        inv = (1.0 / s).unsqueeze(-1)
        dx = u @ (k * (gh - gh.mT)) @ vh
        dx = dx + u @ (inv * (u.mT @ g - gh @ vh))
        dx = dx + (gv - u @ gh) @ (inv * vh)
        return dx, None


@numpy_io
def polar(x: Any, *, dtype: torch.dtype | None = torch.float64, rtol: float | None = None) -> torch.Tensor:
    """Polar factor ``UVᵀ`` of ``x = UΣVᵀ`` (thin SVD), computed in float64.

    For full-rank ``x`` this is the unique ``argmin ‖Q − x‖_F`` over ``Q`` with orthonormal rows
    (wide) or columns (tall), i.e. ``x (xᵀx)^{-1/2}``. For rank-deficient ``x`` the polar factor is
    not unique; this returns the partial isometry ``U_r V_rᵀ`` over the singular values
    ``σ_i > rtol·σ₁`` (zero on the null space) — the limit of Newton–Schulz, whose odd polynomials
    keep ``p(0) = 0``. A zero matrix gives zeros.

    Parameters
    ----------
    x : Tensor or ndarray, shape ``(..., m, n)``
        Real floating, finite, non-empty.
    dtype : torch.dtype or None
        Result dtype; default float64 (the reference). ``None``: the input's dtype.
    rtol : float, optional
        Relative cut for "zero" singular values; default ``max(m, n) · 2⁻⁵²``.

    Returns
    -------
    Tensor ``(..., m, n)`` (ndarray for ndarray input). Differentiable when ``x`` requires grad,
    with the closed-form derivative of ``UVᵀ`` (finite for repeated singular values, which
    autograd through ``torch.linalg.svd`` is not); the backward raises ``ValueError`` at a
    rank-deficient ``x``, where the polar factor has no derivative. Not twice differentiable.

    Example
    -------
    >>> import torch
    >>> q = polar(torch.tensor([[2.0, 0.0], [0.0, -3.0]]))
    >>> q.tolist()
    [[1.0, 0.0], [0.0, -1.0]]
    >>> x = torch.eye(3, dtype=torch.float64, requires_grad=True)   # σ = (1, 1, 1): repeated
    >>> polar(x)[0, 1].backward()
    >>> x.grad.tolist()[:2]     # d(UVᵀ)_01 = (dX_01 − dX_10)/2 at X = I
    [[0.0, 0.5, 0.0], [-0.5, 0.0, 0.0]]

    References: Higham, "Functions of Matrices" (SIAM 2008), ch. 8; Golub & Van Loan §6.4.
    """
    x = as_matrix(x, "x")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a real floating torch.dtype or None, got {dtype!r}")
    m, n = x.shape[-2], x.shape[-1]
    if rtol is None:
        rtol = max(m, n) * torch.finfo(torch.float64).eps
    check_positive(rtol, "rtol", allow_zero=True)
    q = _Polar.apply(x.to(torch.float64), float(rtol))
    return q.to(x.dtype if dtype is None else dtype)
