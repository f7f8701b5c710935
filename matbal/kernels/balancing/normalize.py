"""Row normalization R(X) and column normalization C(X) (MuonEq R / C, RMNP)."""
from __future__ import annotations

import math

import torch

from .._checks import as_matrix, check_positive, numpy_io
from ._result import work_dtype

__all__ = ["normalize_rows", "normalize_cols"]


def _norms(xw: torch.Tensor, dim: int):
    """2-norms along ``dim`` as ``(nrm, mx)`` with norm = ``nrm * mx``, without overflow or
    underflow: a plain pass (``mx = None``: the norm is ``nrm``), redone with a per-vector max-abs
    pre-scale (as LAPACK's ``nrm2``) only when some norm is non-finite or too small to trust
    (zero included). After the redo ``nrm`` is in ``[1, sqrt(n)]`` (0 for a zero vector) and
    the product may exceed the dtype (float32 rows of 2e38): callers keep the two factors."""
    nrm = torch.linalg.vector_norm(xw, dim=dim)
    lo = math.sqrt(torch.finfo(xw.dtype).tiny) * 1e4
    if bool((torch.isfinite(nrm) & (nrm >= lo)).all()):
        return nrm, None
    mx = xw.abs().amax(dim=dim, keepdim=True)
    if not bool(torch.isfinite(mx).all()):
        raise ValueError("x contains NaN or Inf")
    mx = torch.where(mx > 0, mx, torch.ones_like(mx))
    return torch.linalg.vector_norm(xw / mx, dim=dim), mx


def _normalize(x: torch.Tensor, eps: float, dim: int):
    """Returns (out, scale, live) with out = x * scale along ``dim`` (computed as x / norm)."""
    xw = x.to(work_dtype(x.dtype))
    nrm, mx = _norms(xw, dim)
    if mx is None:  # the common case: every norm finite and normal
        ref = nrm.amax(-1, keepdim=True)
        live = (nrm > eps * ref) & (nrm > 0)
        denom = torch.where(live, nrm, math.inf)  # x / inf = 0 on dead rows: zeros, never NaN
        out = (xw / denom.unsqueeze(dim)).to(x.dtype)
        scale = torch.where(live, 1.0 / torch.where(live, nrm, 1), 0)
        return out, scale, live
    # pre-scaled: the norm is nrm * mx, possibly beyond the dtype; decide liveness on logs and
    # divide by the two factors in turn (x / mx is in [-1, 1], nrm in [1, sqrt(n)])
    mxs = mx.squeeze(dim)
    lognrm = torch.log(nrm.double()) + torch.log(mxs.double())  # -inf for a zero vector
    ref = lognrm.amax(-1, keepdim=True)
    live = (lognrm > ref + math.log(eps)) if eps > 0 else (nrm > 0)
    live = live & (nrm > 0)
    denom = torch.where(live, nrm, math.inf)
    out = (xw / mx / denom.unsqueeze(dim)).to(x.dtype)
    scale = torch.where(live, torch.exp(-lognrm), 0).to(xw.dtype)  # may round to 0 below tiny
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
