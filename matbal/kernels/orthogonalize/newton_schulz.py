"""Newton–Schulz orthogonalization: an odd matrix polynomial that pushes singular values to 1.

Math
----
Work on the wide side (``m > n`` → iterate on ``Xᵀ`` and transpose back). With
``X₀ = X / (s·ν(X) + eps)`` (``s`` the schedule's safety factor, ``ν`` the chosen norm) each step is
``A = XXᵀ``, ``X ← aX + (bA + cA²)X`` (quintic) or ``X ← aX + bAX`` (cubic); longer tuples use
Horner in ``A``. Because every step is an odd polynomial in ``X``,
``NS_k(X) = U · diag(P_k(σ_i/(s·ν + eps))) · Vᵀ`` exactly (``P_k`` the composed scalar
polynomial), which :func:`~matbal.kernels.orthogonalize.analysis.predict_singular_values` evaluates.

Normalizations (all are upper bounds of ``σ₁``, so ``X₀`` has spectral norm ≤ 1/s):

- ``"frobenius"`` (default): ``ν = ‖X‖_F = ‖σ‖₂``.
- ``"schatten8"``: ``ν = ‖σ‖₈ = ‖A²‖_F^{1/4}`` (MuonEq "spc"). ``A`` and ``A²`` of the
  *unnormalized* (Frobenius-prescaled, for overflow safety) matrix are computed once, the scale
  ``t = 1/(s·ν + eps)`` derived, and the first step reuses ``t²A`` and ``t⁴A²``: it costs no extra
  matmul over Frobenius for quintic schedules (one extra ``m³`` product for cubic ones).
- ``"spectral"``: ``ν = min(‖σ‖₈, √‖A‖_∞)`` — both guaranteed upper bounds of ``σ₁`` (an induced
  norm bounds the spectral radius of ``A = XXᵀ``), reusing ``A`` and ``A²`` the same way. Not a
  power-iteration estimate (those underestimate ``σ₁``). Depends on singular vectors, so it has no
  spectrum-only predictor.
- ``"none"``: ``X₀ = X`` (caller guarantees ``‖X‖₂ ≤ 1``); ``eps`` and ``safety`` are unused.

Dtype policy
------------
``dtype=None`` picks the working dtype: float32/float64 input is kept; bf16/fp16 input is upcast to
float32 on CPU (bf16 matmuls are far slower than float32 there) and kept on CUDA (like Muon's
reference). The Frobenius norm is accumulated in float64, or in float32 when the iteration runs in
bf16/fp16 (a float32 sum that is finite and ≥ 1e-12 is exact to ~1e-6, far below bf16's rounding;
any other falls back to float64). The result is returned in the input dtype.
Pass ``dtype=`` to force a working dtype (e.g. ``torch.bfloat16`` to mimic Muon on CPU).
float32 matmuls on CUDA follow ``torch.backends.cuda.matmul.allow_tf32``.

Gram form (``form="gram"``, opt-in)
-----------------------------------
The same iteration rewritten on the small side: "Gram Newton–Schulz" (blog post "Gram Newton–Schulz:
A Fast, Hardware-Aware Newton–Schulz Algorithm for Muon", 2026, tridao.me/blog/2026/gram-newton-schulz,
with N. Amsel, B. Chen and T. Dao; it also proposes the restart; no arXiv version known to us — the
recurrences below are re-derived here). Every iterate is ``X_k = Q_k X₀`` with ``Q_k`` a polynomial
in ``A₀ = X₀X₀ᵀ``; with ``P_k = c₀I + c₁A_k + c₂A_k² + …`` (symmetric, commutes with ``A_k``)::

    Q_{k+1} = P_k Q_k,    A_{k+1} = X_{k+1}X_{k+1}ᵀ = P_k A_k P_k,    X_k = Q_k X₀.

So ``A₀`` is formed once, the steps run on ``r×r`` matrices (``r = min(m, n)``, ``c = max(m, n)``)
and ``Q`` is applied once at the end. ``A ← P(AP)`` is re-symmetrized each step (``½(A + Aᵀ)``:
measured 20 % less float32 error without restarts; ``P²A`` and ``(AP)P`` measured the same).
Exact arithmetic gives the standard iterates; rounding does not. ``A₀`` squares the condition
number: an absolute error ``~u·‖A‖`` (``u`` the unit roundoff) swamps every ``σ_i² ≲ u``, and the
error grows with the degree of the composed polynomial; in bf16, spurious negative eigenvalues of
``A`` blow up (measured: error > 1 after 5 Muon steps, inf/NaN on 13-step schedules). Hence the
**restart**: every ``restart_every`` steps (default 3) the iterate ``X = QX`` is formed, ``A = XXᵀ``
re-formed from it and ``Q`` reset to ``I``. Flops for ``k`` quintic steps in ``s = ⌈k/R⌉`` segments:
``4s·r²c + (8k − 6s)·r³`` (cubic: ``4s·r²c + 6(k − s)·r³``) against ``k(4r²c + 2r³)``
(cubic ``4k·r²c``) for the standard form — never more flops when ``c ≥ 2r``; at ``c = 4r`` for
Muon's 5 steps 1.5× fewer with ``R = 3`` (1.8× without restarts), but 1.2× more on a square.
A ``callback`` needs ``X_k = Q_kX₀`` every step: ``2r²c`` more per step. Work memory: two ``r×c``
and about five ``r×r`` buffers per matrix. Measured on CPU, float32, 1 thread, ``R = 3``, κ = 1e3
geometric spectra (``python -m benchmarks.ns_variants``): 1.40–1.61× faster than the standard form
at ``c = 4r`` (256×1024 … 1024×4096, batched 8×512×2048; Muon-5 and PE-6), ~1.1× at ``c = 2r``,
0.81–0.83× (slower) on 1024×1024. Relative Frobenius error vs float64 standard NS: 3.9e-6–8.5e-6
(standard float32: 1.5e-6–5.3e-6); 13 quintic-Padé steps ≤ 8e-6 (standard 6e-6); without restarts
2.5e-5–4.7e-4 and 2.6e-3. In float64 it agrees with the standard form to ≤ 5e-14 at κ = 1e3 and
≤ 2e-11 up to κ = 1e12 (restart 3; without restarts up to 1e-7 on 30 cubic steps at κ ≥ 1e6).
On well-conditioned input (Gaussian, aspect 4) restarts buy nothing (no-restart error 1.5e-6–2e-6,
the standard form's level) and cost 10–25 % speed; the default 3 is for the ill-conditioned,
low-stable-rank matrices of optimizer updates and for bf16. ``form="auto"`` takes the Gram form
exactly when ``c ≥ 2r`` (a shape-only rule, so results never depend on a callback).

Autograd
--------
Differentiable through the iteration. When ``x`` requires grad (and grad mode is on) the same steps
run with autograd recording, from an out-of-place normalization whose norm ``ν(X)`` is part of the
graph (:func:`_normalize_autograd`; a list input is stacked first): the gradient is that of the
computed map ``X ↦ NS_k(X)`` — a polynomial in ``X`` divided by ``s·ν(X) + eps`` — not of the exact
polar factor (that is :func:`~matbal.kernels.orthogonalize.polar`'s). Backward keeps every step's
iterate and ``A`` (about ``k·(r·c + 2r²)`` numbers per matrix) and costs about twice the forward's
matmuls. At the zero matrix the gradient is taken as 0. Without grad (the optimizers' case: they
pass gradients, which do not require grad) the iteration runs under ``torch.no_grad`` with the
in-place, host-read normalization described above — no cost for the option. Checked by a float64
``torch.autograd.gradcheck`` on every normalization and both forms.

Implementation: batch dims are flattened to one (a view; a single matrix stays 2-D and uses
``mm``/``addmm``, the GEMMs torch.optim.Muon's own NS uses),
each step is one ``bmm`` for ``A``, one
fused ``baddbmm`` for ``bA + cA²`` and one fused ``baddbmm`` for ``aX + BX`` (``2m²n + 2m³ + 2m²n``
flops, ``m ≤ n``); work memory is two ``m×n`` and two ``m×m`` buffers per matrix. The symmetry
of ``A`` and ``A²`` is not exploited (torch exposes no SYRK/SYMM that would beat GEMM here). The
output of a tall input is a transposed (non-contiguous) view, as in Muon's reference.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from .._checks import as_matrix, check_choice, check_positive, numpy_io
from .schedules import get_schedule

__all__ = ["newton_schulz", "NORMALIZATIONS", "FORMS", "LIST_MIN_BYTES", "working_dtype"]

NORMALIZATIONS = ("frobenius", "schatten8", "spectral", "none")
FORMS = ("standard", "gram", "auto")


def working_dtype(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype ``newton_schulz`` iterates in (see the module's dtype policy)."""
    if dtype is not None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
            raise TypeError(f"dtype must be a real floating torch.dtype or None, got {dtype!r}")
        return dtype
    if x.dtype in (torch.bfloat16, torch.float16):
        return torch.float32 if x.device.type == "cpu" else x.dtype
    return x.dtype


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for one matrix (``mm``) or a batch (``bmm``): a single matrix takes the same
    GEMM calls as torch.optim.Muon's NS."""
    return torch.mm(a, b) if a.dim() == 2 else torch.bmm(a, b)


