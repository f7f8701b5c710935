"""Probe sinks (tidy rows, flush per step, reopen/append, torn tails) and the Recorder → store."""
import json

import pytest
import torch
from torch import nn

from matbal.instruments import MatrixStore
from matbal.instruments.probes import (FIELDS, CSVSink, JSONLSink, MemorySink, Probes, Recorder,
                                       read_rows)
from matbal.optim import muon




def _row(step, metric="rms", value=0.5):
    return {"run": "r", "step": step, "layer": "blocks.0.w", "kind": "grad", "metric": metric,
            "value": value}


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 10), nn.Linear(10, 2))


def _train(net, opt, steps, start=0):
    for i in range(start, start + steps):
        x = torch.randn(8, 6, generator=torch.Generator().manual_seed(i))
        net(x).square().mean().backward()
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("cls,suffix", [(CSVSink, ".csv"), (JSONLSink, ".jsonl")])
def test_file_sinks_write_tidy_rows_and_append_on_reopen(tmp_path, cls, suffix):
    path = tmp_path / f"probes{suffix}"
    with cls(path) as s:
        s.write([_row(1), _row(1, "condition_number", float("inf"))])
    with cls(path) as s:  # reopen appends (CSV header written once)
        s.write([_row(2, value=-1.25e-30)])
    rows = read_rows(path)
    assert [r["step"] for r in rows] == [1, 1, 2]
    assert rows[1]["value"] == float("inf") and rows[2]["value"] == -1.25e-30
    assert list(rows[0]) == list(FIELDS)
    if suffix == ".csv":
        assert path.read_text().count("run,step,layer") == 1


@pytest.mark.parametrize("cls,suffix", [(CSVSink, ".csv"), (JSONLSink, ".jsonl")])
def test_torn_last_line_is_cut_on_reopen(tmp_path, cls, suffix):
    path = tmp_path / f"p{suffix}"
    with cls(path) as s:
        s.write([_row(1)])
    with open(path, "a") as f:
        f.write('r,2,blocks.0.w,gr' if suffix == ".csv" else '{"run": "r", "st')
    with pytest.warns(RuntimeWarning, match="torn"):
        s = cls(path)
    s.write([_row(3)])
    s.close()
    assert [r["step"] for r in read_rows(path)] == [1, 3]


def test_csv_with_another_header_is_refused_and_closed_sink_refuses(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a probe CSV"):
        CSVSink(path)
    s = CSVSink(tmp_path / "ok.csv")
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.write([_row(1)])
    txt = tmp_path / "x.txt"
    txt.write_text("run,step\n")
    with pytest.raises(ValueError, match=".csv or .jsonl"):
        read_rows(txt)
    with pytest.raises(FileNotFoundError):
        read_rows(tmp_path / "missing.csv")


def test_memory_sink_rows_and_frame():
    s = MemorySink()
    s.write([_row(1)])
    rows = s.to_rows()
    rows[0]["value"] = 99
    assert s.rows[0]["value"] == 0.5 and len(s) == 1
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pandas"):
            s.frame()
    else:
        assert list(s.frame().columns) == list(FIELDS)


def test_probes_flush_every_step_and_a_failed_step_leaves_no_rows(tmp_path):
    net = _net()
    opt = muon(net)
    path = tmp_path / "run.jsonl"
    probes = Probes(JSONLSink(path), every=1, exact_every=None, run="a").attach(opt)
    _train(net, opt, 1)
    assert {r["step"] for r in read_rows(path)} == {1}  # on disk before close
    net(torch.randn(8, 6)).sum().backward()
    net[0].bias.grad[0] = float("nan")  # the AdamW group (after the matrix group) raises
    with pytest.raises(FloatingPointError):
        opt.step()
    opt.zero_grad()
    _train(net, opt, 1, start=5)
    probes.close()
    rows = read_rows(path)
    # the refused step changed nothing (no step count either: steps are all-or-nothing), so the
    # next step is step 2 again; the refused one left no rows, nothing half-written
    assert {r["step"] for r in rows} == {1, 2}
    assert {r["run"] for r in rows} == {"a"}
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_recorder_round_trip_bf16_and_atomic_steps(tmp_path):
    net = _net()
    opt = muon(net)
    seen = {}

    class Spy(Probes):
        def _observe(self, gi, kind, items):
            for name, t, u, _ in items:
                seen[(t, name, kind)] = u.detach().clone()

    spy = Spy(every=1).attach(opt)
    rec = Recorder(tmp_path / "s", run="muon", kinds=("grad", "momentum", "update"), every=2,
                   meta={"lr": 0.02}, storage_dtype=torch.bfloat16, fsync=False).attach(opt)
    _train(net, opt, 4)
    rec.close()
    spy.close()
    with MatrixStore(tmp_path / "s", mode="r") as st:
        recs = st.query(run="muon")
        assert {r.step for r in recs} == {1, 2, 4}
        assert st.summary().files == 3  # one file (one transaction) per step
        for r in recs:
            x = st.get(r)
            assert x.dtype == torch.bfloat16 and r.src_dtype == "float32"
            assert torch.equal(x, seen[(r.step, r.layer, r.kind)].to(torch.bfloat16))
            assert r.meta == {"lr": 0.02, "param_shape": list(dict(net.named_parameters())[
                r.layer].shape), "group": "matrix"}


def test_recorder_honours_store_subsampling_steps_and_open_store(tmp_path):
    net = _net()
    opt = muon(net)
    with MatrixStore(tmp_path / "s", layer_every={"2.*": 2}, fsync=False) as st:
        rec = Recorder(st, run="r", layers="*.weight", steps=[1, 2, 3]).attach(opt)
        _train(net, opt, 4)
        rec.close()
        assert not st.closed  # a store passed in stays open
        got = {(r.step, r.layer) for r in st.query()}
        assert st.skipped["subsampled"] == 2
    assert got == {(1, "0.weight"), (2, "0.weight"), (2, "2.weight"), (3, "0.weight")}
    with pytest.raises(ValueError, match="store_options"):
        with MatrixStore(tmp_path / "t") as st2:
            Recorder(st2, max_bytes=10)
    with pytest.raises(TypeError, match="MatrixStore or a path"):
        Recorder(42)
