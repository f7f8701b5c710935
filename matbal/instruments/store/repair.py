"""Check and repair a matrix store: verify every data file against the catalog and against its
own self-description, and rebuild a damaged catalog from the data files.

Every data file's safetensors header repeats, per tensor, its ``run``/``step``/``layer``/
``kind``/``src_dtype``/``meta`` and (files written since the header gained it) its
``"sha256:…"`` checksum; dtype and shape are safetensors' own. So the data files alone are
enough to rebuild the catalog: :func:`repair_store` moves the damaged catalog aside (renamed
``catalog.sqlite.damaged-<UTC time>``, never deleted), writes a new one under a temporary name
and renames it into place. A repair killed at any moment loses nothing: data files are only
read, and rerunning it finishes the job.

>>> import tempfile, torch
>>> from matbal.instruments.store import MatrixStore, check_store, repair_store
>>> d = tempfile.mkdtemp()
>>> with MatrixStore(d, fsync=False) as s:
...     _ = s.put("run", 0, "w", "grad", torch.ones(2, 3), meta={"lr": 0.1})
>>> _ = open(f"{d}/catalog.sqlite", "wb").close()  # the catalog is zeroed
>>> check_store(d).ok
False
>>> rep = repair_store(d)
>>> rep.rebuilt, rep.records, rep.moved_aside[0].startswith("catalog.sqlite.damaged-")
(True, 1, True)
>>> with MatrixStore(d, mode="r") as s:
...     r, = s.query()
...     (r.run, r.step, r.layer, r.meta), s.get(r).sum().item()
(('run', 0, 'w', {'lr': 0.1}), 6.0)
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from safetensors import safe_open

from .catalog import CATALOG_NAME, SKIP_REASONS, Catalog, open_catalog
from .errors import StoreError, StoreNotFoundError
from .files import FORMAT_TAG, WriterLock, catalog_mtime_ns, classify_orphans, fsync_dir, scan_data
from .records import CheckReport, Record, RepairReport, checksum, dtype_name

__all__ = ["check_store", "repair_store"]

_SIDECARS = ("", "-wal", "-shm", "-journal")  # SQLite's files of one database
_REPAIR_NAME = CATALOG_NAME + ".repair"


class _FileProblem(Exception):
    """A data file that cannot be read or does not describe itself."""


def _describe(store_dir: Path, rel: str) -> list[dict[str, Any]]:
    """Read data file ``rel`` in full: one dict per tensor with its self-description
    (``run``, ``step``, ``layer``, ``kind``, ``src_dtype``, ``meta`` as JSON text or None,
    ``header_checksum`` or None), its ``key``, stored ``dtype``/``shape``/``nbytes`` and the
    ``checksum`` of its bytes as read."""
    try:
        with safe_open(str(store_dir / rel), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            if header.get("format") != FORMAT_TAG or "records" not in header:
                raise _FileProblem("safetensors file without a matbal matrix-store header")
            described = json.loads(header["records"])
            keys = list(f.keys())
            if not isinstance(described, dict) or set(described) != set(keys):
                raise _FileProblem(f"header describes tensors {sorted(described)} but the file "
                                   f"holds {sorted(keys)}")
            out = []
            for key, d in described.items():
                t = f.get_tensor(key)
                out.append({
                    "key": key, "run": d["run"], "step": int(d["step"]), "layer": d["layer"],
                    "kind": d["kind"], "src_dtype": d["src_dtype"],
                    "meta": json.dumps(d["meta"]) if d.get("meta") else None,
                    "header_checksum": d.get("checksum"), "dtype": dtype_name(t.dtype),
                    "shape": tuple(t.shape), "nbytes": t.numel() * t.element_size(),
                    "checksum": checksum(t.contiguous()),
                })
            return out
    except _FileProblem:
        raise
    except Exception as e:  # safetensors/OS/JSON/key errors: the file is not usable as is
        raise _FileProblem(f"unreadable data file ({type(e).__name__}: {e})") from None


def _torn(ent: dict[str, Any]) -> bool:
    return ent["header_checksum"] is not None and ent["header_checksum"] != ent["checksum"]


def _disagreements(rec: Record, ent: dict[str, Any]) -> list[str]:
    out = []
    for field in ("run", "step", "layer", "kind", "src_dtype", "dtype", "shape", "checksum"):
        if getattr(rec, field) != ent[field]:
            out.append(f"{field}: catalog {getattr(rec, field)!r}, file {ent[field]!r}")
    meta = json.loads(ent["meta"]) if ent["meta"] else {}
    if rec.meta != meta:
        out.append(f"meta: catalog {rec.meta!r}, file {meta!r}")
    return out


def check_store(path: str | Path) -> CheckReport:
    """Verify a store without changing anything: the catalog opens and passes SQLite's
    ``quick_check``; every data file is readable, every tensor matches its own header checksum
    (when the file has one) and the catalog row that references it (identity, meta, dtype,
    shape, checksum); no catalogued file is missing; no data file is unreferenced. Returns a
    :class:`CheckReport` (``ok``, ``problems``, ``notes``); ``matbal store check DIR`` prints it
    and exits with 1 when there are problems. Reads every byte (~1 GB/s). Safe while a writer
    runs, though a write in flight may then show up as a note."""
    store_dir = Path(path)
    if not store_dir.is_dir():
        raise StoreNotFoundError(f"no matrix store at {str(store_dir)!r} (not a directory)")
    problems: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    by_file: dict[str, list[Record]] = {}
    catalogued: set[str] | None = None  # None: the catalog cannot be read
    pending: set[str] = set()
    mtime = catalog_mtime_ns(store_dir, CATALOG_NAME)
    try:
        cat = open_catalog(store_dir, readonly=True)
    except StoreError as e:
        problems.append((CATALOG_NAME, str(e)))
    else:
        try:
            for rec in cat.query([], [], None):
                by_file.setdefault(rec.file, []).append(rec)
            catalogued, pending = cat.file_names(), cat.pending_names()
        except StoreError as e:
            problems.append((CATALOG_NAME, str(e)))
        finally:
            cat.close()
    listing = scan_data(store_dir)
    leftovers = set()
    if catalogued is not None:
        leftovers = set(classify_orphans(store_dir, listing.final, catalogued, pending, mtime)[0])
    n_records = 0
    for rel in listing.final:
        recs = by_file.get(rel, [])
        try:
            entries = {e["key"]: e for e in _describe(store_dir, rel)}
        except _FileProblem as e:
            lost = f" ({len(recs)} catalogued record(s) unreadable)" if recs else ""
            problems.append((rel, f"{e}{lost}"))
            continue
        n_records += len(entries)
        for key, ent in entries.items():
            if _torn(ent):
                problems.append((f"{rel}#{key}", f"bytes do not match the file's own checksum "
                                 f"({ent['checksum']} vs {ent['header_checksum']}): torn or "
                                 f"altered data"))
        if catalogued is None:
            continue
        for rec in recs:
            ent = entries.get(rec.key)
            if ent is None:
                problems.append((rel, f"record {rec.id}: tensor {rec.key!r} not in file"))
                continue
            for why in _disagreements(rec, ent):
                problems.append((f"{rel}#{rec.key}", f"record {rec.id}: {why}"))
        if rel in catalogued:
            continue
        if rel in leftovers:
            notes.append((rel, "leftover of an interrupted write (never committed; the next "
                               "mode='a' open removes it)"))
        else:
            problems.append((rel, f"not referenced by the catalog: may hold {len(entries)} "
                                  f"record(s) the catalog lost (`matbal store repair` adopts "
                                  f"them)"))
    present = set(listing.final)
    for rel in sorted(catalogued or ()):
        if rel not in present:
            problems.append((rel, f"catalogued data file missing ({len(by_file.get(rel, []))} "
                                  f"record(s) lost)"))
    notes += [(rel, "temp file of an interrupted write (the next mode='a' open removes it)")
              for rel in listing.temp]
    notes += [(rel, "not a store file (ignored)") for rel in listing.other]
    return CheckReport(str(store_dir), len(listing.final), n_records, tuple(problems),
                       tuple(notes))


def _old_skip_counters(store_dir: Path) -> dict[str, int]:
    """The skip counters of the old catalog, if it can still be read (best effort)."""
    path = store_dir / CATALOG_NAME
    if not path.is_file():
        return {}
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT key, value FROM info WHERE key LIKE 'skipped.%'")
            out = {k[len("skipped."):]: int(v) for k, v in rows}
        finally:
            con.close()
    except (sqlite3.Error, ValueError):
        return {}
    return {k: v for k, v in out.items() if k in SKIP_REASONS}


def _unlink_db(store_dir: Path, name: str) -> None:
    for sfx in _SIDECARS:
        try:
            os.unlink(store_dir / (name + sfx))
        except FileNotFoundError:
            pass


def repair_store(path: str | Path, *, force: bool = False) -> RepairReport:
    """Rebuild the catalog of ``path`` from its self-describing data files.

    Runs :func:`check_store` first and does nothing when it finds no problem (unless
    ``force``). Otherwise, under the writer lock (``StoreLockedError`` while a writer is open):
    every readable data file whose tensors pass their own header checksum is adopted, with
    every tensor's identity, meta, dtype, shape and checksum; a ``(run, step, layer, kind)``
    found in two files is taken from the newer file (mtime). Files that cannot be adopted are
    left on disk and listed in ``left_out``. The old catalog (with its ``-wal``/``-shm``) is
    renamed to ``catalog.sqlite.damaged-<UTC time>`` -- never deleted -- and the new one renamed
    into place. Skip counters are carried over when the old catalog still reads; record ids are
    renumbered (in file-time order). Returns a :class:`RepairReport`; ``matbal store repair
    DIR`` prints it. No data file is modified or deleted."""
    store_dir = Path(path)
    if not store_dir.is_dir():
        raise StoreNotFoundError(f"no matrix store at {str(store_dir)!r} (not a directory)")
    lock = WriterLock(store_dir)
    try:
        before = check_store(store_dir)
        if before.ok and not force:
            return RepairReport(str(store_dir), False, (), 0, 0, (), before)
        left_out: list[tuple[str, str]] = []
        described = []
        for rel in scan_data(store_dir).final:
            try:
                entries = _describe(store_dir, rel)
            except _FileProblem as e:
                left_out.append((rel, str(e)))
                continue
            torn = [e["key"] for e in entries if _torn(e)]
            if torn:  # a file is adopted whole or not at all (a batch is one step)
                left_out.append((rel, f"tensor(s) {torn} fail the file's own checksum"))
                continue
            st = (store_dir / rel).stat()
            described.append((st.st_mtime_ns, rel, st.st_size, entries))
        described.sort()
        newest: dict[tuple, str] = {}
        for _, rel, _, entries in described:
            for e in entries:
                newest[(e["run"], e["step"], e["layer"], e["kind"])] = rel
        files = []
        for mtime_ns, rel, size, entries in described:
            rows = []
            for e in entries:
                ident = (e["run"], e["step"], e["layer"], e["kind"])
                if newest[ident] != rel:
                    left_out.append((f"{rel}#{e['key']}",
                                     f"{ident} is also in the newer {newest[ident]}"))
                    continue
                rows.append({**e, "created": mtime_ns / 1e9})
            files.append((rel, size, rows, mtime_ns / 1e9))
        skipped = _old_skip_counters(store_dir)

        _unlink_db(store_dir, _REPAIR_NAME)  # an unfinished earlier repair's, never the catalog
        new = Catalog(store_dir, readonly=False, name=_REPAIR_NAME)
        try:
            n_records = new.rebuild(files, skipped)
        finally:
            new.close()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside, k = f"{CATALOG_NAME}.damaged-{stamp}", 1
        while any((store_dir / (aside + s)).exists() for s in _SIDECARS):
            aside, k = f"{CATALOG_NAME}.damaged-{stamp}-{k}", k + 1
        moved = []
        for sfx in _SIDECARS:  # keep the old database and its WAL together, under a new name
            if (store_dir / (CATALOG_NAME + sfx)).exists():
                os.replace(store_dir / (CATALOG_NAME + sfx), store_dir / (aside + sfx))
                moved.append(aside + sfx)
        for sfx in _SIDECARS:
            if (store_dir / (_REPAIR_NAME + sfx)).exists():
                os.replace(store_dir / (_REPAIR_NAME + sfx), store_dir / (CATALOG_NAME + sfx))
        fsync_dir(store_dir)
    finally:
        lock.release()
    return RepairReport(str(store_dir), True, tuple(moved), len(files), n_records,
                        tuple(left_out), before)