def _baddbmm(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, beta=1.0, alpha=1.0) -> torch.Tensor:
    """``beta·c + alpha·(a @ b)`` fused (``addmm`` / ``baddbmm``, see :func:`_bmm`)."""
    f = torch.addmm if a.dim() == 2 else torch.baddbmm
    return f(c, a, b, beta=beta, alpha=alpha)


def _fro(x: torch.Tensor) -> torch.Tensor:
    """Per-matrix Frobenius norm ``(B, 1, 1)`` accumulated in float64 (no overflow/underflow for
    float32/half input; float64 input with entries beyond ~1e±154 is max-abs prescaled)."""
    f = torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True, dtype=torch.float64)
    if x.dtype == torch.float64 and not bool((torch.isfinite(f) & (f > 0)).all()):
        mx = x.abs().amax(dim=(-2, -1), keepdim=True)
        mx = torch.where(mx > 0, mx, torch.ones_like(mx))
        f = torch.linalg.vector_norm(x / mx, dim=(-2, -1), keepdim=True) * mx
    return f


#: a float32-accumulated norm at least this large is trusted (see :func:`_fro_half_work`)
_F32_NORM_FLOOR = 1e-12


def _trusted(vals: list[float], floor: float) -> bool:
    """Every norm (read to the host) finite and ``≥ floor``."""
    return all(math.isfinite(v) and v >= floor for v in vals)


