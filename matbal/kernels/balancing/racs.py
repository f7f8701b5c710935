"""RACS: Row-and-Column Scaling to equal row p-norms and equal column p-norms (REG / SinkGD)."""
from __future__ import annotations

import functools
import math

import torch

from .._checks import as_matrix, check_bool, check_positive, numpy_io
from . import _engine
from ._result import (
    BalanceResult,
    apply_scales,
    check_callback,
    check_iter_opts,
    check_p,
    finish,
    matrix_residual,
    needs_check,
    scales_from_logs,
    target_residual,
    stall_hint,
    work_dtype,
)

__all__ = ["racs", "racs_matrix"]


@numpy_io
def racs(
    x,
    *,
    p: float = 2,
    steps: int | None = None,
    max_iter: int = 100,
    rtol: float = 1e-6,
    eps: float = 0.0,
    log_domain: bool | None = None,
    callback=None,
    warn: bool = True,
) -> BalanceResult:
    r"""Scale rows and columns so all row p-norms are equal and all column p-norms are equal.

    Finds positive ``r (..., m)``, ``c (..., n)`` with :math:`\hat X=\mathrm{diag}(r)X\mathrm{diag}(c)`,

    .. math:: \|\hat x_{i,:}\|_p = n^{1/p},\qquad \|\hat x_{:,j}\|_p = m^{1/p}

    (``m, n`` counted over the live block, see *Dead rows*), i.e.

    - p = 2: row norms :math:`\sqrt n`, column norms :math:`\sqrt m`, entry RMS 1. This is exactly
      Sinkhorn–Knopp on :math:`X\odot X` with marginals :math:`(n\mathbf 1_m, m\mathbf 1_n)`
      (:func:`sinkhorn_knopp`): ``racs(x).matrix**2 == sinkhorn_knopp(x*x).matrix``.
    - p = 1: every row of :math:`|\hat X|` sums to n and every column to m; the two targets are
      consistent because both give total mass :math:`mn` (Sinkhorn–Knopp on :math:`|X|`).
    - p = inf: every row and every column has max-abs entry 1.

    **The sweep** (one iteration; ``steps=k`` runs k of them) is the alternating Sinkhorn /
    SinkGD sweep, row normalization *then* column normalization of the row-normalized matrix:

    .. math:: Y=\sqrt n\,Q(X)^{-1}X,\qquad X\leftarrow \sqrt m\,Y\,R(Y)^{-1}

    (Q, R: diagonal row/column p-norms), so ``racs(x, steps=L)`` is SinkGD's L-step
    normalization (arXiv 2502.06742) and ``steps=1`` is one row pass followed by one column pass
    — not the simultaneous (Ruiz-style) :math:`D_r^{-1/2}XD_c^{-1/2}` (see :func:`ruiz`,
    :func:`rc_scale`). After a sweep the columns are exact and the rows carry the residual.
    For p = inf one sweep is already exact (after the column pass every row keeps an entry 1).

    Implementation: the kernel :math:`K=(|X|/s)^p` (``s`` = max-abs entry, for range) is formed
    once; the iteration keeps only the two scale vectors (two passes over ``K`` per sweep, no
    new matrix per sweep) and reads convergence off the row sums it just computed. The matrix is
    formed once at the end. Rate (p = 2): linear, :math:`\sigma_2(\tilde P)^2` per sweep, with
    :math:`\tilde P = \hat X^{\odot 2}/\sqrt{mn}` the marginal-normalized limit (Knight 2008);
    for i.i.d. Gaussian X about :math:`2(m^{-1/2}+n^{-1/2})^2`. A zero pattern without total
    support (e.g. ``[[1, 1], [0, 1]]``) has no exact scaling: convergence is sublinear, the result
    is finite, ``converged=False`` and the warning says so.

    **Dead rows** (p-norm <= ``eps`` * max-abs entry; default: exactly zero) and dead columns get
    scale 0, are reported in ``zero_rows``/``zero_cols``, and the targets use the live counts.

    **Batches** ``(..., m, n)``: each element stops (is frozen) at the sweep where its residual
    reaches ``rtol``, so a batched call equals a loop over the elements (to rounding: where one
    element needs the pre-scaled or log domain, the whole batch computes in it); ``iterations`` is the
    largest count in the batch, ``history`` the max residual over the batch.

    Parameters
    ----------
    x : Tensor or ndarray ``(..., m, n)``, real floating, finite.
    p : {1, 2, inf}
        The norm equalized.
    steps : int, optional
        Run exactly this many sweeps (no tolerance test, no warning; ``converged`` still reports
        whether ``rtol`` was met). ``None``: iterate to ``rtol``.
    max_iter : int
        Sweep cap when ``steps`` is None.
    rtol : float
        Tolerance on the residual: the max relative deviation of the live row/column p-norms from
        their targets :math:`n^{1/p}, m^{1/p}` (so ``100 * eye(3)``, balanced only up to a scalar,
        is iterated to :math:`\sqrt 3\,I`). When ``rtol`` is within ``1e4`` rounding units of the
        working dtype (float32 with the default ``1e-6``) the sweeps aim at ``rtol / 4`` and a
        claim of convergence is checked on the returned matrix (sums in float64 where the
        float32 ones are too close to ``rtol`` to decide); ``converged``, ``residual`` and
        ``history[-1]`` then report that measurement: the iterate's float32 sums alone can be off
        by more than ``rtol`` at large n (4096×11008: 1.5e-6). With ``steps`` (fixed cost, as the
        optimizers use it) nothing is re-measured: ``converged`` is the iteration's own test.
    eps : float
        Relative threshold for dead rows/columns (0: only exact zeros).
    log_domain : bool, optional
        Iterate on ``log K`` with logsumexp (always in float64). ``None`` (default): only when the
        plain domain would under/overflow (entries spanning ~1e±30 in float32). Plain float64
        handles 1e±30 itself.
    callback : callable, optional
        ``callback(k, residual)`` after sweep k (``residual``: batch-shaped tensor); return True
        to stop.
    warn : bool
        Emit :class:`~matbal.kernels._checks.ConvergenceWarning` when ``rtol`` is not met.

    Returns
    -------
    BalanceResult
        ``matrix`` in the input dtype; scales, history etc. in float32 (float64 for float64
        input; bf16/fp16 iterate in float32). For the matrix alone with fixed ``steps`` (the
        optimizers' call), :func:`racs_matrix` skips the per-sweep bookkeeping.

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import racs
    >>> x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> res = racs(x)
    >>> res.converged
    True
    >>> torch.allclose(res.matrix.norm(dim=1), torch.full((6,), 4.0).sqrt().double(), rtol=1e-5)
    True
    >>> torch.allclose(res.matrix.norm(dim=0), torch.full((4,), 6.0).sqrt().double(), rtol=1e-5)
    True

    References
    ----------
    REG, arXiv 2510.03691 (RACS; exact formula unpublished — this is the p-norm Sinkhorn member);
    SinkGD, arXiv 2502.06742; Sinkhorn & Knopp 1967; Knight, SIMAX 30(1) 2008 (rate).
    """
    x, p = _check(x, p, steps, max_iter, rtol, eps, log_domain, callback, warn)
    dtype = work_dtype(x.dtype)
    # near the rounding floor a claim of convergence is re-measured on the returned matrix and the
    # iteration aims at rtol / 4 (the rest is room for the rounding of the iterate's sums
    # and of the formed matrix); not with fixed steps, the fixed-cost mode the optimizers use
    check = needs_check(rtol, dtype) and steps is None
    it_tol = 0.25 * rtol if check else rtol
    out = _racs(x, p, steps, max_iter, it_tol, eps, log_domain, callback, dtype)
    if not out[0].finite and log_domain is None:  # plain domain overflowed after all
        out = _racs(x, p, steps, max_iter, it_tol, eps, True, callback, dtype)
    run_out, kern, a, b = out
    if not run_out.finite:
        raise FloatingPointError(
            "racs: the scale factors overflowed in the plain domain; use log_domain=True or None"
        )
    # scales from the (float64) logs in float64, rounded once to the kernel's dtype
    r, c = scales_from_logs(
        run_out.lu, run_out.lv, kern.log_s, 1.0 if p == math.inf else p,
        kern.live_r, kern.live_c, all_live=kern.all_live,
    )
    r, c = r.to(kern.k.dtype), c.to(kern.k.dtype)
    verify = None
    if check:
        mr, mc = (None, None) if kern.all_live else (kern.live_r, kern.live_c)
        verify = lambda mat: matrix_residual(mat, a, mr, b, mc, p, rtol)  # noqa: E731
    return finish(
        x=x,
        r=r,
        c=c,
        live_r=kern.live_r,
        live_c=kern.live_c,
        iterations=run_out.iterations,
        converged=bool((run_out.residual <= rtol).all()),  # the iteration's claim
        history=run_out.history,
        residual=run_out.residual,
        matvecs=run_out.matvecs,
        method="racs",
        warn=warn and steps is None,
        rtol=rtol,
        hint=stall_hint(run_out.history, kern.k.dtype),
        scale_dtype=dtype,
        out=_engine.spare(kern),  # K is dead: its storage takes the result
        verify=verify,
    )


