"""Knight–Ruiz: Newton's method with an inner CG solve for the Sinkhorn (RACS) fixed point."""
from __future__ import annotations

import math

import torch

from .._checks import as_matrix, check_bool, check_positive, numpy_io
from . import _engine
from ._result import (
    BalanceResult,
    check_callback,
    check_iter_opts,
    finish,
    scales_from_logs,
    target_residual,
    work_dtype,
)

__all__ = ["knight_ruiz"]

_DELTA, _DELTA_UP = 0.1, 3.0   # BNEWT's bounds on the Newton step ratio y (keeps x > 0)
_ETA_MAX, _G = 0.1, 0.9        # BNEWT's forcing-term parameters


def _bnewt(K, p, max_iter, rtol, callback):
    """Newton–CG on x ∘ (A x) = t, A = [[0, K], [Kᵀ, 0]], t = [n 1_m; m 1_n] (Knight & Ruiz 2013,
    Alg. BNEWT, generalized from t = 1 to the rectangular targets). Returns log u, log v,
    per-step residuals and the number of products with K or Kᵀ."""
    m, n = K.shape
    t = torch.cat([torch.full((m,), float(n), dtype=K.dtype), torch.full((n,), float(m), dtype=K.dtype)])
    t = t.to(K.device)

    def A(z):
        return torch.cat([K @ z[m:], z[:m] @ K])

    def resid(vv):  # deviation from the targets t (rows n, columns m), as racs
        return target_residual(vv[:m], float(n), None, vv[m:], float(m), None, p)

    mv = 2
    x = torch.sqrt(t / A(torch.ones_like(t)))   # Jacobi start: x_i^2 (A1)_i = t_i
    ax = A(x)
    mv += 2
    v = x * ax
    rk = t - v
    res = resid(v)
    hist = [res]
    rt = (0.5 * rtol) ** 2 * float(t.sum())    # floor of the inner tolerance (t-weighted)
    rout = float(torch.dot(rk, rk / v))
    rold = rout
    eta = _ETA_MAX
    it = 0
    while float(res) > rtol and it < max_iter:
        it += 1
        y = torch.ones_like(x)
        innertol = max(eta**2 * rout, rt)
        rho_km1 = rout
        rho_km2 = rho_km1
        pdir = None
        z = None
        k = 0
        while rho_km1 > innertol:
            k += 1
            if k == 1:
                z = rk / v
                pdir = z
                rho_km1 = float(torch.dot(rk, z))
            else:
                pdir = z + (rho_km1 / rho_km2) * pdir
            w = x * A(x * pdir) + v * pdir
            mv += 2
            alpha = rho_km1 / float(torch.dot(pdir, w))
            ap = alpha * pdir
            ynew = y + ap
            if float(ynew.min()) <= _DELTA:
                neg = ap < 0
                gamma = float(((_DELTA - y[neg]) / ap[neg]).min())
                y = y + gamma * ap
                break
            if float(ynew.max()) >= _DELTA_UP:
                big = ynew > _DELTA_UP
                gamma = float(((_DELTA_UP - y[big]) / ap[big]).min())
                y = y + gamma * ap
                break
            y = ynew
            rk = rk - alpha * w
            rho_km2 = rho_km1
            z = rk / v
            rho_km1 = float(torch.dot(rk, z))
        x = x * y
        v = x * A(x)
        mv += 2
        rk = t - v
        rout = float(torch.dot(rk, rk / v))
        res = resid(v)
        hist.append(res)
        if callback is not None and callback(it, res):
            break
        # forcing term (Eisenstat–Walker style, as in BNEWT)
        rat = rout / rold if rold > 0 else 0.0
        rold = rout
        eta_o = eta
        eta = _G * rat
        if _G * eta_o**2 > 0.1:
            eta = max(eta, _G * eta_o**2)
        eta = max(min(eta, _ETA_MAX), 0.5 * rtol / max(math.sqrt(rout / float(t.sum())), 1e-300))
    return torch.log(x[:m]), torch.log(x[m:]), hist, mv