def _scale_of(norm: float, safety: float, eps: float) -> float:
    """``1 / (safety·norm + eps)``, 0 for a zero norm (a zero matrix never gives NaN)."""
    return 1.0 / (safety * norm + eps) if norm > 0 else 0.0


def _fro_half_work(x: torch.Tensor) -> tuple[torch.Tensor, list[float]] | None:
    """Frobenius norm accumulated in float32, for an iteration that runs in bf16/fp16, as
    ``(norms (B, 1, 1), their values read to the host)``; ``None`` when it cannot be trusted
    (then the caller takes the float64 :func:`_fro`).

    Trusted when every norm is finite and ``≥ 1e-12``: a finite sum of squares had no overflowing
    term and no NaN/Inf entry (the squares are nonnegative, so partial sums never exceed the
    total), and the squares that underflow (entries below ~1e-19) change ``‖x‖²`` by at most
    ``N·1.2e-38 / 1e-24`` relative — ``1.2e-6`` for ``N = 1e8`` entries, against bf16's rounding of
    ``3.9e-3``. It reads ``x`` once; the float64 norm first writes a float64 copy of ``x`` (on an
    H100, 0.59 + 0.36 ms for 8×2048×8192 float32 against 0.17 ms: BENCHMARKS §7). One host read,
    which also serves as the finiteness check."""
    if x.dtype == torch.float64:
        return None
    f = torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True, dtype=torch.float32)
    vals = f.reshape(-1).tolist()
    return (f, vals) if _trusted(vals, _F32_NORM_FLOOR) else None


