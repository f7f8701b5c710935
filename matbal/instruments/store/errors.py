"""Errors and warnings raised by :mod:`matbal.instruments.store`.

Every store error derives from :class:`StoreError`; bad arguments are refused with the builtin
``TypeError``/``ValueError`` naming the argument and the value, as elsewhere in matbal.
"""
from __future__ import annotations

__all__ = [
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


class StoreError(Exception):
    """Base class of every error raised by the matrix store."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The store directory (or its catalog) does not exist, e.g. ``MatrixStore(path, mode="r")``
    on a path that was never written."""


class StoreLockedError(StoreError):
    """Another process holds the store's writer lock (one writer at a time)."""


class StoreVersionError(StoreError):
    """The catalog was written by a newer matbal (unknown schema version), or is not a matbal
    catalog at all."""


class StoreCorruptionError(StoreError):
    """A committed record does not read back as recorded (missing/truncated/garbage file, or a
    checksum, dtype or shape mismatch). ``record`` and ``file`` name the culprit."""

    def __init__(self, message: str, *, record=None, file=None):
        super().__init__(message)
        self.record = record
        self.file = file


class StoreCatalogError(StoreError):
    """The catalog (``catalog.sqlite``) is missing, empty, unreadable or damaged while the store's
    ``data/`` holds data files. Nothing was changed: the store refuses to open rather than take
    the data files for leftovers. ``path`` is the catalog's path; the message names the cause
    (chained as ``__cause__``) and the remedy, ``matbal store repair`` (or
    ``MatrixStore.repair(path)``), which rebuilds the catalog from the self-describing data
    files."""

    def __init__(self, message: str, *, path=None):
        super().__init__(message)
        self.path = path


class StoreWriteError(StoreError, OSError):
    """Writing a data file or committing the catalog failed (I/O error, read-only file system,
    ...). ``path`` names the file; the cause is chained (``__cause__``). The record was not
    stored and nothing committed before is affected."""

    def __init__(self, message: str, *, path=None):
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class StoreDiskFullError(StoreWriteError):
    """A write failed because the disk (or the quota) is full (``ENOSPC``, SQLite's
    ``database or disk is full``). Free space and retry: the record was not stored."""


class StoreFullError(StoreError):
    """A put was refused because it would exceed ``max_bytes``/``max_count`` and the store was
    opened with ``on_full="raise"``."""


class StoreReadOnlyError(StoreError):
    """A write was attempted on a store opened with ``mode="r"`` (or after ``close()``)."""


class UnknownRecordError(StoreError, KeyError):
    """``get`` of a record id that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownRunError(StoreError, KeyError):
    """``query(run=..., strict=True)`` named a run the store has never seen."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DuplicateRecordError(StoreError, ValueError):
    """``(run, step, layer, kind)`` is already recorded and the store has ``if_exists="error"``."""


class StoreFullWarning(UserWarning):
    """Emitted once per store object and cap when puts start being refused by a size cap."""


class StoreRecoveryWarning(UserWarning):
    """Emitted on opening in append mode when leftovers of an interrupted writer were removed
    (temp files, data files without catalog rows) or catalogued files are missing."""
