"""``MatrixStore``: the public front of the on-disk store (see the package docstring)."""
from __future__ import annotations

import fnmatch
import json
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Sequence, Union

import numpy as np
import torch
from safetensors.torch import storage_ptr

from .catalog import CATALOG_NAME, SKIP_REASONS, Catalog, open_catalog, translate
from .errors import (
    DuplicateRecordError,
    StoreCorruptionError,
    StoreError,
    StoreFullError,
    StoreFullWarning,
    StoreNotFoundError,
    StoreReadOnlyError,
    StoreRecoveryWarning,
    UnknownRecordError,
    UnknownRunError,
)
from .files import (
    DATA_DIR,
    WriterLock,
    catalog_mtime_ns,
    collect_garbage,
    header_metadata,
    discard,
    new_file_name,
    publish,
    read_tensor,
    write_temp,
)
from .records import (
    _DTYPES,
    CheckReport,
    Record,
    RecoveryReport,
    RepairReport,
    RunSummary,
    StoreSummary,
    VerifyReport,
    checksum,
    dtype_name,
)

__all__ = ["MatrixStore", "StepBatch"]

StepSpec = Union[int, range, slice, None]
LayerEvery = Union[int, Mapping[str, int], None]
Item = Union[tuple[str, str, Any], tuple[str, str, Any, Mapping[str, Any]]]