#: a list of matrices at least this large each is normalized straight into the working-dtype stack
#: (below it, one stacking copy costs less than the per-matrix launches)
LIST_MIN_BYTES = 8 << 20


def _as_list(x: list | tuple) -> list[torch.Tensor]:
    """Validate a list of same-shape, same-dtype, same-device matrices, naming ``x[i]``."""
    if not x:
        raise ValueError("x is an empty list")
    mats = [as_matrix(t, f"x[{i}]", finite=False) for i, t in enumerate(x)]
    first = mats[0]
    for i, t in enumerate(mats):
        if t.ndim != 2:
            raise ValueError(f"x[{i}] must be a matrix (m, n) in a list, got shape {tuple(t.shape)}")
        if (t.shape, t.dtype, t.device) != (first.shape, first.dtype, first.device):
            raise ValueError(f"x[{i}] is {tuple(t.shape)} {t.dtype} on {t.device}; a list needs "
                             f"one shape, dtype and device ({tuple(first.shape)} {first.dtype} "
                             f"on {first.device})")
    return mats


def _normalize_list(mats: list[torch.Tensor], tall: bool, safety: float, eps: float,
                    work: torch.dtype) -> torch.Tensor | None:
    """Frobenius ``X₀`` of a list, written straight into one ``(k, r, c)`` stack in ``work``: the
    input is never stacked in its own dtype (for float32 updates and bf16 work that saves a
    write and a read of the float32 stack). Norms from one ``_foreach_norm``, accumulated as in
    :func:`_normalize`, read to the host once. Returns None — the caller then stacks and takes
    the general path, which also raises on NaN/Inf — unless every norm is finite and not tiny."""
    x0 = mats[0]
    half = work in (torch.bfloat16, torch.float16) and x0.dtype != torch.float64
    acc = torch.float32 if half else torch.float64
    vals = torch.stack(torch._foreach_norm(mats, 2, dtype=acc)).tolist()  # the one host read
    floor = _F32_NORM_FLOOR if half else torch.finfo(torch.float64).tiny
    if not _trusted(vals, floor):
        return None
    r, c = min(x0.shape), max(x0.shape)
    out = torch.empty((len(mats), r, c), dtype=work, device=x0.device)
    for xm, v, o in zip(mats, vals, out):
        # a Python scalar: the product is formed in x's dtype or its float32 opmath (bf16/fp16)
        torch.mul(xm.mT if tall else xm, _scale_of(v, safety, eps), out=o)
    return out


def _check_finite(ok: torch.Tensor, x: torch.Tensor | None = None) -> None:
    """Raise unless ``ok`` is all True. ``ok`` is ``isfinite(x)`` or, cheaper, ``isfinite`` of
    ``x``'s float64 Frobenius norm (then ``x`` is passed to tell NaN/Inf from an overflowing norm)."""
    if bool(ok.all()):
        return
    if x is None or not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or Inf")
    raise ValueError("x's Frobenius norm overflows float64 (entries near 1e308): rescale x")


def _inv(norm: torch.Tensor, safety: float, eps: float) -> torch.Tensor:
    """``1 / (safety·norm + eps)``, 0 where ``norm == 0`` (a zero matrix never gives NaN)."""
    return torch.where(norm > 0, 1.0 / (safety * norm + eps), torch.zeros_like(norm))


