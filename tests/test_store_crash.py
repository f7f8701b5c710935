"""MatrixStore crash safety: writers killed with SIGKILL / os._exit mid-stream."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from matbal.instruments.store import MatrixStore, StoreRecoveryWarning

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL / flock are POSIX")

# Each step k writes either one put (odd k) or a batch of three tensors (even k); every tensor is
# a function of the seed stored in its meta, so the reader can recompute what must come back.
_WRITER = textwrap.dedent(
    """
    import os, sys, torch
    import matbal.instruments.store.files as files
    from matbal.instruments.store import MatrixStore
    from matbal.instruments.store.catalog import Catalog

    def tensor(seed, dtype):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(96, 64, generator=g).to(dtype)

    def arm(crash):
        if crash == "before_replace":  # temp file written and fsynced, not yet renamed
            files.os.replace = lambda *a: os._exit(9)
        elif crash == "before_commit":  # final file in place, catalog rows not committed
            Catalog.insert = lambda *a, **k: os._exit(9)

    DTYPES = [torch.float32, torch.bfloat16, torch.float64]
    path, crash, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with MatrixStore(path) as store:
        for k in range(10**6):
            if k == crash_at:
                arm(crash)
            if k % 2:
                seed = 1000 * k
                store.put("run", k, "single", "grad", tensor(seed, DTYPES[k % 3]),
                          meta={"seed": seed})
            else:
                with store.batch("run", k) as b:
                    for j, layer in enumerate(("a", "b", "c")):
                        seed = 1000 * k + j
                        b.put(layer, "update", tensor(seed, DTYPES[(k + j) % 3]),
                              meta={"seed": seed})
    """
)


def _expected(rec):
    seed = rec.meta["seed"]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(96, 64, generator=g).to(getattr(torch, rec.dtype))


def _check_all_committed(path):
    with MatrixStore(path, mode="r") as s:
        recs = s.query()
        for rec, t in zip(recs, s.get_many(recs)):
            assert t.dtype == getattr(torch, rec.dtype)
            assert torch.equal(t, _expected(rec)), rec
        # batches are atomic: every committed even step has all three tensors
        by_step = {}
        for r in recs:
            by_step.setdefault(r.step, set()).add(r.layer)
        for step, layers in by_step.items():
            assert layers == ({"single"} if step % 2 else {"a", "b", "c"}), (step, layers)
        return recs


def _count(path) -> int:
    cat = path / "catalog.sqlite"
    if not cat.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{cat}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def _env():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_sigkill_mid_stream_then_resume(tmp_path):
    path = tmp_path / "s"
    err = tmp_path / "writer.stderr"
    with open(err, "wb") as errf:
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "none", "-1"],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=errf)
    try:
        deadline = time.monotonic() + 60
        while _count(path) < 20:
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "writer too slow"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    recs = _check_all_committed(path)
    assert len(recs) >= 20
    last = max(r.step for r in recs)
    # reopen in append mode (a leftover of the killed write, if any, is cleaned and reported)
    with _maybe_recovery_warning():
        store = MatrixStore(path, if_exists="skip")
    with store:
        assert store.recovery.missing_files == ()
        rid = store.put("run", last + 1, "resumed", "grad", torch.ones(3, 3), meta={"seed": -1})
        assert rid is not None and rid > max(r.id for r in recs)
        assert torch.equal(store.get(rid), torch.ones(3, 3))
    leftovers = [p for p in (path / "data").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


class _maybe_recovery_warning:
    """Accept (but do not require) a StoreRecoveryWarning; fail on any other warning."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        others = [w for w in self._log if not issubclass(w.category, StoreRecoveryWarning)]
        assert others == [], [str(w.message) for w in others]


@pytest.mark.parametrize("crash", ["before_replace", "before_commit"])
def test_crash_points_leave_invisible_partial_record(tmp_path, crash):
    """Kill deterministically inside a write: after the temp file is written (before rename),
    and after the rename (before the catalog commit). The partial record is invisible, the
    leftover is cleaned on the next append-open, and writing resumes."""
    path = tmp_path / "s"
    # steps 0-2 complete normally, then the process dies inside the write of step 3 (a put)
    res = subprocess.run([sys.executable, "-c", _WRITER, str(path), crash, "3"], env=_env(),
                         capture_output=True, timeout=60)
    assert res.returncode == 9, res.stderr.decode()
    recs = _check_all_committed(path)
    assert sorted({r.step for r in recs}) == [0, 1, 2] and len(recs) == 7
    files_on_disk = sorted(p for p in (path / "data").rglob("*") if p.is_file())
    assert len(files_on_disk) == 4  # 3 committed + 1 leftover
    with pytest.warns(StoreRecoveryWarning):
        store = MatrixStore(path)
    with store:
        if crash == "before_replace":
            assert len(store.recovery.removed_temp) == 1 and store.recovery.removed_orphans == ()
        else:
            assert len(store.recovery.removed_orphans) == 1 and store.recovery.removed_temp == ()
        assert len(list(p for p in (path / "data").rglob("*") if p.is_file())) == 3
        assert store.query(step=3) == []
        ids = store.put_many("run", 3, [(x, "update", torch.zeros(2, 2)) for x in "abc"])
        assert None not in ids and len(store) == 10


@pytest.mark.parametrize("crash", ["before_replace", "before_commit"])
def test_crash_then_lost_catalog_repair_keeps_every_committed_record(tmp_path, crash):
    """A writer killed inside a write, then its catalog zeroed: opening refuses (deleting
    nothing), and repair brings back every committed record; the interrupted write's complete
    file (before_commit) is adopted whole, a temp file never is."""
    from matbal.instruments.store import StoreCatalogError

    path = tmp_path / "s"
    res = subprocess.run([sys.executable, "-c", _WRITER, str(path), crash, "3"], env=_env(),
                         capture_output=True, timeout=60)
    assert res.returncode == 9, res.stderr.decode()
    committed = {(r.step, r.layer) for r in _check_all_committed(path)}
    on_disk = sorted(p for p in (path / "data").rglob("*") if p.is_file())
    (path / "catalog.sqlite").write_bytes(b"")
    with pytest.raises(StoreCatalogError, match="repair"):
        MatrixStore(path)
    assert sorted(p for p in (path / "data").rglob("*") if p.is_file()) == on_disk
    rep = MatrixStore.repair(path)
    assert rep.left_out == ()
    recs = _check_all_committed(path)  # every tensor equal to what was written
    got = {(r.step, r.layer) for r in recs}
    adopted = {(3, "single")} if crash == "before_commit" else set()
    assert got == committed | adopted
    with _maybe_recovery_warning():
        store = MatrixStore(path, if_exists="skip")
    with store:  # the temp file of before_replace is collected now; writing goes on
        assert store.put("run", 4, "a", "update", torch.zeros(2, 2), meta={"seed": -1})
    assert [p for p in (path / "data").rglob("*") if p.name.startswith(".")] == []
