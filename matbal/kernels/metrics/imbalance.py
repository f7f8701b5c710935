"""Row/column norm imbalance: how far a matrix is from having equal row norms and equal column norms.

For row p-norms ``r_i = ‖x_{i,:}‖_p`` and column p-norms ``c_j = ‖x_{:,j}‖_p``, over the rows/columns
that are not zero (masked: zero rows are reported, never divided by):

- ``row_dev = max_i |r_i / mean(r) - 1|`` and ``col_dev`` likewise (max relative deviation);
- ``row_cv = std(r) / mean(r)`` and ``col_cv`` likewise (coefficient of variation, population std);
- ``residual = max(row_dev, col_dev)``: the one number the balancing kernels (``racs``,
  ``sinkhorn_knopp``-on-squares, ``ruiz``) drive to zero and record per iteration. It is 0 exactly
  when all nonzero rows share one p-norm and all nonzero columns share one p-norm.

All statistics accumulate in float32 or better (bf16/fp16 input is upcast; every row/column is
pre-scaled by its own max-abs entry, so 1e±30 entries neither overflow nor underflow). A row that
is exactly zero is a zero row; a nonzero row, however small, is live.

Example
-------
>>> import torch
>>> from matbal.kernels.metrics.imbalance import imbalance
>>> float(imbalance(torch.ones(3, 4)).residual)
0.0
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import as_matrix, check_choice, numpy_io

__all__ = ["Imbalance", "imbalance", "row_col_norms"]

_P = (1, 2, float("inf"))


@numpy_io
def row_col_norms(x, p: float = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column p-norms ``(..., m)``, ``(..., n)`` in float32-or-better, overflow-safe.

    ``x``: ``(..., m, n)``, finite; ``p`` in {1, 2, inf}. Each row is divided by its own max-abs entry before
    its norm is taken and that scale multiplied back (columns likewise), so entries near 1e±30 — even
    1e+30 and 1e-30 in the same float32 matrix — neither overflow nor underflow in the squares.

    >>> import torch
    >>> r, c = row_col_norms(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    >>> r.tolist(), c.tolist()
    ([5.0, 0.0], [3.0, 4.0])
    """
    check_choice(p, "p", _P)
    x = as_matrix(x, "x")  # NaN/Inf refused: they would come out as NaN norms
    xa = x.to(torch.promote_types(x.dtype, torch.float32)).abs()
    return _scaled_norms(xa, p, -1), _scaled_norms(xa, p, -2)


def _scaled_norms(xa: torch.Tensor, p: float, dim: int) -> torch.Tensor:
    norm, scale = _norm_factors(xa, p, dim)
    return norm * scale


def _norm_factors(xa: torch.Tensor, p: float, dim: int):
    """``(norm_s, scale)`` with p-norm = ``norm_s * scale`` (``scale``: max-abs entry, ``norm_s`` in
    ``[1, n]``; the product may overflow the dtype for finite entries near its max)."""
    scale = xa.amax(dim=dim, keepdim=True)
    if p == float("inf"):
        return torch.ones_like(scale.squeeze(dim)), scale.squeeze(dim)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    y = xa / safe
    norm = torch.linalg.vector_norm(y, 2, dim=dim) if p == 2 else y.sum(dim)
    return norm, scale.squeeze(dim)


@dataclass(frozen=True)
class Imbalance:
    """Row/column norm dispersion of a batch of matrices; every field has shape ``batch``."""

    row_dev: torch.Tensor
    col_dev: torch.Tensor
    row_cv: torch.Tensor
    col_cv: torch.Tensor
    residual: torch.Tensor
    zero_rows: torch.Tensor  # number of all-zero rows
    zero_cols: torch.Tensor  # number of all-zero columns


def _dispersion(v: torch.Tensor, live: torch.Tensor | None = None):
    live = v > 0 if live is None else live
    cnt = live.sum(-1).clamp_min(1).to(v.dtype)
    mean = torch.where(live, v, 0).sum(-1) / cnt
    safe_mean = torch.where(mean > 0, mean, torch.ones_like(mean))
    rel = torch.where(live, v / safe_mean.unsqueeze(-1) - 1, 0)
    dev = rel.abs().amax(-1)
    cv = torch.sqrt((rel**2).sum(-1) / cnt)
    return dev, cv, (~live).sum(-1)


@numpy_io
def imbalance(x, *, p: float = 2) -> Imbalance:
    """Dispersion of row and column p-norms of ``x`` (shape ``(..., m, n)``), p in {1, 2, inf}.

    Returns an :class:`Imbalance` whose fields have the batch shape ``x.shape[:-2]``. See the module
    docstring for the definitions; zero rows/columns are excluded and counted.
    """
    x = as_matrix(x, "x")
    check_choice(p, "p", _P)
    xa = x.to(torch.promote_types(x.dtype, torch.float32)).abs()
    out = []
    for dim in (-1, -2):
        # norms relative to the matrix's largest max-abs scale, in float64: finite even where a
        # norm itself overflows the dtype (finite float32 rows of 2e38), and zero rows stay
        # zero rows whatever underflows
        norm, scale = _norm_factors(xa, p, dim)
        top = scale.amax(-1, keepdim=True)
        rel = norm.double() * (scale.double() / torch.where(top > 0, top, 1).double())
        dev, cv, zeros = _dispersion(rel, scale > 0)
        out.append((dev.to(xa.dtype), cv.to(xa.dtype), zeros))
    (rd, rcv, zr), (cd, ccv, zc) = out
    return Imbalance(rd, cd, rcv, ccv, torch.maximum(rd, cd), zr, zc)