def _normalize(x: torch.Tensor, kind: str, safety: float, eps: float, work: torch.dtype):
    """Return ``(X₀, A₀, A₀²)`` in ``work`` dtype; ``A₀``/``A₀²`` are None unless reused."""
    if kind == "none":
        _check_finite(torch.isfinite(x))
        return x.to(work), None, None
    # elementwise scaling in float32 or better, then one cast to the working dtype
    mdt = torch.float64 if torch.float64 in (x.dtype, work) else torch.float32
    half = work in (torch.bfloat16, torch.float16) and x.dtype != torch.float64
    got = _fro_half_work(x) if half else None
    if kind == "frobenius":
        # the norms are read to the host once (that read is also the NaN/Inf check: the float64
        # norm of finite float32/half input cannot overflow; float64 input is prescaled by _fro)
        # and the scales 1/(safety·‖x‖ + eps) computed there: on an H100 the small tensor ops
        # this replaces were most of matbal's fixed cost per call (BENCHMARKS §7)
        if got is not None:
            vals = got[1]
        else:
            vals = _fro(x).reshape(-1).tolist()
            if not _trusted(vals, 0.0):
                _check_finite(torch.tensor(False), x)  # raises, telling NaN/Inf from overflow
        scales = [_scale_of(v, safety, eps) for v in vals]
        out = torch.empty(x.shape, dtype=work, device=x.device)
        if x.dim() == 2 and x.dtype in (mdt, work):
            # one matrix: a Python scalar, the same rounding (the product is formed in mdt or,
            # for x in the work dtype, in its float32 opmath)
            return torch.mul(x, scales[0], out=out), None, None
        s = torch.tensor(scales, dtype=mdt).view(x.shape[:-2] + (1, 1)).to(x.device)
        return torch.mul(x, s, out=out), None, None  # computed in mdt, rounded once into work
    if got is not None:
        f = got[0]  # trusted: finite, so x holds no NaN/Inf
    else:
        f = _fro(x)
        _check_finite(torch.isfinite(f), x)
    # Schatten-8 / spectral: prescale to unit Frobenius norm, form A and A² once, reuse them.
    z = (x.to(mdt) * _inv(f, 1.0, 0.0).to(mdt)).to(work)
    a = _bmm(z, z.mT)
    a2 = _bmm(a, a)
    bound = torch.linalg.vector_norm(a2, dim=(-2, -1), keepdim=True, dtype=torch.float64).pow(0.25)
    if kind == "spectral":
        inf_norm = a.to(torch.float64).abs().sum(-1).amax(-1)[..., None, None].sqrt()
        bound = torch.minimum(bound, inf_norm)
    t = (_inv(f * bound, safety, eps) * f).to(mdt)  # X₀ = z·t = X / (safety·ν + eps)
    t2 = t * t
    if work in (torch.float32, torch.float64):
        return z.mul_(t.to(work)), a.mul_(t2.to(work)), a2.mul_((t2 * t2).to(work))
    return ((z.to(mdt) * t).to(work), (a.to(mdt) * t2).to(work), (a2.to(mdt) * (t2 * t2)).to(work))


def _normalize_autograd(x: torch.Tensor, kind: str, safety: float, eps: float,
                        work: torch.dtype) -> torch.Tensor:
    """``X₀`` of :func:`_normalize` written with out-of-place ops and ``ν(X)`` as a tensor, so
    that autograd differentiates the normalization too (no ``out=``, no host-read scales)."""
    _check_finite(torch.isfinite(x))
    if kind == "none":
        return x.to(work)
    mdt = torch.float64 if torch.float64 in (x.dtype, work) else torch.float32
    xm = x.to(mdt)
    f = torch.linalg.vector_norm(x.to(torch.float64), dim=(-2, -1), keepdim=True)
    _check_finite(torch.isfinite(f), x)
    nu = f
    if kind != "frobenius":  # Schatten-8 / spectral bound of the unit-Frobenius matrix, times f
        safe_f = torch.where(f > 0, f, torch.ones_like(f))
        z = (xm / safe_f.to(mdt)).to(work)
        a = _bmm(z, z.mT)
        bound = torch.linalg.vector_norm(_bmm(a, a), dim=(-2, -1), keepdim=True,
                                         dtype=torch.float64).pow(0.25)
        if kind == "spectral":
            inf_norm = a.to(torch.float64).abs().sum(-1).amax(-1)[..., None, None].sqrt()
            bound = torch.minimum(bound, inf_norm)
        nu = f * bound
    pos = nu > 0
    t = torch.where(pos, 1.0 / torch.where(pos, safety * nu + eps, torch.ones_like(nu)),
                    torch.zeros_like(nu))
    return (xm * t.to(mdt)).to(work)