def _check(x, p, steps, max_iter, rtol, eps, log_domain, callback, warn):
    """Validate :func:`racs`'s arguments (errors name the argument); returns ``(x, p)``. The
    options are validated once per distinct (typed) combination and remembered: an optimizer
    calls with the same options every step (a fixed cost of ~7 µs per call otherwise)."""
    x = as_matrix(x, "x", finite=False)  # NaN/Inf refused by the max-abs pass of the kernel
    opts = (p, steps, max_iter, rtol, eps, log_domain, callback, warn)
    try:
        hash(opts)
    except TypeError:  # unhashable (a list for p, …): validate, which raises naming it
        return x, _check_opts(*opts)
    return x, _check_opts_cached(*opts)


def _check_opts(p, steps, max_iter, rtol, eps, log_domain, callback, warn) -> float:
    p = check_p(p)
    check_iter_opts(steps, max_iter, rtol)
    check_positive(eps, "eps", allow_zero=True)
    check_callback(callback)
    check_bool(warn, "warn")
    check_bool(log_domain, "log_domain", allow_none=True)
    return p


# typed: True and 1, 2 and 2.0 are different keys (``warn=1`` must still be refused)
_check_opts_cached = functools.lru_cache(maxsize=64, typed=True)(_check_opts)


@numpy_io
def racs_matrix(
    x,
    *,
    p: float = 2,
    steps: int | None = None,
    max_iter: int = 100,
    rtol: float = 1e-6,
    eps: float = 0.0,
    log_domain: bool | None = None,
    callback=None,
    warn: bool = True,
):
    r"""The balanced matrix of :func:`racs` alone (``racs(x, ...).matrix``), with a lean path for
    the fixed-cost case the optimizers use (REG, SinkGD: ``steps=k``).

    Same arguments, same checks and the same errors as :func:`racs`; returns a Tensor
    ``(..., m, n)`` in the input dtype (an ndarray for ndarray input).

    **Lean path** (``steps`` given, p = 1 or 2, ``eps = 0``, no ``callback``, ``log_domain`` not
    True, no autograd): the k sweeps of :func:`racs` on :math:`K=|X|^p`,

    .. math:: u\leftarrow n\,/\,(Kv),\qquad v\leftarrow m\,/\,(K^\top u),\qquad
              \hat X=\mathrm{diag}(u^{1/p})\,X\,\mathrm{diag}(v^{1/p}),

    without the per-sweep residual, history and masks, and with one host read at the end (not
    one per sweep) confirming what the general path would have decided first: no dead
    row/column, ``K`` far from the dtype's limits, finite positive factors. The factors
    ``u, v`` are bit-identical to :func:`racs`'s; only the last step differs: the scales are
    :math:`u^{1/p}, v^{1/p}` in the working dtype instead of :func:`racs`'s float64
    ``exp(log u / p + shift)`` (its gauge ``shift`` cancels in the product), so the matrix
    agrees with ``racs(x, ...).matrix`` to a few rounding units of the working dtype (tested:
    within 1e-6 relative in float32, and both as close to the float64 computation).
    Anything else — ``steps=None``, p = inf, a dead row or column (an all-zero matrix gives
    zeros), NaN/Inf (``ValueError``), magnitudes near the float limits — runs :func:`racs`.

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import racs, racs_matrix
    >>> x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    >>> y = racs_matrix(x, p=2, steps=5)
    >>> torch.allclose(y, racs(x, p=2, steps=5).matrix, rtol=1e-6, atol=0)
    True
    >>> racs_matrix(torch.zeros(3, 2), steps=5)
    tensor([[0., 0.],
            [0., 0.],
            [0., 0.]])

    References
    ----------
    SinkGD, arXiv 2502.06742 (the L-step normalization); REG, arXiv 2510.03691.
    """
    x, p = _check(x, p, steps, max_iter, rtol, eps, log_domain, callback, warn)
    lean = (steps is not None and p != math.inf and eps == 0 and log_domain is not True
            and callback is None and not (torch.is_grad_enabled() and x.requires_grad))
    if lean:
        got = _engine.fixed_sweeps(x, p, steps, work_dtype(x.dtype))
        if got is not None:
            K, u, v = got
            r, c = (u.sqrt(), v.sqrt()) if p == 2 else (u, v)
            return apply_scales(x, r, c, out=K)
    return racs(x, p=p, steps=steps, max_iter=max_iter, rtol=rtol, eps=eps,
                log_domain=log_domain, callback=callback, warn=warn).matrix


