"""Shared alternating-scaling engine (Sinkhorn–Knopp family) used by ``racs`` and ``sinkhorn_knopp``.

It scales a fixed nonnegative kernel ``K (..., m, n)`` (built once from the input and pre-scaled
so that its largest entry is 1) by two vectors, ``P = diag(u) K diag(v)``, alternating

    u <- a / row(K, v)        (rows of P hit their targets a)
    v <- b / col(K, u)        (columns of P hit their targets b)

in one of four *domains*:

========== ================================ ===================================================
domain     row(K, v)                        used for
========== ================================ ===================================================
sum        ``K @ v``                        racs p = 1, 2; sinkhorn_knopp (the classic SK sweep)
max        ``max_j K_ij v_j``               racs p = inf (max-plus analogue; exact in 1 sweep)
log-sum    ``logsumexp_j(L_ij + g_j)``      extreme dynamic range (``L = log K``, ``f = log u``)
log-max    ``max_j(L_ij + g_j)``            p = inf with extreme dynamic range
========== ================================ ===================================================

Per sweep the matrix is read exactly twice (one product with ``K``, one with ``Kᵀ``; no new
matrix is formed in the plain domains), and the row sums needed for the residual come for free:
``row(K, v)`` computed at the end of sweep k gives the rows of iterate k (columns are exact after a
column update) and is reused as the row update of sweep k+1.

Batches: every batch element is frozen (its ``u, v`` stop changing) from the sweep at which it
meets ``rtol``, so a batched call returns what a loop over its elements returns: exactly when the
batch shares the elements' domain and pre-scale decision, to rounding otherwise (one element that
needs the pre-scaled or log domain takes the batch there). The residual callback measures the
iterate against its targets, so an input balanced only up to a scalar is iterated, not returned.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .._matvec import matvec, vecmat

__all__ = ["Kernel", "fixed_sweeps", "prepare_kernel", "run"]


@dataclass
class Kernel:
    """A prepared kernel: ``K`` (plain) or ``L = log K`` (log), masks, targets, pre-scale."""

    k: torch.Tensor          # K or L, (..., m, n), working dtype
    log: bool                # log domain?
    kind: str                # "sum" or "max"
    live_r: torch.Tensor     # (..., m) bool
    live_c: torch.Tensor     # (..., n) bool
    log_s: torch.Tensor      # (...) log of the pre-scale s (K = (|x|/s)^p), float64
    t0: torch.Tensor         # row(K, v0) for the live start u0 = v0 = 1
    c0: torch.Tensor         # col(K, u0)
    matvecs: int             # passes spent on preparation
    all_live: bool = False   # no dead row or column: masks can be skipped
    owned: bool = True       # ``k`` is private storage, free to overwrite once the run is over
    buf: torch.Tensor | None = None  # scratch for the max/log domains' per-pass products


# ----------------------------------------------------------------------------------------------
# domain operations

def _scratch(kern: Kernel) -> torch.Tensor | None:
    """A K-shaped buffer for the products the max/log domains form per pass (allocated once per
    run instead of once per pass); None when autograd is recording (out= is not differentiable)."""
    if torch.is_grad_enabled() and kern.k.requires_grad:
        return None
    if kern.buf is None:
        kern.buf = torch.empty_like(kern.k, memory_format=torch.contiguous_format)
    return kern.buf


def _row(kern: Kernel, v: torch.Tensor) -> torch.Tensor:
    K = kern.k
    if kern.log:
        buf = _scratch(kern)
        z = K + v.unsqueeze(-2) if buf is None else torch.add(K, v.unsqueeze(-2), out=buf)
        return torch.logsumexp(z, -1) if kern.kind == "sum" else z.amax(-1)
    if kern.kind == "sum":
        return matvec(K, v)
    buf = _scratch(kern)
    z = K * v.unsqueeze(-2) if buf is None else torch.mul(K, v.unsqueeze(-2), out=buf)
    return z.amax(-1)


def _col(kern: Kernel, u: torch.Tensor) -> torch.Tensor:
    K = kern.k
    if kern.log:
        buf = _scratch(kern)
        z = K + u.unsqueeze(-1) if buf is None else torch.add(K, u.unsqueeze(-1), out=buf)
        return torch.logsumexp(z, -2) if kern.kind == "sum" else z.amax(-2)
    if kern.kind == "sum":
        return vecmat(u, K)
    buf = _scratch(kern)
    z = K * u.unsqueeze(-1) if buf is None else torch.mul(K, u.unsqueeze(-1), out=buf)
    return z.amax(-2)


def _update(
    kern: Kernel, target: torch.Tensor, t: torch.Tensor, live: torch.Tensor | None
) -> torch.Tensor:
    """New factor: ``target / t`` (plain) or ``log target - t`` (log); dead entries 0 / -inf.
    ``live=None``: no dead entries, and in the log domain ``target`` is already ``log target``."""
    if live is None:
        return target - t if kern.log else target / t
    if kern.log:
        return torch.where(live, torch.log(target) - t, -math.inf)
    return torch.where(live, target / torch.where(live, t, 1), 0)


def _sums(kern: Kernel, u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Row (or column) sums of P from the factor and the product: ``u * t`` or ``exp(f + t)``."""
    if kern.log:
        return torch.exp(u + t)
    return u * t


