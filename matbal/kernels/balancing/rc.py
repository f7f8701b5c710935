"""MuonEq one-shot row-and-column scaling (RC)."""
from __future__ import annotations

import math

import torch

from .._checks import as_matrix, check_positive, numpy_io
from ._result import apply_scales, work_dtype

__all__ = ["rc_scale"]


def _log_sumsq_scaled(xw: torch.Tensor, dim: int) -> torch.Tensor:
    """float64 log of the sums of squares along ``dim``, each vector scaled by its max-abs entry
    (-inf for a zero vector)."""
    mx = xw.abs().amax(dim=dim, keepdim=True)
    safe = torch.where(mx > 0, mx, torch.ones_like(mx))
    sq = (xw / safe).square_().sum(dim).double()
    return torch.log(sq) + 2 * torch.log(mx.squeeze(dim).double())


def _log_sumsq(xw: torch.Tensor, eps: float):
    """log of row/column sums of squares (+ eps when eps > 0), overflow/underflow-safe;
    also the live masks (nonzero rows/columns)."""
    sq = xw * xw
    rs, cs = sq.sum(-1), sq.sum(-2)
    del sq
    ok = bool(torch.isfinite(rs).all()) and bool(torch.isfinite(cs).all())
    ok = ok and bool((rs > 0).all()) and bool((cs > 0).all())
    # logs of the (small) sum vectors in float64: a float32 log(1e60) carries ~1e-5 absolute
    # error, which exp turns into a relative error of every scale
    if ok:
        lrs, lcs = torch.log(rs.double()), torch.log(cs.double())
    else:  # pre-scale each row (column) by its own max-abs entry, as LAPACK's nrm2: a column
        # 1e-30 next to one of 1e30 would underflow under a common scale
        lrs, lcs = _log_sumsq_scaled(xw, -1), _log_sumsq_scaled(xw, -2)
    live_r, live_c = lrs > -math.inf, lcs > -math.inf
    if eps > 0:
        le = torch.tensor(math.log(eps), dtype=lrs.dtype, device=xw.device)
        lrs, lcs = torch.logaddexp(lrs, le), torch.logaddexp(lcs, le)
    return lrs, lcs, live_r, live_c


def _rc_scales(x: torch.Tensor, exponent: float, eps: float, clip):
    xw = x.to(work_dtype(x.dtype))
    lrs, lcs, live_r, live_c = _log_sumsq(xw, eps)
    lr, lc = exponent * lrs, exponent * lcs
    if clip is not None:
        lim = math.log(clip)
        lr, lc = lr.clamp(-lim, lim), lc.clamp(-lim, lim)
    r = torch.where(live_r, torch.exp(torch.where(live_r, lr, 0)), 0).to(xw.dtype)
    c = torch.where(live_c, torch.exp(torch.where(live_c, lc, 0)), 0).to(xw.dtype)
    return r, c, live_r, live_c


def _check_rc_opts(exponent, eps, clip):
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float)) or not math.isfinite(
        exponent
    ):
        raise ValueError(f"exponent must be a finite number, got {exponent!r}")
    check_positive(eps, "eps", allow_zero=True)
    if clip is not None:
        check_positive(clip, "clip")
        if clip < 1:
            raise ValueError(f"clip must be >= 1 (scales are clipped to [1/clip, clip]), got {clip!r}")


@numpy_io
def rc_scale(x, *, exponent: float = -0.5, eps: float = 1e-8, clip: float | None = None):
    r"""MuonEq one-shot RC: both scalings computed from the same input, applied once.

    .. math::
        \tilde X = D_r^{e}\,X\,D_c^{e},\quad
        D_r=\mathrm{diag}(\textstyle\sum_j x_{ij}^2+\epsilon),\quad
        D_c=\mathrm{diag}(\textstyle\sum_i x_{ij}^2+\epsilon)

    then, when ``clip`` = c is given, every scale factor :math:`(\cdot+\epsilon)^{e}` is clamped to
    :math:`[1/c, c]`. Both details follow the official code (github.com/MaeChd/muon-eq, commit
    99b6c8b, ``llm-baselines/src/optim/muoneq.py``, ``_apply_scale_exponent_`` /
    ``_clamp_scale_`` / ``_parallel_rowcol_normalize``): ``scale.add_(eps)`` *before* the power
    (``rsqrt`` for e = -1/2), then ``scale.clamp_(1/clip, clip)`` on the powered factor. The
    official default exponent of the LLM optimizer is -1/2 (its CIFAR code and fallback use -1/4).
    The optimizer-level ``phase`` switch (RC until a step, then R) belongs to the transform, not
    this kernel.

    One-shot RC does **not** equalize row or column norms in general (the column factors are
    computed before the row scaling is applied, and vice versa): use :func:`racs` for that.

    Computed in log space from pre-scaled sums, so entries near the dtype's limits neither
    overflow nor underflow; exactly-zero rows/columns are dead (scale 0, output 0).

    Parameters
    ----------
    x : Tensor or ndarray ``(..., m, n)``
    exponent : float
        e (-1/2 default; -1/4 the "softer" variant).
    eps : float
        Absolute epsilon added to the sums of squares (1e-8, as the official code).
    clip : float >= 1, optional
        Clamp each scale factor to ``[1/clip, clip]``.

    Returns
    -------
    Tensor ``(..., m, n)`` in ``x``'s dtype. Scales: ``balance(x, method="rc")``.

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import rc_scale
    >>> from matbal.kernels.metrics.imbalance import imbalance
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 9.0]], dtype=torch.float64)
    >>> float(imbalance(rc_scale(x)).residual) > 0.01   # one-shot RC is not balanced
    True

    References
    ----------
    MuonEq, arXiv 2603.28254; official code github.com/MaeChd/muon-eq.
    """
    x = as_matrix(x, "x")
    _check_rc_opts(exponent, eps, clip)
    r, c, _, _ = _rc_scales(x, exponent, eps, clip)
    return apply_scales(x, r, c)