def _step(x: torch.Tensor, a: torch.Tensor, a2: torch.Tensor | None, co: tuple) -> torch.Tensor:
    """One step ``X ← (c₀I + c₁A + c₂A² + …)X`` given ``A = XXᵀ`` (and optionally ``A²``)."""
    if len(co) == 1:
        return x * co[0]
    if len(co) == 2:
        return _baddbmm(x, a, x, beta=co[0], alpha=co[1])
    if len(co) == 3:
        if a2 is not None:
            b = a2.mul_(co[2]).add_(a, alpha=co[1])
        else:
            b = _baddbmm(a, a, a, beta=co[1], alpha=co[2])
        return _baddbmm(x, b, x, beta=co[0])
    # Horner: R = c_k A + c_{k-1} I; R = R A + c_j I (j = k-2 … 1); X ← c₀X + (R A) X.
    r = a * co[-1]
    r.diagonal(dim1=-2, dim2=-1).add_(co[-2])
    for c in reversed(co[1:-2]):
        r = _bmm(r, a)
        r.diagonal(dim1=-2, dim2=-1).add_(c)
    return _baddbmm(x, _bmm(r, a), x, beta=co[0])


def _poly(a: torch.Tensor, a2: torch.Tensor | None, co: tuple) -> torch.Tensor:
    """``P = c₀I + c₁A + c₂A² + …`` (a fresh tensor; ``a2``, when given, is consumed)."""
    if len(co) == 1:
        p = torch.zeros_like(a)
    elif len(co) == 2:
        p = a * co[1]
    elif len(co) == 3:
        if a2 is not None:
            p = a2.mul_(co[2]).add_(a, alpha=co[1])
        else:
            p = _baddbmm(a, a, a, beta=co[1], alpha=co[2])
    else:  # Horner as in _step: R = c_k A + c_{k-1} I; R = R A + c_j I; P = R A + c₀ I
        r = a * co[-1]
        r.diagonal(dim1=-2, dim2=-1).add_(co[-2])
        for c in reversed(co[1:-2]):
            r = _bmm(r, a)
            r.diagonal(dim1=-2, dim2=-1).add_(c)
        p = _bmm(r, a)
    p.diagonal(dim1=-2, dim2=-1).add_(co[0])
    return p


def _gram(x, a, a2, coeffs, restart_every: int | None, emit) -> torch.Tensor:
    """Gram-form iteration from ``X₀ = x`` (``(B, r, c)``, ``r ≤ c``; optional ``A₀``, ``A₀²``).

    Keeps ``Q`` (``X_k = Q X_s``, ``X_s`` the iterate at the segment start) and ``A = X_kX_kᵀ``;
    ``X = QX_s`` is formed only at a restart, at the end and, when ``emit`` is given, every step.
    Never writes into ``x``."""
    last = len(coeffs)
    q = None
    for i, co in enumerate(coeffs, 1):
        if a is None:
            a = _bmm(x, x.mT)
        p = _poly(a, a2, co)
        a2 = None
        q = p if q is None else _bmm(p, q)
        restart = restart_every is not None and i % restart_every == 0
        y = _bmm(q, x) if (emit is not None or restart or i == last) else None
        if emit is not None:
            emit(i, y)
        if i == last:
            return y
        if restart:
            x, q, a = y, None, None
        else:
            a = _bmm(p, _bmm(a, p))
            a = torch.add(a, a.mT).mul_(0.5)  # keep A symmetric (P A P is, up to rounding)
    raise AssertionError("unreachable: a schedule has at least one step")


