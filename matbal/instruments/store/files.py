"""Data files of a matrix store: atomic safetensors writes, reads with verification, the writer
lock, the listing of ``data/`` and the garbage collection of an interrupted writer's leftovers."""
from __future__ import annotations

import errno
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file as st_save_file

from .errors import StoreCorruptionError, StoreDiskFullError, StoreLockedError, StoreWriteError
from .records import Record, RecoveryReport, checksum, dtype_name

try:  # POSIX advisory locks; released by the kernel when the holder dies (kill -9 included)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DATA_DIR", "LOCK_NAME", "WriterLock", "new_file_name", "write_temp", "publish", "discard",
    "read_tensor", "collect_garbage", "header_metadata", "scan_data", "DataListing", "fsync_dir",
    "FORMAT_TAG", "catalog_mtime_ns", "classify_orphans",
]

DATA_DIR = "data"
FORMAT_TAG = "matbal-matrix-store"  # the "format" of every data file's header metadata
LOCK_NAME = "LOCK"
_FINAL_RE = re.compile(r"^[0-9a-f]{32}\.safetensors$")
_TEMP_RE = re.compile(r"^\.[0-9a-f]{32}\.safetensors\.tmp$")
# safetensors >= 0.6 serialises into a hidden ``.tmpXXXXXX`` (Rust ``tempfile``) in the target
# directory and renames it to the name it was given (our ``.<uuid>.safetensors.tmp``); a writer
# killed inside ``save_file`` leaves that file behind.
_ST_TEMP_RE = re.compile(r"^\.tmp[0-9A-Za-z]{3,}$")


def fsync_dir(path: Path) -> None:
    """fsync a directory (its entries: created/renamed files); a no-op off POSIX."""
    if os.name != "posix":  # pragma: no cover - directories cannot be fsynced on Windows
        return
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriterLock:
    """Exclusive, non-blocking ``flock`` on ``<store>/LOCK`` held for a writer's lifetime.

    The lock lives on a Python file object, so it is released by ``release()``, by garbage
    collection of a forgotten store object, and by the kernel when the process dies (kill -9
    included)."""

    def __init__(self, store_dir: Path):
        self.path = store_dir / LOCK_NAME
        self._file = None
        if fcntl is None:  # pragma: no cover
            return
        f = open(self.path, "a+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise StoreLockedError(
                f"another writer holds {str(self.path)!r}: a store takes one writer at a time "
                f"(close() the other MatrixStore -- in this process too -- or open this one with "
                f"mode='r' to read while it writes)"
            ) from None
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None


def new_file_name() -> str:
    """Relative path of a fresh data file: ``data/<2 hex>/<32 hex>.safetensors``."""
    h = uuid.uuid4().hex
    return f"{DATA_DIR}/{h[:2]}/{h}.safetensors"


def write_temp(store_dir: Path, rel_name: str, tensors: dict[str, torch.Tensor],
               header_meta: dict[str, str], *, fsync: bool) -> tuple[Path, int]:
    """Step 1 of an atomic write: serialise ``tensors`` into ``.<name>.tmp`` next to the final
    name (``safetensors.torch.save_file``, no intermediate bytes copy), fsync it. Returns the temp
    path and its size. Finish with :func:`publish` or :func:`discard`."""
    final = store_dir / rel_name
    shard = final.parent
    if not shard.is_dir():
        shard.mkdir(parents=True, exist_ok=True)
        if fsync:
            fsync_dir(shard.parent)
            fsync_dir(shard.parent.parent)
    tmp = shard / f".{final.name}.tmp"
    try:
        st_save_file(tensors, str(tmp), metadata=header_meta)
        fd = os.open(str(tmp), os.O_RDWR)
        try:
            if fsync:
                os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
    except BaseException as e:
        discard(tmp)
        if isinstance(e, (OSError, SafetensorError)):
            raise write_error(e, tmp, "writing data file") from e
        raise
    return tmp, size


def write_error(e: BaseException, path: Path, doing: str) -> StoreWriteError:
    """The store error for a failed data-file write (``StoreDiskFullError`` on ENOSPC/EDQUOT)."""
    full = (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
        k in str(e) for k in ("No space left", "code: 28,", "Disk quota exceeded"))
    cls = StoreDiskFullError if full else StoreWriteError
    what = "disk full" if full else f"{type(e).__name__}: {e}"
    return cls(f"{doing} {str(path)!r} failed ({what}); the record was not stored"
               + (" -- free space and retry" if full else ""), path=str(path))


def publish(tmp: Path, *, fsync: bool) -> None:
    """Step 2: ``os.replace`` the temp file to its final name (atomic), then fsync the directory.
    A crash leaves either the temp file or the complete final file -- never a partial file under
    the final name."""
    final = tmp.with_name(tmp.name[1:-len(".tmp")])
    try:
        os.replace(tmp, final)
        if fsync:
            fsync_dir(final.parent)
    except OSError as e:
        raise write_error(e, final, "publishing data file") from e