def _start(kern: Kernel, live: torch.Tensor) -> torch.Tensor:
    dt = kern.k.dtype
    if kern.log:
        return torch.where(live, torch.zeros((), dtype=dt, device=live.device), -math.inf)
    return live.to(dt)


def spare(kern: Kernel) -> torch.Tensor | None:
    """A dead K-shaped buffer for the result once the run is over: ``K`` itself when it is
    private storage, else the scratch buffer if one was made (``apply_scales`` checks dtype)."""
    return kern.k if kern.owned else kern.buf


# ----------------------------------------------------------------------------------------------
# preparation

def max_abs(x: torch.Tensor, dtype: torch.dtype, name: str = "x") -> torch.Tensor:
    """Per-matrix max-abs entry in ``dtype`` (one pass, no |x| copy); refuses NaN/Inf, naming
    ``name`` (NaN propagates through min/max, so this doubles as the finiteness check).
    ``amax``/``amin`` over both dims: bit-identical to ``aminmax`` and up to 6× faster on CPU
    (``torch.aminmax`` over a reshaped last dim takes a slow reduction path; BENCHMARKS.md,
    "Applied kernel patches")."""
    hi, lo = x.amax(dim=(-2, -1)), x.amin(dim=(-2, -1))
    s = torch.maximum(hi.to(dtype), -lo.to(dtype))
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return s


def _plain_unscaled(x: torch.Tensor, pk: float, kind: str, dtype: torch.dtype, nonneg: bool):
    """``K = |x|^p`` (no pre-scale) and its row/column sums (maxima for ``kind="max"``).

    Returns ``(K, owned, t0, c0)``; ``owned``: ``K`` is a fresh tensor the caller may overwrite
    once it is dead (never ``x``'s storage). Whole-matrix operations: forming ``K`` block of rows
    by block of rows with both sums taken while the block is in cache (one pass over memory
    instead of three) was measured equal or slower, 0.86–1.01× at 512×2048 … 4096×8192 on 1 and
    2 threads (BENCHMARKS.md §2, session 5), and was removed."""
    K, owned = _unscaled_kernel(x, pk, dtype, nonneg)
    if kind == "sum":
        t0, c0 = _row_sums(K), _col_sums(K)
    else:
        t0, c0 = K.amax(-1), K.amax(-2)
    return K, owned, t0, c0


def _unscaled_kernel(x: torch.Tensor, pk: float, dtype: torch.dtype, nonneg: bool):
    """``(K, owned)``: ``K = |x|^p`` in ``dtype`` (p = 1 or 2; ``x`` is never modified)."""
    xw = x.to(dtype)
    copied = xw is not x and xw.data_ptr() != x.data_ptr()
    if pk == 2:
        K = xw.square_() if copied else xw * xw
    elif nonneg:
        K = xw
    else:
        K = xw.abs_() if copied else xw.abs()
    return K, K.data_ptr() != x.data_ptr()


def _row_sums(K: torch.Tensor) -> torch.Tensor:
    """``K 1`` as the sweeps compute it (a mat-vec with ones: the general path's ``t0``)."""
    return matvec(K, torch.ones(K.shape[:-2] + (K.shape[-1],), dtype=K.dtype, device=K.device))


def _col_sums(K: torch.Tensor) -> torch.Tensor:
    """``1ᵀ K`` as a vector-matrix product with ones (the general path's ``c0``)."""
    return vecmat(torch.ones(K.shape[:-1], dtype=K.dtype, device=K.device), K)


