"""Sinkhorn–Knopp scaling of a nonnegative matrix to prescribed row and column sums."""
from __future__ import annotations

import numpy as np
import torch

from .._checks import as_matrix, check_bool, numpy_io
from . import _engine
from ._result import (
    BalanceResult,
    check_callback,
    check_iter_opts,
    finish,
    matrix_residual,
    needs_check,
    scales_from_logs,
    stall_hint,
    work_dtype,
)

__all__ = ["sinkhorn_knopp"]


def _marginal(value, name, shape, dtype, device):
    if value is None:
        return None
    t = torch.as_tensor(value)
    if t.is_complex() or not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a real tensor/array, got dtype {t.dtype}")
    t = t.to(dtype=dtype, device=device)
    try:
        t = torch.broadcast_to(t, shape)
    except RuntimeError:
        raise ValueError(
            f"{name} must broadcast to {tuple(shape)}, got shape {tuple(t.shape)}"
        ) from None
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0")
    return t


def sinkhorn_knopp(
    b,
    *,
    row_sums=None,
    col_sums=None,
    steps: int | None = None,
    max_iter: int = 1000,
    rtol: float = 1e-6,
    log_domain: bool | None = None,
    callback=None,
    warn: bool = True,
) -> BalanceResult:
    r"""Scale a nonnegative matrix so its rows sum to ``row_sums`` and its columns to ``col_sums``.

    Finds :math:`P=\mathrm{diag}(u)\,B\,\mathrm{diag}(v)` with :math:`P\mathbf 1=a`,
    :math:`P^\top\mathbf 1=b` by alternating

    .. math:: u\leftarrow a\oslash(Bv),\qquad v\leftarrow b\oslash(B^\top u)

    (one iteration = one row update then one column update; columns are exact after it). With
    ``log_domain`` the same iteration runs on :math:`\log B` with logsumexp, for entries spanning
    more than the dtype's range (e.g. 1e±30 in float32). Linear rate :math:`\sigma_2(\tilde P)^2`
    with :math:`\tilde P=D_a^{-1/2}PD_b^{-1/2}` (Knight 2008) when :math:`B` has total support;
    without it (e.g. ``[[1, 1], [0, 1]]``) no exact scaling exists and the iteration crawls
    (sublinear): the result stays finite, ``converged`` is False and the warning says why.

    Default marginals: ``row_sums = n``, ``col_sums = m`` (counted over the live block), so that
    ``sinkhorn_knopp(x * x)`` is :func:`racs` ``(x, p=2)`` squared. Rows/columns of ``B`` that are
    all zero are dead: scale 0, reported in ``zero_rows``/``zero_cols`` (a prescribed positive sum
    on a dead row cannot be met: the result then does not converge, and says so).

    Residual (``history``): ``max(max_i |(P1)_i/a_i - 1|, max_j |(P^T1)_j/b_j - 1|)`` over live
    rows/columns (after a sweep the row sums' mean is the target mean, so for the default
    marginals it is close to ``imbalance(P, p=1).residual``). Near the rounding floor a claim of
    convergence is checked on the returned matrix, as in :func:`racs`.

    Parameters
    ----------
    b : Tensor or ndarray ``(..., m, n)``, nonnegative, finite.
    row_sums, col_sums : Tensor/array broadcastable to ``(..., m)`` / ``(..., n)``, positive, optional
        Target marginals; they must carry the same total mass per matrix.
    steps, max_iter, rtol, callback, warn
        As in :func:`racs` (``callback(k, residual)``; return True to stop).
    log_domain : bool, optional
        True: logsumexp iteration (always in float64); False: plain; None (default): plain unless
        it would under/overflow.

    Returns
    -------
    BalanceResult
        ``matrix`` = P, ``row_scale`` = u, ``col_scale`` = v (gauge: equal mean log).

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import sinkhorn_knopp
    >>> res = sinkhorn_knopp(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    >>> torch.allclose(res.matrix.sum(1), torch.tensor([2.0, 2.0], dtype=torch.float64))
    True
    >>> torch.allclose(res.matrix.sum(0), torch.tensor([2.0, 2.0], dtype=torch.float64))
    True

    References
    ----------
    Sinkhorn & Knopp, Pacific J. Math. 21 (1967); Knight, SIMAX 30(1) 2008 (rate);
    Schmitzer 2019 (log-domain stabilization); POT ``ot.sinkhorn`` (API).
    """
    if isinstance(b, np.ndarray):  # validate under the argument's own name, then numpy I/O
        as_matrix(b, "b", finite=False)
    return _sinkhorn_knopp(
        b, row_sums=row_sums, col_sums=col_sums, steps=steps, max_iter=max_iter, rtol=rtol,
        log_domain=log_domain, callback=callback, warn=warn,
    )


