"""MatrixStore: round trips, queries, caps, subsampling, errors, corruption, recovery."""
from __future__ import annotations

import json
import sqlite3
import warnings

import numpy as np
import pytest
import torch

from matbal.instruments.store import (
    DuplicateRecordError,
    MatrixStore,
    Record,
    StoreCorruptionError,
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


def rand(seed: int, shape=(5, 3), dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=g, dtype=torch.float64).to(dtype)


@pytest.fixture
def store(tmp_path):
    with MatrixStore(tmp_path / "s", fsync=False) as s:
        yield s


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16,
                                   torch.int64, torch.bool])
@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 4), (6,), ()])
def test_round_trip_bit_exact(tmp_path, dtype, shape):
    t = rand(1, shape).to(dtype) if dtype != torch.bool else rand(1, shape) > 0
    with MatrixStore(tmp_path / "s", fsync=False) as s:
        rid = s.put("r", 3, "w", "grad", t, meta={"seed": 1})
    with MatrixStore(tmp_path / "s", mode="r") as s:
        back = s.get(rid)
        rec = s.record(rid)
    assert back.dtype == dtype and torch.equal(back, t)
    assert rec.shape == tuple(shape) and rec.dtype == str(dtype)[6:] == rec.src_dtype
    assert rec.nbytes == t.numel() * t.element_size() and rec.meta == {"seed": 1}


def test_nan_inf_and_noncontiguous_and_grad_inputs_untouched(store):
    t = rand(2, (4, 6))
    t[0, 0], t[1, 1] = float("nan"), float("inf")
    before = t.clone()
    p = torch.nn.Parameter(rand(3, (3, 4)))
    ids = store.put_many("r", 0, [("a", "grad", t.T), ("b", "param", p), ("c", "view", t[1:3])])
    # NaN != NaN under torch.equal: compare the bits
    assert torch.equal(store.get(ids[0]).view(torch.int32), t.T.contiguous().view(torch.int32))
    assert torch.equal(store.get(ids[1]), p.detach()) and not store.get(ids[1]).requires_grad
    assert torch.equal(store.get(ids[2]).view(torch.int32), t[1:3].view(torch.int32))
    assert torch.equal(t.view(torch.int32), before.view(torch.int32))


def test_numpy_io(store):
    f32, bf = rand(4), rand(5, dtype=torch.bfloat16)
    i32 = store.put("r", 0, "w", "f32", f32)
    ibf = store.put("r", 0, "w", "bf16", bf)
    inp = store.put("r", 0, "w", "np64", rand(6, dtype=torch.float64).numpy())
    a = store.get(i32, as_="numpy")
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and np.array_equal(a, f32.numpy())
    b = store.get(ibf, as_="numpy")  # documented: bf16 widens exactly to float32
    assert b.dtype == np.float32 and np.array_equal(b, bf.float().numpy())
    assert store.record(inp).dtype == "float64"
    assert np.array_equal(store.get(inp, as_="numpy"), rand(6, dtype=torch.float64).numpy())
    with pytest.raises(ValueError, match="as_"):
        store.get(i32, as_="jax")


def test_storage_dtype_bf16(tmp_path):
    with MatrixStore(tmp_path / "s", storage_dtype=torch.bfloat16, fsync=False) as s:
        a = s.put("r", 0, "w", "grad", rand(1, (64, 32)))
        b = s.put("r", 0, "w", "count", torch.arange(6))  # ints are kept as they are
        ra, rb = s.record(a), s.record(b)
        assert (ra.dtype, ra.src_dtype, ra.nbytes) == ("bfloat16", "float32", 64 * 32 * 2)
        assert torch.equal(s.get(a), rand(1, (64, 32)).to(torch.bfloat16))
        assert rb.dtype == "int64" and torch.equal(s.get(b), torch.arange(6))
        with s.batch("r", 1) as bt:
            bt.put("w", "grad", rand(2, (4, 4), torch.float64))
        rec = s.record(bt.ids[0])
        assert (rec.dtype, rec.src_dtype) == ("bfloat16", "float64")
    with pytest.raises(TypeError, match="storage_dtype"):
        MatrixStore(tmp_path / "t", storage_dtype=torch.int8)


