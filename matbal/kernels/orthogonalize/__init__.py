"""Orthogonalization kernels: Newton–Schulz iterations, the exact polar reference, and schedules.

- :func:`newton_schulz` — batched ``(..., m, n)`` NS with any :class:`Schedule`
  (``"muon"``, ``"polar_express"``, ``"you"``, ``"you6"``, ``"cubic"``, ``"quintic_pade"``,
  :func:`cans_cubic`, :func:`cans_schedule`, or your own coefficient tuples).
- :func:`polar` — exact ``UVᵀ`` via float64 SVD (the reference).
- :mod:`.analysis` — the exact scalar predictor: ``predict_singular_values``, ``output_band``,
  ``worst_case_error``, ``steps_to_accuracy``.
- :mod:`.design` — :func:`design_schedule`: the best ``k``-step schedule for ``[lo, hi]`` (greedy
  minimax/Remez of Polar Express and CANS), and :func:`equioscillation`, its sympy certificate.
- :mod:`.fit` — :func:`schedule_for`: one call from your recorded matrices (or their measured
  ``x_min``) to the designed schedule for a quantile of their ``x_min``, optionally the shortest
  one within a worst-case error.
- :mod:`.symbolic` — sympy: exact step polynomials, fixed points and their stability, extrema.

Example
-------
>>> import torch
>>> from matbal.kernels.orthogonalize import newton_schulz, polar, predict_singular_values
>>> x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
>>> o = newton_schulz(x)                      # Muon NS5
>>> s = torch.linalg.svdvals(x)
>>> bool(torch.allclose(torch.linalg.svdvals(o), predict_singular_values(s).sort(descending=True).values))
True
"""
from .analysis import (
    compose,
    output_band,
    predict_singular_values,
    step_polynomial,
    steps_to_accuracy,
    lift_threshold,
    worst_case_error,
)
from .design import (
    POLAR_EXPRESS_SETTINGS,
    DesignedSchedule,
    design_schedule,
    equioscillation,
    optimal_step,
)
from .fit import measured_x_min, schedule_for
from .newton_schulz import NORMALIZATIONS, newton_schulz, working_dtype
from .polar import polar
from .schedules import (
    POLAR_EXPRESS_PUBLISHED,
    SCHEDULES,
    Schedule,
    cans_cubic,
    cans_schedule,
    get_schedule,
)
from .symbolic import describe

__all__ = [
    "newton_schulz",
    "polar",
    "working_dtype",
    "NORMALIZATIONS",
    "Schedule",
    "SCHEDULES",
    "POLAR_EXPRESS_PUBLISHED",
    "get_schedule",
    "cans_cubic",
    "cans_schedule",
    "step_polynomial",
    "compose",
    "predict_singular_values",
    "output_band",
    "worst_case_error",
    "steps_to_accuracy",
    "lift_threshold",
    "describe",
    "design_schedule",
    "DesignedSchedule",
    "optimal_step",
    "equioscillation",
    "POLAR_EXPRESS_SETTINGS",
    "schedule_for",
    "measured_x_min",
]