@numpy_io
def _sinkhorn_knopp(b, *, row_sums, col_sums, steps, max_iter, rtol, log_domain, callback, warn):
    b = as_matrix(b, "b", finite=False)  # NaN/Inf refused by the max-abs pass of the kernel
    if bool((b < 0).any()):
        raise ValueError("b must be nonnegative (got negative entries); use racs for signed matrices")
    check_iter_opts(steps, max_iter, rtol)
    check_callback(callback)
    check_bool(warn, "warn")
    check_bool(log_domain, "log_domain", allow_none=True)
    dtype = work_dtype(b.dtype)
    m, n = b.shape[-2], b.shape[-1]
    a_t = _marginal(row_sums, "row_sums", b.shape[:-1], dtype, b.device)
    b_t = _marginal(col_sums, "col_sums", b.shape[:-2] + (n,), dtype, b.device)
    if a_t is not None and b_t is not None:
        ta, tb = a_t.sum(-1), b_t.sum(-1)
        if not bool(torch.allclose(ta, tb, rtol=1e-6, atol=0)):
            raise ValueError(
                "row_sums and col_sums must have equal totals (same mass), got "
                f"{ta.flatten()[:4].tolist()} vs {tb.flatten()[:4].tolist()}"
            )
    elif (a_t is None) != (b_t is None):
        raise ValueError("give both row_sums and col_sums, or neither (default: n and m)")

    # as racs: near the rounding floor (not with fixed steps) the sweeps aim at rtol / 4 and a
    # claim of convergence is re-measured on the returned matrix
    check = needs_check(rtol, dtype) and steps is None
    it_tol = 0.25 * rtol if check else rtol
    out = _sk(b, a_t, b_t, steps, max_iter, it_tol, log_domain, callback, dtype)
    if not out[0].finite and log_domain is None:
        out = _sk(b, a_t, b_t, steps, max_iter, it_tol, True, callback, dtype)
    run_out, kern, ta, tb = out
    if not run_out.finite:
        raise FloatingPointError(
            "sinkhorn_knopp: the scale factors overflowed in the plain domain; "
            "use log_domain=True or None"
        )
    u, v = scales_from_logs(
        run_out.lu, run_out.lv, kern.log_s, 1.0, kern.live_r, kern.live_c,
        all_live=kern.all_live,
    )
    u, v = u.to(kern.k.dtype), v.to(kern.k.dtype)  # computed in float64, rounded once
    verify = None
    if check:
        mr, mc = (None, None) if kern.all_live else (kern.live_r, kern.live_c)
        verify = lambda mat: matrix_residual(mat, ta, mr, tb, mc, 1.0, rtol)  # noqa: E731
    return finish(
        x=b,
        r=u,
        c=v,
        live_r=kern.live_r,
        live_c=kern.live_c,
        iterations=run_out.iterations,
        converged=bool((run_out.residual <= rtol).all()),  # the iteration's claim
        history=run_out.history,
        residual=run_out.residual,
        matvecs=run_out.matvecs,
        method="sinkhorn_knopp",
        warn=warn and steps is None,
        rtol=rtol,
        hint=stall_hint(run_out.history, kern.k.dtype),
        scale_dtype=dtype,
        out=_engine.spare(kern),  # K is dead: its storage takes the result
        verify=verify,
    )


def _sk(b, a_t, b_t, steps, max_iter, rtol, log_domain, callback, dtype):
    kern = _engine.prepare_kernel(
        b, p=1.0, eps=0.0, log_domain=log_domain, dtype=dtype, name="b", nonneg=True
    )
    live_r, live_c = kern.live_r, kern.live_c
    dtype = kern.k.dtype  # float64 in the log domain
    if a_t is not None:
        a_t, b_t = a_t.to(dtype), b_t.to(dtype)
    if a_t is None:
        a_t = live_c.sum(-1, keepdim=True).to(dtype).expand(live_r.shape)
        b_t = live_r.sum(-1, keepdim=True).to(dtype).expand(live_c.shape)
    a_t = torch.where(live_r, a_t, 1)
    b_t = torch.where(live_c, b_t, 1)

    def residual(s_r, s_c):
        if kern.all_live:  # no masking needed: the same values
            res = (s_r / a_t - 1).abs_().amax(-1)
            if s_c is not None:
                res = torch.maximum(res, (s_c / b_t - 1).abs_().amax(-1))
            return res
        res = torch.where(live_r, (s_r / a_t - 1).abs(), 0).amax(-1)
        if s_c is not None:
            res = torch.maximum(res, torch.where(live_c, (s_c / b_t - 1).abs(), 0).amax(-1))
        return res

    run_out = _engine.run(
        kern, a_t, b_t, residual=residual, steps=steps, max_iter=max_iter, rtol=rtol,
        callback=callback,
    )
    return run_out, kern, a_t, b_t