# -- argument checks (errors name the argument and the value) -----------------------------------
def _check_name(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


def _check_int(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_meta(meta: Any, name: str) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise TypeError(f"{name} must be a dict of JSON-serializable values, got {type(meta).__name__}")
    for k in meta:
        if not isinstance(k, str):
            raise TypeError(f"{name} keys must be str, got key {k!r}")
    try:
        json.dumps(dict(meta))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be JSON-serializable (no pickle in the store): {e}") from None
    return dict(meta)


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name} must have a real numeric or bool dtype, got numpy {x.dtype}")
        try:
            x = torch.from_numpy(np.ascontiguousarray(x))
        except TypeError as e:
            raise TypeError(f"{name}: numpy dtype {x.dtype} is not supported ({e})") from None
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if x.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {x.layout}")
    if x.dtype not in _DTYPES.values():
        raise TypeError(
            f"{name} has dtype {x.dtype}, which the store does not take "
            f"(supported: {', '.join(sorted(_DTYPES))})"
        )
    return x


def _check_layer_every(rule: Any) -> LayerEvery:
    if rule is None:
        return None
    if isinstance(rule, Mapping):
        out = {}
        for pattern, k in rule.items():
            _check_name(pattern, "layer_every pattern")
            out[pattern] = _check_int(k, f"layer_every[{pattern!r}]", minimum=1)
        return out
    return _check_int(rule, "layer_every", minimum=1)


def _check_patterns(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [_check_name(value, name)]
    if isinstance(value, (list, tuple, set, frozenset)):
        if not value:
            raise ValueError(f"{name} must not be an empty collection")
        return [_check_name(v, f"{name} element") for v in value]
    raise TypeError(f"{name} must be a str or a list of str, got {type(value).__name__} {value!r}")


class MatrixStore:
    """An embedded store of recorded matrices: safetensors data files + an SQLite catalog.

    Record a tensor with ``put(run, step, layer, kind, tensor)``, find records with ``query``
    (lightweight :class:`Record` rows, no data), read them with ``get``. Crash-safe: a writer
    killed at any moment leaves a store whose committed records read back exactly; see the
    package docstring for the on-disk layout and the argument.

    Parameters
    ----------
    path : str or Path
        The store directory. ``mode="a"`` creates it (or an empty directory) if needed.
    mode : {"a", "r"}
        ``"a"``: append (read + write); takes the store's writer lock -- one writer process at a
        time (``StoreLockedError`` otherwise) -- and removes an interrupted writer's provably
        uncommitted leftovers (reported in ``store.recovery`` and by a
        ``StoreRecoveryWarning``; files that might hold committed records are kept). A missing
        or damaged catalog beside data files is refused with ``StoreCatalogError`` in both
        modes (see :meth:`check` and :meth:`repair`). ``"r"``: read-only,
        no lock, safe to open while a writer runs (it sees records committed up to each query).
    max_bytes, max_count : int, optional
        Caps on the bytes of data files on disk and on the number of records. A put that would
        exceed a cap is refused as a whole: it returns ``None`` (``put_many``: ``None`` for each
        item), ``store.skipped[cap]`` counts it, and the first refusal per cap and store object
        emits a ``StoreFullWarning``; with ``on_full="raise"`` it raises ``StoreFullError``.
        Refusal counters persist in the catalog (``summary().skipped``). Caps count what is
        already in the store, so they hold across sessions.
    storage_dtype : torch.dtype, optional
        Cast floating tensors to this dtype before storing (e.g. ``torch.bfloat16`` halves
        float32 data). ``Record.src_dtype`` keeps the dtype given to ``put``; ``get`` returns the
        stored dtype. Integer and bool tensors are stored as they are.
    layer_every : int or dict[str, int], optional
        Per-layer subsampling: record a layer only at steps with ``step % k == 0``. An int applies
        to every layer; a dict maps glob patterns (``fnmatch``, first match wins) to ``k``;
        unmatched layers are recorded at every step. Subsampled puts return ``None`` and are
        counted in ``store.skipped["subsampled"]`` (no warning: it is what was asked).
    if_exists : {"error", "skip"}
        What a put of an already-recorded ``(run, step, layer, kind)`` does: raise
        ``DuplicateRecordError``, or return ``None`` and count ``skipped["exists"]`` (useful when
        a training run resumes from a checkpoint older than the store).
    on_full : {"warn", "raise"}
        See ``max_bytes``.
    fsync : bool
        ``True`` (default): data files, directories and the catalog are fsynced so committed
        records also survive power loss. ``False``: still safe against a killed process (the OS
        keeps written pages), several times faster for many small records.

    Notes
    -----
    ``put`` writes one safetensors file per call; ``put_many``/``batch`` write all tensors of one
    step in one file and one catalog transaction (fewer files, one fsync, atomic per step).
    Records are never modified or deleted by this API. The store object is thread-safe (a lock
    serialises catalog access); use one writer *process* at a time.

    Examples
    --------
    >>> import tempfile, torch
    >>> from matbal.instruments import MatrixStore
    >>> d = tempfile.mkdtemp()
    >>> with MatrixStore(d) as store:
    ...     rid = store.put("run0", 0, "layers.0.mlp", "grad", torch.ones(4, 3), meta={"lr": 0.02})
    ...     with store.batch("run0", 1) as b:
    ...         b.put("layers.0.mlp", "grad", torch.zeros(4, 3))
    ...         b.put("layers.0.mlp", "update", torch.eye(4, 3, dtype=torch.bfloat16))
    >>> with MatrixStore(d, mode="r") as store:
    ...     recs = store.query(run="run0", step=range(0, 2), layer="layers.*", kind="grad")
    ...     [(r.step, r.shape, r.dtype) for r in recs]
    ...     store.get(recs[0]).sum().item(), recs[0].meta
    [(0, (4, 3), 'float32'), (1, (4, 3), 'float32')]
    (12.0, {'lr': 0.02})
    """

    def __init__(
        self,
        path: str | Path,
        *,
        mode: Literal["a", "r"] = "a",
        max_bytes: int | None = None,
        max_count: int | None = None,
        storage_dtype: torch.dtype | None = None,
        layer_every: LayerEvery = None,
        if_exists: Literal["error", "skip"] = "error",
        on_full: Literal["warn", "raise"] = "warn",
        fsync: bool = True,
    ):
        if not isinstance(path, (str, Path)):
            raise TypeError(f"path must be a str or Path, got {type(path).__name__} {path!r}")
        if mode not in ("a", "r"):
            raise ValueError(f"mode must be one of ['a', 'r'], got {mode!r}")
        if max_bytes is not None:
            _check_int(max_bytes, "max_bytes", minimum=1)
        if max_count is not None:
            _check_int(max_count, "max_count", minimum=1)
        if storage_dtype is not None:
            if not isinstance(storage_dtype, torch.dtype) or not storage_dtype.is_floating_point \
                    or storage_dtype not in _DTYPES.values():
                raise TypeError(
                    f"storage_dtype must be a floating torch.dtype (e.g. torch.bfloat16), "
                    f"got {storage_dtype!r}"
                )
        layer_every = _check_layer_every(layer_every)
        if if_exists not in ("error", "skip"):
            raise ValueError(f"if_exists must be one of ['error', 'skip'], got {if_exists!r}")
        if on_full not in ("warn", "raise"):
            raise ValueError(f"on_full must be one of ['raise', 'warn'], got {on_full!r}")
        if mode == "r":
            for name, value, default in (
                ("max_bytes", max_bytes, None), ("max_count", max_count, None),
                ("storage_dtype", storage_dtype, None), ("layer_every", layer_every, None),
            ):
                if value is not default:
                    raise ValueError(f"{name}={value!r} only applies to writing; mode='r' reads")

        self.path = Path(path)
        self.mode = mode
        self.max_bytes = max_bytes
        self.max_count = max_count
        self.storage_dtype = storage_dtype
        self.layer_every = layer_every
        self.if_exists = if_exists
        self.on_full = on_full
        self.fsync = bool(fsync)
        #: Puts not stored in this session, by reason (see ``summary().skipped`` for all sessions).
        self.skipped: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        #: What opening in append mode cleaned up (empty in read mode).
        self.recovery = RecoveryReport()
        self._pending_skipped: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self._warned: set[str] = set()
        self._every_cache: dict[str, int] = {}
        self._mutex = threading.RLock()
        self._lock: WriterLock | None = None
        self._catalog: Catalog | None = None
        self._next_name: str | None = None  # announced (pending) name of the next data file

        if mode == "r":
            if not self.path.is_dir():
                raise StoreNotFoundError(
                    f"no matrix store at {str(self.path)!r} (directory does not exist); "
                    f"open it with mode='a' to create one"
                )
            self._catalog = open_catalog(self.path, readonly=True)
            return

        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"path {str(self.path)!r} exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / CATALOG_NAME).exists() and any(
            p.name not in ("LOCK", DATA_DIR) for p in self.path.iterdir()
        ):
            raise StoreError(
                f"{str(self.path)!r} is a non-empty directory without a {CATALOG_NAME}: not a "
                f"matrix store; refusing to write into it (pick an empty or new directory)"
            )
        self._lock = WriterLock(self.path)
        try:
            mtime = catalog_mtime_ns(self.path, CATALOG_NAME)
            cat = self._catalog = open_catalog(self.path, readonly=False, fsync=self.fsync)
            pending = cat.pending_names()
            self.recovery = collect_garbage(self.path, cat.file_names(), pending,
                                            catalog_mtime=mtime)
            # forget intents whose file is gone; announce the first write of this session
            self._next_name = new_file_name()
            cat.set_pending(add=[self._next_name],
                            remove=[n for n in pending if not (self.path / n).exists()])
            n_rec, _, _, fbytes = cat.totals()
        except BaseException:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None  # a failed open is not an "unclosed" store
            self._lock.release()
            raise
        self._n_records, self._file_bytes = n_rec, fbytes
        if self.recovery:
            r = self.recovery
            msg = (f"MatrixStore {str(self.path)!r}: recovered from an interrupted writer: "
                   f"removed {len(r.removed_temp)} temp file(s) and {len(r.removed_orphans)} "
                   f"uncommitted data file(s) (their records were never visible); "
                   f"{len(r.missing_files)} catalogued file(s) missing.")
            if r.unreferenced:
                msg += (f" KEPT {len(r.unreferenced)} data file(s) that no catalog row references "
                        f"(they may hold committed records the catalog lost): run `matbal store "
                        f"check {self.path}` and `matbal store repair {self.path}`.")
            warnings.warn(msg + " Details in store.recovery.", StoreRecoveryWarning, stacklevel=2)

    # -- maintenance -----------------------------------------------------------------------------
    @staticmethod
    def check(path: str | Path) -> CheckReport:
        """Verify the store at ``path`` (catalog, every data file, every tensor's bytes)
        without changing anything; see :func:`~matbal.instruments.store.check_store`.
        ``matbal store check DIR`` on the command line.

        >>> import tempfile, torch
        >>> d = tempfile.mkdtemp()
        >>> with MatrixStore(d, fsync=False) as s:
        ...     _ = s.put("r", 0, "w", "grad", torch.ones(2, 2))
        >>> rep = MatrixStore.check(d)
        >>> rep.ok, rep.files, rep.records
        (True, 1, 1)
        """
        from .repair import check_store

        return check_store(path)

    @staticmethod
    def repair(path: str | Path, *, force: bool = False) -> RepairReport:
        """Rebuild the catalog of the store at ``path`` from its self-describing data files
        when :meth:`check` finds problems (a damaged or missing catalog, unreferenced files);
        the old catalog is moved aside, never deleted, and no data file is touched. See
        :func:`~matbal.instruments.store.repair_store`; ``matbal store repair DIR``.

        >>> import os, tempfile, torch
        >>> d = tempfile.mkdtemp()
        >>> with MatrixStore(d, fsync=False) as s:
        ...     _ = s.put_many("r", 0, {("w1", "g"): torch.ones(2, 2), ("w2", "g"): torch.eye(3)})
        >>> os.remove(os.path.join(d, "catalog.sqlite"))  # the catalog is lost
        >>> print(MatrixStore.repair(d))  # doctest: +ELLIPSIS
        MatrixStore ...: rebuilt the catalog from 1 data file(s), 2 record(s)
        >>> with MatrixStore(d, mode="r") as s:
        ...     [(r.layer, r.shape) for r in s.query()], MatrixStore.check(d).ok
        ([('w1', (2, 2)), ('w2', (3, 3))], True)
        """
        from .repair import repair_store

        return repair_store(path, force=force)

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._catalog is None

    def close(self) -> None:
        """Persist pending skip counters, close the catalog and release the writer lock.
        Idempotent."""
        with self._mutex:
            if self._catalog is None:
                return
            try:
                if self.mode == "a":
                    self._catalog.add_skipped(self._pending_skipped)
                    self._pending_skipped = dict.fromkeys(SKIP_REASONS, 0)
            finally:
                self._catalog.close()
                self._catalog = None
                if self._lock is not None:
                    self._lock.release()
                    self._lock = None

    def __del__(self) -> None:
        # A forgotten writer (e.g. a re-run notebook cell) must not keep the lock: close it,
        # like an unclosed file, with a ResourceWarning (hidden unless warnings are enabled).
        if getattr(self, "_catalog", None) is not None:
            try:
                warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
                self.close()
            except Exception:
                pass

    def __enter__(self) -> "MatrixStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"mode={self.mode!r}"
        return f"MatrixStore({str(self.path)!r}, {state})"

    def __len__(self) -> int:
        return self._cat().totals()[0]

    def _cat(self) -> Catalog:
        if self._catalog is None:
            raise StoreError(f"MatrixStore {str(self.path)!r} is closed")
        return self._catalog

    def _check_writable(self) -> Catalog:
        cat = self._cat()
        if self.mode != "a":
            raise StoreReadOnlyError(
                f"MatrixStore {str(self.path)!r} was opened with mode='r'; open it with mode='a' "
                f"to write"
            )
        return cat

    # -- writing ---------------------------------------------------------------------------------
    def _every(self, layer: str) -> int:
        rule = self.layer_every
        if rule is None:
            return 1
        if isinstance(rule, int):
            return rule
        k = self._every_cache.get(layer)
        if k is None:
            k = next((v for pat, v in rule.items() if fnmatch.fnmatchcase(layer, pat)), 1)
            self._every_cache[layer] = k
        return k

    def _skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n
        self._pending_skipped[reason] += n

    def put(
        self, run: str, step: int, layer: str, kind: str, tensor: torch.Tensor | np.ndarray,
        *, meta: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Record one tensor; returns its record id, or ``None`` when it was not stored because
        of subsampling (``layer_every``), a size cap, or ``if_exists="skip"`` --
        ``store.skipped`` says which. Durable when it returns (one file, one transaction).

        ``tensor``: a dense torch tensor (any device; it is copied to CPU, never modified) or
        numpy array, floating/integer/bool. ``meta``: a JSON-serializable dict kept with the record.

        >>> import tempfile, torch
        >>> with MatrixStore(tempfile.mkdtemp()) as s:
        ...     s.put("r", 0, "w", "grad", torch.randn(3, 3))
        1
        """
        return self.put_many(run, step, [(layer, kind, tensor)], meta=meta, _single=True)[0]

    def put_many(
        self, run: str, step: int,
        items: Mapping[tuple[str, str], Any] | Iterable[Item],
        *, meta: Mapping[str, Any] | None = None, _single: bool = False,
    ) -> list[int | None]:
        """Record several tensors of one ``(run, step)`` in one data file and one catalog
        transaction: all of them become visible together or none does.

        ``items``: a dict ``{(layer, kind): tensor}`` or an iterable of ``(layer, kind, tensor)``
        or ``(layer, kind, tensor, item_meta)``. ``meta`` applies to every item (``item_meta``
        keys override it). Returns one id or ``None`` per item, in order. Subsampling and
        ``if_exists="skip"`` drop single items; a size cap refuses the whole call (a step is
        stored whole or not at all). Every argument is checked before anything is written.

        >>> import tempfile, torch
        >>> with MatrixStore(tempfile.mkdtemp()) as s:
        ...     s.put_many("r", 0, {("w1", "grad"): torch.ones(2, 2), ("w2", "grad"): torch.ones(3)})
        [1, 2]
        """
        with self._mutex:
            cat = self._check_writable()
            _check_name(run, "run")
            step = _check_int(step, "step", minimum=0)
            base_meta = _check_meta(meta, "meta")
            if isinstance(items, Mapping):
                entries = []
                for key, t in items.items():
                    if not (isinstance(key, tuple) and len(key) == 2):
                        raise TypeError(f"items keys must be (layer, kind) tuples, got {key!r}")
                    entries.append((key[0], key[1], t, None))
            else:
                if isinstance(items, (str, bytes, torch.Tensor, np.ndarray)):
                    raise TypeError(
                        f"items must be a dict {{(layer, kind): tensor}} or a list of "
                        f"(layer, kind, tensor) tuples, got {type(items).__name__}"
                    )
                entries = []
                for i, it in enumerate(items):
                    if not isinstance(it, tuple) or len(it) not in (3, 4):
                        raise TypeError(
                            f"items[{i}] must be a (layer, kind, tensor) or "
                            f"(layer, kind, tensor, meta) tuple, got {type(it).__name__}"
                        )
                    entries.append((it[0], it[1], it[2], it[3] if len(it) == 4 else None))

            results: list[int | None] = [None] * len(entries)
            keep: list[tuple[int, dict[str, Any], torch.Tensor]] = []
            seen: set[tuple[str, str]] = set()
            for i, (layer, kind, t, item_meta) in enumerate(entries):
                sfx = "" if _single else f" (items[{i}])"
                _check_name(layer, "layer" + sfx)
                _check_name(kind, "kind" + sfx)
                t = _as_tensor(t, "tensor" + sfx)
                m = {**base_meta, **_check_meta(item_meta, "item meta" + sfx)}
                if (layer, kind) in seen:
                    raise DuplicateRecordError(
                        f"(layer={layer!r}, kind={kind!r}) appears twice in one put_many"
                    )
                seen.add((layer, kind))
                if step % self._every(layer):
                    self._skip("subsampled")
                    continue
                if cat.exists(run, step, layer, kind):
                    if self.if_exists == "error":
                        raise DuplicateRecordError(
                            f"(run={run!r}, step={step}, layer={layer!r}, kind={kind!r}) is already "
                            f"recorded in {str(self.path)!r} (open with if_exists='skip' to ignore "
                            f"re-recordings, e.g. after resuming from a checkpoint)"
                        )
                    self._skip("exists")
                    continue
                keep.append((i, {"run": run, "step": step, "layer": layer, "kind": kind,
                                 "meta": json.dumps(m) if m else None}, t))
            if not keep:
                return results

            if self.max_count is not None and self._n_records + len(keep) > self.max_count:
                return self._refuse("max_count", len(keep), results,
                                    f"max_count={self.max_count} reached "
                                    f"({self._n_records} records stored)")

            tensors: dict[str, torch.Tensor] = {}
            seen_storage: set[int] = set()
            rows = []
            for _, row, t in keep:
                src = t.dtype
                t = t.detach()
                if t.device.type != "cpu":
                    t = t.to("cpu")
                if self.storage_dtype is not None and t.is_floating_point():
                    t = t.to(self.storage_dtype)
                t = t.contiguous()
                key = f"{row['layer']}/{row['kind']}"
                while key in tensors:
                    key += "#"
                if t.numel():
                    ptr = storage_ptr(t)
                    if ptr in seen_storage:
                        t = t.clone()  # safetensors refuses tensors that share storage
                        ptr = storage_ptr(t)
                    seen_storage.add(ptr)
                tensors[key] = t
                row.update(key=key, shape=tuple(t.shape), dtype=dtype_name(t.dtype),
                           src_dtype=dtype_name(src), nbytes=t.numel() * t.element_size(),
                           checksum=checksum(t))
                rows.append(row)
            if self.max_bytes is not None:  # data bytes: a lower bound of the file size
                need = sum(r["nbytes"] for r in rows)
                if self._file_bytes + need > self.max_bytes:
                    return self._refuse("max_bytes", len(keep), results, self._bytes_why(need))
            name = self._announced_name(cat)
            tmp, size = write_temp(self.path, name, tensors, header_metadata(rows),
                                   fsync=self.fsync)
            del tensors
            if self.max_bytes is not None and self._file_bytes + size > self.max_bytes:
                discard(tmp)
                return self._refuse("max_bytes", len(keep), results, self._bytes_why(size))
            self._next_name = None  # consumed from here on, whatever happens
            try:
                publish(tmp, fsync=self.fsync)
                following = new_file_name()
                ids = cat.insert(name, size, rows, self._pending_skipped, next_name=following)
            except BaseException as e:
                # Not committed => not visible: remove the file now rather than at the next open.
                # If in doubt (e.g. interrupted right after COMMIT), keep it: the next append-open
                # collects it only if the catalog proves it uncommitted.
                discard(tmp)
                try:
                    if not cat.has_file(name):
                        discard(self.path / name)
                except Exception:
                    pass
                if isinstance(e, sqlite3.Error):
                    raise translate(e, cat.path, f"committing {name}", write=True) from e
                raise
            self._next_name = following
            self._pending_skipped = dict.fromkeys(SKIP_REASONS, 0)
            self._n_records += len(ids)
            self._file_bytes += size
            for (i, _, _), rid in zip(keep, ids):
                results[i] = rid
            return results

    def _announced_name(self, cat: Catalog) -> str:
        """The name of the next data file, its write intent committed in the catalog (the
        previous commit announced it; after a failed write, announce a fresh one)."""
        if self._next_name is None:
            name = new_file_name()
            cat.set_pending(add=[name])
            self._next_name = name
        return self._next_name

    def _bytes_why(self, need: int) -> str:
        return (f"max_bytes={self.max_bytes} reached ({self._file_bytes} bytes stored, this put "
                f"needs {need})")

    def _refuse(self, reason: str, n: int, results: list, why: str) -> list:
        self._skip(reason, n)
        msg = f"MatrixStore {str(self.path)!r}: {why}; "
        if self.on_full == "raise":
            self._cat().add_skipped(self._pending_skipped)
            self._pending_skipped = dict.fromkeys(SKIP_REASONS, 0)
            raise StoreFullError(msg + "put refused (on_full='raise')")
        if reason not in self._warned:
            self._warned.add(reason)
            self._cat().add_skipped(self._pending_skipped)
            self._pending_skipped = dict.fromkeys(SKIP_REASONS, 0)
            warnings.warn(
                msg + "refusing this and every further put that does not fit (they return None "
                "and are counted in store.skipped; this warning is shown once per store object)",
                StoreFullWarning,
                stacklevel=4,
            )
        return results

    def batch(self, run: str, step: int, *, meta: Mapping[str, Any] | None = None) -> "StepBatch":
        """Collect the tensors of one step and store them with one ``put_many`` when the
        ``with`` block exits normally (nothing is stored if it raises). Tensors are copied at
        ``b.put`` time, so later in-place updates (``p.grad``) do not leak in.

        >>> import tempfile, torch
        >>> with MatrixStore(tempfile.mkdtemp()) as s:
        ...     with s.batch("r", 0) as b:
        ...         b.put("w1", "grad", torch.ones(2, 2))
        ...         b.put("w2", "grad", torch.ones(2, 2))
        ...     b.ids
        [1, 2]
        """
        self._check_writable()
        _check_name(run, "run")
        _check_int(step, "step", minimum=0)
        return StepBatch(self, run, int(step), _check_meta(meta, "meta"))

    # -- reading ---------------------------------------------------------------------------------
    def runs(self) -> list[str]:
        """Names of the runs with at least one record, sorted."""
        with self._mutex:
            return self._cat().runs()

    def query(
        self,
        run: str | Sequence[str] | None = None,
        step: StepSpec = None,
        layer: str | Sequence[str] | None = None,
        kind: str | Sequence[str] | None = None,
        *,
        strict: bool = False,
        limit: int | None = None,
    ) -> list[Record]:
        """Catalogued records matching every given filter, ordered by (run, step, layer, kind).

        ``run``: a name or a list of names (exact). ``step``: an int, a ``range`` (its stride
        is honoured: ``range(0, 100, 10)``), or a ``slice`` with open ends (``slice(50, None)`` =
        steps >= 50). ``layer``/``kind``: a glob pattern or a list of them (SQLite GLOB:
        case-sensitive, ``*``, ``?``, ``[abc]``; an exact name matches itself unless it contains
        glob characters). ``strict=True`` raises ``UnknownRunError`` for a run the store has
        never seen instead of returning ``[]``. ``limit`` caps the number of rows.
        An empty store (or no match) gives ``[]``.

        >>> import tempfile, torch
        >>> with MatrixStore(tempfile.mkdtemp()) as s:
        ...     _ = [s.put("r", k, f"blocks.{k % 2}.attn", "grad", torch.ones(2, 2)) for k in range(6)]
        ...     [(r.step, r.layer) for r in s.query(step=slice(2, None), layer="blocks.1.*")]
        [(3, 'blocks.1.attn'), (5, 'blocks.1.attn')]
        """
        where: list[str] = []
        params: list[Any] = []
        runs = _check_patterns(run, "run")
        if runs is not None:
            where.append(f"r.run IN ({','.join('?' * len(runs))})")
            params += runs
        if step is not None:
            if isinstance(step, range):
                if step.step <= 0:
                    raise ValueError(f"step range must be increasing, got {step!r}")
                _check_int(step.start, "step range start", minimum=0)
                where.append("r.step >= ? AND r.step < ?")
                params += [step.start, step.stop]
                if step.step != 1:
                    where.append("(r.step - ?) % ? = 0")
                    params += [step.start, step.step]
            elif isinstance(step, slice):
                if step.step not in (None, 1):
                    raise ValueError(f"step slice must have no stride (use a range), got {step!r}")
                if step.start is not None:
                    where.append("r.step >= ?")
                    params.append(_check_int(step.start, "step slice start", minimum=0))
                if step.stop is not None:
                    where.append("r.step < ?")
                    params.append(_check_int(step.stop, "step slice stop", minimum=0))
            else:
                if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
                    raise TypeError(
                        f"step must be an int, range or slice, got {type(step).__name__} {step!r}"
                    )
                where.append("r.step = ?")
                params.append(_check_int(step, "step", minimum=0))
        for col, value in (("layer", layer), ("kind", kind)):
            pats = _check_patterns(value, col)
            if pats is not None:
                where.append("(" + " OR ".join(f"r.{col} GLOB ?" for _ in pats) + ")")
                params += pats
        if limit is not None:
            _check_int(limit, "limit", minimum=1)
        with self._mutex:
            cat = self._cat()
            if strict and runs is not None:
                unknown = [r for r in runs if not cat.has_run(r)]
                if unknown:
                    known = cat.runs()
                    shown = known[:10] + (["..."] if len(known) > 10 else [])
                    raise UnknownRunError(
                        f"run {unknown[0]!r} is not in store {str(self.path)!r} "
                        f"(known runs: {shown})"
                    )
            return cat.query(where, params, limit)

    def record(self, record_id: int) -> Record:
        """The catalog row of ``record_id``; ``UnknownRecordError`` if there is none."""
        rid = _check_int(record_id, "record_or_id", minimum=0)
        with self._mutex:
            rec = self._cat().get(rid)
        if rec is None:
            raise UnknownRecordError(f"no record with id {rid} in store {str(self.path)!r}")
        return rec

    def _resolve(self, record_or_id: Record | int) -> Record:
        if isinstance(record_or_id, Record):
            return record_or_id
        if isinstance(record_or_id, bool) or not isinstance(record_or_id, (int, np.integer)):
            raise TypeError(
                f"record_or_id must be a Record or an int id, got {type(record_or_id).__name__} "
                f"{record_or_id!r}"
            )
        return self.record(int(record_or_id))

    @staticmethod
    def _convert(t: torch.Tensor, as_: str, device) -> Any:
        if as_ == "numpy":
            if t.dtype not in (torch.float64, torch.float32, torch.float16) and t.is_floating_point():
                t = t.float()  # bf16 / fp8: numpy has no such dtype; float32 holds them exactly
            return t.numpy()
        return t if device is None else t.to(device)

    def get(
        self, record_or_id: Record | int, *, as_: Literal["torch", "numpy"] = "torch",
        verify: bool = True, device: str | torch.device | None = None,
    ) -> Any:
        """Read a record's tensor back, exactly as stored.

        ``as_="torch"``: a CPU tensor (or on ``device``) with the stored dtype (bf16 stays bf16).
        ``as_="numpy"``: an ndarray; bfloat16 and float8 records come back as **float32** (numpy
        has no such dtypes; the widening is exact, ``Record.dtype`` keeps the stored name).
        ``verify`` recomputes the checksum (~1 GB/s); any mismatch, missing or unreadable file
        raises ``StoreCorruptionError`` naming the record and file. An unknown id raises
        ``UnknownRecordError``.

        >>> import tempfile, torch
        >>> with MatrixStore(tempfile.mkdtemp()) as s:
        ...     rid = s.put("r", 0, "w", "grad", torch.tensor([[1.5, 2.0]], dtype=torch.bfloat16))
        ...     s.get(rid), s.get(rid, as_="numpy").dtype
        (tensor([[1.5000, 2.0000]], dtype=torch.bfloat16), dtype('float32'))
        """
        if as_ not in ("torch", "numpy"):
            raise ValueError(f"as_ must be one of ['numpy', 'torch'], got {as_!r}")
        rec = self._resolve(record_or_id)
        return self._convert(read_tensor(self.path, rec, verify=verify), as_, device)

    def get_many(
        self, records: Iterable[Record | int], *, as_: Literal["torch", "numpy"] = "torch",
        verify: bool = True, device: str | torch.device | None = None,
    ) -> list[Any]:
        """``[get(r) for r in records]``, opening each data file once."""
        if as_ not in ("torch", "numpy"):
            raise ValueError(f"as_ must be one of ['numpy', 'torch'], got {as_!r}")
        from safetensors import safe_open

        recs = [self._resolve(r) for r in records]
        out: list[Any] = [None] * len(recs)
        by_file: dict[str, list[int]] = {}
        for i, r in enumerate(recs):
            by_file.setdefault(r.file, []).append(i)
        for file, idx in by_file.items():
            try:
                f = safe_open(str(self.path / file), framework="pt", device="cpu")
            except Exception:  # report per record, with the record's identity
                for i in idx:
                    out[i] = self._convert(read_tensor(self.path, recs[i], verify=verify), as_, device)
                continue
            with f:
                for i in idx:
                    out[i] = self._convert(
                        read_tensor(self.path, recs[i], verify=verify, handle=f), as_, device
                    )
        return out

    def verify(self, **filters: Any) -> VerifyReport:
        """Read back every record matching ``query(**filters)`` and check it; returns a
        :class:`VerifyReport` listing failures (never raises for corrupt records)."""
        recs = self.query(**filters)
        failures = []
        for r in recs:
            try:
                read_tensor(self.path, r, verify=True)
            except StoreCorruptionError as e:
                failures.append((r, str(e)))
        return VerifyReport(len(recs), tuple(failures))

    def summary(self) -> StoreSummary:
        """Totals, per-run step ranges, and skip counters (all sessions; see
        :class:`StoreSummary`). ``print(store.summary())`` gives a readable overview."""
        with self._mutex:
            cat = self._cat()
            n_rec, n_files, nbytes, fbytes = cat.totals()
            runs = tuple(
                RunSummary(run=r[0], records=r[1], nbytes=r[2], first_step=r[3], last_step=r[4],
                           layers=r[5], kinds=tuple(sorted(set((r[6] or "").split(",")))))
                for r in cat.run_summaries()
            )
            skipped = cat.skipped()
            for k, v in self._pending_skipped.items():
                skipped[k] = skipped.get(k, 0) + v
            return StoreSummary(
                path=str(self.path), schema_version=cat.schema_version, records=n_rec,
                files=n_files, nbytes=nbytes, file_bytes=fbytes, runs=runs, skipped=skipped,
                max_bytes=self.max_bytes, max_count=self.max_count,
            )


class StepBatch:
    """Tensors of one ``(run, step)`` collected by ``MatrixStore.batch`` and stored together on
    a clean exit of the ``with`` block. After exit, ``ids`` holds one id or ``None`` per put
    (in put order); ``None`` means skipped (see ``store.skipped``)."""

    def __init__(self, store: MatrixStore, run: str, step: int, meta: dict[str, Any]):
        self._store = store
        self.run, self.step, self.meta = run, step, meta
        self._items: list[tuple[str, str, torch.Tensor, dict[str, Any]]] = []
        self._keys: set[tuple[str, str]] = set()
        self.ids: list[int | None] | None = None

    def put(self, layer: str, kind: str, tensor: torch.Tensor | np.ndarray, *,
            meta: Mapping[str, Any] | None = None) -> None:
        """Queue a (copied) tensor; it is written when the ``with`` block exits."""
        if self.ids is not None:
            raise StoreError("this batch has already been stored; open a new store.batch(...)")
        _check_name(layer, "layer")
        _check_name(kind, "kind")
        t = _as_tensor(tensor, "tensor")
        m = _check_meta(meta, "meta")
        if (layer, kind) in self._keys:
            raise DuplicateRecordError(
                f"(layer={layer!r}, kind={kind!r}) was already put in this batch "
                f"(run={self.run!r}, step={self.step})"
            )
        self._keys.add((layer, kind))
        if self.step % self._store._every(layer):
            t = torch.empty(0, dtype=t.dtype)  # subsampled away by put_many: keep no data
        else:
            # snapshot now (the dtype cast, if any, happens in put_many so src_dtype is kept)
            t = t.detach().to(device="cpu", copy=True)
        self._items.append((layer, kind, t, m))

    def __len__(self) -> int:
        return len(self._items)

    def __enter__(self) -> "StepBatch":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.ids = self._store.put_many(self.run, self.step, self._items, meta=self.meta)
        else:
            self._items.clear()