def unscaled_in_range(hmax: float, hmin: float, shape, kind: str, dtype: torch.dtype) -> bool:
    """Whether the unscaled kernel ``K = |x|^p`` is far from ``dtype``'s limits, read off its row
    sums ``t0`` (maxima for ``kind="max"``): ``hmax``/``hmin`` are the largest/smallest over the
    batch of the per-matrix max row sum, so ``hmin / (2n)`` bounds every ``max K`` from below."""
    fi = torch.finfo(dtype)
    lo_k = hmin / (2.0 * shape[-1]) if kind == "sum" else hmin
    return hmax * max(shape[-2], shape[-1]) < fi.max * 0.5e-4 and lo_k > fi.tiny * 2e20


@functools.lru_cache(maxsize=None)
def _floor(dtype: torch.dtype) -> float:
    return float(torch.tensor(math.sqrt(torch.finfo(dtype).tiny), dtype=dtype))


def below_floor(v: float, dtype: torch.dtype) -> bool:
    """Whether a live K row/column sum ``v`` is below ``sqrt(tiny)`` of ``dtype`` (compared as torch
    would, in ``dtype``): the Sinkhorn factors ~ 1/sum could overflow, the log domain is needed."""
    return v < _floor(dtype)


def prepare_kernel(
    x: torch.Tensor,
    *,
    p: float,
    eps: float,
    log_domain: bool | None,
    dtype: torch.dtype,
    name: str = "x",
    nonneg: bool = False,
) -> Kernel:
    """Build ``K = (|x|/s)^p`` (p = inf: ``K = |x|/s``, max domain), choose the domain, and find
    the dead rows/columns: p-norm <= eps * max|x| (eps = 0: exact zeros), iterated until stable
    (removing a row can kill a column when eps > 0).

    ``s = 1`` and ``K = |x|^p`` is formed in one pass (``x * x`` for p = 2) when ``max|x|^p`` is
    far from the dtype's limits (the scale factors absorb the magnitude), else ``s`` is the
    per-matrix max-abs entry. ``log_domain=None`` picks the log domain only when the plain one
    would lose information: a nonzero row/column of x whose K-sum underflows to 0, or a live
    row/column sum of K below ``sqrt(tiny)`` (the Sinkhorn factors ~ 1/sum could then overflow).
    The log domain always computes in float64 (see below). ``nonneg=True`` promises ``x >= 0``
    (then ``K`` may share ``x``'s storage for p = 1).

    Fast path (plain domain, eps = 0): ``K`` and its row/column sums are formed first, without a
    separate max-abs pass; the sums bound ``max K`` (``max_i t0_i / n <= max K <= max_i t0_i``),
    which settles "no pre-scale" for all but near-limit inputs, and they are NaN/Inf exactly
    when ``x`` has NaN/Inf. Anything not settled so (NaN/Inf, an all-zero matrix, magnitudes
    near the limits) takes the general path below, which decides and raises as before.
    """
    kind = "max" if p == math.inf else "sum"
    pk = 1.0 if p == math.inf else p
    fi = torch.finfo(dtype)
    big = max(x.shape[-2], x.shape[-1])
    use_log = bool(log_domain)
    mv = 0
    kern = None
    owned = True
    known_live = False  # the fast path saw every row and column sum > 0 (no masks needed)
    if not use_log and eps == 0:
        K, owned, t0, c0 = _plain_unscaled(x, pk, kind, dtype, nonneg)
        if t0.numel():
            # one host read decides range, liveness and (below) the domain: the largest and
            # smallest per-matrix max row sum, the smallest row sum and column sum (NaN fails
            # every comparison and sends NaN/Inf input to the general path, which raises)
            hi = t0.amax(-1)
            stats = torch.stack([hi.amax(), hi.amin(), t0.amin(), c0.amin()])
            hmax, hmin, tmin, cmin = stats.double().tolist()
            if unscaled_in_range(hmax, hmin, x.shape, kind, dtype):
                log_s = torch.zeros(x.shape[:-2], dtype=torch.float64, device=x.device)
                kern = Kernel(K, False, kind, None, None, log_s, None, None, 0)  # type: ignore
                thr = 0.0
                live_r, live_c = t0 > thr, c0 > thr
                known_live = tmin > 0 and cmin > 0
                mv += 2
        del K
    if kern is None and not use_log:
        s = max_abs(x, dtype, name)
        s = torch.where(s > 0, s, torch.ones_like(s))
        sp = s.double() ** pk
        prescale = not bool(((sp * big < fi.max * 1e-4) & (sp > fi.tiny * 1e20)).all())
        thr_plain = (eps ** pk) if kind == "sum" else eps
        # relative dead threshold: p-norm <= eps * max|x|  <=>  K-sum <= (eps * s)^p (K unscaled)
        scale_p = 1.0 if prescale else (s ** pk)[..., None]
        thr = thr_plain * scale_p
        if not prescale:
            s = torch.ones_like(s)
        log_s = torch.log(s.double())  # float64: a float32 log(1e30) is off by ~4e-6 relative
        xw = x.to(dtype)
        copied = xw is not x and xw.data_ptr() != x.data_ptr()
        owned = True
        if prescale:
            xw = xw / s[..., None, None]
            K = xw.square_() if pk == 2 else xw.abs_()
        elif pk == 2:
            K = xw.square_() if copied else xw * xw  # x is never modified
        else:
            K = xw.abs_() if copied else xw.abs()
        kern = Kernel(K, False, kind, None, None, log_s, None, None, 0)  # type: ignore[arg-type]
        ones_r = torch.ones(x.shape[:-1], dtype=dtype, device=x.device)
        ones_c = torch.ones(x.shape[:-2] + x.shape[-1:], dtype=dtype, device=x.device)
        t0, c0 = _row(kern, ones_c), _col(kern, ones_r)
        mv += 2
        live_r, live_c = t0 > thr, c0 > thr
    if not use_log and log_domain is None:
        floor = math.sqrt(fi.tiny)
        if known_live:  # the smallest sums were read above; compared as torch would, in dtype
            use_log = below_floor(min(tmin, cmin), dtype)
        else:
            lo = torch.minimum(
                torch.where(live_r, t0, fi.max).amin(), torch.where(live_c, c0, fi.max).amin()
            )
            use_log = bool(lo < floor)
        if not use_log and not known_live and not (bool(live_r.all()) and bool(live_c.all())):
            # a K-row that is 0 while the x-row is not: underflow, not a zero row
            nz_r = (x != 0).any(-1)
            nz_c = (x != 0).any(-2)
            if bool((nz_r & (t0 == 0)).any()) or bool((nz_c & (c0 == 0)).any()):
                use_log = True
    if use_log:
        # float64 even for float32 input: in float32, |log K| up to ~300 leaves only ~1e-5
        # absolute accuracy in f + log(K g), a residual floor far above the usual rtol
        dtype = torch.float64
        s = max_abs(x, dtype, name)
        s = torch.where(s > 0, s, torch.ones_like(s))
        log_s = torch.log(s)
        L = torch.log(x.to(dtype).abs())
        L = (L - log_s[..., None, None]).mul_(pk)  # log 0 = -inf marks the zeros
        kern = Kernel(L, True, kind, None, None, log_s, None, None, 0)  # type: ignore[arg-type]
        owned = True
        zr = torch.zeros(x.shape[:-1], dtype=dtype, device=x.device)
        zc = torch.zeros(x.shape[:-2] + x.shape[-1:], dtype=dtype, device=x.device)
        t0, c0 = _row(kern, zc), _col(kern, zr)
        mv += 2
        thr = pk * math.log(eps) if eps > 0 else -math.inf
        live_r, live_c = t0 > thr, c0 > thr
    assert kern is not None
    kern.owned = owned
    kern.live_r, kern.live_c = live_r, live_c
    all_live = (known_live and not use_log) or (bool(live_r.all()) and bool(live_c.all()))
    if not all_live:
        # restrict to the live block; with eps > 0 repeat until the masks are stable
        for _ in range(x.shape[-2] + x.shape[-1]):
            t0 = _row(kern, _start(kern, live_c))
            new_r = live_r & (t0 > thr)
            c0 = _col(kern, _start(kern, new_r))
            new_c = live_c & (c0 > thr)
            mv += 2
            stable = bool((new_r == live_r).all()) and bool((new_c == live_c).all())
            live_r, live_c = new_r, new_c
            if stable or eps == 0:
                break
        kern.live_r, kern.live_c = live_r, live_c
        t0 = _row(kern, _start(kern, live_c))
        c0 = _col(kern, _start(kern, live_r))
        mv += 2
        all_live = bool(live_r.all()) and bool(live_c.all())
    kern.all_live = all_live
    kern.t0, kern.c0, kern.matvecs = t0, c0, mv
    return kern


