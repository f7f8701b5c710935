"""The one result type every balancing kernel returns, and the helpers they share.

Conventions shared by all balancing kernels (see ``matbal.kernels.balancing``):

- **Scales.** ``matrix == row_scale[..., :, None] * x * col_scale[..., None, :]`` (in the working
  dtype; the matrix is then cast to the input dtype). Scales are kept in the working dtype (float32
  for bf16/fp16/float32 input, float64 for float64 input).
- **Dead rows/columns.** A row or column that is zero (or, where a kernel has a relative ``eps``,
  below ``eps`` times the matrix's max-abs entry) is *dead*: its scale is **0**, its part of the
  output is exactly zero, it is reported in ``zero_rows``/``zero_cols``, and it is left out of the
  targets and of the residual. The result is the balancing of the live block, padded with zeros.
- **Residual.** ``history[k]`` is the residual after ``k`` iterations (``history[0]``: the
  starting iterate), maximized over the batch. For the norm-equalizing kernels it is the max
  relative deviation of the live row/column p-norms from their *targets* (:func:`target_residual`;
  a matrix balanced only up to a scalar is not converged), computed from the marginals the
  iteration already has instead of re-reading the matrix. Where the iteration's own arithmetic
  cannot vouch for ``rtol`` (``rtol`` within a few thousand rounding units of the working dtype),
  a claim of convergence is measured again on the returned matrix (:func:`finish`,
  :func:`matrix_residual`), so ``converged=True`` describes the matrix returned; not with fixed
  ``steps`` (the fixed-cost mode), where ``converged`` is the iteration's own test.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass

import torch

from .._checks import ConvergenceWarning, check_positive

__all__ = ["BalanceResult"]


@dataclass(frozen=True)
class BalanceResult:
    """Outcome of a balancing kernel; the same fields whatever the method or flags.

    Attributes
    ----------
    matrix : Tensor ``(..., m, n)``
        The balanced matrix, in the input's dtype.
    row_scale : Tensor ``(..., m)``
        Left scale ``r`` (0 on dead rows), working dtype.
    col_scale : Tensor ``(..., n)``
        Right scale ``c`` (0 on dead columns); ``matrix == r[..., :, None] * x * c[..., None, :]``.
    iterations : int
        Iterations (sweeps / Newton steps) run: the maximum over the batch (one-shot methods: 1).
    converged : bool
        Every batch element reached ``rtol``; near the dtype's rounding floor (and without fixed
        ``steps``) this is checked on the returned matrix (:func:`finish`) (one-shot
        methods: always True: the operation is exact, which says nothing about how balanced the
        result is; see ``history``).
    history : Tensor ``(iterations + 1,)`` float64, CPU
        Residual per iteration including the initial one, maximized over the batch.
    residual : Tensor ``batch`` float64, CPU
        Final residual of each batch element.
    zero_rows : Tensor ``(..., m)`` bool
        Dead (zero or sub-eps) rows, masked with scale 0.
    zero_cols : Tensor ``(..., n)`` bool
        Dead columns, masked with scale 0.
    matvecs : int
        Passes over the matrix (products with it or its transpose, or equivalent max/logsumexp
        reductions): the cost measure to compare methods with different iteration costs.
    method : str
        Name of the kernel that produced the result.
    """

    matrix: torch.Tensor
    row_scale: torch.Tensor
    col_scale: torch.Tensor
    iterations: int
    converged: bool
    history: torch.Tensor
    residual: torch.Tensor
    zero_rows: torch.Tensor
    zero_cols: torch.Tensor
    matvecs: int
    method: str


# ----------------------------------------------------------------------------------------------
# option checks

def check_iter_opts(steps, max_iter, rtol) -> None:
    """Validate ``steps`` (None or int >= 1), ``max_iter`` (int >= 1), ``rtol`` (>= 0)."""
    if steps is not None:
        check_positive(steps, "steps", integer=True)
    check_positive(max_iter, "max_iter", integer=True)
    check_positive(rtol, "rtol", allow_zero=True)


def check_callback(callback) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")


def check_p(p) -> float:
    """p in {1, 2, inf}; returns it as a float."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p not in (1, 2, math.inf):
        raise ValueError(f"p must be one of [1, 2, inf], got {p!r}")
    return float(p)


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else iterates in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# ----------------------------------------------------------------------------------------------
# residuals

_SUBNORMAL = {
    dt: torch.finfo(dt).smallest_normal * torch.finfo(dt).eps
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
}


