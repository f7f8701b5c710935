"""Instruments (layer 4): probes, the store of recorded matrices, analysis over it.

:class:`MatrixStore` (in :mod:`matbal.instruments.store`) keeps recorded tensors on disk:
safetensors files + an SQLite catalog, crash-safe, no pickle.
"""
from .store import (
    DuplicateRecordError,
    MatrixStore,
    Record,
    StepBatch,
    StoreCorruptionError,
    StoreError,
    StoreFullError,
    StoreFullWarning,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
    StoreRecoveryWarning,
    StoreSummary,
    StoreVersionError,
    UnknownRecordError,
    UnknownRunError,
)

__all__ = [
    "MatrixStore",
    "Record",
    "StepBatch",
    "StoreSummary",
    "StoreError",
    "StoreNotFoundError",
    "StoreLockedError",
    "StoreVersionError",
    "StoreCorruptionError",
    "StoreFullError",
    "StoreReadOnlyError",
    "UnknownRecordError",
    "UnknownRunError",
    "DuplicateRecordError",
    "StoreFullWarning",
    "StoreRecoveryWarning",
]