# ----------------------------------------------------------------------------------------------
# the iteration

@dataclass
class RunOut:
    lu: torch.Tensor        # log u  (..., m), -inf on dead rows; float64
    lv: torch.Tensor        # log v  (..., n)
    iterations: int
    converged: bool
    history: torch.Tensor   # (iterations + 1,) float64 cpu
    residual: torch.Tensor  # batch
    matvecs: int
    finite: bool


def run(
    kern: Kernel,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    residual: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    steps: int | None,
    max_iter: int,
    rtol: float,
    callback=None,
) -> RunOut:
    """Alternate row/column updates toward targets ``a (..., m)``, ``b (..., n)``.

    ``residual(row_sums, col_sums_or_None)`` maps marginals of ``P`` to a batch-shaped residual.
    ``steps`` given: exactly that many sweeps, no freezing. Otherwise sweep until every element's
    residual <= rtol (each element frozen once it gets there) or ``max_iter``.

    Without dead rows/columns the masks are skipped, and a single matrix (batch of one) skips
    the freezing ``where``s (the loop simply stops); a batch skips them while every element is
    still active (always with fixed ``steps``): the same values bit for bit, fewer small
    operations (0.85× the time of a ``racs`` call on 4×64×256, 0.94× on 8×128×512; BENCHMARKS.md
    §2, session 5).
    """
    live_r, live_c = kern.live_r, kern.live_c
    if kern.all_live:
        lr_, lc_ = None, None
        if kern.log:
            a, b = torch.log(a), torch.log(b)  # hoisted out of the loop
    else:
        lr_, lc_ = live_r, live_c
    u = _start(kern, live_r)
    v = _start(kern, live_c)
    t = kern.t0
    res = residual(_sums(kern, u, t), _sums(kern, v, kern.c0))
    mv = kern.matvecs
    fixed = steps is not None
    nmax = steps if fixed else max_iter
    k = 0
    if res.numel() == 1:
        hist = [res if res.ndim == 0 else res.reshape(())]
        active = fixed or bool(res > rtol)
        while k < nmax and active:
            k += 1
            u = _update(kern, a, t, lr_)
            v = _update(kern, b, _col(kern, u), lc_)
            t = _row(kern, v)
            mv += 2
            res = residual(_sums(kern, u, t), None)
            hist.append(res if res.ndim == 0 else res.reshape(()))
            if callback is not None and callback(k, res):
                break
            if not fixed:
                active = bool(res > rtol)
        n_it = k
    else:
        # Elements freeze one by one (rtol mode); while every element is still active (always
        # with fixed steps) the freezing ``where``s are identities and are skipped. An element
        # active at the last sweep was active at every sweep (the active set only shrinks), so
        # the largest per-element count is the number of sweeps run.
        hist = [res.amax()]
        active = torch.ones_like(res, dtype=torch.bool) if fixed else res > rtol
        n_res = res.numel()
        n_active = n_res if fixed else int(active.sum())
        while k < nmax:
            if n_active == 0:
                break
            k += 1
            if n_active == n_res:
                u = _update(kern, a, t, lr_)
                v = _update(kern, b, _col(kern, u), lc_)
                t = _row(kern, v)
                res = residual(_sums(kern, u, t), None)
            else:
                act = active.unsqueeze(-1)
                u = torch.where(act, _update(kern, a, t, lr_), u)
                v = torch.where(act, _update(kern, b, _col(kern, u), lc_), v)
                t = _row(kern, v)
                res = torch.where(active, residual(_sums(kern, u, t), None), res)
            mv += 2
            hist.append(res.amax())
            if callback is not None and callback(k, res):
                break
            if not fixed:
                active = active & (res > rtol)
                n_active = int(active.sum())
        n_it = k if n_res else 0
    history = torch.stack(hist[: n_it + 1]).to(device="cpu", dtype=torch.float64)
    if kern.log:
        lu, lv = u, v
    else:  # in float64: a float32 log (and the caller's exp) would lose |log u| ulps
        lu, lv = torch.log(u.double()), torch.log(v.double())
    if kern.all_live:
        finite = bool(torch.isfinite(lu).all()) and bool(torch.isfinite(lv).all())
    else:
        finite = bool(torch.isfinite(torch.where(live_r, lu, 0)).all()) and bool(
            torch.isfinite(torch.where(live_c, lv, 0)).all()
        )
    finite = finite and bool(torch.isfinite(res).all())
    converged = bool((res <= rtol).all())
    return RunOut(lu, lv, n_it, converged, history, res, mv, finite)