def test_get_many_and_batch_file_sharing(store):
    ids = store.put_many("r", 0, {("a", "g"): rand(1), ("b", "g"): rand(2), ("c", "g"): rand(3)})
    recs = store.query()
    assert len({r.file for r in recs}) == 1  # one step -> one data file
    ids.append(store.put("r", 1, "a", "g", rand(4)))
    out = store.get_many(ids + [ids[0]])
    for t, seed in zip(out, [1, 2, 3, 4, 1]):
        assert torch.equal(t, rand(seed))
    assert [a.dtype for a in store.get_many(store.query(step=0), as_="numpy")] == [np.float32] * 3


def test_batch_snapshot_and_atomic(store):
    g = rand(1)
    with store.batch("r", 0, meta={"loss": 2.5}) as b:
        b.put("w", "grad", g)
        b.put("v", "grad", g, meta={"note": "x"})
        g.mul_(0)  # an in-place update after put must not leak into the record
    assert b.ids == [1, 2]
    assert torch.equal(store.get(1), rand(1)) and store.record(2).meta == {"loss": 2.5, "note": "x"}
    with pytest.raises(RuntimeError, match="boom"):
        with store.batch("r", 1) as b2:
            b2.put("w", "grad", rand(2))
            raise RuntimeError("boom")
    assert b2.ids is None and store.query(step=1) == []
    with pytest.raises(DuplicateRecordError):
        with store.batch("r", 2) as b3:
            b3.put("w", "grad", rand(2))
            b3.put("w", "grad", rand(3))


# -- queries --------------------------------------------------------------------------------------
@pytest.fixture
def filled(store):
    for run in ("base", "muon"):
        for step in range(10):
            store.put_many(run, step, {
                ("blocks.0.attn", "grad"): rand(step), ("blocks.0.mlp", "grad"): rand(step),
                ("blocks.1.mlp", "update"): rand(step), ("embed", "grad"): rand(step),
            })
    return store


def test_query_filters(filled):
    s = filled
    assert s.runs() == ["base", "muon"] and len(s) == 80
    assert len(s.query(run="base")) == 40 and len(s.query(run=["base", "muon"])) == 80
    assert {r.step for r in s.query(step=3)} == {3}
    assert sorted({r.step for r in s.query(step=range(2, 5))}) == [2, 3, 4]
    assert sorted({r.step for r in s.query(step=range(1, 10, 4))}) == [1, 5, 9]
    assert sorted({r.step for r in s.query(step=slice(8, None))}) == [8, 9]
    assert sorted({r.step for r in s.query(step=slice(None, 2))}) == [0, 1]
    assert {r.layer for r in s.query(layer="blocks.*.mlp")} == {"blocks.0.mlp", "blocks.1.mlp"}
    assert {r.layer for r in s.query(layer="blocks.?.attn")} == {"blocks.0.attn"}
    assert {r.layer for r in s.query(layer=["embed", "blocks.1.*"])} == {"embed", "blocks.1.mlp"}
    assert len(s.query(layer="Embed")) == 0  # case-sensitive
    assert {r.kind for r in s.query(kind="update")} == {"update"}
    recs = s.query(run="muon", step=range(0, 10, 3), layer="blocks.*", kind="grad")
    assert [(r.step, r.layer) for r in recs][:3] == [(0, "blocks.0.attn"), (0, "blocks.0.mlp"),
                                                     (3, "blocks.0.attn")]
    assert len(recs) == 8 and all(isinstance(r, Record) for r in recs)
    assert len(s.query(limit=5)) == 5
    assert s.query(run="nope") == []
    with pytest.raises(UnknownRunError, match="'nope'.*known runs: \\['base', 'muon'\\]"):
        s.query(run="nope", strict=True)
    assert torch.equal(s.get(recs[-1]), rand(9))


def test_query_bad_args(filled):
    s = filled
    with pytest.raises(ValueError, match="step"):
        s.query(step=-1)
    with pytest.raises(TypeError, match="step"):
        s.query(step="3")
    with pytest.raises(TypeError, match="step"):
        s.query(step=2.0)
    with pytest.raises(ValueError, match="step range"):
        s.query(step=range(5, 0, -1))
    with pytest.raises(TypeError, match="layer"):
        s.query(layer=3)
    with pytest.raises(TypeError, match="run"):
        s.query(run=7)
    with pytest.raises(ValueError, match="kind"):
        s.query(kind=[])
    with pytest.raises(ValueError, match="limit"):
        s.query(limit=0)


