"""Design Newton–Schulz schedules: the greedy minimax (Remez) construction of Polar Express / CANS.

For an odd degree ``d = 2m − 1`` and an interval ``[ℓ, u]`` with ``0 < ℓ ≤ u``, step ``t`` takes

    p_t = argmin over odd p of degree d of  max_{x∈[ℓ_t, u_t]} |1 − p(x)|,      E_t = that minimum,

and the image interval ``[ℓ_{t+1}, u_{t+1}] = [1 − E_t, 1 + E_t]`` becomes the next step's domain
(``ℓ_1 = lo``, ``u_1 = hi``). By the equioscillation theorem ``p_t − 1`` attains ``∓E_t`` with
alternating signs at ``m + 1`` points ``ℓ_t = x_0 < x_1 < … < x_m = u_t`` (``p_t(ℓ_t) = 1 − E_t``),
so ``1 − E_t`` is the smallest value of ``p_t`` on the interval and ``1 + E_t`` the largest. Polar
Express (arXiv 2505.16932, Thm. 4.1) proves that this greedy choice also minimizes the worst-case
error ``max_{[ℓ,u]} |1 − p_T ∘ … ∘ p_1|`` over *all* compositions of ``T`` such polynomials; for
``d = 3`` each step is the closed-form CANS cubic (arXiv 2506.10935), which the Remez solve here
reproduces. The final worst-case error on ``[lo, hi]`` is ``E_T`` and the output band
``[1 − E_T, 1 + E_T]``.

Each step is solved by the Remez exchange (arXiv 2505.16932 App. D; the reference code of App. G):
on the scaled interval ``[ρ, 1]``, ``ρ = ℓ/u`` (the problem is scale-invariant: ``p(x) = p̃(x/u)``),
solve the ``(m+1)×(m+1)`` linear system ``p(x_j) + (−1)^j E = 1`` for the coefficients and ``E``,
move the interior points to the roots of ``p′`` (a polynomial of degree ``m − 1`` in ``x²``), repeat
until ``E`` changes by < 1e-40. Start: ``x_j = ρ + (1 − ρ)(1 − cos(jπ/m))/2`` (for ``m = 3`` the
reference code's ``(3ρ+1)/4, (ρ+3)/4``). The solve runs in 50-digit arithmetic (mpmath), so the
returned float64 coefficients are the optimum rounded once — the float64 solve is ill-conditioned
as ``ρ → 1``. When ``1 − ρ ≤ 5e-6`` the step is the flat limit polynomial (``p(1) = 1``,
``p^{(k)}(1) = 0`` for ``k < m``: ``(3x − x³)/2``, ``(15x − 10x³ + 3x⁵)/8``) scaled to ``u``, as in
the reference code (at ``1 − ρ = 5e-6`` the flat quintic's error on ``[ρ, 1]`` is 3.1e-16 against
the optimum's 1e-17; the flat cubic's 3.7e-11 against 4.7e-12).

The paper's published list adds three practical changes, all optional here (``POLAR_EXPRESS_SETTINGS``):

- ``cushion`` (0.02407327424182761): step ``t`` is optimized on ``[max(ℓ_t, cushion·u_t), u_t]``
  (bounding the first slopes) and then rescaled by ``2/(p(ℓ_t) + p(u_t))`` so that it is centred
  on ``[ℓ_t, u_t]``; the next interval is ``[p(ℓ_t), 2 − p(ℓ_t)]``.
- ``safety`` (1.01): every step but the last becomes ``p(x/1.01)``, i.e. ``(a/1.01, b/1.01³,
  c/1.01⁵)``, applied after the design (the tracked intervals ignore it), as in the published code.
- ``normalization_margin`` (1.01): ``X₀ = X / (1.01‖X‖_F + eps)``, stored as ``Schedule.safety``.

With those settings (``lo = 1e-3``, 8 steps) the design reproduces the published list: steps 1–6 to
≤ 4e-15 relative, step 7 (``ρ = 0.9988``, an ill-conditioned solve) to 5e-11 — the 50-digit
optimum sits 2.5e-11 from the published float64 value — and step 8 is the flat limit
``(1.875, −1.25, 0.375)``, which the paper lists on ``[1, 1]`` and the design scales by
``u_8 = 1 + 1.04e-9`` (5.2e-9 relative). Without them (the default) the design is the exact greedy
optimum, with a smaller worst-case error on ``[1e-3, 1]`` than the published list (0.1134 vs
0.1236 at 5 steps, 9.16e-4 vs 1.18e-3 at 6; with the shipped 1.01 factors 0.160 and 6.5e-3).

Every designed schedule carries its output band from the existing predictor
(:func:`~matbal.kernels.orthogonalize.analysis.output_band`, same interval convention), and
:func:`equioscillation` checks a step's alternation exactly (sympy).

Example
-------
>>> from matbal.kernels.orthogonalize.design import design_schedule
>>> s = design_schedule(1e-4, steps=5)
>>> len(s.coefficients), s.default_steps
(5, 5)
>>> lo, hi = s.band
>>> round(lo, 4), round(hi, 4), round(s.worst_error, 4) == round(s.step_errors[-1], 4)
(0.2361, 1.7639, True)

References
----------
- Amsel, Persson, Musco, Gower, "The Polar Express: Optimal Matrix Sign Methods and Their
  Application to the Muon Algorithm", arXiv 2505.16932 (Thm. 4.1: greedy is optimal; App. D: Remez;
  App. G: construction code with cushion and the 1.01 safety); github.com/NoahAmsel/PolarExpress.
- Grishina, Smirnov, Rakhuba, "Accelerating Newton–Schulz Iteration for Orthogonalization via
  Chebyshev-type Polynomials" (CANS), arXiv 2506.10935 (optimal odd cubic, Chebyshev alternance).
- E. Ya. Remez (1934); L. N. Trefethen, "Approximation Theory and Approximation Practice", ch. 10
  (equioscillation) — for the exchange algorithm.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import mpmath

from .._checks import check_positive
from .schedules import Schedule, _as_coeffs, _check_interval

__all__ = [
    "design_schedule",
    "DesignedSchedule",
    "optimal_step",
    "equioscillation",
    "Equioscillation",
    "POLAR_EXPRESS_CUSHION",
    "POLAR_EXPRESS_SETTINGS",
]

#: The cushion of the published Polar Express list (arXiv 2505.16932 App. G).
POLAR_EXPRESS_CUSHION = 0.02407327424182761
#: ``design_schedule(1e-3, steps=8, **POLAR_EXPRESS_SETTINGS)`` reproduces the published list.
POLAR_EXPRESS_SETTINGS = MappingProxyType({"cushion": POLAR_EXPRESS_CUSHION, "safety": 1.01,
                                           "normalization_margin": 1.01})

_DPS = 50  # working digits of the Remez solve
_FLAT = 5e-6  # 1 − ℓ/u below which the flat limit polynomial is used (reference code's rule)


@dataclass(frozen=True)
class DesignedSchedule(Schedule):
    """A :class:`Schedule` designed by :func:`design_schedule`, with its design record.

    Extra fields: ``lo, hi`` (the design interval), ``intervals`` (``[ℓ_t, u_t]`` each step was
    designed for, before ``safety``), ``step_errors`` (``E_t = 1 − p_t(ℓ_t)``: the step's worst
    error on its interval), ``band`` (``output_band(self, steps, lo, hi)``: the exact output band
    of the finished schedule from the predictor, safety and margin included) and ``worst_error``
    (``max(1 − band[0], band[1] − 1)``).
    """

    lo: float = 0.0
    hi: float = 1.0
    intervals: tuple = ()
    step_errors: tuple = ()
    band: tuple = (math.nan, math.nan)
    worst_error: float = math.nan


def _flat_limit(m: int) -> list:
    """Odd ``p`` of ``m`` terms with ``p(1) = 1`` and ``p^{(k)}(1) = 0`` for ``1 ≤ k < m``."""
    rows = [[mpmath.mpf(math.perm(2 * i + 1, k)) for i in range(m)] for k in range(m)]
    sol = mpmath.lu_solve(mpmath.matrix(rows), mpmath.matrix([1] + [0] * (m - 1)))
    return [sol[i] for i in range(m)]


def _remez_unit(rho, m: int) -> tuple[list, Any]:
    """Optimal odd ``p`` (``m`` terms) for ``max_[ρ,1] |1 − p|`` and its error, in mpmath."""
    xs = [rho + (1 - rho) * (1 - mpmath.cos(j * mpmath.pi / m)) / 2 for j in range(m + 1)]
    xs[0], xs[-1] = rho, mpmath.mpf(1)
    E_old = None
    tol = mpmath.mpf(10) ** (-(_DPS - 10))
    for _ in range(100):
        A = mpmath.matrix([[x ** (2 * i + 1) for i in range(m)] + [(-1) ** j]
                           for j, x in enumerate(xs)])
        sol = mpmath.lu_solve(A, mpmath.matrix([1] * (m + 1)))
        c, E = [sol[i] for i in range(m)], sol[m]
        if E_old is not None and abs(E - E_old) < tol:
            return c, E
        E_old = E
        if m > 1:  # interior extrema: p'(x) = Σ (2i+1) c_i x^{2i} = 0, a polynomial in y = x²
            ys = mpmath.polyroots([(2 * i + 1) * c[i] for i in reversed(range(m))],
                                  maxsteps=200, extraprec=2 * _DPS)
            ys = sorted(mpmath.re(y) for y in ys)
            inner = [mpmath.sqrt(y) for y in ys if y > 0]
            if len(inner) != m - 1 or not all(rho < x < 1 for x in inner):
                raise RuntimeError(f"Remez exchange lost its alternation on [{float(rho)!r}, 1]")
            xs = [rho] + inner + [mpmath.mpf(1)]
    raise RuntimeError(f"Remez exchange did not converge on [{float(rho)!r}, 1]")


def _poly(c, x):
    return sum(ci * x ** (2 * i + 1) for i, ci in enumerate(c))


def _optimal_mp(lo, hi, m: int) -> list:
    rho = lo / hi
    c = _flat_limit(m) if 1 - rho <= _FLAT else _remez_unit(rho, m)[0]
    return [ci / hi ** (2 * i + 1) for i, ci in enumerate(c)]


def _check_degree(degree: Any) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int):
        raise TypeError(f"degree must be an odd int >= 3, got {degree!r}")
    if degree < 3 or degree % 2 == 0:
        raise ValueError(f"degree must be an odd int >= 3, got {degree!r}")
    return (degree + 1) // 2


def optimal_step(lo: float, hi: float = 1.0, degree: int = 5) -> tuple[tuple[float, ...], float]:
    """One greedy step: the odd polynomial of ``degree`` minimizing ``max_[lo,hi] |1 − p(x)|``.

    Returns ``(coefficients, E)``: ``(c_0, c_1, …)`` of ``p(x) = c_0x + c_1x³ + …`` (float64,
    rounded once from a 50-digit Remez solve) and the minimax error ``E`` (``p`` maps ``[lo, hi]``
    onto ``[1 − E, 1 + E]``).

    >>> (a, b), E = optimal_step(0.1, 1.0, degree=3)   # the CANS cubic
    >>> round(a, 6), round(b, 6), round(E, 6)
    (3.963405, -3.570635, 0.60723)
    """
    lo, hi = _check_interval(lo, hi)
    m = _check_degree(degree)
    with mpmath.workdps(_DPS):
        c = _optimal_mp(mpmath.mpf(lo), mpmath.mpf(hi), m)
        E = 1 - _poly(c, mpmath.mpf(lo))
        return tuple(float(ci) for ci in c), float(E)


def design_schedule(
    lo: float,
    hi: float = 1.0,
    steps: int = 5,
    degree: int = 5,
    *,
    safety: float = 1.0,
    normalization_margin: float = 1.0,
    cushion: float = 0.0,
) -> DesignedSchedule:
    """The best ``steps``-step odd-polynomial schedule for normalized singular values in
    ``[lo, hi]`` (greedy minimax, optimal over all compositions: arXiv 2505.16932 Thm. 4.1).

    Parameters
    ----------
    lo, hi : float, ``0 < lo ≤ hi``
        The interval of ``σ/‖X‖_F`` to be mapped to 1 (e.g. a recorded ``x_min`` and 1), in the
        convention of :func:`~matbal.kernels.orthogonalize.analysis.output_band`.
    steps : int
        Number of steps (the result has exactly this many; ``default_steps = steps``).
    degree : int
        Odd degree of each step: 5 gives ``(a, b, c)`` per step, 3 gives ``(a, b)`` (CANS), 7 …
    safety : float ≥ 1
        Every step but the last becomes ``p(x/safety)`` after the design (published list: 1.01).
    normalization_margin : float ≥ 1
        ``X₀ = X/(margin·‖X‖_F + eps)``: stored as the schedule's ``safety`` (published: 1.01).
    cushion : float in [0, 1)
        Optimize step ``t`` on ``[max(ℓ_t, cushion·u_t), u_t]`` and recentre (published: 0.0241).

    Returns
    -------
    DesignedSchedule
        Accepted by ``newton_schulz(schedule=...)`` and every analysis function; ``band`` and
        ``worst_error`` come from ``output_band`` on ``[lo, hi]``.

    Cost: a few milliseconds per step (50-digit Remez) plus one ``output_band`` evaluation.

    >>> s = design_schedule(1e-3, steps=5)
    >>> pe = design_schedule(1e-3, steps=8, **POLAR_EXPRESS_SETTINGS)
    >>> from matbal.kernels.orthogonalize import worst_case_error
    >>> s.worst_error < worst_case_error(pe, 5, 1e-3)
    True
    >>> [round(v, 6) for v in design_schedule(0.1, steps=2, degree=3).coefficients[0]]  # (a, b)
    [3.963405, -3.570635]
    """
    from .analysis import output_band  # analysis imports schedules; keep the layer acyclic

    lo, hi = _check_interval(lo, hi)
    m = _check_degree(degree)
    check_positive(steps, "steps", integer=True)
    for name, v in (("safety", safety), ("normalization_margin", normalization_margin)):
        check_positive(v, name)
        if v < 1:
            raise ValueError(f"{name} must be >= 1 (a divisor that shrinks the interval), got {v!r}")
    check_positive(cushion, "cushion", allow_zero=True)
    if cushion >= 1:
        raise ValueError(f"cushion must be in [0, 1), got {cushion!r}")

    coeffs, intervals, errors = [], [], []
    with mpmath.workdps(_DPS):
        l, u = mpmath.mpf(lo), mpmath.mpf(hi)
        for _ in range(int(steps)):
            l_fit = max(l, cushion * u)
            c = _optimal_mp(l_fit, u, m)
            if l_fit > l:  # cushioned: recentre on [l, u]
                k = 2 / (_poly(c, l) + _poly(c, u))
                c = [ci * k for ci in c]
            intervals.append((float(l), float(u)))
            l_next = _poly(c, l)
            errors.append(max(0.0, float(1 - l_next)))  # ≥ 0; below 1e-40 is working-precision noise
            coeffs.append(c)
            l, u = l_next, 2 - l_next
        out = []
        for t, c in enumerate(coeffs):
            s = mpmath.mpf(safety) if t < len(coeffs) - 1 else mpmath.mpf(1)
            out.append(tuple(float(ci / s ** (2 * i + 1)) for i, ci in enumerate(c)))
    opts = ", ".join(f"{k}={v:g}" for k, v in (("safety", safety), ("margin", normalization_margin),
                                                 ("cushion", cushion)) if v not in (0, 1))
    name = f"designed(lo={lo:g},hi={hi:g},steps={steps},degree={degree}{', ' if opts else ''}{opts})"
    sched = Schedule(name, tuple(out), default_steps=int(steps),
                     safety=None if normalization_margin == 1 else float(normalization_margin))
    band = output_band(sched, int(steps), lo, hi)
    return DesignedSchedule(
        name, sched.coefficients,
        source=("greedy minimax (Remez) design, arXiv 2505.16932 Thm. 4.1 / App. D, CANS arXiv "
                f"2506.10935; output band on [{lo:g}, {hi:g}] = [{band[0]:.6g}, {band[1]:.6g}]"),
        safety=sched.safety, default_steps=int(steps), lo=lo, hi=hi,
        intervals=tuple(intervals), step_errors=tuple(errors), band=band,
        worst_error=max(1.0 - band[0], band[1] - 1.0),
    )


@dataclass(frozen=True)
class Equioscillation:
    """Exact extremal structure of ``p − 1`` on ``[lo, hi]`` (from :func:`equioscillation`).

    ``points``: the endpoints and the interior critical points of ``p``; ``errors``:
    ``p(x) − 1`` there (30 significant digits); ``alternates``: the signs alternate starting
    negative at ``lo`` and there are ``m + 1`` points (``m`` = number of coefficients);
    ``level``: ``max |errors|``; ``spread``: ``max |errors| − min |errors|`` (0 for exact
    equioscillation; evaluated exactly for the float64 coefficients, so their rounding shows as
    a spread of ~1e-16 relative to the coefficients).
    """

    points: tuple[float, ...]
    errors: tuple[float, ...]
    alternates: bool
    level: float
    spread: float


def equioscillation(coeffs, lo: float, hi: float) -> Equioscillation:
    """sympy check that ``p − 1`` equioscillates on ``[lo, hi]`` (the minimax certificate).

    The critical points of ``p`` are isolated exactly (rational coefficients from the floats'
    decimal repr, ``Poly.real_roots``); an odd ``p`` with ``m`` coefficients is the minimax
    approximation of 1 on ``[lo, hi]`` iff ``p − 1`` attains ``±E`` with alternating signs at
    ``m + 1`` points (Chebyshev; the odd polynomials form a Haar space on ``x > 0``).

    >>> from matbal.kernels.orthogonalize.design import design_schedule
    >>> s = design_schedule(1e-3, steps=1)
    >>> eq = equioscillation(s.coefficients[0], 1e-3, 1.0)
    >>> eq.alternates, len(eq.points), eq.spread < 1e-12
    (True, 4, True)
    """
    import sympy as sp

    from .symbolic import X, _rational, _real_roots, exact_step

    lo, hi = _check_interval(lo, hi)
    co = _as_coeffs(coeffs, "coeffs")
    if not lo < hi:
        raise ValueError(f"need lo < hi for an alternation, got lo={lo!r}, hi={hi!r}")
    p = exact_step(co)
    a, b = _rational(lo), _rational(hi)
    crit = [r for r in _real_roots(p.diff(X)) if a < r < b]
    pts = [a, *crit, b]
    errs = tuple(float(sp.N(p.as_expr().subs(X, x) - 1, 30)) for x in pts)
    signs = [math.copysign(1.0, e) for e in errs]
    alternates = len(pts) == len(co) + 1 and signs[0] < 0 and all(
        signs[j] == -signs[j - 1] for j in range(1, len(signs)))
    mags = [abs(e) for e in errs]
    return Equioscillation(tuple(float(sp.N(x, 30)) for x in pts), errs, alternates, max(mags),
                           max(mags) - min(mags))