def rel_dev(v: torch.Tensor, live: torch.Tensor | None) -> torch.Tensor:
    """``max_i |v_i / mean(v) - 1|`` over ``live`` entries (0 when none): the ``row_dev`` of
    :func:`matbal.kernels.metrics.imbalance.imbalance` with its live set made explicit.
    ``live=None``: every entry is live (the same values, no masking)."""
    if live is None:  # few small operations: this runs once per sweep
        # v >= 0 (or NaN): clamping the mean at the smallest subnormal leaves every mean > 0 as
        # it is and turns 0 into a positive number, which gives the same 1 as dividing by 1
        safe = v.mean(-1).clamp_min(_SUBNORMAL[v.dtype])
        return (v / (safe if v.ndim == 1 else safe.unsqueeze(-1))).sub_(1).abs_().amax(-1)
    cnt = live.sum(-1).clamp_min(1).to(v.dtype)
    mean = torch.where(live, v, 0).sum(-1) / cnt
    safe = torch.where(mean > 0, mean, torch.ones_like(mean))
    return torch.where(live, (v / safe.unsqueeze(-1) - 1).abs(), 0).amax(-1)


def target_residual(s_r, a, live_r, s_c, b, live_c, p: float) -> torch.Tensor:
    """Max relative deviation of live row/column p-norms from their targets, from p-th power sums.

    ``s_r (..., m)``: row sums of ``|x|^p`` (maxima for p = inf), ``a``: their targets (a tensor
    broadcastable to ``s_r`` or a number), likewise ``s_c, b`` (``s_c=None``: columns exact by
    construction). Returns ``max(max_i |(s_r,i / a_i)^(1/p) - 1|, same for columns)`` over the live
    entries (``live_*=None``: all live). 0 exactly when every live norm equals its target.

    >>> target_residual(torch.tensor([4.0, 1.0]), 4.0, None, None, None, None, 2.0)
    tensor(0.5000)
    """

    def dev(s, t, live):
        q = s / t
        if p == 2:
            q = q.sqrt()
        elif p not in (1.0, math.inf):
            q = q ** (1.0 / p)
        d = q.sub_(1).abs_() if q is not s else (q - 1).abs_()
        if live is not None:
            d = torch.where(live, d, 0)
        return d.amax(-1)

    res = dev(s_r, a, live_r)
    if s_c is not None:
        res = torch.maximum(res, dev(s_c, b, live_c))
    return res


_BLOCK = 1 << 18  # elements per block of rows (1 MiB in float32): the block stays in cache