def _log_restart(K, p, max_iter, rtol, callback, su, sv, h, mv):
    """Newton ran out of steps (BNEWT's step ratios in [0.1, 3] need ~log_3 of the scales'
    range in steps: column scales of 1e±15 span 1e30 in ``K``). Pre-balance ``K`` to 1e-2 with
    log-domain Sinkhorn (any range, linear rate) and run Newton again from there; keep whichever
    result is better. History: the first run's, then the second's Newton steps."""
    from .sinkhorn import sinkhorn_knopp  # the same marginals (n, m) on K = |x|^p

    pre = sinkhorn_knopp(K, log_domain=True, rtol=1e-2, max_iter=max(1000, 20 * max_iter),
                         warn=False)
    su2, sv2, h2, mv2 = _bnewt(pre.matrix, p, max_iter, rtol, callback)
    mv += pre.matvecs + mv2
    if float(h2[-1]) >= float(h[-1]):
        return su, sv, h, mv
    return (su2 + torch.log(pre.row_scale), sv2 + torch.log(pre.col_scale), h + h2[1:], mv)


@numpy_io
def knight_ruiz(
    x,
    *,
    p: float = 2,
    max_iter: int = 50,
    rtol: float = 1e-6,
    eps: float = 0.0,
    callback=None,
    warn: bool = True,
) -> BalanceResult:
    r"""Knight–Ruiz balancing: Newton + conjugate gradients for the RACS / Sinkhorn fixed point.

    Solves for :math:`x=(u,v)>0` in :math:`x\circ(Ax)=t` with the bipartite symmetric embedding
    :math:`A=\begin{pmatrix}0&K\\K^\top&0\end{pmatrix}`, :math:`K=|X|^{\odot p}`,
    :math:`t=(n\mathbf 1_m, m\mathbf 1_n)`, i.e. :math:`\mathrm{diag}(u)K\mathrm{diag}(v)` has row
    sums n and column sums m — the same fixed point as :func:`racs` ``(p=p)`` and
    :func:`sinkhorn_knopp` ``(|X|^p)``; the result's scales are :math:`u^{1/p}, v^{1/p}`.
    Each Newton step solves :math:`(XAX+\mathrm{diag}(v))\,y=t+v` (``X = diag(x)``, symmetric
    positive semidefinite; its null direction is the (u, v) -> (a u, v / a) gauge and the
    right-hand side is consistent with it) by CG with the Jacobi preconditioner ``diag(v)``, with
    BNEWT's safeguards (step ratios kept in [0.1, 3]) and inexact-Newton forcing terms.

    Convergence is quadratic near the solution, so it needs a handful of Newton steps where
    Sinkhorn needs hundreds; each step costs several products with ``K`` (CG iterations), see
    ``matvecs``. It pays off when Sinkhorn's rate :math:`\sigma_2(\tilde P)^2` is close to 1:
    nearly decomposable patterns (near-block-diagonal, a few dominant entries, tiny rectangular
    sides). For dense well-mixed matrices (Gaussian-like gradients, rate ~ 2(m^-1/2+n^-1/2)^2)
    :func:`racs` reaches ``rtol`` in a few sweeps and is cheaper.

    Computed in float64 (CG is precision-hungry; the matrix and scales are cast back), one batch
    element at a time (a batched call is by construction the loop). Dead rows/columns (p-norm <=
    ``eps`` * max-abs entry) get scale 0 and are left out of the problem. A pattern without
    total support has no solution: Newton stalls, and the result says ``converged=False``.
    Newton's step ratios are bounded (BNEWT's [0.1, 3]), so scales spanning many decades (column
    scales 1e±15) need more steps than ``max_iter``: when an element runs out of steps, it is
    pre-balanced to 1e-2 by log-domain :func:`sinkhorn_knopp` on ``K`` and Newton runs again from
    there (``history`` then holds both runs' steps, ``matvecs`` counts the Sinkhorn sweeps).

    Parameters
    ----------
    x : Tensor or ndarray ``(..., m, n)``
    p : {1, 2}
    max_iter : int
        Newton steps.
    rtol, eps, warn
        As in :func:`racs` (residual: max relative deviation of the row/column p-norms from their
        targets :math:`n^{1/p}, m^{1/p}`).
    callback : callable, optional
        ``callback(k, residual)`` after Newton step k of each batch element, in turn; True stops
        that element.

    Returns
    -------
    BalanceResult
        ``iterations``: Newton steps (max over the batch); ``matvecs``: products with K or Kᵀ.

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import knight_ruiz, racs
    >>> x = torch.randn(30, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> kr, rc = knight_ruiz(x, rtol=1e-10), racs(x, rtol=1e-10)
    >>> torch.allclose(kr.matrix, rc.matrix, atol=1e-8), kr.iterations < rc.iterations
    (True, True)

    References
    ----------
    P. A. Knight, D. Ruiz, "A fast algorithm for matrix balancing", IMA J. Numer. Anal. 33(3),
    1029–1047 (2013); P. A. Knight, SIMAX 30(1) 2008.
    """
    x = as_matrix(x, "x")
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be one of [1, 2] for knight_ruiz, got {p!r}")
    p = float(p)
    check_iter_opts(None, max_iter, rtol)
    check_positive(eps, "eps", allow_zero=True)
    check_callback(callback)
    check_bool(warn, "warn")
    dtype = torch.float64
    kern = _engine.prepare_kernel(x, p=p, eps=eps, log_domain=False, dtype=dtype)
    if kern.log:  # pragma: no cover - log_domain=False forces the plain kernel
        raise AssertionError
    K, live_r, live_c = kern.k, kern.live_r, kern.live_c
    # only float64 input can under/overflow here: (pre-scaled) |x|^p of a float32/bf16/fp16
    # entry lies within 1e±170 (x is finite: checked above)
    if x.dtype == torch.float64 and (
        not bool(torch.isfinite(K).all())
        or int(torch.count_nonzero(K)) != int(torch.count_nonzero(x))
    ):
        raise FloatingPointError(
            "knight_ruiz: |x|^p underflows in float64 after pre-scaling (dynamic range beyond "
            "1e±150); use racs(..., log_domain=True)"
        )
    bshape = x.shape[:-2]
    m, n = x.shape[-2:]
    Kf = K.reshape(-1, m, n)
    lrf, lcf = live_r.reshape(-1, m), live_c.reshape(-1, n)
    lu = torch.full((Kf.shape[0], m), -math.inf, dtype=dtype, device=x.device)
    lv = torch.full((Kf.shape[0], n), -math.inf, dtype=dtype, device=x.device)
    hists, mv_total = [], kern.matvecs
    for b in range(Kf.shape[0]):
        ir, ic = lrf[b].nonzero().squeeze(-1), lcf[b].nonzero().squeeze(-1)
        if ir.numel() == 0:
            hists.append([torch.zeros((), dtype=dtype)])
            continue
        if ir.numel() == m and ic.numel() == n:
            sub = Kf[b]  # nothing dead: no copy
        else:
            sub = Kf[b].index_select(0, ir).index_select(1, ic)
        su, sv, h, mv = _bnewt(sub, p, max_iter, rtol, callback)
        if float(h[-1]) > rtol and len(h) == max_iter + 1:
            su, sv, h, mv = _log_restart(sub, p, max_iter, rtol, callback, su, sv, h, mv)
        lu[b, ir], lv[b, ic] = su, sv
        hists.append(h)
        mv_total += mv
    n_it = max(len(h) for h in hists) - 1
    padded = torch.stack([torch.stack([h[min(k, len(h) - 1)] for k in range(n_it + 1)]) for h in hists])
    history = padded.amax(0)
    residual = padded[:, -1].reshape(bshape)
    r, c = scales_from_logs(
        lu.reshape(live_r.shape), lv.reshape(live_c.shape), kern.log_s, p, live_r, live_c
    )
    return finish(
        x=x, r=r, c=c, live_r=live_r, live_c=live_c, iterations=n_it,
        converged=bool((residual <= rtol).all()), history=history, residual=residual,
        matvecs=mv_total, method="knight_ruiz", warn=warn, rtol=rtol,
        scale_dtype=work_dtype(x.dtype), out=K if kern.owned else None,  # K is dead: reuse it
    )
