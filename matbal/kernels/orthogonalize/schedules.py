"""Newton–Schulz coefficient schedules as data, each with its provenance.

A step polynomial is odd, ``p(x) = x·(c_0 + c_1 x² + c_2 x⁴ + …)``, stored as the tuple
``(c_0, c_1, c_2, …)``: ``(a, b)`` is the cubic ``ax + bx³``, ``(a, b, c)`` the quintic
``ax + bx³ + cx⁵``. Applied to a matrix (wide side, ``A = XXᵀ``) the step is
``X ← (c_0 I + c_1 A + c_2 A² + …) X``, which maps every singular value ``σ ↦ p(σ)``.

A :class:`Schedule` is an immutable list of such tuples plus how to extend it past its length
(``repeat_last`` or ``cycle``; otherwise asking for more steps than it holds is an error), the
safety factor its reference code divides the initial normalization by, a default step count and a
source string. ``get_schedule`` resolves a registry name, a ``Schedule``, one flat tuple (a single
step repeated, like Muon) or a list of tuples (a fixed user schedule).

Example
-------
>>> from matbal.kernels.orthogonalize import get_schedule
>>> s = get_schedule("muon")
>>> s.steps(2)
[(3.4445, -4.775, 2.0315), (3.4445, -4.775, 2.0315)]
>>> get_schedule("polar_express").safety
1.01

References
----------
- Keller Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (blog, 2024),
  https://kellerjordan.github.io/posts/muon/ ; code github.com/KellerJordan/Muon ``muon.py``.
- Amsel, Persson, Musco, Gower, "The Polar Express: Optimal Matrix Sign Methods and Their
  Application to the Muon Algorithm", arXiv 2505.16932; code github.com/NoahAmsel/PolarExpress.
- Grishina, Smirnov, Rakhuba, "Accelerating Newton–Schulz Iteration for Orthogonalization via
  Chebyshev-type Polynomials" (CANS), arXiv 2506.10935.
- Jiacheng You's 5-step schedule (x.com/YouJiacheng/status/1905861218138804534), as used in
  github.com/microsoft/dion ``dion/newton_schulz_triton.py`` and github.com/HomebrewML/HeavyBall
  ``heavyball/utils.py`` (``zeropower_via_newtonschulz5``); his earlier 6-step schedule
  (x.com/YouJiacheng/status/1893704552689303901, in the modula docs) is ``"you6"``.
- N. J. Higham, "Functions of Matrices: Theory and Computation", SIAM 2008, §8.3 (Newton–Schulz).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = [
    "Schedule",
    "SCHEDULES",
    "get_schedule",
    "cans_cubic",
    "cans_schedule",
    "POLAR_EXPRESS_PUBLISHED",
]

Coeffs = tuple[float, ...]


def _as_coeffs(c: Any, where: str) -> Coeffs:
    if isinstance(c, (str, bytes)) or not hasattr(c, "__len__"):
        raise TypeError(f"{where} must be a tuple of numbers like (a, b) or (a, b, c), got {c!r}")
    if len(c) < 1:
        raise ValueError(f"{where} must hold at least one coefficient, got {c!r}")
    out = []
    for v in c:
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
            raise TypeError(f"{where} must contain real numbers, got {v!r}")
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"{where} must contain finite numbers, got {v!r}")
        out.append(f)
    return tuple(out)


@dataclass(frozen=True)
class Schedule:
    """An immutable Newton–Schulz coefficient schedule with provenance.

    Parameters
    ----------
    name : str
        Registry name (or ``"custom"``).
    coefficients : tuple of tuples
        Per-step odd-polynomial coefficients ``(c_0, c_1, …)`` of ``x(c_0 + c_1x² + …)``.
    source : str
        Paper id / repository and file the numbers were copied from.
    repeat_last : bool
        Steps past the end of the list repeat the last tuple.
    cycle : bool
        Steps past the end cycle through the list again (exclusive with ``repeat_last``).
        With neither, ``steps(k)`` for ``k > len(coefficients)`` raises.
    safety : float or None
        The reference code's initial scaling ``X₀ = X / (safety·‖X‖ + eps)``; ``None`` means 1.
        (Per-step safety, when a source uses one, is already folded into ``coefficients``.)
    default_steps : int or None
        Step count used when ``newton_schulz(steps=None)``; ``None``: the caller must give one.
    """

    name: str
    coefficients: tuple[Coeffs, ...]
    source: str = ""
    repeat_last: bool = False
    cycle: bool = False
    safety: float | None = None
    default_steps: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.coefficients, (tuple, list)) or len(self.coefficients) == 0:
            raise ValueError(f"schedule {self.name!r}: coefficients must be a non-empty sequence of tuples")
        coeffs = tuple(
            _as_coeffs(c, f"schedule {self.name!r} step {i}") for i, c in enumerate(self.coefficients)
        )
        object.__setattr__(self, "coefficients", coeffs)
        if self.repeat_last and self.cycle:
            raise ValueError(f"schedule {self.name!r}: repeat_last and cycle are exclusive")
        if self.safety is not None and not (math.isfinite(self.safety) and self.safety > 0):
            raise ValueError(f"schedule {self.name!r}: safety must be finite and > 0, got {self.safety!r}")
        if self.default_steps is not None and (
            isinstance(self.default_steps, bool)
            or not isinstance(self.default_steps, int)
            or self.default_steps < 1
        ):
            raise ValueError(f"schedule {self.name!r}: default_steps must be a positive int or None")

    @property
    def degree(self) -> int:
        """Largest polynomial degree of any step (3 for cubic, 5 for quintic)."""
        return max(2 * len(c) - 1 for c in self.coefficients)

    @property
    def scale(self) -> float:
        """The initial-normalization safety factor (1.0 when ``safety`` is None)."""
        return 1.0 if self.safety is None else float(self.safety)

    @property
    def extends(self) -> bool:
        """Whether ``steps(k)`` accepts any ``k``."""
        return self.repeat_last or self.cycle

    def resolve_steps(self, steps: int | None) -> int:
        """``steps`` validated, or the default; raises when neither is available."""
        if steps is None:
            if self.default_steps is None:
                raise ValueError(
                    f"steps is required for schedule {self.name!r} (it has no default step count)"
                )
            return self.default_steps
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise TypeError(f"steps must be a positive int, got {steps!r}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps!r}")
        return int(steps)

    def steps(self, k: int | None = None) -> list[Coeffs]:
        """The per-step coefficient tuples for ``k`` steps (``None``: ``default_steps``).

        Past the end of the list: the last tuple repeats (``repeat_last``), the list restarts
        (``cycle``), or a ``ValueError`` is raised (fixed-length schedule).
        """
        k = self.resolve_steps(k)
        n = len(self.coefficients)
        if k <= n:
            return list(self.coefficients[:k])
        if self.repeat_last:
            return list(self.coefficients) + [self.coefficients[-1]] * (k - n)
        if self.cycle:
            return [self.coefficients[i % n] for i in range(k)]
        raise ValueError(
            f"steps={k} exceeds the {n} steps of fixed-length schedule {self.name!r} "
            "(it neither repeats its last step nor cycles)"
        )


# --- published constants -------------------------------------------------------------------------

_MUON = (3.4445, -4.7750, 2.0315)

#: Polar Express coefficients as printed in arXiv 2505.16932 (before the 1.01 safety factor).
POLAR_EXPRESS_PUBLISHED: tuple[Coeffs, ...] = (
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
)
_PE_SAFETY = 1.01
# As in the reference code: (a/1.01, b/1.01³, c/1.01⁵) on all but the last (repeated) step, i.e.
# p_safe(x) = p(x/1.01); and X₀ = X / (1.01‖X‖_F + 1e-7).
_POLAR_EXPRESS = tuple(
    (a / _PE_SAFETY, b / _PE_SAFETY**3, c / _PE_SAFETY**5) for (a, b, c) in POLAR_EXPRESS_PUBLISHED[:-1]
) + (POLAR_EXPRESS_PUBLISHED[-1],)

_YOU5 = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
_YOU6 = (
    (3955 / 1024, -8306 / 1024, 5008 / 1024),
    (3735 / 1024, -6681 / 1024, 3463 / 1024),
    (3799 / 1024, -6499 / 1024, 3211 / 1024),
    (4019 / 1024, -6385 / 1024, 2906 / 1024),
    (2677 / 1024, -3029 / 1024, 1162 / 1024),
    (2172 / 1024, -1833 / 1024, 682 / 1024),
)

SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule(
            "muon",
            (_MUON,),
            source="Keller Jordan, Muon blog 2024; github KellerJordan/Muon muon.py "
            "zeropower_via_newtonschulz5 (X/(‖X‖_F+1e-7), 5 steps)",
            repeat_last=True,
            default_steps=5,
        ),
        Schedule(
            "polar_express",
            _POLAR_EXPRESS,
            source="arXiv 2505.16932 (published list) with the 1.01 safety of github "
            "NoahAmsel/PolarExpress polar_express.py: (a/1.01, b/1.01^3, c/1.01^5) on all but the "
            "last step, X0 = X/(1.01‖X‖_F + 1e-7); last step repeats",
            repeat_last=True,
            safety=_PE_SAFETY,
            default_steps=5,
        ),
        Schedule(
            "you",
            _YOU5,
            source="Jiacheng You, x.com/YouJiacheng/status/1905861218138804534; verbatim in github "
            "microsoft/dion dion/newton_schulz_triton.py and HomebrewML/HeavyBall heavyball/utils.py "
            "zeropower_via_newtonschulz5 (X/(‖X‖_F+1e-7), exactly 5 steps)",
            default_steps=5,
        ),
        Schedule(
            "you6",
            _YOU6,
            source="Jiacheng You's 6-step schedule, x.com/YouJiacheng/status/1893704552689303901 "
            "(gist YouJiacheng/393c90cbdc23b09d5688815ba382288b); as in the modula docs "
            "(docs.modula.systems/algorithms/newton-schulz), X/‖X‖_F, exactly 6 steps",
            default_steps=6,
        ),
        Schedule(
            "cubic",
            ((1.5, -0.5),),
            source="classical Newton–Schulz, Higham 'Functions of Matrices' (2008) §8.3; converges "
            "for x0 in (0, sqrt(3))",
            repeat_last=True,
        ),
        Schedule(
            "quintic_pade",
            ((15 / 8, -10 / 8, 3 / 8),),
            source="quintic Padé/Newton–Schulz (15x - 10x^3 + 3x^5)/8, Higham 'Functions of "
            "Matrices' (2008) §8.3 / §5.4 (Padé family); also the limit step of arXiv 2505.16932",
            repeat_last=True,
        ),
    )
}


# --- CANS ---------------------------------------------------------------------------------------


def _check_interval(lo: float, hi: float) -> tuple[float, float]:
    for name, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TypeError(f"{name} must be a finite number, got {v!r}")
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < lo <= hi, got lo={lo!r}, hi={hi!r}")
    return float(lo), float(hi)


def _cans_coeffs(lo: float, hi: float) -> tuple[tuple[float, float], float]:
    e = math.sqrt((lo * lo + lo * hi + hi * hi) / 3.0)
    f_lo = 1.5 * lo / e - 0.5 * lo**3 / e**3
    k = 2.0 / (1.0 + f_lo)
    err = (1.0 - f_lo) / (1.0 + f_lo)
    return (k * 1.5 / e, -k * 0.5 / e**3), err


def cans_cubic(lo: float, hi: float) -> Schedule:
    """CANS optimal cubic on ``[lo, hi]``: the odd cubic minimizing ``max_[lo,hi] |1 − p(x)|``.

    Closed form (Chebyshev alternance, arXiv 2506.10935): ``e² = (ℓ² + ℓu + u²)/3``,
    ``f_e(x) = 3x/(2e) − x³/(2e³)`` (max 1 at ``x = e``, ``f_e(ℓ) = f_e(u)``), and
    ``p* = 2/(1 + f_e(ℓ)) · f_e``, which maps ``[ℓ, u]`` onto ``[1 − E, 1 + E]`` with
    ``E = (1 − f_e(ℓ)) / (1 + f_e(ℓ))``. Returned as a one-step schedule that repeats.

    >>> s = cans_cubic(0.1, 1.0); len(s.coefficients[0])
    2
    """
    lo, hi = _check_interval(lo, hi)
    (a, b), err = _cans_coeffs(lo, hi)
    return Schedule(
        f"cans_cubic({lo:g},{hi:g})",
        ((a, b),),
        source=f"CANS closed-form optimal cubic, arXiv 2506.10935; max error on [lo,hi] = {err:.6g}",
        repeat_last=True,
    )


def cans_schedule(lo: float, hi: float, steps: int) -> Schedule:
    """Iterated CANS: ``steps`` optimal cubics, each fitted to the image interval of the last.

    Step ``t`` uses :func:`cans_cubic` on ``[ℓ_t, u_t]`` (``ℓ_0 = lo, u_0 = hi``) and maps it onto
    ``[ℓ_{t+1}, u_{t+1}] = [1 − E_t, 1 + E_t]`` (arXiv 2506.10935). Fixed length, no extension.

    >>> cans_schedule(1e-3, 1.0, 3).default_steps
    3
    """
    lo, hi = _check_interval(lo, hi)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    coeffs, l, u = [], lo, hi
    for _ in range(steps):
        c, err = _cans_coeffs(l, u)
        coeffs.append(c)
        l, u = 1.0 - err, 1.0 + err
    return Schedule(
        f"cans({lo:g},{hi:g},{steps})",
        tuple(coeffs),
        source=f"iterated CANS optimal cubics, arXiv 2506.10935; final band [{l:.6g}, {u:.6g}]",
        default_steps=steps,
    )


def get_schedule(schedule: Any) -> Schedule:
    """Resolve ``schedule``: a registry name, a :class:`Schedule`, one flat tuple of coefficients
    (one step, repeated — like Muon's triple), or a list of tuples (fixed user schedule whose
    default step count is its length).

    >>> get_schedule([(1.5, -0.5), (1.5, -0.5)]).default_steps
    2
    >>> get_schedule((3.4445, -4.7750, 2.0315)).repeat_last
    True
    """
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str):
        key = schedule.lower()
        if key not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {sorted(SCHEDULES)} (or a Schedule / list of coefficient "
                f"tuples), got {schedule!r}"
            )
        return SCHEDULES[key]
    if isinstance(schedule, Sequence) and len(schedule) > 0:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in schedule):
            return Schedule("custom", (tuple(schedule),), source="user", repeat_last=True)
        if all(isinstance(c, Sequence) and not isinstance(c, str) for c in schedule):
            return Schedule(
                "custom", tuple(tuple(c) for c in schedule), source="user", default_steps=len(schedule)
            )
    raise TypeError(
        "schedule must be a name, a Schedule, a coefficient tuple (a, b[, c]) or a list of such "
        f"tuples, got {schedule!r}"
    )
