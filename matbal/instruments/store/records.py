"""Lightweight result types of the matrix store: :class:`Record`, :class:`StoreSummary`,
:class:`RunSummary`, :class:`RecoveryReport`, plus dtype names and checksums."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import torch

__all__ = ["Record", "RunSummary", "StoreSummary", "RecoveryReport", "VerifyReport",
           "CheckReport", "RepairReport"]

# Dtypes a record may have; names are torch's (``str(torch.float32)`` minus "torch.").
_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in (
        "float64", "float32", "float16", "bfloat16",
        "float8_e4m3fn", "float8_e5m2",
        "int64", "int32", "int16", "int8", "uint8", "bool",
    )
    if hasattr(torch, name)
}
_DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in _DTYPES.items()}

CHECKSUM_ALGO = "sha256"  # with SHA-NI ~1.3 GB/s here, 2.6x blake2b; see store/__init__ docstring


def dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES[dtype]


def dtype_from_name(name: str) -> torch.dtype:
    return _DTYPES[name]


def checksum(t: torch.Tensor) -> str:
    """``"sha256:<hex>"`` of the raw (little-endian, C-order) bytes of a contiguous CPU tensor,
    i.e. exactly the bytes safetensors stores for it."""
    if t.numel() == 0:
        raw = b""
    else:
        raw = t.reshape(-1).view(torch.uint8).numpy()
    return f"{CHECKSUM_ALGO}:" + hashlib.sha256(raw).hexdigest()


@dataclasses.dataclass(frozen=True)
class Record:
    """One catalogued tensor. Cheap to create (no tensor data); pass it to ``MatrixStore.get``.

    ``dtype`` is the stored dtype (what ``get`` returns with ``as_="torch"``); ``src_dtype`` the
    dtype given to ``put`` (they differ when the store has a ``storage_dtype``). ``nbytes`` counts
    the tensor's data bytes as stored; ``file`` is relative to the store directory and ``key`` is
    the tensor's name inside that safetensors file. ``created`` is a Unix timestamp.
    """

    id: int
    run: str
    step: int
    layer: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    src_dtype: str
    nbytes: int
    checksum: str
    file: str
    key: str
    created: float
    meta_json: str | None = dataclasses.field(default=None, repr=False)

    @property
    def meta(self) -> dict[str, Any]:
        """The user's ``meta`` dict (decoded from JSON on each access; ``{}`` when none)."""
        return json.loads(self.meta_json) if self.meta_json else {}

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """Per-run totals: record count, data bytes, step range, distinct layers and kinds."""

    run: str
    records: int
    nbytes: int
    first_step: int
    last_step: int
    layers: int
    kinds: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class StoreSummary:
    """What ``MatrixStore.summary()`` returns.

    ``records``/``files``: catalogued counts. ``nbytes``: tensor data bytes; ``file_bytes``: bytes
    of the catalogued safetensors files on disk (what ``max_bytes`` caps). ``skipped``: puts not
    stored, by reason (``"max_bytes"``, ``"max_count"``, ``"subsampled"``, ``"exists"``), summed
    over every writer session that persisted its counters.
    """

    path: str
    schema_version: int
    records: int
    files: int
    nbytes: int
    file_bytes: int
    runs: tuple[RunSummary, ...]
    skipped: dict[str, int]
    max_bytes: int | None
    max_count: int | None

    def __str__(self) -> str:
        lines = [
            f"MatrixStore {self.path} (schema v{self.schema_version}): {self.records} records in "
            f"{self.files} files, {self.file_bytes / 2**20:.1f} MiB on disk",
        ]
        if self.max_bytes is not None or self.max_count is not None:
            lines.append(f"  caps: max_bytes={self.max_bytes} max_count={self.max_count}")
        for r in self.runs:
            lines.append(
                f"  run {r.run!r}: {r.records} records, steps {r.first_step}..{r.last_step}, "
                f"{r.layers} layers, kinds {list(r.kinds)}, {r.nbytes / 2**20:.1f} MiB"
            )
        if any(self.skipped.values()):
            lines.append(f"  skipped puts: {self.skipped}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class RecoveryReport:
    """What opening in append mode cleaned up (paths relative to the store directory).

    ``removed_temp``: temp files of an interrupted write (never renamed into place).
    ``removed_orphans``: complete data files whose catalog transaction provably never committed
    (their write intent is still in the catalog; their records were never visible).
    ``missing_files``: catalogued files that are absent (their records raise
    ``StoreCorruptionError`` on ``get``; nothing is deleted from the catalog).
    ``unreferenced``: complete data files no catalog row references that recovery could not
    prove uncommitted, so kept (``matbal store repair`` adopts them into the catalog).
    """

    removed_temp: tuple[str, ...] = ()
    removed_orphans: tuple[str, ...] = ()
    missing_files: tuple[str, ...] = ()
    unreferenced: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.removed_temp or self.removed_orphans or self.missing_files
                    or self.unreferenced)


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """What ``MatrixStore.verify()`` returns: how many records were checked and the failures as
    ``(record, message)`` pairs. ``ok`` is True when there are none."""

    checked: int
    failures: tuple[tuple[Record, str], ...]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """What ``MatrixStore.check(path)`` (``matbal store check``) found.

    ``problems``: ``(path, message)`` pairs that lose or misreport data -- a damaged catalog, a
    catalogued file missing or unreadable, a tensor whose bytes, dtype, shape or self-description
    disagree with the catalog or with its own header checksum, a data file no catalog row
    references. ``notes``: harmless leftovers of an interrupted writer (temp files, a file whose
    write never committed), removed by the next ``mode="a"`` open. ``files``/``records``: data
    files and tensors read. ``ok`` is True when there are no problems. Paths are relative to the
    store directory.
    """

    path: str
    files: int
    records: int
    problems: tuple[tuple[str, str], ...]
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"MatrixStore {self.path}: checked {self.files} data file(s), {self.records} "
                f"tensor(s): " + ("OK" if self.ok else f"{len(self.problems)} problem(s)"))
        lines = [head] + [f"  PROBLEM {p}: {m}" for p, m in self.problems]
        lines += [f"  note {p}: {m}" for p, m in self.notes]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class RepairReport:
    """What ``MatrixStore.repair(path)`` (``matbal store repair``) did.

    ``rebuilt``: whether a new catalog was written (``False`` when ``check`` found nothing to
    repair). ``moved_aside``: the old catalog's files, renamed (never deleted), e.g.
    ``catalog.sqlite.damaged-20260101T120000``. ``files``/``records``: what the new catalog
    holds. ``left_out``: ``(path, why)`` for data files (or single tensors, ``path#key``) that
    could not be adopted -- unreadable, failing their own checksum, or a duplicate
    ``(run, step, layer, kind)`` of a newer file; they stay on disk. ``before``: the check that
    decided the repair. Record ids are renumbered.
    """

    path: str
    rebuilt: bool
    moved_aside: tuple[str, ...]
    files: int
    records: int
    left_out: tuple[tuple[str, str], ...]
    before: CheckReport

    def __str__(self) -> str:
        if not self.rebuilt:
            return f"MatrixStore {self.path}: nothing to repair ({self.before.records} tensors OK)"
        lines = [f"MatrixStore {self.path}: rebuilt the catalog from {self.files} data file(s), "
                 f"{self.records} record(s)"]
        lines += [f"  moved aside {m}" for m in self.moved_aside]
        lines += [f"  left out {p}: {why}" for p, why in self.left_out]
        return "\n".join(lines)
