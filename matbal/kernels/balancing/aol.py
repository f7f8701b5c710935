"""AOL (almost-orthogonal-layer) pre-scaling: a diagonal scaling with spectral norm <= 1."""
from __future__ import annotations

import torch

from .._checks import as_matrix, check_choice, check_positive, numpy_io
from ._result import work_dtype

__all__ = ["aol"]


def _aol_scales(x: torch.Tensor, eps: float, side: str):
    xw = x.to(work_dtype(x.dtype))
    mx = xw.abs().amax(dim=(-2, -1), keepdim=True)  # pre-scale: the Gram cannot overflow
    mx = torch.where(mx > 0, mx, torch.ones_like(mx))
    y = xw / mx
    if side == "cols":
        g = y.transpose(-2, -1) @ y            # (..., n, n)
    else:
        g = y @ y.transpose(-2, -1)            # (..., m, m)
    s = g.abs().sum(-1)                        # Gram symmetric: row sums = column sums
    # a zero column (row) of x, not of the Gram: a column 1e-60 times the largest underflows
    # to a zero Gram diagonal in float32 but is live (its scale is capped by the eps floor)
    live = (xw != 0).any(-2 if side == "cols" else -1)
    floor = eps * s.amax(-1, keepdim=True)
    tiny = torch.finfo(s.dtype).tiny
    d = torch.where(live, torch.rsqrt(torch.maximum(s, floor).clamp_min(tiny)), 0) / mx.squeeze(-1)
    ones_other = torch.ones(
        x.shape[:-2] + (x.shape[-2] if side == "cols" else x.shape[-1],), dtype=xw.dtype, device=x.device
    )
    return xw, d, live, ones_other


@numpy_io
def aol(x, *, eps: float = 1e-7, side: str = "cols") -> torch.Tensor:
    r"""AOL rescaling: :math:`X\,\mathrm{diag}(d)` with :math:`d_j=(\sum_i|X^\top X|_{ij})^{-1/2}`.

    Guarantees :math:`\|X\,\mathrm{diag}(d)\|_2\le1` (Prach & Lampert 2022, Thm 1: with
    :math:`G=X^\top X`, :math:`\|DGD\|_2\le\max_j d_j\sum_i|G_{ij}|d_i` by the Schur test, which is
    ``<= 1`` for this d) while leaving singular values much closer to 1 than Frobenius
    normalization does, which is why it is used as the first step of Newton–Schulz (Turbo-Muon,
    github.com/thib-s/flash-newton-schulz; dion-derived NS: ``s = rsqrt(clamp_min(A.abs().sum(-1),
    eps))``, reusing the Gram matrix the first NS step needs anyway).

    ``eps`` is *relative* here: sums are floored at ``eps * max_j sum_i |G_ij|`` (flooring only
    shrinks ``d``, so the bound still holds), which makes ``aol(a * X) == aol(X)`` for any a > 0.
    Zero columns are dead (scale 0). ``side="rows"`` scales rows with :math:`XX^\top` instead.

    Parameters
    ----------
    x : Tensor or ndarray ``(..., m, n)``
    eps : float
        Relative floor of the Gram row sums.
    side : {"cols", "rows"}

    Returns
    -------
    Tensor ``(..., m, n)`` in ``x``'s dtype. Scales: ``balance(x, method="aol")``.

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import aol
    >>> x = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.linalg.matrix_norm(aol(x), ord=2) <= 1 + 1e-12)
    True

    References
    ----------
    B. Prach, C. H. Lampert, "Almost-Orthogonal Layers for Efficient General-Purpose Lipschitz
    Networks", ECCV 2022, arXiv 2208.03160; Turbo-Muon (modded-nanogpt record 2025-11-11).
    """
    x = as_matrix(x, "x")
    check_positive(eps, "eps", allow_zero=True)
    check_choice(side, "side", ("cols", "rows"))
    xw, d, _, _ = _aol_scales(x, eps, side)
    out = xw * d.unsqueeze(-2) if side == "cols" else xw * d.unsqueeze(-1)
    return out.to(x.dtype)
