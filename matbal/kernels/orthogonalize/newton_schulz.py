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
reference). Norms are accumulated in float32 or better. The result is returned in the input dtype.
Pass ``dtype=`` to force a working dtype (e.g. ``torch.bfloat16`` to mimic Muon on CPU).
float32 matmuls on CUDA follow ``torch.backends.cuda.matmul.allow_tf32``.

Implementation: batch dims are flattened to one (a view), each step is one ``bmm`` for ``A``, one
fused ``baddbmm`` for ``bA + cA²`` and one fused ``baddbmm`` for ``aX + BX`` (``2m²n + 2m³ + 2m²n``
flops, ``m ≤ n``); work memory is two ``m×n`` and two ``m×m`` buffers per matrix. The symmetry
of ``A`` and ``A²`` is not exploited (torch exposes no SYRK/SYMM that would beat GEMM here). The
output of a tall input is a transposed (non-contiguous) view, as in Muon's reference.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from .._checks import as_matrix, check_choice, check_positive, numpy_io
from .schedules import get_schedule

__all__ = ["newton_schulz", "NORMALIZATIONS", "working_dtype"]

NORMALIZATIONS = ("frobenius", "schatten8", "spectral", "none")


def working_dtype(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype ``newton_schulz`` iterates in (see the module's dtype policy)."""
    if dtype is not None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
            raise TypeError(f"dtype must be a real floating torch.dtype or None, got {dtype!r}")
        return dtype
    if x.dtype in (torch.bfloat16, torch.float16):
        return torch.float32 if x.device.type == "cpu" else x.dtype
    return x.dtype


def _fro(x: torch.Tensor) -> torch.Tensor:
    """Per-matrix Frobenius norm ``(B, 1, 1)`` accumulated in float64 (no overflow/underflow for
    float32/half input; float64 input with entries beyond ~1e±154 is max-abs prescaled)."""
    f = torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True, dtype=torch.float64)
    if x.dtype == torch.float64 and not bool((torch.isfinite(f) & (f > 0)).all()):
        mx = x.abs().amax(dim=(-2, -1), keepdim=True)
        mx = torch.where(mx > 0, mx, torch.ones_like(mx))
        f = torch.linalg.vector_norm(x / mx, dim=(-2, -1), keepdim=True) * mx
    return f


def _inv(norm: torch.Tensor, safety: float, eps: float) -> torch.Tensor:
    """``1 / (safety·norm + eps)``, 0 where ``norm == 0`` (a zero matrix never gives NaN)."""
    return torch.where(norm > 0, 1.0 / (safety * norm + eps), torch.zeros_like(norm))


def _normalize(x: torch.Tensor, kind: str, safety: float, eps: float, work: torch.dtype):
    """Return ``(X₀, A₀, A₀²)`` in ``work`` dtype; ``A₀``/``A₀²`` are None unless reused."""
    if kind == "none":
        return x.to(work), None, None
    # elementwise scaling in float32 or better, then one cast to the working dtype
    mdt = torch.float64 if torch.float64 in (x.dtype, work) else torch.float32
    f = _fro(x)
    if kind == "frobenius":
        return (x.to(mdt) * _inv(f, safety, eps).to(mdt)).to(work), None, None
    # Schatten-8 / spectral: prescale to unit Frobenius norm, form A and A² once, reuse them.
    z = (x.to(mdt) * _inv(f, 1.0, 0.0).to(mdt)).to(work)
    a = torch.bmm(z, z.mT)
    a2 = torch.bmm(a, a)
    bound = torch.linalg.vector_norm(a2, dim=(-2, -1), keepdim=True, dtype=torch.float64).pow(0.25)
    if kind == "spectral":
        inf_norm = a.to(torch.float64).abs().sum(-1).amax(-1)[..., None, None].sqrt()
        bound = torch.minimum(bound, inf_norm)
    t = (_inv(f * bound, safety, eps) * f).to(mdt)  # X₀ = z·t = X / (safety·ν + eps)
    t2 = t * t
    if work in (torch.float32, torch.float64):
        return z.mul_(t.to(work)), a.mul_(t2.to(work)), a2.mul_((t2 * t2).to(work))
    return ((z.to(mdt) * t).to(work), (a.to(mdt) * t2).to(work), (a2.to(mdt) * (t2 * t2)).to(work))


def _step(x: torch.Tensor, a: torch.Tensor, a2: torch.Tensor | None, co: tuple) -> torch.Tensor:
    """One step ``X ← (c₀I + c₁A + c₂A² + …)X`` given ``A = XXᵀ`` (and optionally ``A²``)."""
    if len(co) == 1:
        return x * co[0]
    if len(co) == 2:
        return torch.baddbmm(x, a, x, beta=co[0], alpha=co[1])
    if len(co) == 3:
        if a2 is not None:
            b = a2.mul_(co[2]).add_(a, alpha=co[1])
        else:
            b = torch.baddbmm(a, a, a, beta=co[1], alpha=co[2])
        return torch.baddbmm(x, b, x, beta=co[0])
    # Horner: R = c_k A + c_{k-1} I; R = R A + c_j I (j = k-2 … 1); X ← c₀X + (R A) X.
    r = a * co[-1]
    r.diagonal(dim1=-2, dim2=-1).add_(co[-2])
    for c in reversed(co[1:-2]):
        r = torch.bmm(r, a)
        r.diagonal(dim1=-2, dim2=-1).add_(c)
    return torch.baddbmm(x, torch.bmm(r, a), x, beta=co[0])


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
) -> torch.Tensor:
    """Approximate polar factor ``UVᵀ`` of ``x`` by a Newton–Schulz polynomial iteration.

    ``NS_k(X) = U diag(P_k(σ_i / (s·ν(X) + eps))) Vᵀ`` with ``P_k`` the composition of the
    schedule's step polynomials (see module docstring for the step, the norms ``ν`` and the dtype
    policy).

    Parameters
    ----------
    x : Tensor or ndarray, shape ``(..., m, n)``
        Real floating, finite, non-empty; leading dims are a batch. Never modified.
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
        the working dtype (a fresh tensor each step; safe to keep).

    Returns
    -------
    Tensor (or ndarray for ndarray input) of the shape and dtype of ``x``.

    Example
    -------
    >>> import torch
    >>> from matbal.kernels.orthogonalize import newton_schulz, polar
    >>> x = torch.randn(8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> o = newton_schulz(x, schedule="polar_express", steps=8)
    >>> bool(torch.allclose(o, polar(x), atol=1e-6))
    True

    References: Keller Jordan, Muon blog (2024) and github KellerJordan/Muon; Polar Express
    arXiv 2505.16932; CANS arXiv 2506.10935; Higham, "Functions of Matrices" (2008) §8.3.
    """
    x = as_matrix(x, "x")
    sched = get_schedule(schedule)
    coeffs = sched.steps(steps)
    check_choice(normalize, "normalize", NORMALIZATIONS)
    check_positive(eps, "eps", allow_zero=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {callback!r}")
    work = working_dtype(x, dtype)

    shape, m, n = x.shape, x.shape[-2], x.shape[-1]
    tall = m > n
    xw = (x.mT if tall else x).reshape(-1, min(m, n), max(m, n))

    def view(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(*shape[:-2], t.shape[-2], t.shape[-1])
        return t.mT if tall else t

    with torch.no_grad():
        xk, a, a2 = _normalize(xw, normalize, sched.scale, float(eps), work)
        for i, co in enumerate(coeffs):
            if a is None:
                a = torch.bmm(xk, xk.mT)
            xk = _step(xk, a, a2, co)
            a = a2 = None
            if callback is not None:
                callback(i + 1, view(xk))
    return view(xk).to(x.dtype)
