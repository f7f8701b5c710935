"""The SQLite catalog of a matrix store (stdlib ``sqlite3``, WAL mode).

Tables: ``info`` (key/value: format, schema_version, created, persisted skip counters),
``files`` (one row per safetensors data file), ``records`` (one row per tensor) and ``pending``
(write intents: the names of data files about to be written). A record is visible iff its row
committed; rows are inserted together with their file's row in one transaction, after the file
is durably in place, and that transaction deletes the file's intent (see the package docstring).

Every ``sqlite3`` error is re-raised as a :class:`StoreError` subclass naming the catalog's path
and chaining the cause: a damaged catalog as :class:`StoreCatalogError`, a full disk as
:class:`StoreDiskFullError`, another failed write as :class:`StoreWriteError`.
"""
from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import (
    StoreCatalogError,
    StoreDiskFullError,
    StoreError,
    StoreNotFoundError,
    StoreVersionError,
    StoreWriteError,
)
from .files import scan_data
from .records import Record

__all__ = ["Catalog", "open_catalog", "translate", "SCHEMA_VERSION", "CATALOG_NAME", "FORMAT"]

SCHEMA_VERSION = 1
CATALOG_NAME = "catalog.sqlite"
FORMAT = "matbal-matrix-store"

_SCHEMA = """
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    nbytes INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    step INTEGER NOT NULL,
    layer TEXT NOT NULL,
    kind TEXT NOT NULL,
    shape TEXT NOT NULL,
    dtype TEXT NOT NULL,
    src_dtype TEXT NOT NULL,
    nbytes INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    file_id INTEGER NOT NULL REFERENCES files(id),
    key TEXT NOT NULL,
    meta TEXT,
    created REAL NOT NULL,
    UNIQUE (run, step, layer, kind)
);
CREATE INDEX records_run_layer_step ON records (run, layer, step);
CREATE INDEX records_step ON records (step);
"""
# ``pending`` came after schema version 1 was published: a writer adds it to an older catalog
# (readers of version 1 ignore it), so the version stays 1.
_PENDING_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pending (name TEXT PRIMARY KEY, created REAL NOT NULL)"
)
_SCHEMA += _PENDING_SCHEMA + ";\n"
_REQUIRED_TABLES = ("info", "files", "records")

_SELECT = (
    "SELECT r.id, r.run, r.step, r.layer, r.kind, r.shape, r.dtype, r.src_dtype, r.nbytes, "
    "r.checksum, f.name, r.key, r.created, r.meta FROM records r JOIN files f ON f.id = r.file_id"
)

SKIP_REASONS = ("max_bytes", "max_count", "subsampled", "exists")


def _row_to_record(row: Sequence[Any]) -> Record:
    return Record(
        id=row[0], run=row[1], step=row[2], layer=row[3], kind=row[4],
        shape=tuple(json.loads(row[5])), dtype=row[6], src_dtype=row[7], nbytes=row[8],
        checksum=row[9], file=row[10], key=row[11], created=row[12], meta_json=row[13],
    )


def repair_hint(store_dir: Path) -> str:
    """The remedy appended to every damaged-catalog message."""
    d = str(store_dir)
    return (f"the data files under {str(Path(d) / 'data')!r} were left untouched; "
            f"`matbal store check {d}` lists what is on disk and `matbal store repair {d}` "
            f"(MatrixStore.repair) rebuilds the catalog from the self-describing data files, "
            f"moving the damaged catalog aside (it is never deleted)")


def _is_disk_full(e: BaseException) -> bool:
    name = getattr(e, "sqlite_errorname", "")
    return name == "SQLITE_FULL" or "database or disk is full" in str(e)


