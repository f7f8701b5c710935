"""Row normalization R(X) and column normalization C(X) (MuonEq R / C, RMNP)."""
from __future__ import annotations

import math

import torch

from .._checks import as_matrix, check_positive, numpy_io
from ._result import work_dtype

__all__ = ["normalize_rows", "normalize_cols"]


def _norms(xw: torch.Tensor, dim: int) -> torch.Tensor:
    """2-norms along ``dim`` without overflow/underflow: a plain pass, redone with a per-vector
    max-abs pre-scale only when some norm is non-finite or too small to trust (zero included)."""
    nrm = torch.linalg.vector_norm(xw, dim=dim)
    lo = math.sqrt(torch.finfo(xw.dtype).tiny) * 1e4
    if not bool((torch.isfinite(nrm) & (nrm >= lo)).all()):
        mx = xw.abs().amax(dim=dim, keepdim=True)
        if not bool(torch.isfinite(mx).all()):
            raise ValueError("x contains NaN or Inf")
        mx = torch.where(mx > 0, mx, torch.ones_like(mx))
        nrm = torch.linalg.vector_norm(xw / mx, dim=dim) * mx.squeeze(dim)
    return nrm


def _normalize(x: torch.Tensor, eps: float, dim: int):
    """Returns (out, scale, live) with out = x * scale along ``dim`` (computed as x / norm)."""
    xw = x.to(work_dtype(x.dtype))
    nrm = _norms(xw, dim)
    ref = nrm.amax(-1, keepdim=True)
    live = (nrm > eps * ref) & (nrm > 0)
    denom = torch.where(live, nrm, math.inf)  # x / inf = 0 on dead rows: zeros, never NaN
    out = (xw / denom.unsqueeze(dim)).to(x.dtype)
    scale = torch.where(live, 1.0 / torch.where(live, nrm, 1), 0)
    return out, scale, live


@numpy_io
def normalize_rows(x, *, eps: float = 1e-8) -> torch.Tensor:
    r"""Row normalization :math:`R(X)=\mathrm{diag}(\|x_{i,:}\|_2)^{-1}X`: every row to unit 2-norm.

    Exactly invariant to positive row scaling, :math:`R(DX)=R(X)` (to rounding: the output is the
    correctly rounded quotient ``x_ij / ||x_i||``; no additive epsilon). Rows whose norm is
    ``<= eps * max_k ||x_k||`` (zero rows in particular) are dead and come out as exact zeros,
    never NaN. Norms are taken in float32 or better without overflow (entries up to the dtype's
    max, down to its smallest normal).

    Parameters
    ----------
    x : Tensor or ndarray ``(..., m, n)``
    eps : float
        Relative threshold for dead rows (0: only exact zeros).

    Returns
    -------
    Tensor ``(..., m, n)`` in ``x``'s dtype (numpy in, numpy out). For the scales and masks use
    ``balance(x, method="rows")``.

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import normalize_rows
    >>> normalize_rows(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])

    References
    ----------
    MuonEq (arXiv 2603.28254), operator R; RMNP (arXiv 2603.20527).
    """
    x = as_matrix(x, "x", finite=False)  # NaN/Inf are caught by the norm pass
    check_positive(eps, "eps", allow_zero=True)
    return _normalize(x, eps, -1)[0]


@numpy_io
def normalize_cols(x, *, eps: float = 1e-8) -> torch.Tensor:
    r"""Column normalization :math:`C(X)=X\,\mathrm{diag}(\|x_{:,j}\|_2)^{-1}`: unit column norms.

    Exactly invariant to positive column scaling, :math:`C(XD)=C(X)`. Columns with norm
    ``<= eps * max_k ||x_{:,k}||`` come out as exact zeros. See :func:`normalize_rows`.

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import normalize_cols
    >>> normalize_cols(torch.tensor([[3.0, 0.0], [4.0, 0.0]]))
    tensor([[0.6000, 0.0000],
            [0.8000, 0.0000]])

    References
    ----------
    MuonEq (arXiv 2603.28254), operator C.
    """
    x = as_matrix(x, "x", finite=False)  # NaN/Inf are caught by the norm pass
    check_positive(eps, "eps", allow_zero=True)
    return _normalize(x, eps, -2)[0]