def _racs(x, p, steps, max_iter, rtol, eps, log_domain, callback, dtype):
    kern = _engine.prepare_kernel(x, p=p, eps=eps, log_domain=log_domain, dtype=dtype)
    live_r, live_c = kern.live_r, kern.live_c
    dtype = kern.k.dtype  # float64 in the log domain
    if p == math.inf:
        a = torch.ones(live_r.shape, dtype=dtype, device=x.device)
        b = torch.ones(live_c.shape, dtype=dtype, device=x.device)
    elif kern.all_live:  # the live counts are the shape
        a = torch.full(live_r.shape, float(x.shape[-1]), dtype=dtype, device=x.device)
        b = torch.full(live_c.shape, float(x.shape[-2]), dtype=dtype, device=x.device)
    else:
        n_live = live_c.sum(-1, keepdim=True).to(dtype)
        m_live = live_r.sum(-1, keepdim=True).to(dtype)
        a = torch.where(live_r, n_live, 1)
        b = torch.where(live_c, m_live, 1)

    if kern.all_live and p != math.inf:
        ta, tb = float(x.shape[-1]), float(x.shape[-2])  # scalar targets: fewer small ops
    else:
        ta, tb = a, b
    mr, mc = (None, None) if kern.all_live else (live_r, live_c)

    def residual(s_r, s_c):
        return target_residual(s_r, ta, mr, s_c, tb, mc, p)

    run_out = _engine.run(
        kern, a, b, residual=residual, steps=steps, max_iter=max_iter, rtol=rtol, callback=callback
    )
    return run_out, kern, ta, tb
