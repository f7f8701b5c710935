"""Training arms that differ only in how the update is orthogonalized, and their predicted NS error.

The training studies of Newton–Schulz accuracy (``ns_need_gpt``, ``nslr1_ns_error_lr``) compare
one optimizer family with several orthogonalizers: Muon's quintic NS with ``k`` steps, a cubic
schedule, or the exact polar factor (SVD). What they share:

- :data:`ORTHOGONALIZERS` — orthogonalizer name → ``(schedule, steps)`` (``(None, None)``: the
  exact polar factor), as data;
- :data:`FAMILIES` — a family's preset, its exact-polar control in
  :data:`matbal.lab.training.LAB_PRESETS` and the preset's keyword arguments;
- :func:`ortho_arm` — the :class:`~matbal.lab.training.Arm` ``<family>-<ortho>`` at a given lr;
- :func:`band_error` — the worst-case spectral error ``max_{x∈[lo,1]} |1 − P_k(x)|`` of the
  orthogonalizer on normalized singular values (:func:`matbal.worst_case_error`; 0 for the exact
  polar factor);
- :func:`spectrum_error` — the error NS_k makes *on a given matrix*, predicted exactly from its
  singular values: Newton–Schulz acts on singular values alone,
  ``NS_k(M) = U diag(P_k(σ_i/(s‖M‖_F + ε))) Vᵀ`` (:func:`matbal.predict_singular_values`), so with
  the full-rank polar factor ``polar(M) = U Vᵀ``

  .. math::

     e_F = \\frac{\\|NS_k(M) - \\mathrm{polar}(M)\\|_F}{\\|\\mathrm{polar}(M)\\|_F}
         = \\sqrt{\\tfrac1r \\textstyle\\sum_i (1 - P_k(x_i))^2},\\qquad
     \\rho = \\frac{\\|NS_k(M)\\|_F}{\\|\\mathrm{polar}(M)\\|_F}
         = \\sqrt{\\tfrac1r \\textstyle\\sum_i P_k(x_i)^2},

  ``x_i = σ_i/(s‖M‖_F + ε)``, ``r = min(m, n)``. ``ρ`` is the update's size relative to the
  exact polar update (Muon's shape scale assumes ``ρ = 1``).

>>> ortho_arm("plain", "ns3", lr=0.03, adamw_lr=0.003).optimizer_kwargs["ns_steps"]
3
>>> spectrum_error([1.0, 1.0], "exact")
{'error_fro': 0.0, 'size_ratio': 1.0}
>>> round(band_error("ns5", 1e-2), 3)       # Muon's NS5 on [1e-2, 1]: the band [0.68, 1.13]
0.318

Layer-6 helper (see :mod:`matbal.lab`): experiments call these; nothing in matbal imports them.
References: Muon (K. Jordan, 2024) for the quintic coefficients; Polar Express arXiv 2505.16932
§3 for the scalar-map view of NS.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .training import Arm

__all__ = ["ORTHOGONALIZERS", "FAMILIES", "ortho_arm", "band_error", "spectrum_error"]

#: Orthogonalizer name → (schedule, steps); ``(None, None)`` = the exact polar factor (SVD).
ORTHOGONALIZERS: dict[str, tuple[str | None, int | None]] = {
    "ns1": ("muon", 1), "ns2": ("muon", 2), "ns3": ("muon", 3), "ns5": ("muon", 5),
    "ns8": ("muon", 8), "cubic5": ("cubic", 5), "exact": (None, None),
}

#: Family → its NS preset, that preset's exact-polar control and the preset's keyword arguments.
#: ``plain``: Muon's momentum with MuonEq's update scale ``0.2·√max(m,n)`` (scale-matched Muon);
#: ``R``: MuonEq-R (row-balanced momentum).
FAMILIES: dict[str, dict[str, Any]] = {
    "plain": {"preset": "muon", "exact": "polar-m", "kwargs": {"shape_rule": "match_rms_adamw"}},
    "R": {"preset": "muoneq-r", "exact": "polar-rm", "kwargs": {}},
}


def _ortho(ortho: str) -> tuple[str | None, int | None]:
    if ortho not in ORTHOGONALIZERS:
        raise ValueError(f"ortho must be one of {list(ORTHOGONALIZERS)}, got {ortho!r}")
    return ORTHOGONALIZERS[ortho]


def ortho_arm(family: str, ortho: str, *, lr: float | None, adamw_lr: float | None,
              label: str | None = None) -> Arm:
    """The arm of ``family`` (:data:`FAMILIES`) with orthogonalizer ``ortho``
    (:data:`ORTHOGONALIZERS`) at ``lr``; label ``<family>-<ortho>`` unless given."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    fam, (schedule, steps) = FAMILIES[family], _ortho(ortho)
    if schedule is None:
        opt, kw = fam["exact"], {}
    else:
        opt, kw = fam["preset"], {**fam["kwargs"], "schedule": schedule, "ns_steps": steps}
    return Arm(label or f"{family}-{ortho}", opt, lr=lr, adamw_lr=adamw_lr, optimizer_kwargs=kw)


def band_error(ortho: str, lo: float) -> float:
    """``max_{x∈[lo,1]} |1 − P_k(x)|`` of ``ortho`` (0 for the exact polar factor)."""
    from .. import worst_case_error

    schedule, steps = _ortho(ortho)
    return 0.0 if schedule is None else float(worst_case_error(schedule, steps, lo))


def spectrum_error(sigma, ortho: str, *, eps: float = 1e-7) -> dict[str, float]:
    """Relative Frobenius error ``e_F`` and size ratio ``ρ`` (module docstring) of ``ortho`` on a
    matrix with singular values ``sigma`` (all ``min(m, n)`` of them, any order), with the
    normalization of :func:`matbal.newton_schulz` (Frobenius, the schedule's safety, ``eps``).

    A zero matrix has no polar direction: ``{'error_fro': 0.0, 'size_ratio': 0.0}`` (never NaN).
    """
    from .. import predict_singular_values

    s = np.asarray(sigma, dtype=np.float64).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("sigma must be a non-empty array of finite, nonnegative singular values")
    schedule, steps = _ortho(ortho)
    if not np.any(s > 0):
        return {"error_fro": 0.0, "size_ratio": 0.0}
    if schedule is None:
        return {"error_fro": 0.0, "size_ratio": 1.0}
    p = np.asarray(predict_singular_values(s, schedule=schedule, steps=steps, eps=eps))
    return {"error_fro": float(math.sqrt(np.mean((1.0 - p) ** 2))),
            "size_ratio": float(math.sqrt(np.mean(p ** 2)))}