# ----------------------------------------------------------------------------------------------
# the lean fixed-cost path

def fixed_sweeps(x: torch.Tensor, p: float, steps: int, dtype: torch.dtype):
    """``steps`` plain-domain sweeps toward targets ``n`` (rows) and ``m`` (columns) on the
    unscaled ``K = |x|^p`` (p = 1 or 2) with none of :func:`run`'s per-sweep work: no residual,
    no masks, no history, no host read inside the loop. The sweeps are :func:`run`'s (the same
    operations in the same order, so ``u, v`` are bit-identical to the general path's factors),
    and a single host read at the end checks every assumption the general path would have
    decided before it: the range of ``K`` (no pre-scale), no dead row or column, no row/column
    sum below the log-domain floor, finite positive factors and finite row sums ``K v``.

    Fewer small operations than the general path's set-up (this is the fixed cost of a small
    call): no column-sum pass and no final ``K v`` — both are bounded from quantities the sweeps
    compute anyway, conservatively (an uncertain bound hands the call to the general path).
    With ``s = Kᵀu₁`` the first column product and ``u₁ = n/t₀ ≤ n/min t₀``, every column sum
    is ``c₀ⱼ ≥ sⱼ · min t₀ / n``; the last row sums are ``K v ≤ max t₀ · max v``. Each bound is
    used with a factor-2/4 margin for rounding (float32: relative error ≤ 1e-4 for these sums).

    Returns ``(K, u, v)`` (``K``: private storage, dead after the call) or None when any check
    fails: the caller then runs the general path, which decides, raises on NaN/Inf, and masks
    dead rows/columns (an all-zero matrix returns zeros there).
    """
    K, _ = _unscaled_kernel(x, p, dtype, False)
    t0 = _row_sums(K)
    if not t0.numel():
        return None
    # targets as full tensors made once: ``torch.div(full, t)`` is :func:`run`'s ``a / t`` bit
    # for bit and 2.5× cheaper per call than dividing a Python number (no scalar wrapping)
    n, m = float(x.shape[-1]), float(x.shape[-2])
    tn = torch.full(t0.shape, n, dtype=dtype, device=x.device)
    tm = torch.full(x.shape[:-2] + (x.shape[-1],), m, dtype=dtype, device=x.device)
    if K.ndim == 2:  # :func:`matvec` / :func:`vecmat`'s own calls, bound once (same ops)
        Kt = K.t()
        row, col = (lambda w: torch.mv(K, w)), (lambda w: torch.mv(Kt, w))
    else:
        row, col = (lambda w: matvec(K, w)), (lambda w: vecmat(w, K))
    t = t0
    s1 = None
    for k in range(steps):
        u = torch.div(tn, t)
        s = col(u)
        if s1 is None:
            s1 = s
        v = torch.div(tm, s)
        if k + 1 < steps:  # the last ``K v`` only feeds the residual, which is not needed here
            t = row(v)
    # few small operations (this is the fixed cost): min and max in one pass where a vector
    # allows it; NaN propagates through both and fails every comparison below
    if t0.ndim == 1:
        tmin, hi = torch.aminmax(t0)
        hmax = hmin = hi
    else:
        hi = t0.amax(-1)
        hmax, hmin, tmin = hi.amax(), hi.amin(), t0.amin()
    uv_min, uv_max = torch.aminmax(torch.cat((u, v), -1))
    hmax, hmin, tmin, smin, uv_min, uv_max = torch.stack(
        [hmax, hmin, tmin, s1.amin(), uv_min, uv_max]).tolist()
    big = torch.finfo(dtype).max
    cmin = 0.5 * smin * tmin / n  # ≤ every column sum c₀ⱼ (docstring)
    ok = (unscaled_in_range(hmax, hmin, x.shape, "sum", dtype) and tmin > 0 and cmin > 0
          and not below_floor(min(tmin, cmin), dtype)
          and uv_min > 0 and uv_max < math.inf
          and hmax * uv_max < 0.25 * big)  # 0 < u, v < inf and K v < inf
    return (K, u, v) if ok else None