@numpy_io
def newton_schulz(
    x: Any,
    *,
    schedule: Any = "muon",
    steps: int | None = None,
    normalize: str = "frobenius",
    eps: float = 1e-7,
    dtype: torch.dtype | None = None,
    callback: Callable[[int, torch.Tensor], Any] | None = None,
    form: str = "standard",
    restart_every: int | None = 3,
) -> torch.Tensor:
    """Approximate polar factor ``UVᵀ`` of ``x`` by a Newton–Schulz polynomial iteration.

    ``NS_k(X) = U diag(P_k(σ_i / (s·ν(X) + eps))) Vᵀ`` with ``P_k`` the composition of the
    schedule's step polynomials (see module docstring for the step, the norms ``ν`` and the dtype
    policy).

    Parameters
    ----------
    x : Tensor or ndarray, shape ``(..., m, n)``, or a list of same-shape matrices
        Real floating, finite, non-empty; leading dims are a batch. Never modified. A list or
        tuple of ``k`` matrices ``(m, n)`` (one dtype and device) is the batch
        ``torch.stack(x)`` and returns ``(k, m, n)``; with Frobenius normalization and matrices
        of ≥ ``LIST_MIN_BYTES`` (8 MiB) each, it is normalized straight into the working-dtype
        stack, never stacked in its own dtype (the optimizers pass their same-shape updates so).
        The norms are then taken per matrix: equal to the stacked call's up to their last bits.
    schedule : str, Schedule, tuple or list of tuples
        ``"muon"`` (default), ``"polar_express"``, ``"you"``, ``"you6"``, ``"cubic"``,
        ``"quintic_pade"``, a :class:`Schedule` (e.g. ``cans_cubic(lo, hi)``), one coefficient
        tuple (repeated) or a list of tuples (see :func:`get_schedule`).
    steps : int, optional
        Number of steps (≥ 1); default the schedule's ``default_steps`` (5 for Muon/PE/You).
    normalize : {"frobenius", "schatten8", "spectral", "none"}
        The upper bound ``ν`` of ``σ₁`` used for ``X₀``.
    eps : float
        Added to the scaled norm (≥ 0). A zero matrix gives a zero result for any ``eps``.
    dtype : torch.dtype, optional
        Working dtype; default per the policy above.
    callback : callable ``(step, X)``, optional
        Called after each step ``1…k`` with the iterate in the input's orientation and shape and
        the working dtype (a fresh tensor each step; safe to keep). In the Gram form each call
        costs one extra ``QX`` product (``2r²c`` flops).
    form : {"standard", "gram", "auto"}
        ``"standard"`` (default): the step above on the ``r×c`` iterate. ``"gram"``: the Gram
        form (module docstring): iterate on ``r×r`` matrices, apply ``Q`` once per segment;
        1.4–1.6× faster at aspect ratio 4 on CPU, 0.8× on squares, about 2× the float32
        rounding error of the standard form with the default restarts. ``"auto"``: ``"gram"``
        when ``max(m, n) ≥ 2·min(m, n)`` (where it never costs more flops), else ``"standard"``.
    restart_every : int or None
        Gram form only (ignored by ``"standard"``): re-form ``X = QX`` and ``A = XXᵀ`` after every
        ``restart_every`` steps (≥ 1; default 3, for every dtype). ``None`` never restarts:
        ~10–20 % faster than 3 at aspect 4, but the float32 error grows with the step count
        (2.6e-3 after 13 quintic steps) and bf16 turns to garbage or inf/NaN; use it only in
        float64 or for ≤ 3 steps (where it is the same as 3).

    Returns
    -------
    Tensor (or ndarray for ndarray input) of the shape and dtype of ``x``; differentiable when
    ``x`` requires grad (the gradient of the computed iteration: "Autograd" in the module docstring).

    Example
    -------
    >>> import torch
    >>> from matbal.kernels.orthogonalize import newton_schulz, polar
    >>> x = torch.randn(8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> o = newton_schulz(x, schedule="polar_express", steps=8)
    >>> bool(torch.allclose(o, polar(x), atol=1e-6))
    True
    >>> g = newton_schulz(x, schedule="polar_express", steps=8, form="gram")  # same map, r×r work
    >>> bool(torch.allclose(g, o, atol=1e-12))
    True
    >>> xg = x.clone().requires_grad_()
    >>> newton_schulz(xg).sum().backward()            # autograd through the 5 steps
    >>> xg.grad.shape
    torch.Size([8, 16])

    References: Keller Jordan, Muon blog (2024) and github KellerJordan/Muon; Polar Express
    arXiv 2505.16932; CANS arXiv 2506.10935; Higham, "Functions of Matrices" (2008) §8.3; Gram
    Newton–Schulz: blog 2026 (N. Amsel, B. Chen, T. Dao et al.), tridao.me/blog/2026/gram-newton-schulz.
    """
    listed = None
    if isinstance(x, (list, tuple)):
        listed = _as_list(x)
        x0 = listed[0]
        if torch.is_grad_enabled() and any(t.requires_grad for t in listed):
            x, listed = torch.stack(listed), None  # autograd: one differentiable stack
        elif (normalize == "frobenius" and len(listed) > 1
                and x0.numel() * x0.element_size() >= LIST_MIN_BYTES):
            x = x0.expand(len(listed), *x0.shape)  # carries shape/dtype/device; never read
        else:
            x, listed = torch.stack(listed), None
    x = as_matrix(x, "x", finite=False)  # NaN/Inf are refused via the norm (see _normalize)
    sched = get_schedule(schedule)
    coeffs = sched.steps(steps)
    check_choice(normalize, "normalize", NORMALIZATIONS)
    check_positive(eps, "eps", allow_zero=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {callback!r}")
    check_choice(form, "form", FORMS)
    if restart_every is not None:
        check_positive(restart_every, "restart_every", integer=True)
    work = working_dtype(x, dtype)
    grad = torch.is_grad_enabled() and x.requires_grad  # see "Autograd" in the module docstring

    shape, m, n = x.shape, x.shape[-2], x.shape[-1]
    tall = m > n
    xw = (x.mT if tall else x).reshape(-1, min(m, n), max(m, n))
    if xw.shape[0] == 1:  # one matrix: 2-D mm/addmm (see _bmm)
        xw = xw[0]

    def view(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(*shape[:-2], t.shape[-2], t.shape[-1])
        return t.mT if tall else t

    if form == "auto":
        form = "gram" if max(m, n) >= 2 * min(m, n) else "standard"

    def run(xw: torch.Tensor) -> torch.Tensor:
        xk = None
        if listed is not None:
            xk = _normalize_list(listed, tall, sched.scale, float(eps), work)
            if xk is None:  # not trusted: the general path decides (and raises on NaN/Inf)
                xs = torch.stack(listed)
                xw = (xs.mT if tall else xs)
        a = a2 = None
        if grad:
            xk = _normalize_autograd(xw, normalize, sched.scale, float(eps), work)
        elif xk is None:
            xk, a, a2 = _normalize(xw, normalize, sched.scale, float(eps), work)
        if form == "gram":
            emit = None if callback is None else (lambda i, y: callback(i, view(y)))
            every = None if restart_every is None else int(restart_every)
            return _gram(xk, a, a2, coeffs, every, emit)
        for i, co in enumerate(coeffs):
            if a is None:
                a = _bmm(xk, xk.mT)
            xk = _step(xk, a, a2, co)
            a = a2 = None
            if callback is not None:
                callback(i + 1, view(xk))
        return xk

    with torch.set_grad_enabled(grad):
        out = run(xw)
    return view(out).to(x.dtype)
