"""An embedded, crash-safe on-disk store of recorded matrices (gradients, momenta, updates).

No server: tensors live in safetensors files, their catalog in SQLite (stdlib ``sqlite3``, WAL
mode). Nothing is pickled and loading never executes code: data files are safetensors (a JSON
header + raw little-endian bytes), metadata is JSON text in SQLite.

>>> import tempfile, torch
>>> from matbal.instruments.store import MatrixStore
>>> path = tempfile.mkdtemp()
>>> with MatrixStore(path, storage_dtype=torch.bfloat16, layer_every={"embed*": 10}) as s:
...     for step in range(3):
...         with s.batch("baseline", step, meta={"loss": 1.0 / (step + 1)}) as b:
...             b.put("embed", "grad", torch.randn(8, 4))
...             b.put("blocks.0.mlp", "grad", torch.randn(4, 4))
...     s.skipped["subsampled"]
2
>>> with MatrixStore(path, mode="r") as s:
...     [(r.step, r.layer, r.dtype, r.src_dtype) for r in s.query(layer="blocks.*")][:2]
[(0, 'blocks.0.mlp', 'bfloat16', 'float32'), (1, 'blocks.0.mlp', 'bfloat16', 'float32')]

On-disk layout
--------------
::

    <store>/
      catalog.sqlite        SQLite catalog (plus -wal/-shm while open): tables
                            info(key, value)   format, schema_version, created, skip counters
                            files(id, name, nbytes, created)
                            records(id, run, step, layer, kind, shape, dtype, src_dtype,
                                    nbytes, checksum, file_id, key, meta, created)
                            pending(name, created)   announced, not yet committed data files
      LOCK                  flock'ed by the one writer (mode="a")
      data/<xx>/<uuid>.safetensors
                            one file per put / per put_many (= one step of a batch);
                            <xx> = first two hex digits (256 shards keep directories small).
                            The header's __metadata__ repeats each tensor's run/step/layer/kind/
                            src_dtype/meta/checksum, so files are self-describing (and
                            self-verifying) without the catalog.

Tensor keys inside a file are ``"<layer>/<kind>"``. ``Record.checksum`` is
``"sha256:<hex>"`` of the tensor's raw stored bytes (sha256: ~1.3 GB/s with SHA-NI here, 2.6x
faster than blake2b), verified on every ``get`` unless ``verify=False``.

Why batch a step into one file: a step of a 100-layer model recorded with ``put`` costs 100
files, 100 fsyncs and 100 transactions; ``put_many``/``batch`` cost one of each, and make the step
atomic (all its tensors visible or none). Reading one record from a batched file still reads only
that tensor's bytes (safetensors seeks by offset). ``put`` (one file each) stays for the simple case.

Crash-safety argument
---------------------
A write goes: (0) the data file's name was announced in the catalog's ``pending`` table by an
earlier commit (the previous write's, or the writer's open); (1) serialise the tensors to
``data/<xx>/.<uuid>.safetensors.tmp`` (safetensors itself writes a hidden ``.tmpXXXXXX`` there
and renames it), fsync; (2) ``os.replace`` to the final name, fsync the directory; (3) in
**one** SQLite transaction insert the file row and all record rows, delete the file's intent
and announce the next file's name, and commit. A record is visible iff its catalog row is
committed. A writer killed (kill -9) at any moment leaves one of: nothing; a temp file (killed
in 1); a complete data file no row references whose intent is still pending (killed in 2-3
before COMMIT); or the committed rows whose file is already complete on disk (the file was in
place -- and with ``fsync=True`` durable -- before the transaction began). SQLite's WAL makes
the transaction atomic: an uncommitted one is rolled back on the next open. So every committed
record reads back exactly, and partial work is invisible. Opening in append mode takes the
writer lock (a kernel ``flock``: released when its holder dies, even by kill -9) and only then
deletes what is *provably* uncommitted (reported in ``store.recovery`` and a
``StoreRecoveryWarning``): temp files (never renamed into place, so no row can name them) and
unreferenced data files whose intent is pending (the commit that would reference them deletes
the intent atomically). A complete data file that no row references and that was never
announced means the catalog lost rows (replaced, or restored from an older copy): it is kept,
with every other unreferenced file, and reported (``store.recovery.unreferenced``). Readers
(``mode="r"``) never delete anything and, thanks to WAL, may open while the writer runs; since
rows are inserted only after their files exist and are never deleted, a reader never sees a
row without its file. With ``fsync=False`` the same holds for a killed process (the OS keeps
the written pages); only a power loss may lose the last records (never corrupt older ones
silently: checksums catch torn data).

Damaged catalog: check and repair
---------------------------------
Opening never takes a damaged catalog for an empty one. A catalog that is missing, empty
(zeroed), unreadable (garbage, truncated: SQLite's ``quick_check`` runs on every open) or
missing tables, while ``data/`` holds data files, is refused in both modes with
:class:`StoreCatalogError` naming the path and the remedy; nothing is changed. Every data
file's header repeats each tensor's run/step/layer/kind/src_dtype/meta and checksum, so
:func:`check_store` (``MatrixStore.check``, ``matbal store check DIR``: exit 1 on problems)
verifies every file and tensor against the catalog and against itself, and
:func:`repair_store` (``MatrixStore.repair``, ``matbal store repair DIR``) rebuilds the catalog
from the data files, renaming the old one to ``catalog.sqlite.damaged-<UTC time>`` (never
deleting it; no data file is touched):

>>> import os
>>> os.remove(os.path.join(path, "catalog.sqlite"))   # lose the catalog of the store above
>>> MatrixStore(path, mode="r")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
matbal.instruments.store.errors.StoreCatalogError: catalog '...' is missing while the store holds 3 data file(s); ...
>>> MatrixStore.repair(path).records, MatrixStore.check(path).ok
(4, True)

A failed write (full disk: ``StoreDiskFullError``; other I/O: ``StoreWriteError``; both
``OSError``) names the file and chains the cause; nothing of it was committed.

One writer process at a time (``StoreLockedError`` otherwise; on platforms without ``fcntl``
the lock is not enforced). The catalog carries a schema version; a newer one is refused with
``StoreVersionError``.
"""
from .errors import (
    DuplicateRecordError,
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
    StoreVersionError,
    StoreWriteError,
    UnknownRecordError,
    UnknownRunError,
)
from .catalog import SCHEMA_VERSION
from .records import (
    CheckReport,
    Record,
    RecoveryReport,
    RepairReport,
    RunSummary,
    StoreSummary,
    VerifyReport,
)
from .repair import check_store, repair_store
from .store import MatrixStore, StepBatch

__all__ = [
    "MatrixStore",
    "StepBatch",
    "Record",
    "RunSummary",
    "StoreSummary",
    "RecoveryReport",
    "VerifyReport",
    "CheckReport",
    "RepairReport",
    "check_store",
    "repair_store",
    "SCHEMA_VERSION",
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
