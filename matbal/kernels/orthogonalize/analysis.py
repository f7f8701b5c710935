"""Scalar analysis of Newton–Schulz schedules: the exact predictor of NS output from the spectrum.

Newton–Schulz with odd step polynomials acts on singular values alone:
``NS_k(X) = U diag(P_k(σ_i/s)) Vᵀ`` with ``P_k = p_k ∘ … ∘ p_1`` and ``s = safety·ν(X) + eps``.
Hence ``‖NS_k(X) − polar(X)‖₂ = max_i |1 − P_k(σ_i/s)|`` exactly, and the worst case over all
matrices whose normalized singular values lie in ``[lo, hi]`` is ``max_[lo,hi] |1 − P_k|``.

Interval convention: ``lo, hi`` are singular values divided by the norm ``ν`` (``σ/‖X‖_F`` for
Frobenius), i.e. *before* the schedule's initial safety factor; with ``apply_safety=True`` (default)
they are divided by ``schedule.safety`` as ``newton_schulz`` does. (So Polar Express's published
"[1e-3, 1] ↦ [0.84, 1.12] in 5 steps" is ``output_band("polar_express", 5, 1e-3, 1)``.)

Example
-------
>>> from matbal.kernels.orthogonalize.analysis import output_band
>>> lo, hi = output_band("muon", 5, 1e-2, 1.0)
>>> round(lo, 3), round(hi, 3)
(0.682, 1.134)

References: Keller Jordan, Muon blog (2024); Polar Express arXiv 2505.16932 (§3); CANS arXiv
2506.10935; Higham, "Functions of Matrices" (2008) §8.3.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from .._checks import check_choice, check_positive
from .schedules import Schedule, _as_coeffs, get_schedule

__all__ = [
    "step_polynomial",
    "compose",
    "predict_singular_values",
    "output_band",
    "worst_case_error",
    "steps_to_accuracy",
    "lift_threshold",
]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def step_polynomial(coeffs) -> Callable[[Any], Any]:
    """The scalar step ``p(x) = x(c₀ + c₁x² + c₂x⁴ + …)`` as a callable (float, ndarray or tensor).

    >>> step_polynomial((1.5, -0.5))(1.0)
    1.0
    """
    co = _as_coeffs(coeffs, "coeffs")

    def p(x):
        x2 = x * x
        acc = co[-1]
        for c in reversed(co[:-1]):
            acc = acc * x2 + c
        return x * acc

    p.coefficients = co  # type: ignore[attr-defined]
    return p


def compose(schedule: Any = "muon", steps: int | None = None) -> Callable[[Any], Any]:
    """``P_k = p_k ∘ … ∘ p_1`` for the schedule's first ``steps`` steps, as a callable.

    Works elementwise on Python floats, numpy arrays and torch tensors (evaluate in float64 for
    exactness).

    >>> round(compose("cubic", 30)(0.01), 12)
    1.0
    """
    sched = get_schedule(schedule)
    polys = [step_polynomial(c) for c in sched.steps(steps)]

    def P(x):
        for p in polys:
            x = p(x)
        return x

    return P


def _schatten(s: np.ndarray, p: float) -> np.ndarray:
    top = np.max(s, axis=-1, keepdims=True)
    top_safe = np.where(top > 0, top, 1.0)
    return (top_safe * np.sum((s / top_safe) ** p, axis=-1, keepdims=True) ** (1.0 / p)) * (top > 0)


def predict_singular_values(
    sigma: Any,
    *,
    schedule: Any = "muon",
    steps: int | None = None,
    normalize: str = "frobenius",
    eps: float = 1e-7,
) -> Any:
    """Exact output singular values of ``newton_schulz`` from the input's singular values.

    ``σ'_i = P_k(σ_i / (s·ν(σ) + eps))`` with ``ν = ‖σ‖₂`` (``"frobenius"``), ``‖σ‖₈``
    (``"schatten8"``) or ``s·ν + eps = 1`` (``"none"``), ``s`` the schedule's safety. The values are
    returned in the order given (not re-sorted: ``P_k`` need not be monotone).

    Parameters
    ----------
    sigma : array-like or Tensor, shape ``(..., r)``
        *All* ``r = min(m, n)`` singular values (zeros included) — the norm needs every one.
    schedule, steps, normalize, eps
        As passed to ``newton_schulz`` (``"spectral"`` depends on singular vectors: refused).

    Returns
    -------
    float64 ndarray (Tensor for Tensor input) of the shape of ``sigma``.

    >>> predict_singular_values([1.0, 0.0], schedule="cubic", steps=3, normalize="none").tolist()
    [1.0, 0.0]
    """
    check_choice(normalize, "normalize", ("frobenius", "schatten8", "none", "spectral"))
    if normalize == "spectral":
        raise ValueError(
            "normalize='spectral' depends on singular vectors, not only on sigma; "
            "predict with 'frobenius', 'schatten8' or 'none'"
        )
    check_positive(eps, "eps", allow_zero=True)
    is_torch = isinstance(sigma, torch.Tensor)
    s = sigma.detach().cpu().double().numpy() if is_torch else np.asarray(sigma, dtype=np.float64)
    if s.ndim < 1 or s.size == 0:
        raise ValueError(f"sigma must be a non-empty array of shape (..., r), got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("sigma must be finite and nonnegative")
    sched = get_schedule(schedule)
    P = compose(sched, steps)
    if normalize == "none":
        x = s
    else:
        nu = _schatten(s, 2.0 if normalize == "frobenius" else 8.0)
        denom = sched.scale * nu + eps
        x = np.where(nu > 0, s / np.where(denom > 0, denom, 1.0), 0.0)
    out = P(x)
    return torch.from_numpy(np.asarray(out, dtype=np.float64)) if is_torch else out


def _interval(lo: float, hi: float) -> tuple[float, float]:
    for name, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not math.isfinite(v):
            raise TypeError(f"{name} must be a finite number, got {v!r}")
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < lo <= hi, got lo={lo!r}, hi={hi!r}")
    return float(lo), float(hi)


def _grid(lo: float, hi: float, n: int = 20001) -> np.ndarray:
    g = np.concatenate([np.geomspace(lo, hi, n), np.linspace(lo, hi, n)])
    return np.unique(g)


def _refine(P, g: np.ndarray, y: np.ndarray, sign: float, keep: int = 12, iters: int = 80) -> float:
    """Max of ``sign·P`` on ``[g[0], g[-1]]``: grid local maxima refined by vectorized golden section."""
    v = sign * y
    best = float(v.max())
    interior = np.flatnonzero((v[1:-1] >= v[:-2]) & (v[1:-1] >= v[2:])) + 1
    if interior.size == 0:
        return sign * best
    interior = interior[np.argsort(v[interior])[::-1][:keep]]
    a, b = g[interior - 1].copy(), g[interior + 1].copy()
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = sign * P(c), sign * P(d)
    for _ in range(iters):
        left = fc >= fd  # maximum in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c_new, d_new = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        c, d = c_new, d_new
        fc, fd = sign * P(c), sign * P(d)
    return sign * max(best, float(np.max(fc)), float(np.max(fd)))


def output_band(
    schedule: Any, steps: int | None, lo: float, hi: float = 1.0, *, apply_safety: bool = True
) -> tuple[float, float]:
    """``(min, max)`` of ``P_k`` over normalized singular values in ``[lo, hi]``.

    Dense grid (20001 geometric + 20001 linear points) plus golden-section refinement of the best
    grid extrema (to ~1e-12 relative). See the module docstring for the interval convention.

    >>> lo, hi = output_band("polar_express", 6, 1e-3)
    >>> round(lo, 3), round(hi, 3)
    (0.993, 1.001)
    """
    lo, hi = _interval(lo, hi)
    sched = get_schedule(schedule)
    P0 = compose(sched, steps)
    scale = sched.scale if apply_safety else 1.0

    def P(x):
        return P0(x / scale)

    g = _grid(lo, hi)
    y = P(g)
    return _refine(P, g, y, -1.0), _refine(P, g, y, 1.0)


def worst_case_error(
    schedule: Any, steps: int | None, lo: float, hi: float = 1.0, *, apply_safety: bool = True
) -> float:
    """``max_{x∈[lo,hi]} |1 − P_k(x)|``: the worst spectral error ``‖NS_k(X) − polar(X)‖₂`` over
    matrices whose normalized singular values lie in ``[lo, hi]``.

    >>> round(worst_case_error("cubic", 3, 0.5), 4)  # 0.5 ↦ 0.6875 ↦ 0.8687 ↦ 0.9753
    0.0247
    """
    bmin, bmax = output_band(schedule, steps, lo, hi, apply_safety=apply_safety)
    return max(1.0 - bmin, bmax - 1.0)


def steps_to_accuracy(
    schedule: Any,
    target: float,
    lo: float,
    hi: float = 1.0,
    *,
    max_steps: int = 100,
    apply_safety: bool = True,
) -> int | None:
    """Smallest ``k`` with ``worst_case_error(schedule, k, lo, hi) ≤ target``; ``None`` if no
    ``k ≤ max_steps`` (or no step of a fixed-length schedule) reaches it — e.g. Muon never does
    for ``target < 0.13``.

    >>> steps_to_accuracy("polar_express", 1e-2, 1e-3)
    6
    """
    check_positive(target, "target")
    check_positive(max_steps, "max_steps", integer=True)
    lo, hi = _interval(lo, hi)
    sched: Schedule = get_schedule(schedule)
    limit = max_steps if sched.extends else min(max_steps, len(sched.coefficients))
    g = _grid(lo, hi)
    y = g / (sched.scale if apply_safety else 1.0)
    for k, co in enumerate(sched.steps(limit), start=1):
        y = step_polynomial(co)(y)
        if float(np.max(np.abs(1.0 - y))) <= target:  # grid error ≤ refined error: cheap filter
            if worst_case_error(sched, k, lo, hi, apply_safety=apply_safety) <= target:
                return k
    return None


def lift_threshold(
    schedule: Any = "muon",
    steps: int | None = None,
    level: float = 0.5,
    *,
    lo: float = 1e-12,
    apply_safety: bool = True,
) -> float | None:
    """Smallest normalized singular value ``x ∈ [lo, 1]`` with ``P_k(x) ≥ level``: the input
    ``x_min`` a finite NS needs before its smallest direction reaches ``level`` (claim EQ-2).

    Geometric grid (200001 points) for the first crossing, then 60 bisection steps. Returns
    ``None`` when no ``x`` in ``[lo, 1]`` reaches ``level``. Interval convention as in
    :func:`output_band`.

    >>> t = lift_threshold("muon", 5)
    >>> 1.0e-3 < t < 1.1e-3
    True
    """
    check_positive(level, "level")
    lo, _ = _interval(lo, 1.0)
    sched = get_schedule(schedule)
    P = compose(sched, steps)
    scale = sched.scale if apply_safety else 1.0
    g = np.geomspace(lo, 1.0, 200_001)
    ok = P(g / scale) >= level
    if not ok.any():
        return None
    i = int(np.argmax(ok))
    if i == 0:
        return float(lo)
    a, b = float(g[i - 1]), float(g[i])
    for _ in range(60):
        c = 0.5 * (a + b)
        a, b = (a, c) if P(c / scale) >= level else (c, b)
    return b