def test_empty_store_and_unknown_id(tmp_path):
    with MatrixStore(tmp_path / "s") as s:
        assert s.query() == [] and s.runs() == [] and len(s) == 0
        summ = s.summary()
        assert summ.records == 0 and summ.runs == () and "0 records" in str(summ)
        with pytest.raises(UnknownRecordError, match="no record with id 1"):
            s.get(1)
        with pytest.raises(TypeError, match="record_or_id"):
            s.get("1")
        with pytest.raises(TypeError, match="record_or_id"):
            s.get(True)


def test_summary(filled):
    summ = filled.summary()
    assert summ.records == 80 and summ.files == 20 and summ.nbytes == 80 * 15 * 4
    assert [r.run for r in summ.runs] == ["base", "muon"]
    r = summ.runs[0]
    assert (r.records, r.first_step, r.last_step, r.layers, r.kinds) == (40, 0, 9, 4,
                                                                          ("grad", "update"))
    assert "run 'base': 40 records" in str(summ)


# -- writing: arguments, duplicates, modes ------------------------------------------------------
def test_put_bad_args_name_the_argument(store):
    t = rand(0)
    cases = [
        (dict(run=1), TypeError, "run"), (dict(run=""), ValueError, "run"),
        (dict(step=-1), ValueError, "step"), (dict(step=1.0), TypeError, "step"),
        (dict(step=True), TypeError, "step"), (dict(layer=None), TypeError, "layer"),
        (dict(layer=""), ValueError, "layer"), (dict(kind=3), TypeError, "kind"),
        (dict(tensor=[1.0, 2.0]), TypeError, "tensor"),
        (dict(tensor=torch.zeros(2, dtype=torch.complex64)), TypeError, "tensor"),
        (dict(tensor=np.array(["a"])), TypeError, "tensor"),
        (dict(tensor=torch.zeros(3).to_sparse()), TypeError, "tensor"),
        (dict(meta={"x": object()}), TypeError, "meta"), (dict(meta={1: 2}), TypeError, "meta"),
        (dict(meta=[1]), TypeError, "meta"),
    ]
    for override, exc, name in cases:
        kw = dict(run="r", step=0, layer="w", kind="grad", tensor=t) | override
        meta = kw.pop("meta", None)
        with pytest.raises(exc, match=name):
            store.put(kw["run"], kw["step"], kw["layer"], kw["kind"], kw["tensor"], meta=meta)
    assert len(store) == 0
    with pytest.raises(TypeError, match=r"items\[1\]"):
        store.put_many("r", 0, [("a", "g", t), ("b", "g")])
    with pytest.raises(TypeError, match=r"tensor \(items\[1\]\)"):
        store.put_many("r", 0, [("a", "g", t), ("b", "g", "nope")])
    assert len(store) == 0  # nothing written when any item is bad


def test_constructor_bad_args(tmp_path):
    for kw, exc, name in [
        (dict(mode="w"), ValueError, "mode"), (dict(max_bytes=0), ValueError, "max_bytes"),
        (dict(max_count=1.5), TypeError, "max_count"), (dict(layer_every=0), ValueError,
                                                        "layer_every"),
        (dict(layer_every={"a*": "x"}), TypeError, "layer_every"),
        (dict(if_exists="replace"), ValueError, "if_exists"),
        (dict(on_full="drop"), ValueError, "on_full"),
    ]:
        with pytest.raises(exc, match=name):
            MatrixStore(tmp_path / "s", **kw)
    with pytest.raises(TypeError, match="path"):
        MatrixStore(3)


def test_duplicates(tmp_path):
    with MatrixStore(tmp_path / "s", fsync=False) as s:
        s.put("r", 0, "w", "grad", rand(0))
        with pytest.raises(DuplicateRecordError, match="already recorded"):
            s.put("r", 0, "w", "grad", rand(1))
        with pytest.raises(DuplicateRecordError):
            s.put_many("r", 0, [("w", "m", rand(1)), ("w", "m", rand(2))])
    with MatrixStore(tmp_path / "s", if_exists="skip", fsync=False) as s:
        assert s.put_many("r", 0, [("w", "grad", rand(1)), ("v", "grad", rand(2))]) == [None, 2]
        assert s.skipped["exists"] == 1 and torch.equal(s.get(1), rand(0))


