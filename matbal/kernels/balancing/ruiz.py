"""Ruiz simultaneous infinity-norm equilibration."""
from __future__ import annotations

import math

import torch

from .._checks import as_matrix, check_bool, check_positive, numpy_io
from ._result import (
    BalanceResult,
    check_callback,
    check_iter_opts,
    finish,
    matrix_residual,
    needs_check,
    scales_from_logs,
    target_residual,
    work_dtype,
)

__all__ = ["ruiz"]


@numpy_io
def ruiz(
    x,
    *,
    steps: int | None = None,
    max_iter: int = 100,
    rtol: float = 1e-6,
    eps: float = 0.0,
    callback=None,
    warn: bool = True,
) -> BalanceResult:
    r"""Ruiz equilibration: simultaneous :math:`X\leftarrow D_r^{-1/2}XD_c^{-1/2}` with max-norms.

    Each sweep takes :math:`D_r=\mathrm{diag}(\max_j|x_{ij}|)`, :math:`D_c=\mathrm{diag}(\max_i|x_{ij}|)`
    from the *same* iterate and applies both square roots at once, driving every row and column
    max-abs entry to 1. Convergence is linear with rate 1/2 (the log-deviation of each max from 1
    at least halves per sweep; Ruiz 2001, Thm 2.1), for any shape and any sign pattern without
    zero rows/columns. Compare :func:`racs` ``(p=inf)``, whose alternating sweep is exact at once.

    Residual: the max relative deviation of the live row and column max-abs values from their
    target 1 (checked on the returned matrix near the rounding floor, as :func:`racs`). Dead
    rows/columns (max <= ``eps`` * max-abs entry; default exact zeros) get scale 0. Batches:
    per-element freeze, as :func:`racs`. Scales are pre-scaled by the max-abs entry; when some
    nonzero entry would still underflow (1e±30 in float32) the sweep runs on ``log|x|`` in
    float64 (sums instead of products), so no range overflows.

    Parameters
    ----------
    x : Tensor or ndarray ``(..., m, n)``
    steps, max_iter, rtol, eps, callback, warn
        As in :func:`racs`.

    Returns
    -------
    BalanceResult

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import ruiz
    >>> res = ruiz(torch.tensor([[1.0, 100.0], [1e-3, 1.0]], dtype=torch.float64), rtol=1e-10)
    >>> res.matrix.abs().amax(1), res.converged      # doctest: +NORMALIZE_WHITESPACE
    (tensor([1.0000, 1.0000], dtype=torch.float64), True)

    References
    ----------
    D. Ruiz, "A scaling algorithm to equilibrate both rows and columns norms in matrices",
    RAL-TR-2001-034 (2001).
    """
    x = as_matrix(x, "x")
    check_iter_opts(steps, max_iter, rtol)
    check_positive(eps, "eps", allow_zero=True)
    check_callback(callback)
    check_bool(warn, "warn")
    dtype = work_dtype(x.dtype)
    # pre-scale by the max-abs entry; plain products unless some nonzero entry would underflow,
    # then log|x| - log s (sums replace products; -inf marks zeros)
    xa = x.to(dtype).abs()
    s = xa.amax(dim=(-2, -1))
    s = torch.where(s > 0, s, torch.ones_like(s))
    log_s = torch.log(s.double())  # float64: the scales come back through exp
    K = xa.div_(s[..., None, None])
    use_log = int(torch.count_nonzero(K)) != int(torch.count_nonzero(x))
    if use_log:
        # float64, as racs' log domain: in float32, |log K| ~ 140 leaves a ~1e-5 residual floor
        K = torch.log(x.to(torch.float64).abs()) - log_s[..., None, None]
    zero = -math.inf if use_log else 0.0
    thr = (math.log(eps) if eps > 0 else -math.inf) if use_log else eps
    live_r, live_c = K.amax(-1) > thr, K.amax(-2) > thr
    mv = 2
    for _ in range(x.shape[-2] + x.shape[-1]):  # with eps > 0 a dead row can kill a column
        if eps == 0 or (bool(live_r.all()) and bool(live_c.all())):
            break
        Km = K.masked_fill(~(live_r.unsqueeze(-1) & live_c.unsqueeze(-2)), zero)
        new_r, new_c = live_r & (Km.amax(-1) > thr), live_c & (Km.amax(-2) > thr)
        mv += 2
        if bool((new_r == live_r).all()) and bool((new_c == live_c).all()):
            break
        live_r, live_c = new_r, new_c
    if not (bool(live_r.all()) and bool(live_c.all())):
        K = K.masked_fill(~(live_r.unsqueeze(-1) & live_c.unsqueeze(-2)), zero)

    # scales: log form in the log path, plain (exact multiplicative updates) otherwise
    r = torch.full(live_r.shape, 0.0 if use_log else 1.0, dtype=K.dtype, device=x.device)
    c = torch.full(live_c.shape, 0.0 if use_log else 1.0, dtype=K.dtype, device=x.device)
    fixed = steps is not None
    nmax = steps if fixed else max_iter
    # as racs: near the rounding floor the sweeps aim at rtol / 4 and a claim of convergence is
    # checked on the returned matrix
    check = needs_check(rtol, dtype) and not fixed
    it_tol = 0.25 * rtol if check else rtol
    res = None
    hist = []
    iters = None
    active = None
    k = 0
    # the iterate, one buffer reused by every sweep (out= has no autograd: fresh tensors then)
    reuse = not (K.requires_grad and torch.is_grad_enabled())
    M = torch.empty_like(K, memory_format=torch.contiguous_format) if reuse else None
    while True:
        if use_log:
            if reuse:
                torch.add(K, r.unsqueeze(-1), out=M).add_(c.unsqueeze(-2))  # log |iterate|
            else:
                M = K + r.unsqueeze(-1) + c.unsqueeze(-2)
            rm, cm = M.amax(-1), M.amax(-2)
            rmax, cmax = torch.exp(rm), torch.exp(cm)
        else:
            if reuse:
                torch.mul(K, r.unsqueeze(-1), out=M).mul_(c.unsqueeze(-2))
            else:
                M = K * r.unsqueeze(-1) * c.unsqueeze(-2)
            rmax, cmax = M.amax(-1), M.amax(-2)
        if not reuse:
            M = None
        mv += 2
        new_res = target_residual(rmax, 1.0, live_r, cmax, 1.0, live_c, math.inf)
        if res is None:
            res = new_res
            active = torch.ones_like(res, dtype=torch.bool) if fixed else res > it_tol
            iters = torch.zeros_like(res, dtype=torch.int64)
        else:
            res = torch.where(active, new_res, res)
            iters = iters + active.to(iters.dtype)
            if callback is not None and callback(k, res):
                hist.append(res.amax())
                break
            if not fixed:
                active = active & (res > it_tol)
        hist.append(res.amax())
        if k >= nmax or (not fixed and not bool(active.any())):
            break
        k += 1
        act = active.unsqueeze(-1)
        if use_log:
            r = torch.where(act & live_r, r - 0.5 * rm, r)
            c = torch.where(act & live_c, c - 0.5 * cm, c)
        else:
            r = torch.where(act & live_r, r / torch.sqrt(torch.where(live_r, rmax, 1)), r)
            c = torch.where(act & live_c, c / torch.sqrt(torch.where(live_c, cmax, 1)), c)
    if use_log:
        lr, lc = r.double(), c.double()
    else:
        lr, lc = torch.log(r.double()), torch.log(c.double())
    n_it = int(iters.amax()) if iters.numel() else 0
    history = torch.stack(hist[: n_it + 1]).to(device="cpu", dtype=torch.float64)
    r, c = scales_from_logs(lr, lc, log_s, 1.0, live_r, live_c)
    r, c = r.to(dtype), c.to(dtype)  # computed in float64, rounded once
    verify = None
    if check:
        verify = lambda mat: matrix_residual(mat, 1.0, live_r, 1.0, live_c, math.inf, rtol)  # noqa: E731
    return finish(
        x=x, r=r, c=c, live_r=live_r, live_c=live_c, iterations=n_it,
        converged=bool((res <= rtol).all()), history=history, residual=res, matvecs=mv,
        method="ruiz", warn=warn and not fixed, rtol=rtol, out=M,  # M is dead: reuse it
        verify=verify,
    )
