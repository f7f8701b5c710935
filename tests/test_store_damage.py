"""MatrixStore under damage: a catalog zeroed, truncated, garbage, deleted, missing a table or
with a stale journal; a writer killed inside safetensors' serialisation; a full disk. No
committed record is ever lost: the data files stay, ``repair`` brings every record back with
equal tensors and metadata, and every error names the path."""
from __future__ import annotations

import errno
import gc
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from matbal.instruments.cli import main as store_cli
from matbal.instruments.store import (
    MatrixStore,
    StoreCatalogError,
    StoreDiskFullError,
    StoreLockedError,
    StoreRecoveryWarning,
    StoreWriteError,
    check_store,
    repair_store,
)

CATALOG = "catalog.sqlite"


def tensor(seed: int, shape=(6, 5), dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def build(path, **kw) -> dict:
    """A store with puts, batches, two runs, bf16 storage, int tensors and meta. Returns what
    must read back: {(run, step, layer, kind): (tensor as stored, meta, src_dtype)}."""
    expected = {}
    with MatrixStore(path, fsync=False, **kw) as s:
        for step in range(4):
            with s.batch("muon", step, meta={"lr": 0.02, "step": step}) as b:
                for j, layer in enumerate(("blocks.0.attn", "blocks.0.mlp")):
                    t = tensor(10 * step + j, dtype=(torch.float32, torch.float64)[j])
                    b.put(layer, "grad", t, meta={"seed": 10 * step + j})
                    expected[("muon", step, layer, "grad")] = (
                        t, {"lr": 0.02, "step": step, "seed": 10 * step + j}, str(t.dtype)[6:])
        for step in (0, 1):
            t = tensor(100 + step, (3, 7), torch.bfloat16)
            s.put("adamw", step, "embed", "update", t)
            expected[("adamw", step, "embed", "update")] = (t, {}, "bfloat16")
        ints = torch.arange(12, dtype=torch.int32).reshape(3, 4)
        s.put("adamw", 2, "counts", "hist", ints, meta={"note": "ints"})
        expected[("adamw", 2, "counts", "hist")] = (ints, {"note": "ints"}, "int32")
    return expected


def assert_all_back(path, expected) -> None:
    with MatrixStore(path, mode="r") as s:
        recs = s.query()
        got = {(r.run, r.step, r.layer, r.kind): r for r in recs}
        assert set(got) == set(expected)
        for key, (t, meta, src) in expected.items():
            r = got[key]
            back = s.get(r)
            assert back.dtype == t.dtype and torch.equal(back, t), key
            assert r.meta == meta and r.src_dtype == src, key


def data_files(path) -> set:
    return {p.relative_to(path).as_posix() for p in (path / "data").rglob("*") if p.is_file()}


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = store_cli(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# -- the ways a catalog gets damaged ---------------------------------------------------------------
def _zeroed(cat):
    cat.write_bytes(b"")


def _truncated_half(cat):
    cat.write_bytes(cat.read_bytes()[: cat.stat().st_size // 2])


def _truncated_header(cat):
    cat.write_bytes(cat.read_bytes()[:100])  # the SQLite header only


def _garbage(cat):
    cat.write_bytes(bytes(range(256)) * (cat.stat().st_size // 256))


def _deleted(cat):
    cat.unlink()


def _records_table_dropped(cat):
    con = sqlite3.connect(cat)
    con.execute("DROP TABLE records")
    con.commit()
    con.close()


def _files_table_dropped(cat):
    con = sqlite3.connect(cat)
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("DROP TABLE files")
    con.commit()
    con.close()


DAMAGE = {f.__name__[1:]: f for f in (_zeroed, _truncated_half, _truncated_header, _garbage,
                                       _deleted, _records_table_dropped, _files_table_dropped)}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_catalog_is_refused_and_repaired(tmp_path, damage):
    path = tmp_path / "s"
    expected = build(path)
    before = data_files(path)
    assert len(before) == 7
    DAMAGE[damage](path / CATALOG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for mode in ("a", "r"):
            with pytest.raises(StoreCatalogError, match="matbal store repair") as ei:
                MatrixStore(path, mode=mode)
            assert str(path / CATALOG) in str(ei.value) and ei.value.path == str(path / CATALOG)
            if damage in ("garbage", "truncated_half"):  # SQLite's own error is the cause
                assert isinstance(ei.value.__cause__, sqlite3.DatabaseError)
        gc.collect()
    assert caught == []  # no recovery, no "unclosed MatrixStore"
    assert data_files(path) == before  # nothing deleted
    with pytest.raises(StoreCatalogError):  # still refused: a refusal changes nothing
        MatrixStore(path)

    report = check_store(path)
    assert not report.ok and report.problems[0][0] == CATALOG and report.files == 7
    assert report.records == len(expected)  # every tensor read and self-verified
    code, out, _ = run_cli("check", str(path))
    assert code == 1 and "PROBLEM catalog.sqlite" in out

    old = (path / CATALOG).read_bytes() if (path / CATALOG).exists() else None
    code, out, err = run_cli("repair", str(path))
    assert code == 0, out + err
    assert "rebuilt the catalog from 7 data file(s), 11 record(s)" in out and "OK" in out
    assert data_files(path) == before
    aside = [p for p in path.iterdir() if p.name.startswith(CATALOG + ".damaged-")]
    if old is None:
        assert aside == []
    else:  # moved aside byte for byte, never deleted
        assert [p.read_bytes() for p in aside if not p.name.endswith(("-wal", "-shm"))] == [old]
    assert_all_back(path, expected)
    assert check_store(path).ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with MatrixStore(path, fsync=False) as s:  # writable again, no recovery needed
            assert s.put("muon", 9, "blocks.0.attn", "grad", tensor(9)) == len(expected) + 1


def test_stale_wal_reverts_catalog_no_file_deleted(tmp_path):
    """A stale ``catalog.sqlite-wal`` put back next to a newer catalog makes SQLite replay old
    pages: the catalog silently goes back in time. The newer data files are unreferenced; the
    append-open must keep them (not take them for an interrupted write) and repair adopts
    them."""
    path = tmp_path / "s"
    code = textwrap.dedent(
        """
        import os, sys, torch
        from matbal.instruments.store import MatrixStore
        s = MatrixStore(sys.argv[1], fsync=False)
        for k in range(3):
            s.put("r", k, "w", "grad", torch.full((4, 4), float(k)))
        os._exit(9)  # killed: the commits are in the WAL, not checkpointed
        """
    )
    res = subprocess.run([sys.executable, "-c", code, str(path)], env=_env(), capture_output=True)
    assert res.returncode == 9, res.stderr.decode()
    stale = (path / (CATALOG + "-wal")).read_bytes()
    expected = {}
    with MatrixStore(path, fsync=False) as s:  # commits of step 3 and 4, checkpointed on close
        for k in range(5):
            expected[("r", k, "w", "grad")] = (torch.full((4, 4), float(k)), {}, "float32")
        s.put("r", 3, "w", "grad", torch.full((4, 4), 3.0))
        s.put("r", 4, "w", "grad", torch.full((4, 4), 4.0))
    before = data_files(path)
    (path / (CATALOG + "-wal")).write_bytes(stale)
    with pytest.warns(StoreRecoveryWarning, match="KEPT 2 data file"):
        s = MatrixStore(path, fsync=False)
    with s:
        assert [r.step for r in s.query()] == [0, 1, 2]  # SQLite replayed the stale WAL
        assert s.recovery.removed_orphans == () and len(s.recovery.unreferenced) == 2
    assert data_files(path) == before
    rep = check_store(path)
    assert [m for _, m in rep.problems if "not referenced by the catalog" in m] != []
    assert MatrixStore.repair(path).records == 5
    assert_all_back(path, expected)


def test_one_lost_commit_with_newer_catalog_is_kept(tmp_path):
    """The last commit lost (stale WAL, catalog file touched after the data file was written):
    the one unreferenced file *is* the pending one, but the catalog changed after it was
    written, so it is not provably uncommitted: kept."""
    path = tmp_path / "s"
    with MatrixStore(path, fsync=False) as s:
        s.put("r", 0, "w", "grad", tensor(0))
        snapshot = (path / CATALOG).read_bytes(), (path / (CATALOG + "-wal")).read_bytes()
        s.put("r", 1, "w", "grad", tensor(1))  # the commit that will be lost
    (path / CATALOG).write_bytes(snapshot[0])
    (path / (CATALOG + "-wal")).write_bytes(snapshot[1])
    before = data_files(path)
    with pytest.warns(StoreRecoveryWarning, match="KEPT 1"):
        MatrixStore(path, fsync=False).close()
    assert data_files(path) == before
    MatrixStore.repair(path)
    assert_all_back(path, {("r", k, "w", "grad"): (tensor(k), {}, "float32") for k in (0, 1)})


def test_stale_rollback_journal_loses_nothing(tmp_path):
    path = tmp_path / "s"
    expected = build(path)
    before = data_files(path)
    (path / (CATALOG + "-journal")).write_bytes(bytes(range(256)) * 20)
    with MatrixStore(path, fsync=False) as s:  # SQLite ignores/cleans it
        assert len(s) == len(expected) and not s.recovery
    assert data_files(path) == before
    assert_all_back(path, expected)


# -- data files: check finds every problem, repair adopts only what verifies ----------------------
def test_check_reports_file_problems_and_exit_status(tmp_path):
    path = tmp_path / "s"
    build(path)
    code, out, _ = run_cli("check", str(path))
    assert code == 0 and "checked 7 data file(s), 11 tensor(s): OK" in out
    with MatrixStore(path, mode="r") as s:
        recs = s.query()
    flipped, gone = recs[0], recs[-1]
    f = path / flipped.file
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x40  # last byte of the file: a tensor's data
    f.write_bytes(bytes(raw))
    (path / gone.file).unlink()
    (path / "data" / "ab").mkdir(exist_ok=True)
    (path / "data" / "ab" / ".tmpQw3rTy").write_bytes(b"x")
    rep = check_store(path)
    msgs = "\n".join(f"{p}: {m}" for p, m in rep.problems)
    assert "checksum" in msgs and "own checksum" in msgs and flipped.file in msgs
    n_gone = sum(r.file == gone.file for r in recs)
    assert f"{gone.file}: catalogued data file missing ({n_gone} record(s) lost)" in msgs
    assert [p for p, _ in rep.notes] == ["data/ab/.tmpQw3rTy"]
    code, out, _ = run_cli("check", str(path))
    assert code == 1 and "problem(s)" in out
    # repair leaves the torn file out (on disk, listed) and keeps everything else
    rep = repair_store(path)
    assert rep.rebuilt and [p for p, _ in rep.left_out] == [flipped.file]
    lost = sum(r.file in (flipped.file, gone.file) for r in recs)
    assert (path / flipped.file).exists() and rep.records == 11 - lost


def test_repair_prefers_newer_duplicate_and_needs_the_lock(tmp_path):
    path = tmp_path / "s"
    with MatrixStore(path, fsync=False) as s:
        s.put("r", 0, "w", "grad", tensor(0))
        old_file = s.record(1).file
    # a second catalog-less copy of the same record, written later (e.g. a re-recording after
    # the catalog lost the first): repair keeps the newer one
    with MatrixStore(tmp_path / "other", fsync=False) as s2:
        s2.put("r", 0, "w", "grad", tensor(1))
        newer = tmp_path / "other" / s2.record(1).file
    dest = path / "data" / newer.parent.name / newer.name
    dest.parent.mkdir(exist_ok=True)
    dest.write_bytes(newer.read_bytes())
    os.utime(path / old_file, ns=(10**18, 10**18))
    os.utime(dest, ns=(2 * 10**18, 2 * 10**18))
    with pytest.warns(StoreRecoveryWarning, match="KEPT 1"):
        writer = MatrixStore(path, fsync=False)
    with writer:
        with pytest.raises(StoreLockedError):
            repair_store(path)
    rep = repair_store(path)
    assert rep.records == 1 and [p for p, _ in rep.left_out] == [f"{old_file}#w/grad"]
    assert_all_back(path, {("r", 0, "w", "grad"): (tensor(1), {}, "float32")})
    assert repair_store(path).rebuilt is False  # healthy now: nothing to do


def test_repair_of_files_without_header_checksum(tmp_path, monkeypatch):
    """Data files written before headers carried checksums are adopted too (checksum computed
    from their bytes); a legacy catalog without the pending table is upgraded in place."""
    import matbal.instruments.store.store as store_mod

    real = store_mod.header_metadata

    def legacy(items):
        out = real(items)
        import json

        recs = json.loads(out["records"])
        for v in recs.values():
            del v["checksum"]
        return {**out, "records": json.dumps(recs)}

    monkeypatch.setattr(store_mod, "header_metadata", legacy)
    path = tmp_path / "s"
    expected = build(path)
    monkeypatch.undo()
    con = sqlite3.connect(path / CATALOG)
    con.execute("DROP TABLE pending")
    con.commit()
    con.close()
    assert check_store(path).ok
    with MatrixStore(path, fsync=False) as s:
        s.put("new", 0, "w", "grad", tensor(5))
    expected[("new", 0, "w", "grad")] = (tensor(5), {}, "float32")
    _zeroed(path / CATALOG)
    assert repair_store(path).records == len(expected)
    assert_all_back(path, expected)


# -- kill -9 inside safetensors' serialisation ----------------------------------------------------
def _env():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE / SIGXFSZ are POSIX")
def test_writer_killed_inside_save_file_leaves_no_temp(tmp_path):
    """SIGXFSZ (file size limit) kills the writer inside safetensors' ``save_file``, which
    leaves its hidden ``.tmpXXXXXX`` in ``data/<xx>/``; the next append-open removes it."""
    path = tmp_path / "s"
    code = textwrap.dedent(
        """
        import resource, signal, sys, torch
        from matbal.instruments.store import MatrixStore
        s = MatrixStore(sys.argv[1], fsync=False)
        s.put("r", 0, "w", "grad", torch.ones(8, 8))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
        s.put("r", 1, "w", "grad", torch.ones(1024, 1024))  # 4 MiB: killed mid-write
        """
    )
    res = subprocess.run([sys.executable, "-c", code, str(path)], env=_env(), capture_output=True)
    assert res.returncode == -signal.SIGXFSZ, res.stderr.decode()
    leaked = [f for f in data_files(path) if f.rsplit("/", 1)[1].startswith(".tmp")]
    assert len(leaked) == 1, data_files(path)
    with pytest.warns(StoreRecoveryWarning, match="removed 1 temp file"):
        s = MatrixStore(path, fsync=False)
    with s:
        assert s.recovery.removed_temp == tuple(leaked) and s.recovery.removed_orphans == ()
        assert len(s) == 1 and torch.equal(s.get(1), torch.ones(8, 8))
    assert all(not f.rsplit("/", 1)[1].startswith(".") for f in data_files(path))


# -- a full disk ----------------------------------------------------------------------------------
def test_full_catalog_raises_disk_full_naming_the_catalog(tmp_path):
    """A real SQLITE_FULL: cap the catalog's pages (``PRAGMA max_page_count``)."""
    path = tmp_path / "s"
    with MatrixStore(path, fsync=False) as s:
        s.put("r", 0, "w", "grad", tensor(0))
        conn = s._catalog.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(StoreDiskFullError, match="disk full") as ei:
            for k in range(1, 200):
                s.put("r", k, "w", "grad", tensor(k), meta={"pad": "x" * 2000})
        err = ei.value
        assert isinstance(err, OSError) and err.path == str(path / CATALOG)
        assert str(path / CATALOG) in str(err)
        assert isinstance(err.__cause__, sqlite3.OperationalError)
        assert "full" in str(err.__cause__)
        n = len(s)
        conn.execute("PRAGMA max_page_count=1073741823")  # space freed: the store goes on
        assert s.put("r", 500, "w", "grad", tensor(500)) == n + 1
        assert check_store(path).ok  # the refused write left no file behind


def test_disk_full_at_commit_is_not_cannot_rollback(tmp_path):
    """SQLite rolls a transaction back by itself when COMMIT fails on a full disk; the old
    code's own ROLLBACK then raised 'cannot rollback - no transaction is active'."""
    path = tmp_path / "s"
    with MatrixStore(path, fsync=False) as s:
        s.put("r", 0, "w", "grad", tensor(0))
        real = s._catalog.conn

        class FullAtCommit:
            def __getattr__(self, name):
                return getattr(real, name)

            def execute(self, sql, *args):
                if sql == "COMMIT":
                    real.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL at commit
                    raise sqlite3.OperationalError("database or disk is full")
                return real.execute(sql, *args)

        s._catalog.conn = FullAtCommit()
        with pytest.raises(StoreDiskFullError, match=f"{CATALOG}.*database or disk is full") as ei:
            s.put("r", 1, "w", "grad", tensor(1))
        assert "cannot rollback" not in str(ei.value)
        assert "cannot rollback" not in str(ei.value.__cause__)
        s._catalog.conn = real
        assert len(s) == 1 and s.put("r", 1, "w", "grad", tensor(1)) == 2
    assert check_store(path).ok


@pytest.mark.parametrize("where", ["save_file", "replace"])
def test_disk_full_writing_a_data_file(tmp_path, monkeypatch, where):
    import matbal.instruments.store.files as files

    path = tmp_path / "s"
    with MatrixStore(path, fsync=False) as s:
        s.put("r", 0, "w", "grad", tensor(0))

        def full(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        if where == "save_file":
            monkeypatch.setattr(files, "st_save_file", full)
        else:
            monkeypatch.setattr(files.os, "replace", full)
        with pytest.raises(StoreDiskFullError, match="disk full.*free space") as ei:
            s.put("r", 1, "w", "grad", tensor(1))
        assert isinstance(ei.value.__cause__, OSError)
        assert ei.value.__cause__.errno == errno.ENOSPC
        assert str(path / "data") in str(ei.value)
        monkeypatch.undo()
        assert len(data_files(path)) == 1  # the refused write left nothing
        assert s.put("r", 1, "w", "grad", tensor(1)) == 2


def test_write_error_other_than_full(tmp_path, monkeypatch):
    import matbal.instruments.store.files as files

    def eio(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    with MatrixStore(tmp_path / "s", fsync=False) as s:
        monkeypatch.setattr(files, "st_save_file", eio)
        with pytest.raises(StoreWriteError, match="Input/output error") as ei:
            s.put("r", 1, "w", "grad", tensor(1))
        assert not isinstance(ei.value, StoreDiskFullError)


def test_check_compares_catalog_with_self_description(tmp_path):
    path = tmp_path / "s"
    build(path)
    con = sqlite3.connect(path / CATALOG)
    con.execute("UPDATE records SET meta='{\"lr\": 9}', step=7 WHERE id=1")
    con.commit()
    con.close()
    rep = check_store(path)
    assert len(rep.problems) == 2 and all("record 1:" in m for _, m in rep.problems)
    assert any("step: catalog 7, file 0" in m for _, m in rep.problems)
    assert any("meta: catalog {'lr': 9}" in m for _, m in rep.problems)
    assert rep.problems[0][0].endswith("#blocks.0.attn/grad")