def test_read_mode(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no matrix store"):
        MatrixStore(tmp_path / "missing", mode="r")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreNotFoundError, match="catalog.sqlite"):
        MatrixStore(tmp_path / "empty", mode="r")
    assert not (tmp_path / "missing").exists()
    with MatrixStore(tmp_path / "s") as w:
        w.put("r", 0, "w", "grad", rand(0))
        with MatrixStore(tmp_path / "s", mode="r") as rd:  # reader alongside the live writer
            assert len(rd.query()) == 1
            w.put("r", 1, "w", "grad", rand(1))
            assert len(rd.query()) == 2 and torch.equal(rd.get(2), rand(1))
            with pytest.raises(StoreReadOnlyError, match="mode='r'"):
                rd.put("r", 2, "w", "grad", rand(2))
        with pytest.raises(StoreLockedError, match="one writer"):
            MatrixStore(tmp_path / "s")
    with pytest.raises(ValueError, match="max_count"):
        MatrixStore(tmp_path / "s", mode="r", max_count=3)
    s = MatrixStore(tmp_path / "s", mode="r")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.query()


def test_refuses_foreign_dir_and_newer_schema(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a matrix store"):
        MatrixStore(tmp_path / "foreign")
    with MatrixStore(tmp_path / "s") as s:
        s.put("r", 0, "w", "grad", rand(0))
    con = sqlite3.connect(tmp_path / "s" / "catalog.sqlite")
    con.execute("UPDATE info SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    for mode in ("r", "a"):
        with pytest.raises(StoreVersionError, match="schema version 99.*supports \\(1\\)"):
            MatrixStore(tmp_path / "s", mode=mode)
    # the failed append-open released the writer lock
    con = sqlite3.connect(tmp_path / "s" / "catalog.sqlite")
    con.execute("UPDATE info SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()
    MatrixStore(tmp_path / "s").close()


# -- size controls --------------------------------------------------------------------------------
def test_max_count_warns_once_and_persists(tmp_path):
    with MatrixStore(tmp_path / "s", max_count=3, fsync=False) as s:
        with pytest.warns(StoreFullWarning, match="max_count=3") as rec:
            ids = [s.put("r", k, "w", "grad", rand(k)) for k in range(6)]
        assert ids == [1, 2, 3, None, None, None] and len(rec) == 1
        assert s.skipped["max_count"] == 3
        assert s.put_many("r", 9, {("a", "g"): rand(0)}) == [None]  # no second warning
    with MatrixStore(tmp_path / "s", mode="r") as s:
        assert s.summary().skipped["max_count"] == 4 and len(s) == 3
    with MatrixStore(tmp_path / "s", max_count=3, on_full="raise") as s:  # cap spans sessions
        with pytest.raises(StoreFullError, match="max_count=3"):
            s.put("r", 10, "w", "grad", rand(0))
    with MatrixStore(tmp_path / "s", max_count=5) as s:
        # a step is stored whole or not at all
        with pytest.warns(StoreFullWarning):
            assert s.put_many("r", 11, [("a", "g", rand(0)), ("b", "g", rand(0)),
                                        ("c", "g", rand(0))]) == [None] * 3
        assert s.put_many("r", 11, [("a", "g", rand(0)), ("b", "g", rand(0))]) == [4, 5]


def test_max_bytes(tmp_path):
    with MatrixStore(tmp_path / "probe", fsync=False) as s:
        s.put("r", 0, "w", "grad", rand(0, (16, 16)))
        one = s.summary().file_bytes
    with MatrixStore(tmp_path / "s", max_bytes=int(2.5 * one), fsync=False) as s:
        with pytest.warns(StoreFullWarning, match="max_bytes"):
            ids = [s.put("r", k, "w", "grad", rand(k, (16, 16))) for k in range(4)]
        assert ids[:2] == [1, 2] and ids[2:] == [None, None]
        assert s.put("r", 9, "w", "tiny", torch.zeros(1)) is not None  # a small one still fits
        summ = s.summary()
        assert summ.file_bytes <= 2.5 * one and summ.skipped["max_bytes"] == 2


def test_layer_every(tmp_path):
    with MatrixStore(tmp_path / "a", layer_every=3, fsync=False) as s:
        ids = [s.put("r", k, "w", "grad", rand(k)) for k in range(10)]
        assert [k for k, i in enumerate(ids) if i is not None] == [0, 3, 6, 9]
        assert s.skipped["subsampled"] == 6
    rule = {"embed*": 5, "blocks.1.*": 2}
    with MatrixStore(tmp_path / "b", layer_every=rule, fsync=False) as s:
        for k in range(10):
            with s.batch("r", k) as b:
                for layer in ("embed.w", "blocks.0.mlp", "blocks.1.mlp"):
                    b.put(layer, "grad", rand(k))
        steps = {layer: [r.step for r in s.query(layer=layer)]
                 for layer in ("embed.w", "blocks.0.mlp", "blocks.1.mlp")}
        assert steps == {"embed.w": [0, 5], "blocks.0.mlp": list(range(10)),
                         "blocks.1.mlp": [0, 2, 4, 6, 8]}
        assert s.summary().skipped["subsampled"] == 8 + 5


# -- corruption -----------------------------------------------------------------------------------
def _corrupt(path, how):
    data = bytearray(path.read_bytes())
    if how == "flip_data_byte":
        data[-3] ^= 0x40
    elif how == "flip_header_dtype":
        i = data.index(b'"F32"')
        data[i:i + 5] = b'"I32"'
    elif how == "truncate":
        data = data[: len(data) // 2]
    elif how == "garbage":
        data = bytearray(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8))
    elif how == "empty":
        data = bytearray()
    if how == "delete":
        path.unlink()
    else:
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flip_data_byte", "flip_header_dtype", "truncate", "garbage",
                                 "empty", "delete"])
def test_corruption_is_detected(tmp_path, how):
    with MatrixStore(tmp_path / "s", fsync=False) as s:
        good = s.put("r", 0, "w", "grad", rand(0, (8, 8)))
        bad = s.put("r", 1, "w", "grad", rand(1, (8, 8)))
        rec = s.record(bad)
    _corrupt(tmp_path / "s" / rec.file, how)
    with MatrixStore(tmp_path / "s", mode="r") as s:
        with pytest.raises(StoreCorruptionError, match=f"record {bad} .*step=1.*{rec.file}") as ei:
            s.get(bad)
        assert ei.value.record.id == bad and ei.value.file.endswith(rec.file)
        with pytest.raises(StoreCorruptionError):
            s.get_many([good, bad])
        assert torch.equal(s.get(good), rand(0, (8, 8)))
        report = s.verify()
        assert report.checked == 2 and not report.ok
        assert [r.id for r, _ in report.failures] == [bad]


def test_flip_detected_only_by_checksum(tmp_path):
    with MatrixStore(tmp_path / "s", fsync=False) as s:
        rid = s.put("r", 0, "w", "grad", rand(0, (8, 8)))
        _corrupt(tmp_path / "s" / s.record(rid).file, "flip_data_byte")
        with pytest.raises(StoreCorruptionError, match="checksum mismatch"):
            s.get(rid)
        assert not torch.equal(s.get(rid, verify=False), rand(0, (8, 8)))


# -- recovery of leftovers -------------------------------------------------------------------------
def test_orphans_cleaned_on_append_open_only(tmp_path):
    root = tmp_path / "s"
    with MatrixStore(root, fsync=False) as s:
        rid = s.put("r", 0, "w", "grad", rand(0))
        kept = s.record(rid).file
        announced = s._next_name  # the write intent of the next data file, committed
    shard = root / "data" / "ab"
    shard.mkdir(exist_ok=True)
    tmp = shard / (".ab" + "0" * 30 + ".safetensors.tmp")
    st_tmp = shard / ".tmpAb12Cd"  # safetensors' own temp file (killed inside save_file)
    pending = root / announced
    pending.parent.mkdir(exist_ok=True)
    other = root / "data" / "notes.txt"
    for p in (tmp, st_tmp, pending, other):
        p.write_bytes(b"partial")
    with MatrixStore(root, mode="r") as s:  # readers never delete
        assert s.recovery.removed_temp == () and tmp.exists() and pending.exists()
    with pytest.warns(StoreRecoveryWarning, match="2 temp file.*1 uncommitted"):
        s = MatrixStore(root, fsync=False)
    with s:
        assert s.recovery.removed_temp == tuple(sorted([f"data/ab/{tmp.name}",
                                                        f"data/ab/{st_tmp.name}"]))
        assert s.recovery.removed_orphans == (announced,) and s.recovery.unreferenced == ()
        assert not tmp.exists() and not st_tmp.exists() and not pending.exists()
        assert other.exists()
        assert (root / kept).exists() and torch.equal(s.get(rid), rand(0))
    (root / kept).unlink()
    with pytest.warns(StoreRecoveryWarning, match="1 catalogued file"):
        s = MatrixStore(root, fsync=False)
    with s:
        assert s.recovery.missing_files == (kept,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with MatrixStore(tmp_path / "clean"):
            pass


def test_unreferenced_file_without_intent_is_kept(tmp_path):
    """A complete data file that no catalog row references and whose write was never announced
    cannot be proven uncommitted (the catalog may have lost its row): kept and reported, and
    then a pending leftover is kept too (the catalog is evidently not the latest one)."""
    root = tmp_path / "s"
    with MatrixStore(root, fsync=False) as s:
        s.put("r", 0, "w", "grad", rand(0))
        announced = s._next_name
    stranger = root / "data" / "ab" / ("ab" + "1" * 30 + ".safetensors")
    stranger.parent.mkdir()
    (root / announced).parent.mkdir(exist_ok=True)
    for p in (stranger, root / announced):
        p.write_bytes(b"complete?")
    with pytest.warns(StoreRecoveryWarning, match="KEPT 2 data file.*matbal store repair"):
        s = MatrixStore(root, fsync=False)
    with s:
        assert s.recovery.removed_orphans == ()
        assert s.recovery.unreferenced == tuple(sorted([announced, f"data/ab/{stranger.name}"]))
        assert stranger.exists() and (root / announced).exists()
        assert s.put("r", 1, "w", "grad", rand(1)) == 2


def test_header_is_self_describing(store):
    from safetensors import safe_open

    rid = store.put("r", 4, "blocks.0", "grad", rand(0), meta={"seed": 0})
    rec = store.record(rid)
    with safe_open(str(store.path / rec.file), framework="pt") as f:
        info = json.loads(f.metadata()["records"])
    assert info[rec.key] == {"run": "r", "step": 4, "layer": "blocks.0", "kind": "grad",
                             "src_dtype": "float32", "meta": {"seed": 0},
                             "checksum": rec.checksum}


def test_views_sharing_storage(store):
    a = rand(0, (4, 3))
    ids = store.put_many("r", 0, [("top", "g", a[:2]), ("bottom", "g", a[2:]), ("all", "g", a)])
    assert [torch.equal(store.get(i), t) for i, t in zip(ids, (a[:2], a[2:], a))] == [True] * 3


def test_failed_commit_leaves_nothing(store, monkeypatch):
    from matbal.instruments.store.catalog import Catalog

    store.put("r", 0, "w", "grad", rand(0))

    def boom(*a, **k):
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(Catalog, "insert", boom)
    with pytest.raises(StoreWriteError, match="catalog write failed.*simulated") as ei:
        store.put("r", 1, "w", "grad", rand(1))
    assert isinstance(ei.value.__cause__, sqlite3.OperationalError)
    monkeypatch.undo()
    assert [p.name for p in store.path.rglob("*.safetensors*")] == [store.record(1).file[8:]]
    assert store.put("r", 1, "w", "grad", rand(1)) == 2 and len(store) == 2


def test_forgotten_writer_releases_lock_on_gc(tmp_path):
    import gc

    s = MatrixStore(tmp_path / "s", fsync=False)
    s.put("r", 0, "w", "grad", rand(0))
    with pytest.warns(ResourceWarning, match="unclosed MatrixStore"):
        del s
        gc.collect()
    with MatrixStore(tmp_path / "s") as s2:  # e.g. a notebook cell re-run
        assert len(s2) == 1
