"""Exact (sympy) view of Newton–Schulz step polynomials: fixed points, stability, extrema.

Coefficients are turned into rationals through their shortest round-trip decimal
(``Rational(repr(c))``): ``3.4445 → 6889/2000``, ``3955/1024 → 3955/1024`` exactly, so published
decimal constants are represented exactly; float-derived ones (e.g. Polar Express after the
``/1.01`` safety) are exact for the float's decimal repr. Roots are isolated exactly
(``Poly.real_roots``) and then evaluated.

Example
-------
>>> from matbal.kernels.orthogonalize.symbolic import fixed_points, extrema
>>> [round(f.x, 3) for f in fixed_points((3.4445, -4.7750, 2.0315))]
[0.0, 0.868, 1.264]
>>> e = max(extrema((3.4445, -4.7750, 2.0315)), key=lambda e: e.value)
>>> round(e.x, 4), round(e.value, 4)
(0.5545, 1.2024)

References: Keller Jordan, Muon blog (2024); Polar Express arXiv 2505.16932; CANS arXiv
2506.10935; Higham, "Functions of Matrices" (2008) §8.3.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from .schedules import _as_coeffs, get_schedule

__all__ = [
    "X",
    "exact_step",
    "compose_exact",
    "fixed_points",
    "slope_at_zero",
    "extrema",
    "FixedPoint",
    "Extremum",
    "StepDescription",
    "ScheduleDescription",
    "describe",
]

#: The symbol every polynomial here is written in.
X = sp.Symbol("x", real=True)


def _rational(c: float) -> sp.Rational:
    return sp.Rational(repr(float(c)))


def exact_step(coeffs) -> sp.Poly:
    """``p(x) = c₀x + c₁x³ + c₂x⁵ + …`` with rational coefficients, as a ``sympy.Poly`` over QQ.

    >>> exact_step((1.5, -0.5)).as_expr()
    -x**3/2 + 3*x/2
    """
    co = _as_coeffs(coeffs, "coeffs")
    return sp.Poly(sum(_rational(c) * X ** (2 * i + 1) for i, c in enumerate(co)), X, domain="QQ")


def compose_exact(schedule: Any, steps: int | None = None, *, max_degree: int = 5**4) -> sp.Poly:
    """``P_k = p_k ∘ … ∘ p_1`` exactly. Refuses degrees above ``max_degree`` (exact rationals grow
    fast: 5 quintic steps have degree 3125).

    >>> compose_exact("cubic", 2).degree()
    9
    """
    coeffs = get_schedule(schedule).steps(steps)
    deg = 1
    for c in coeffs:
        deg *= 2 * len(c) - 1
    if deg > max_degree:
        raise ValueError(f"composed degree {deg} exceeds max_degree={max_degree}; raise it explicitly")
    P = sp.Poly(X, X, domain="QQ")
    for c in coeffs:
        P = exact_step(c).compose(P)
    return P


@dataclass(frozen=True)
class FixedPoint:
    """A real fixed point ``p(x*) = x*`` with slope ``p'(x*)``; attracting iff ``|p'(x*)| < 1``."""

    x: float
    slope: float
    attracting: bool
    exact: Any = None


@dataclass(frozen=True)
class Extremum:
    """A critical point (``p'(x) = 0``; ``kind`` "max"/"min"/"flat") or an interval endpoint."""

    x: float
    value: float
    kind: str


def _real_roots(poly: sp.Poly) -> list:
    if poly.is_zero:
        return []
    return sorted(set(poly.real_roots()), key=lambda r: float(r))


def fixed_points(coeffs, *, nonnegative: bool = True) -> list[FixedPoint]:
    """Real roots of ``p(x) = x`` (only ``x ≥ 0`` by default: ``p`` is odd) and their stability.

    >>> [f.attracting for f in fixed_points((1.5, -0.5))]
    [False, True]
    """
    p = exact_step(coeffs)
    dp = p.diff(X)
    out = []
    for r in _real_roots(p - sp.Poly(X, X, domain="QQ")):
        xv = float(sp.N(r, 30))
        if nonnegative and xv < 0:
            continue
        slope = float(sp.N(dp.as_expr().subs(X, r), 30))
        out.append(FixedPoint(x=xv, slope=slope, attracting=abs(slope) < 1, exact=r))
    return out


def slope_at_zero(coeffs) -> sp.Rational:
    """``p'(0) = c₀`` exactly (the factor by which a tiny singular value grows per step).

    >>> slope_at_zero((3.4445, -4.7750, 2.0315))
    6889/2000
    """
    return exact_step(coeffs).diff(X).eval(0)


def extrema(coeffs, interval: tuple[float, float] = (0.0, 1.0)) -> list[Extremum]:
    """Critical points of ``p`` inside ``interval`` (kind from ``p''``) plus both endpoints,
    sorted by ``x``.

    >>> [(e.kind, e.value) for e in extrema((1.5, -0.5))]
    [('endpoint', 0.0), ('endpoint', 1.0)]
    """
    lo, hi = (float(v) for v in interval)
    if not lo < hi:
        raise ValueError(f"interval must satisfy lo < hi, got {interval!r}")
    p = exact_step(coeffs)
    dp, d2p = p.diff(X), p.diff(X).diff(X)
    pts = [Extremum(lo, float(p.eval(_rational(lo))), "endpoint")]
    for r in _real_roots(dp):
        xv = float(sp.N(r, 30))
        if lo < xv < hi:
            curv = float(sp.N(d2p.as_expr().subs(X, r), 30))
            kind = "max" if curv < 0 else "min" if curv > 0 else "flat"
            pts.append(Extremum(xv, float(sp.N(p.as_expr().subs(X, r), 30)), kind))
    pts.append(Extremum(hi, float(p.eval(_rational(hi))), "endpoint"))
    return pts


@dataclass(frozen=True)
class StepDescription:
    """Exact facts about one step polynomial (values on ``[0, 1]``)."""

    coefficients: tuple[float, ...]
    polynomial: str
    degree: int
    slope_at_zero: float
    fixed_points: tuple[FixedPoint, ...]
    extrema: tuple[Extremum, ...]
    max_on_unit: tuple[float, float]  # (x, p(x)) of the largest value on [0, 1]


@dataclass(frozen=True)
class ScheduleDescription:
    """``describe`` result: one :class:`StepDescription` per *distinct* step, in order."""

    name: str
    source: str
    safety: float | None
    degree: int
    steps: tuple[StepDescription, ...]


def _describe_step(co) -> StepDescription:
    p = exact_step(co)
    ex = tuple(extrema(co))
    top = max(ex, key=lambda e: e.value)
    return StepDescription(
        coefficients=tuple(co),
        polynomial=str(p.as_expr()),
        degree=p.degree(),
        slope_at_zero=float(slope_at_zero(co)),
        fixed_points=tuple(fixed_points(co)),
        extrema=ex,
        max_on_unit=(top.x, top.value),
    )


def describe(schedule: Any) -> ScheduleDescription:
    """Exact per-step description of a schedule (its distinct listed steps, not the extension).

    >>> d = describe("muon"); round(d.steps[0].max_on_unit[1], 4)
    1.2024
    """
    sched = get_schedule(schedule)
    seen, steps = set(), []
    for co in sched.coefficients:
        if co not in seen:
            seen.add(co)
            steps.append(_describe_step(co))
    return ScheduleDescription(sched.name, sched.source, sched.safety, sched.degree, tuple(steps))
