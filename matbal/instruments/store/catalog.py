"""The SQLite catalog of a matrix store (stdlib ``sqlite3``, WAL mode).

Tables: ``info`` (key/value: format, schema_version, created, persisted skip counters),
``files`` (one row per safetensors data file) and ``records`` (one row per tensor). A record is
visible iff its row committed; rows are inserted together with their file's row in one
transaction, after the file is durably in place (see the package docstring).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import StoreNotFoundError, StoreVersionError
from .records import Record

__all__ = ["Catalog", "SCHEMA_VERSION", "CATALOG_NAME", "FORMAT"]

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


class Catalog:
    """Thin wrapper over the SQLite connection. Not thread-safe by itself: ``MatrixStore``
    serialises access with a lock."""

    def __init__(self, store_dir: Path, *, readonly: bool, fsync: bool = True):
        self.path = store_dir / CATALOG_NAME
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise StoreNotFoundError(
                    f"no matrix store at {str(store_dir)!r} (missing {CATALOG_NAME}); "
                    f"open it with mode='a' to create one"
                )
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
        else:
            self.conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
        self.conn.isolation_level = None  # explicit BEGIN/COMMIT
        try:
            self._init(fsync=fsync)
        except BaseException:
            self.conn.close()
            raise

    # -- setup ---------------------------------------------------------------------------------
    def _init(self, *, fsync: bool) -> None:
        c = self.conn
        if not self.readonly:
            c.execute("PRAGMA journal_mode=WAL")
            # WAL + FULL: a committed transaction survives power loss; NORMAL survives a killed
            # process (the OS keeps the WAL pages) but may lose the last commits on power loss.
            c.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables and not self.readonly:
            c.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.executemany(
                    "INSERT INTO info (key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)),
                     ("created", repr(time.time()))],
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            tables = {"info", "files", "records"}
        if "info" not in tables:
            raise StoreVersionError(
                f"{str(self.path)!r} is an SQLite file but not a matbal matrix-store catalog "
                f"(no 'info' table)"
            )
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

    def close(self) -> None:
        self.conn.close()

    # -- reads ---------------------------------------------------------------------------------
    def totals(self) -> tuple[int, int, int, int]:
        """``(records, files, data bytes, file bytes)``."""
        n_rec, nbytes = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM records"
        ).fetchone()
        n_files, fbytes = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM files"
        ).fetchone()
        return n_rec, n_files, nbytes, fbytes

    def file_names(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM files")}

    def has_file(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM files WHERE name=?", (name,)).fetchone() is not None

    def exists(self, run: str, step: int, layer: str, kind: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM records WHERE run=? AND step=? AND layer=? AND kind=?",
            (run, step, layer, kind),
        ).fetchone() is not None

    def get(self, record_id: int) -> Record | None:
        row = self.conn.execute(_SELECT + " WHERE r.id = ?", (record_id,)).fetchone()
        return _row_to_record(row) if row else None

    def runs(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT run FROM records ORDER BY run")]

    def has_run(self, run: str) -> bool:
        return self.conn.execute("SELECT 1 FROM records WHERE run=? LIMIT 1", (run,)).fetchone() \
            is not None

    def query(self, where: list[str], params: list[Any], limit: int | None) -> list[Record]:
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.run, r.step, r.layer, r.kind"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row_to_record(row) for row in self.conn.execute(sql, params)]

    def run_summaries(self) -> list[tuple]:
        rows = self.conn.execute(
            "SELECT run, COUNT(*), SUM(nbytes), MIN(step), MAX(step), COUNT(DISTINCT layer), "
            "GROUP_CONCAT(DISTINCT kind) FROM records GROUP BY run ORDER BY run"
        ).fetchall()
        return rows

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

    def insert(
        self, file_name: str, file_nbytes: int, rows: Iterable[dict[str, Any]],
        skipped_delta: dict[str, int],
    ) -> list[int]:
        """One transaction: the file row, its record rows, and the pending skip counters.
        Returns the new record ids in order."""
        c = self.conn
        now = time.time()
        c.execute("BEGIN IMMEDIATE")
        try:
            cur = c.execute(
                "INSERT INTO files (name, nbytes, created) VALUES (?, ?, ?)",
                (file_name, file_nbytes, now),
            )
            file_id = cur.lastrowid
            ids = []
            for r in rows:
                cur = c.execute(
                    "INSERT INTO records (run, step, layer, kind, shape, dtype, src_dtype, nbytes,"
                    " checksum, file_id, key, meta, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r["run"], r["step"], r["layer"], r["kind"], json.dumps(list(r["shape"])),
                     r["dtype"], r["src_dtype"], r["nbytes"], r["checksum"], file_id, r["key"],
                     r["meta"], now),
                )
                ids.append(cur.lastrowid)
            self._add_skipped_sql(skipped_delta)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return ids

    def add_skipped(self, skipped_delta: dict[str, int]) -> None:
        if not any(skipped_delta.values()):
            return
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            self._add_skipped_sql(skipped_delta)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
