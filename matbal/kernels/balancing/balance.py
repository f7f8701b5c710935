"""One front door over every balancing kernel, always returning a :class:`BalanceResult`."""
from __future__ import annotations

import torch

from .._checks import as_matrix, check_choice, check_positive, numpy_io
from ..metrics.imbalance import imbalance
from ._result import BalanceResult, finish, work_dtype
from .aol import _aol_scales, aol
from .knight_ruiz import knight_ruiz
from .normalize import _normalize
from .racs import racs
from .rc import _check_rc_opts, _rc_scales
from .ruiz import ruiz
from .sinkhorn import sinkhorn_knopp

__all__ = ["balance", "METHODS"]

METHODS = ("rows", "cols", "rc", "racs", "sinkhorn", "ruiz", "knight_ruiz", "aol")


def _one_shot(x, r, c, live_r, live_c, method):
    """Wrap a one-shot scaling: history = [imbalance(x), imbalance(result)] (p = 2)."""
    out_res = imbalance(r.unsqueeze(-1) * x.to(r.dtype) * c.unsqueeze(-2)).residual
    hist = torch.stack([imbalance(x).residual.amax(), out_res.amax()]).to(torch.float64)
    return finish(
        x=x, r=r, c=c, live_r=live_r, live_c=live_c, iterations=1, converged=True,
        history=hist, residual=out_res, matvecs=2, method=method, warn=False,
    )


def _reject(method, opts, allowed):
    extra = sorted(set(opts) - set(allowed))
    if extra:
        raise TypeError(f"balance(method={method!r}) got unexpected options {extra}; "
                        f"it accepts {sorted(allowed)}")


@numpy_io
def balance(x, *, method: str = "racs", **opts) -> BalanceResult:
    r"""Balance ``x`` with any method; always a :class:`BalanceResult` (same fields for all).

    =========== ======================================= =========================================
    method      operation                               options
    =========== ======================================= =========================================
    rows        :func:`normalize_rows` R(X)             eps
    cols        :func:`normalize_cols` C(X)             eps
    rc          :func:`rc_scale` (MuonEq one-shot RC)   exponent, eps, clip
    racs        :func:`racs` (p-norm Sinkhorn, SinkGD)  p, steps, max_iter, rtol, eps, log_domain…
    sinkhorn    :func:`sinkhorn_knopp` on ``x``         row_sums, col_sums, steps, max_iter, rtol…
    ruiz        :func:`ruiz` (inf-norm, simultaneous)   steps, max_iter, rtol, eps, callback, warn
    knight_ruiz :func:`knight_ruiz` (Newton–CG)         p, max_iter, rtol, eps, callback, warn
    aol         :func:`aol` (columns, norm <= 1)        eps, side
    =========== ======================================= =========================================

    One-shot methods (rows, cols, rc, aol) report ``iterations=1``, ``converged=True`` and
    ``history = [imbalance(x).residual, imbalance(result).residual]`` (p = 2).

    Examples
    --------
    >>> import torch
    >>> from matbal.kernels.balancing import balance
    >>> x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    >>> res = balance(x, method="rows")
    >>> res.row_scale, res.zero_rows
    (tensor([0.2000, 0.0000]), tensor([False,  True]))
    >>> balance(x, method="nope")
    Traceback (most recent call last):
    ...
    ValueError: method must be one of ['aol', 'cols', 'knight_ruiz', 'racs', 'rc', 'rows', 'ruiz', 'sinkhorn'], got 'nope'
    """
    check_choice(method, "method", METHODS)
    if method == "racs":
        return racs(x, **opts)
    if method == "sinkhorn":
        return sinkhorn_knopp(x, **opts)
    if method == "ruiz":
        return ruiz(x, **opts)
    if method == "knight_ruiz":
        return knight_ruiz(x, **opts)
    x = as_matrix(x, "x")
    dt = work_dtype(x.dtype)
    m, n = x.shape[-2:]
    if method in ("rows", "cols"):
        _reject(method, opts, ("eps",))
        eps = opts.get("eps", 1e-8)
        check_positive(eps, "eps", allow_zero=True)
        dim = -1 if method == "rows" else -2
        _, scale, live = _normalize(x, eps, dim)
        other_live = (x != 0).any(dim=-1 if method == "cols" else -2)
        other = other_live.to(dt)
        if method == "rows":
            return _one_shot(x, scale, other, live, other_live, method)
        return _one_shot(x, other, scale, other_live, live, method)
    if method == "rc":
        _reject(method, opts, ("exponent", "eps", "clip"))
        exponent, eps, clip = opts.get("exponent", -0.5), opts.get("eps", 1e-8), opts.get("clip")
        _check_rc_opts(exponent, eps, clip)
        r, c, live_r, live_c = _rc_scales(x, exponent, eps, clip)
        return _one_shot(x, r, c, live_r, live_c, method)
    # aol
    _reject(method, opts, ("eps", "side"))
    eps, side = opts.get("eps", 1e-7), opts.get("side", "cols")
    aol(x[..., :1, :1], eps=eps, side=side)  # validates the options
    _, d, live, _ = _aol_scales(x, eps, side)
    if side == "cols":
        live_r = (x != 0).any(-1)
        return _one_shot(x, live_r.to(dt), d, live_r, live, method)
    live_c = (x != 0).any(-2)
    return _one_shot(x, d, live_c.to(dt), live, live_c, method)
