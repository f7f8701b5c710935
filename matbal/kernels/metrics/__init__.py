"""Spectral and balance metrics of matrices ``(..., m, n)``: exact (one float64 SVD) and cheap.

Exact, from the singular values (:mod:`.svd`, :mod:`.ranks`, :mod:`.orthogonality`):
``svdvals``, ``frobenius_norm``, ``stable_rank``, ``condition_number``, ``numerical_rank``,
``effective_rank``, ``x_min``, ``orthogonality_error``; all at once: ``spectrum_report``.
Row/column balance (:mod:`.imbalance`): ``imbalance``, ``row_col_norms``.
Cheap estimators with a stated bound direction (:mod:`.estimators`): ``spectral_norm_estimate``,
``stable_rank_estimate``, ``quick_stats``.

Every function takes torch or numpy (numpy in → numpy out), any real float dtype (bf16 included),
returns one value per batch element (shape ``x.shape[:-2]``) and refuses bad input (1-D, empty,
complex, integer, NaN/Inf) with an error naming the argument.
"""
from .estimators import (
    Estimate,
    QuickStats,
    quick_stats,
    spectral_norm_estimate,
    stable_rank_estimate,
)
from .imbalance import Imbalance, imbalance, row_col_norms
from .orthogonality import OrthogonalityError, orthogonality_error
from .ranks import condition_number, effective_rank, numerical_rank, stable_rank, x_min
from .report import SpectrumReport, spectrum_report
from .svd import frobenius_norm, svdvals

__all__ = [
    "svdvals",
    "frobenius_norm",
    "stable_rank",
    "condition_number",
    "numerical_rank",
    "effective_rank",
    "x_min",
    "OrthogonalityError",
    "orthogonality_error",
    "Estimate",
    "QuickStats",
    "spectral_norm_estimate",
    "stable_rank_estimate",
    "quick_stats",
    "Imbalance",
    "imbalance",
    "row_col_norms",
    "SpectrumReport",
    "spectrum_report",
]
