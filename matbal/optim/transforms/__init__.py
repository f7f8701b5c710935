"""Transforms: one verb each, composed into optimizer chains (see :mod:`matbal.optim`)."""
from .adam import ScaleByAdam, scale_by_adam
from .balance import Balance, balance, muoneq_scale
from .base import StepContext, Transform
from .momentum import EMAMomentum, SumMomentum, ema_momentum, sum_momentum
from .normalize import NormalizeRMS, NorMuonNormalize, normalize_rms, normuon_normalize
from .orthogonalize import Orthogonalize, orthogonalize
from .probe import Tap, tap
from .scaling import SHAPE_RULES, ScaleByShape, scale_by_shape
from .weight_decay import AddDecayedWeights, add_decayed_weights

__all__ = [
    "Transform", "StepContext",
    "ema_momentum", "sum_momentum", "scale_by_adam", "balance", "orthogonalize",
    "normuon_normalize", "normalize_rms", "scale_by_shape", "add_decayed_weights", "tap",
    "muoneq_scale", "SHAPE_RULES",
    "EMAMomentum", "SumMomentum", "ScaleByAdam", "Balance", "Orthogonalize", "NorMuonNormalize",
    "NormalizeRMS", "ScaleByShape", "AddDecayedWeights", "Tap",
]
