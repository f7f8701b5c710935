"""Instruments (layer 4): probes, the store of recorded matrices, analysis over it.

- :class:`Probes` (:mod:`.probes`): spectral metrics of every matrix layer inside training, tidy
  rows to a sink; :class:`Recorder` puts chosen matrices into a store.
- :class:`MatrixStore` (:mod:`.store`): recorded tensors on disk — safetensors files + an SQLite
  catalog, crash-safe, checksummed, no pickle; ``MatrixStore.check``/``repair`` verify it and
  rebuild a damaged catalog from the self-describing data files.
- :func:`analyze_store` (:mod:`.store_analysis`): equilibration effects over a store (tables and
  figures); ``matbal store ls|show|analyze|export|check|repair`` on the command line.
"""
from .store import (
    DuplicateRecordError,
    MatrixStore,
    Record,
    StepBatch,
    StoreCatalogError,
    StoreCorruptionError,
    StoreDiskFullError,
    StoreError,
    StoreFullError,
    StoreFullWarning,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
    StoreRecoveryWarning,
    StoreSummary,
    StoreVersionError,
    StoreWriteError,
    UnknownRecordError,
    UnknownRunError,
)
from .probes import CSVSink, JSONLSink, MemorySink, Probes, Recorder, read_rows
from .store_analysis import analyze_store

__all__ = [
    "Probes",
    "Recorder",
    "CSVSink",
    "JSONLSink",
    "MemorySink",
    "read_rows",
    "analyze_store",
    "MatrixStore",
    "Record",
    "StepBatch",
    "StoreSummary",
    "StoreError",
    "StoreNotFoundError",
    "StoreLockedError",
    "StoreVersionError",
    "StoreCorruptionError",
    "StoreCatalogError",
    "StoreWriteError",
    "StoreDiskFullError",
    "StoreFullError",
    "StoreReadOnlyError",
    "UnknownRecordError",
    "UnknownRunError",
    "DuplicateRecordError",
    "StoreFullWarning",
    "StoreRecoveryWarning",
]
