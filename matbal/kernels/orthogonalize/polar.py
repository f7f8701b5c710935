"""Exact polar factor via a float64 SVD: the reference every Newton–Schulz result is checked against."""
from __future__ import annotations

from typing import Any

import torch

from .._checks import as_matrix, check_positive, numpy_io

__all__ = ["polar"]


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
    Tensor ``(..., m, n)`` (ndarray for ndarray input).

    Example
    -------
    >>> import torch
    >>> q = polar(torch.tensor([[2.0, 0.0], [0.0, -3.0]]))
    >>> q.tolist()
    [[1.0, 0.0], [0.0, -1.0]]

    References: Higham, "Functions of Matrices" (SIAM 2008), ch. 8; Golub & Van Loan §6.4.
    """
    x = as_matrix(x, "x")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a real floating torch.dtype or None, got {dtype!r}")
    m, n = x.shape[-2], x.shape[-1]
    if rtol is None:
        rtol = max(m, n) * torch.finfo(torch.float64).eps
    check_positive(rtol, "rtol", allow_zero=True)
    u, s, vh = torch.linalg.svd(x.detach().to(torch.float64), full_matrices=False)
    keep = s > rtol * s[..., :1]
    q = (u * keep.unsqueeze(-2).to(u.dtype)) @ vh
    return q.to(x.dtype if dtype is None else dtype)