def discard(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def read_tensor(store_dir: Path, rec: Record, *, verify: bool = True, handle=None) -> torch.Tensor:
    """Read one record's tensor (on CPU, stored dtype) and check it against the catalog:
    key present, dtype, shape and (when ``verify``) checksum. Any failure is a
    ``StoreCorruptionError`` naming the record id and file. ``handle`` is an open ``safe_open``
    of ``rec.file`` to reuse (``get_many``)."""
    path = store_dir / rec.file

    def fail(why: str) -> StoreCorruptionError:
        return StoreCorruptionError(
            f"record {rec.id} (run={rec.run!r}, step={rec.step}, layer={rec.layer!r}, "
            f"kind={rec.kind!r}) in file {str(path)!r}: {why}",
            record=rec, file=str(path),
        )

    try:
        if handle is None:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                t = _get(f, rec, fail)
        else:
            t = _get(handle, rec, fail)
    except StoreCorruptionError:
        raise
    except FileNotFoundError:
        raise fail("data file is missing") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise fail(f"unreadable safetensors file ({type(e).__name__}: {e})") from None
    if dtype_name(t.dtype) != rec.dtype:
        raise fail(f"dtype {dtype_name(t.dtype)} in file, catalog says {rec.dtype}")
    if tuple(t.shape) != rec.shape:
        raise fail(f"shape {tuple(t.shape)} in file, catalog says {rec.shape}")
    if verify:
        got = checksum(t)
        if got != rec.checksum:
            raise fail(f"checksum mismatch (file {got}, catalog {rec.checksum})")
    return t


def _get(f: Any, rec: Record, fail) -> torch.Tensor:
    if rec.key not in f.keys():
        raise fail(f"tensor {rec.key!r} not in file")
    return f.get_tensor(rec.key)


class DataListing:
    """The files under ``data/<xx>/`` (paths relative to the store directory, sorted):
    ``final`` data files, ``temp`` files of writes that never got their final name (ours and
    safetensors' own), ``other`` files the store did not write (never touched)."""

    def __init__(self, final: list[str], temp: list[str], other: list[str]):
        self.final, self.temp, self.other = final, temp, other


def scan_data(store_dir: Path) -> DataListing:
    """List ``<store>/data`` (see :class:`DataListing`)."""
    data = store_dir / DATA_DIR
    final, temp, other = [], [], []
    if data.is_dir():
        for shard in sorted(data.iterdir()):
            if not shard.is_dir():
                other.append(f"{DATA_DIR}/{shard.name}")
                continue
            for p in sorted(shard.iterdir()):
                rel = f"{DATA_DIR}/{shard.name}/{p.name}"
                if _FINAL_RE.match(p.name) and p.name.startswith(shard.name):
                    final.append(rel)
                elif _TEMP_RE.match(p.name) or _ST_TEMP_RE.match(p.name):
                    temp.append(rel)
                else:
                    other.append(rel)
    return DataListing(final, temp, other)


def catalog_mtime_ns(store_dir: Path, name: str = "catalog.sqlite") -> int:
    """When the catalog last changed: the newest mtime of the database and its ``-wal``
    (ignoring an empty ``-wal``, which a reader may create). 0 if neither exists."""
    out = 0
    for p in (store_dir / name, store_dir / (name + "-wal")):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if st.st_size:
            out = max(out, st.st_mtime_ns)
    return out


def classify_orphans(store_dir: Path, final: list[str], catalogued: set[str],
                     pending: set[str], catalog_mtime: int) -> tuple[list[str], list[str]]:
    """Split the data files no catalog row references into ``(provably uncommitted, kept)``.

    A file is provably uncommitted iff its name is in ``pending`` (its write intent committed,
    and the transaction that would reference it deletes the intent atomically: the intent
    still there => that transaction never committed), no other unreferenced data file is
    present, and the catalog (``catalog_mtime``, see :func:`catalog_mtime_ns`) did not change
    after the file was written (a later commit would have to be a later write's). Anything
    else -- the sign of a catalog that lost rows (replaced, restored from a copy, a stale
    ``-wal`` put back) -- is kept, every pending file with it."""
    def older_than_catalog(rel: str) -> bool:
        try:
            return (store_dir / rel).stat().st_mtime_ns < catalog_mtime
        except FileNotFoundError:  # removed meanwhile (a check beside a live writer)
            return False

    orphans = [rel for rel in final if rel not in catalogued]
    unknown = [rel for rel in orphans if rel not in pending or older_than_catalog(rel)]
    return ([], orphans) if unknown else (orphans, [])


def collect_garbage(store_dir: Path, catalogued: set[str], pending: set[str], *,
                    catalog_mtime: int = 0, dry_run: bool = False) -> RecoveryReport:
    """Remove what an interrupted writer left under ``data/`` and is provably uncommitted:
    temp files (``.<uuid>.safetensors.tmp`` and safetensors' ``.tmpXXXXXX``: they never got a
    final name, and catalog rows name only final names) and the unreferenced data files
    :func:`classify_orphans` proves uncommitted. Other unreferenced files are kept and
    reported in ``unreferenced`` (``matbal store repair`` adopts them). Only names matching the
    store's own patterns are touched. Must run under the writer lock."""
    listing = scan_data(store_dir)
    removable, kept = classify_orphans(store_dir, listing.final, catalogued, pending,
                                       catalog_mtime)
    if not dry_run:
        for rel in listing.temp + removable:
            try:
                os.unlink(store_dir / rel)
            except FileNotFoundError:  # pragma: no cover
                pass
    missing = sorted(catalogued - set(listing.final))
    return RecoveryReport(tuple(listing.temp), tuple(removable), tuple(missing), tuple(kept))


def header_metadata(items: list[dict[str, Any]]) -> dict[str, str]:
    """The safetensors header ``__metadata__``: every record's identity and checksum, so a data
    file is self-describing (and self-verifying) without the catalog. (Files written before the
    checksum was added lack it; ``check`` then verifies them against the catalog only.)"""
    return {
        "format": FORMAT_TAG,
        "records": json.dumps(
            {
                it["key"]: {
                    "run": it["run"], "step": it["step"], "layer": it["layer"],
                    "kind": it["kind"], "src_dtype": it["src_dtype"],
                    "meta": json.loads(it["meta"]) if it["meta"] else None,
                    "checksum": it["checksum"],
                }
                for it in items
            }
        ),
    }
