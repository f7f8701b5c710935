"""matbal: matrix balancing, Newton–Schulz orthogonalization and spectral instruments.

Kernels (``matbal.kernels``) are re-exported here; optimizers live in :mod:`matbal.optim`,
synthetic matrices in :mod:`matbal.synthetic`.

>>> import torch, matbal
>>> x = torch.randn(32, 64, generator=torch.Generator().manual_seed(0))
>>> o = matbal.newton_schulz(x, schedule="polar_express", steps=8)
>>> float(matbal.orthogonality_error(o).spectral) < 1e-2
True
"""
from . import synthetic
from .analysis import ModelAnalysis, analyze_model
from .kernels._checks import ConvergenceWarning
from .kernels.balancing import (
    METHODS as BALANCE_METHODS,
    BalanceResult,
    aol,
    balance,
    knight_ruiz,
    normalize_cols,
    normalize_rows,
    racs,
    rc_scale,
    ruiz,
    sinkhorn_knopp,
)
from .kernels.metrics import (
    Imbalance,
    OrthogonalityError,
    SpectrumReport,
    condition_number,
    effective_rank,
    frobenius_norm,
    imbalance,
    numerical_rank,
    orthogonality_error,
    quick_stats,
    spectral_norm_estimate,
    spectrum_report,
    stable_rank,
    stable_rank_estimate,
    svdvals,
    x_min,
)
from .kernels.orthogonalize import (
    SCHEDULES,
    Schedule,
    cans_cubic,
    cans_schedule,
    compose,
    describe,
    design_schedule,
    get_schedule,
    newton_schulz,
    output_band,
    polar,
    predict_singular_values,
    lift_threshold,
    schedule_for,
    steps_to_accuracy,
    worst_case_error,
)

__version__ = "0.1.0"

__all__ = [
    # balancing
    "normalize_rows", "normalize_cols", "rc_scale", "racs", "sinkhorn_knopp", "ruiz",
    "knight_ruiz", "aol", "balance", "BalanceResult", "BALANCE_METHODS", "ConvergenceWarning",
    # orthogonalization and schedules
    "newton_schulz", "polar", "Schedule", "SCHEDULES", "get_schedule", "cans_cubic",
    "cans_schedule", "compose", "predict_singular_values", "output_band", "worst_case_error",
    "steps_to_accuracy", "lift_threshold", "describe", "design_schedule", "schedule_for",
    # metrics
    "svdvals", "frobenius_norm", "stable_rank", "condition_number", "numerical_rank",
    "effective_rank", "x_min", "orthogonality_error", "OrthogonalityError", "imbalance",
    "Imbalance", "spectral_norm_estimate", "stable_rank_estimate", "quick_stats",
    "spectrum_report", "SpectrumReport",
    # model analysis
    "analyze_model", "ModelAnalysis",
    # synthetic
    "synthetic",
]