def _power_sums(y: torch.Tensor, p: float, dtype: torch.dtype | None = None):
    """Row and column sums of ``|y|^p`` (maxima for p = inf) in float64, taken block of rows by
    block of rows: no matrix-sized temporary (a fresh one costs more than the sums), each block's
    column sums accumulated in float64. ``dtype``: compute each block in it (float64: exact
    enough to decide any float32 case)."""
    shape = y.shape
    y3 = y.reshape(-1, shape[-2], shape[-1])
    step = max(1, _BLOCK // max(1, y3.shape[0] * shape[-1]))
    rows, cols = [], None
    for i in range(0, shape[-2], step):
        blk = y3[:, i:i + step]
        blk = blk.to(dtype).abs_() if dtype is not None and dtype != blk.dtype else blk.abs()
        if p == math.inf:
            rows.append(blk.amax(-1).double())
            c = blk.amax(-2).double()
            cols = c if cols is None else torch.maximum(cols, c)
            continue
        if p == 2:
            blk = blk.square_()
        rows.append(blk.sum(-1).double())
        c = blk.sum(-2).double()
        cols = c if cols is None else cols.add_(c)
    return torch.cat(rows, -1).reshape(shape[:-1]), cols.reshape(shape[:-2] + shape[-1:])


def matrix_residual(mat, a, live_r, b, live_c, p: float, rtol: float) -> torch.Tensor:
    """:func:`target_residual` of a formed matrix ``mat (..., m, n)`` (targets ``a, b`` as there).

    Two stages, so the common case costs one pass over ``mat`` and no new matrix: the p-th power
    sums are first taken in ``mat``'s dtype within blocks of rows (relative error ~ 1e-7 on a
    float32 row sum at n ~ 1e4; column sums accumulated in float64 across blocks; exact maxima
    for p = inf); where that residual is within ``max(rtol / 4, 2 eps)`` of ``rtol`` (too close
    to decide on) it is measured again with every block in float64."""
    f64 = lambda t: t.to(torch.float64) if torch.is_tensor(t) else t  # noqa: E731
    s_r, s_c = _power_sums(mat.detach(), p)
    res = target_residual(s_r.double(), f64(a), live_r, s_c.double(), f64(b), live_c, p)
    if mat.dtype != torch.float64 and p != math.inf:
        band = max(0.25 * rtol, 2 * torch.finfo(mat.dtype).eps)
        near = (res - rtol).abs() <= band
        if bool(near.any()):
            s_r, s_c = _power_sums(mat.detach(), p, torch.float64)
            exact = target_residual(s_r, f64(a), live_r, s_c, f64(b), live_c, p)
            res = torch.where(near, exact, res)
    return res


def needs_check(rtol: float, dtype: torch.dtype) -> bool:
    """Whether the iteration's residual (rounded in ``dtype``) cannot vouch for ``rtol`` by itself:
    ``rtol`` below ``1e4`` rounding units, where summation and scale rounding in ``dtype`` can
    move a residual across it. Then :func:`finish` re-measures the returned matrix in float64."""
    return rtol < 1e4 * torch.finfo(dtype).eps


def norm_residual(s_r, live_r, s_c, live_c, p: float) -> torch.Tensor:
    """Imbalance residual from row/column sums of ``|x|^p`` (maxima for p = inf).

    ``s_c=None`` means the columns are exact by construction (after a column update);
    ``live_r``/``live_c`` None: no dead rows/columns."""
    if p in (1.0, math.inf):
        root = lambda s: s  # noqa: E731
    elif live_r is None:  # sums of products of nonnegative factors: no clamp needed
        root = torch.sqrt if p == 2 else (lambda s: s ** (1.0 / p))  # sqrt == pow 0.5, bitwise
    else:
        root = lambda s: s.clamp_min(0) ** (1.0 / p)  # noqa: E731
    res = rel_dev(root(s_r), live_r)
    if s_c is not None:
        res = torch.maximum(res, rel_dev(root(s_c), live_c))
    return res


# ----------------------------------------------------------------------------------------------
# scales

def scales_from_logs(lu, lv, log_s, p, live_r, live_c, all_live=False):
    """Turn log Sinkhorn factors of ``K = (|x|/s)^p`` into scales ``r, c`` of ``x``.

    ``(r_i c_j |x_ij|)^p = u_i K_ij v_j`` gives ``r = u^(1/p) / s``, ``c = v^(1/p)`` up to the gauge
    ``(r t, c / t)``, fixed here so that ``mean(log r) == mean(log c)`` over the live part (keeps
    both factors in range). Dead rows/columns get scale 0. ``all_live``: the masks are all True
    (the same values without masking).
    """
    lr = lu / p - log_s.unsqueeze(-1)
    lc = lv / p
    if all_live:
        shift = 0.5 * (lc.sum(-1) / lc.shape[-1] - lr.sum(-1) / lr.shape[-1])
        return torch.exp(lr + shift.unsqueeze(-1)), torch.exp(lc - shift.unsqueeze(-1))
    lr = torch.where(live_r, lr, 0)
    lc = torch.where(live_c, lc, 0)
    nr = live_r.sum(-1).clamp_min(1)
    nc = live_c.sum(-1).clamp_min(1)
    shift = 0.5 * (lc.sum(-1) / nc - lr.sum(-1) / nr)
    r = torch.where(live_r, torch.exp(lr + shift.unsqueeze(-1)), 0)
    c = torch.where(live_c, torch.exp(lc - shift.unsqueeze(-1)), 0)
    return r, c


def apply_scales(
    x: torch.Tensor, r: torch.Tensor, c: torch.Tensor, out: torch.Tensor | None = None,
    cast: bool = True,
) -> torch.Tensor:
    """``r[..., :, None] * x * c[..., None, :]`` in the scales' dtype, cast to ``x.dtype``.

    Computed as ``(x * r) * c`` with the product ``r_i c_j`` never formed, so huge-but-reciprocal
    scales do not overflow. ``out``: a dead working buffer of ``x``'s shape in the scales' dtype
    to write into (must not alias ``x``); it saves allocating the result. ``cast=False``: return
    the product in the scales' dtype."""
    if torch.promote_types(x.dtype, r.dtype) != r.dtype:
        xs = x.to(r.dtype)
    else:
        xs = x  # torch.mul promotes (bf16 -> float32) exactly like x.to(r.dtype)
    if (
        out is not None
        and not (torch.is_grad_enabled() and (out.requires_grad or xs.requires_grad
                                              or r.requires_grad or c.requires_grad))
        and out.dtype == r.dtype
        and out.shape == x.shape
        and r.shape == x.shape[:-1]
        and c.shape == x.shape[:-2] + x.shape[-1:]
        and out.is_contiguous()
        and out.device == x.device
    ):
        res = torch.mul(xs, r.unsqueeze(-1), out=out)
    else:
        res = xs * r.unsqueeze(-1)
    res.mul_(c.unsqueeze(-2))
    return res.to(x.dtype) if cast else res


def log_max_abs(xa: torch.Tensor) -> torch.Tensor:
    """Per-matrix max of ``|x|`` (``xa`` already nonnegative), 1 where the matrix is zero."""
    s = xa.amax(dim=(-2, -1))
    return torch.where(s > 0, s, torch.ones_like(s))


# ----------------------------------------------------------------------------------------------
# finishing

def finish(
    *,
    x,
    r,
    c,
    live_r,
    live_c,
    iterations,
    converged,
    history,
    residual,
    matvecs,
    method,
    warn,
    rtol=None,
    hint="",
    scale_dtype=None,
    out=None,
    verify=None,
) -> BalanceResult:
    """Assemble the result (``out``: an optional dead buffer for the matrix, see
    :func:`apply_scales`).

    ``verify``: ``(matrix) -> batch residual`` (e.g. :func:`matrix_residual`); when given and the
    iteration claims convergence, the final residual is re-measured on the formed matrix (before
    the cast to a half-precision input dtype: that rounding is the caller's choice of dtype,
    2^-8 relative per bf16 entry) and it replaces ``residual``, ``history[-1]`` and
    ``converged`` (then ``residual <= rtol`` for every element), so a claim of convergence
    describes the matrix returned. (An unconverged result keeps the iteration's residual.)"""
    work = apply_scales(x, r, c, out=out, cast=False)
    hist = torch.as_tensor(history, dtype=torch.float64).detach().to("cpu").reshape(-1)
    res = residual.detach().to(device="cpu", dtype=torch.float64)
    floor_hint = ""
    if verify is not None and converged:
        measured = verify(work).detach().to(device="cpu", dtype=torch.float64).reshape(res.shape)
        hist = hist.clone()
        hist[-1] = measured.amax() if measured.numel() else 0.0
        was = converged
        res, converged = measured, bool((measured <= rtol).all())
        if was and not converged:
            floor_hint = (
                f"; the iteration met rtol but the returned matrix, measured in float64, does "
                f"not: rtol is at the rounding floor of {r.dtype} (raise rtol, or use float64)"
            )
    matrix = work.to(x.dtype)
    if scale_dtype is not None:
        r, c = r.to(scale_dtype), c.to(scale_dtype)
    hint = floor_hint or hint
    if warn and not converged:
        warnings.warn(
            f"{method} did not converge: residual {float(hist[-1]):.3g} > rtol {rtol:g} after "
            f"{iterations} iterations (raise max_iter or rtol){hint}",
            ConvergenceWarning,
            stacklevel=_user_stacklevel(),
        )
    return BalanceResult(
        matrix=matrix,
        row_scale=r,
        col_scale=c,
        iterations=int(iterations),
        converged=bool(converged),
        history=hist,
        residual=res,
        zero_rows=~live_r,
        zero_cols=~live_c,
        matvecs=int(matvecs),
        method=method,
    )


_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # matbal/kernels


def _user_stacklevel() -> int:
    """stacklevel that points a warning at the first caller outside matbal.kernels."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PKG_DIR):
        frame, level = frame.f_back, level + 1
    return level


def stall_hint(history, dtype=None) -> str:
    """Extra warning text when the last residuals have stopped shrinking linearly."""
    h = [float(v) for v in (history.detach() if torch.is_tensor(history) else history)[-6:]]
    if len(h) >= 6 and h[0] > 0 and h[-1] / h[0] > 0.95 ** 5:
        floor = f" (about {torch.finfo(dtype).eps:.0e} relative)" if dtype is not None else ""
        return (
            "; the residual has stalled: either rtol is below what rounding allows"
            f"{floor}, or the zero pattern lacks total support (no exact scaling exists: "
            "entries off every perfect matching decay to 0 while the scales grow, sublinearly)"
        )
    return ""