def translate(e: sqlite3.Error, path: Path, doing: str, *, write: bool) -> StoreError:
    """The store error for ``sqlite3`` error ``e`` raised while ``doing`` on catalog ``path``
    (raise it ``from e``): disk full, another failed write, or a damaged catalog."""
    if _is_disk_full(e):
        return StoreDiskFullError(
            f"disk full while {doing} (catalog {str(path)!r}): {e}; nothing of this write was "
            f"committed -- free space and retry", path=str(path))
    damaged = isinstance(e, sqlite3.DatabaseError) and any(
        k in str(e) for k in ("not a database", "malformed", "no such table", "no such column",
                              "file is encrypted", "corrupt"))
    if write and not damaged:
        return StoreWriteError(f"catalog write failed while {doing} ({str(path)!r}): "
                               f"{type(e).__name__}: {e}", path=str(path))
    if not damaged and isinstance(e, sqlite3.OperationalError):  # busy, locked, cannot open
        return StoreError(f"catalog {str(path)!r}: {doing} failed: {type(e).__name__}: {e}")
    return StoreCatalogError(
        f"damaged catalog {str(path)!r} ({doing}: {type(e).__name__}: {e}); "
        f"{repair_hint(path.parent)}", path=str(path))


def _guarded(doing: str, *, write: bool = False):
    """Method decorator: ``sqlite3`` errors become store errors naming the catalog."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except sqlite3.Error as e:
                raise translate(e, self.path, doing, write=write) from e

        return wrapper

    return deco


class Catalog:
    """Thin wrapper over the SQLite connection. Not thread-safe by itself: ``MatrixStore``
    serialises access with a lock.

    ``count_data_files``: returns how many data files the store directory holds. A catalog
    without tables (a new store, or a creator killed before its first commit) is initialised
    only when writable and that count is 0; otherwise it is damaged and refused
    (``StoreCatalogError``).
    ``name``: the catalog's file name (``repair`` builds a new catalog under another name)."""

    def __init__(self, store_dir: Path, *, readonly: bool, fsync: bool = True,
                 count_data_files: Callable[[], int] = lambda: 0, name: str = CATALOG_NAME):
        self.path = store_dir / name
        self.readonly = readonly
        if readonly and not self.path.is_file():
            raise StoreNotFoundError(
                f"no matrix store at {str(store_dir)!r} (missing {name}); "
                f"open it with mode='a' to create one"
            )
        try:
            if readonly:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
            else:
                self.conn = sqlite3.connect(str(self.path), timeout=30.0,
                                            check_same_thread=False)
        except sqlite3.Error as e:
            raise translate(e, self.path, "opening the catalog", write=False) from e
        self.conn.isolation_level = None  # explicit BEGIN/COMMIT
        try:
            self._init(fsync=fsync, count_data_files=count_data_files)
        except sqlite3.Error as e:
            self.conn.close()
            raise translate(e, self.path, "opening the catalog", write=False) from e
        except BaseException:
            self.conn.close()
            raise

    # -- setup ---------------------------------------------------------------------------------
    def _damaged(self, why: str) -> StoreCatalogError:
        return StoreCatalogError(f"damaged catalog {str(self.path)!r}: {why}; "
                                 f"{repair_hint(self.path.parent)}", path=str(self.path))

    def _init(self, *, fsync: bool, count_data_files: Callable[[], int]) -> None:
        c = self.conn
        if not self.readonly:
            c.execute("PRAGMA journal_mode=WAL")
            # WAL + FULL: a committed transaction survives power loss; NORMAL survives a killed
            # process (the OS keeps the WAL pages) but may lose the last commits on power loss.
            c.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            data_files = count_data_files()
            if self.readonly or data_files:
                raise self._damaged(
                    "it has no tables (empty or zeroed file)"
                    + (f" while the store holds {data_files} data file(s)" if data_files else ""))
            with self._transaction("creating the catalog"):
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.executemany(
                    "INSERT INTO info (key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)),
                     ("created", repr(time.time()))],
                )
            tables = {"info", "files", "records", "pending"}
        if not tables & set(_REQUIRED_TABLES):
            raise StoreVersionError(
                f"{str(self.path)!r} is an SQLite file but not a matbal matrix-store catalog "
                f"(no 'info' table)"
            )
        missing = [t for t in _REQUIRED_TABLES if t not in tables]
        if missing:
            raise self._damaged(f"table(s) {missing} missing")
        problems = [r[0] for r in c.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise self._damaged("SQLite quick_check failed: " + "; ".join(problems[:3]))
        info = dict(c.execute("SELECT key, value FROM info"))
        if info.get("format") != FORMAT:
            raise StoreVersionError(
                f"{str(self.path)!r} is not a matbal matrix-store catalog "
                f"(format={info.get('format')!r}, expected {FORMAT!r})"
            )
        try:
            version = int(info.get("schema_version", ""))
        except ValueError:
            raise StoreVersionError(
                f"{str(self.path)!r} has an unreadable schema_version "
                f"{info.get('schema_version')!r}"
            ) from None
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{str(self.path)!r} has catalog schema version {version}, newer than this matbal "
                f"supports ({SCHEMA_VERSION}); upgrade matbal to read it"
            )
        if version < 1:
            raise StoreVersionError(f"{str(self.path)!r} has invalid schema version {version}")
        self.schema_version = version
        self.has_pending = "pending" in tables
        if not self.readonly and not self.has_pending:
            with self._transaction("adding the pending table"):
                c.execute(_PENDING_SCHEMA)
            self.has_pending = True

    @contextlib.contextmanager
    def _transaction(self, doing: str):
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any failure roll back if SQLite has not
        already done so (a failed COMMIT, e.g. on a full disk, rolls back by itself) and raise
        the store error for a ``sqlite3`` cause."""
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            yield c
            c.execute("COMMIT")
        except BaseException as e:
            if c.in_transaction:
                try:
                    c.execute("ROLLBACK")
                except sqlite3.Error:  # pragma: no cover - the original error matters
                    pass
            if isinstance(e, sqlite3.Error):
                raise translate(e, self.path, doing, write=True) from e
            raise

    def close(self) -> None:
        self.conn.close()

    # -- reads ---------------------------------------------------------------------------------
    @_guarded("counting records")
    def totals(self) -> tuple[int, int, int, int]:
        """``(records, files, data bytes, file bytes)``."""
        n_rec, nbytes = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM records"
        ).fetchone()
        n_files, fbytes = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM files"
        ).fetchone()
        return n_rec, n_files, nbytes, fbytes

    @_guarded("listing files")
    def file_names(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM files")}

    @_guarded("listing write intents")
    def pending_names(self) -> set[str]:
        """Names of data files whose write was announced but never committed."""
        if not self.has_pending:
            return set()
        return {r[0] for r in self.conn.execute("SELECT name FROM pending")}

    @_guarded("looking up a file")
    def has_file(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM files WHERE name=?", (name,)).fetchone() is not None

    @_guarded("looking up a record")
    def exists(self, run: str, step: int, layer: str, kind: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM records WHERE run=? AND step=? AND layer=? AND kind=?",
            (run, step, layer, kind),
        ).fetchone() is not None

    @_guarded("reading a record")
    def get(self, record_id: int) -> Record | None:
        row = self.conn.execute(_SELECT + " WHERE r.id = ?", (record_id,)).fetchone()
        return _row_to_record(row) if row else None

    @_guarded("listing runs")
    def runs(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT run FROM records ORDER BY run")]

    @_guarded("looking up a run")
    def has_run(self, run: str) -> bool:
        return self.conn.execute("SELECT 1 FROM records WHERE run=? LIMIT 1", (run,)).fetchone() \
            is not None

    @_guarded("querying records")
    def query(self, where: list[str], params: list[Any], limit: int | None) -> list[Record]:
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.run, r.step, r.layer, r.kind"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row_to_record(row) for row in self.conn.execute(sql, params)]

    @_guarded("summarising runs")
    def run_summaries(self) -> list[tuple]:
        rows = self.conn.execute(
            "SELECT run, COUNT(*), SUM(nbytes), MIN(step), MAX(step), COUNT(DISTINCT layer), "
            "GROUP_CONCAT(DISTINCT kind) FROM records GROUP BY run ORDER BY run"
        ).fetchall()
        return rows

    @_guarded("reading skip counters")
    def skipped(self) -> dict[str, int]:
        out = dict.fromkeys(SKIP_REASONS, 0)
        for key, value in self.conn.execute("SELECT key, value FROM info WHERE key LIKE 'skipped.%'"):
            out[key[len("skipped."):]] = int(value)
        return out

    # -- writes --------------------------------------------------------------------------------
    def _add_skipped_sql(self, skipped_delta: dict[str, int]) -> None:
        for reason, n in skipped_delta.items():
            if n:
                self.conn.execute(
                    "INSERT INTO info (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                    "SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT)",
                    (f"skipped.{reason}", str(n), n),
                )

    def _insert_sql(self, file_name: str, file_nbytes: int, rows: Iterable[dict[str, Any]],
                    now: float) -> list[int]:
        c = self.conn
        file_id = c.execute(
            "INSERT INTO files (name, nbytes, created) VALUES (?, ?, ?)",
            (file_name, file_nbytes, now),
        ).lastrowid
        ids = []
        for r in rows:
            cur = c.execute(
                "INSERT INTO records (run, step, layer, kind, shape, dtype, src_dtype, nbytes,"
                " checksum, file_id, key, meta, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (r["run"], r["step"], r["layer"], r["kind"], json.dumps(list(r["shape"])),
                 r["dtype"], r["src_dtype"], r["nbytes"], r["checksum"], file_id, r["key"],
                 r["meta"], r.get("created", now)),
            )
            ids.append(cur.lastrowid)
        return ids

    def insert(
        self, file_name: str, file_nbytes: int, rows: Iterable[dict[str, Any]],
        skipped_delta: dict[str, int], next_name: str | None = None,
    ) -> list[int]:
        """One transaction: the file row, its record rows, the pending skip counters, the
        removal of the file's write intent and the intent of the next file (``next_name``).
        Returns the new record ids in order."""
        with self._transaction(f"committing {file_name}"):
            ids = self._insert_sql(file_name, file_nbytes, rows, time.time())
            self._add_skipped_sql(skipped_delta)
            self.conn.execute("DELETE FROM pending WHERE name=?", (file_name,))
            if next_name is not None:
                self.conn.execute("INSERT INTO pending (name, created) VALUES (?, ?)",
                                  (next_name, time.time()))
        return ids

    def set_pending(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """One transaction: announce the writes of ``add``, forget the intents ``remove``."""
        with self._transaction("recording write intents"):
            self.conn.executemany("DELETE FROM pending WHERE name=?", [(n,) for n in remove])
            self.conn.executemany("INSERT INTO pending (name, created) VALUES (?, ?)",
                                  [(n, time.time()) for n in add])

    def rebuild(self, files: Iterable[tuple[str, int, list[dict[str, Any]], float]],
                skipped: dict[str, int]) -> int:
        """Fill an empty catalog in one transaction (``repair``): ``(name, nbytes, rows,
        created)`` per data file, plus the skip counters. Returns the number of records."""
        n = 0
        with self._transaction("rebuilding the catalog"):
            for name, nbytes, rows, created in files:
                n += len(self._insert_sql(name, nbytes, rows, created))
            self._add_skipped_sql(skipped)
        return n

    def add_skipped(self, skipped_delta: dict[str, int]) -> None:
        if not any(skipped_delta.values()):
            return
        with self._transaction("saving skip counters"):
            self._add_skipped_sql(skipped_delta)


def open_catalog(path: Path, *, readonly: bool, fsync: bool = True) -> Catalog:
    """Open ``path``'s catalog, refusing a missing or empty one while ``data/`` holds data
    files (``StoreCatalogError``): such files may hold committed records and are never taken for
    an interrupted writer's leftovers."""

    def count() -> int:  # listing data/ costs a directory walk: only when the catalog is suspect
        return len(scan_data(path).final)

    cat_path = path / CATALOG_NAME
    if not cat_path.is_file() and count():
        raise StoreCatalogError(
            f"catalog {str(cat_path)!r} is missing while the store holds {count()} data "
            f"file(s); {repair_hint(path)}", path=str(cat_path))
    return Catalog(path, readonly=readonly, fsync=fsync, count_data_files=count)
