"""FSDP2 (``fully_shard``, DTensor parameters): every preset keeps the math of the unsharded matrix.

Two gloo processes (tests/_fsdp_worker.py, run once for the module) train a small GPT wrapped per
block and at the root (uneven shards: 45×15, 15×15, 15×60), and an MLP with a matrix sharded by
columns, a 1-row matrix (rank 1 holds none of it) and a parameter left unsharded; the whole-model
single-process run with the same global batch is the reference.
"""
import json
import os
import subprocess
import sys

import pytest
import torch

from matbal.optim import PRESETS, Chain, ChainOptimizer
from matbal.optim.fsdp import FSDPChainOptimizer, elementwise_prefix, matrix_cost, shard
from matbal.optim.transforms import (add_decayed_weights, balance, ema_momentum, orthogonalize,
                                     scale_by_adam, tap)

sys.path.insert(0, os.path.dirname(__file__))
import _fsdp_worker as W  # noqa: E402

# float32: the reduce-scatter averages the two half-batch gradients in another order than the
# full-batch mean (≈1e-7 relative); a 1e-7 relative gradient change moves Muon's step-5 weights by
# ≈4e-7 (measured). Observed max |Δ| 1.2e-7…3.4e-7 at weights of size ≈1.
TOL32 = 2e-6

# float32 NS in every run (module fixtures included): the exactness checks compare with a single
# process at rounding level, which bf16 NS (the measured "auto" choice on CPUs with AMX) would
# round up to ~1e-3
NS32 = {"MATBAL_NS_DTYPE": "float32"}
TOL64 = 1e-10  # float64: the same argument, 1e-16 relative rounding


@pytest.fixture(scope="module")
def worker_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **NS32}
    proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                        "_fsdp_worker.py"), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def runs(worker_out):
    return [json.loads((worker_out / f"rank{r}.json").read_text()) for r in range(W.WORLD)]


@pytest.mark.parametrize("preset", W.MAIN_PRESETS)
def test_float32_matches_single_process(runs, preset):
    for rank in runs:  # full_tensor() on each rank: both see the same parameters
        rec = rank[f"gpt/{preset}"]
        assert rec["max_abs_diff"] <= TOL32 * max(1.0, rec["max_abs"]), rec


@pytest.mark.parametrize("preset", W.OTHER_PRESETS)
def test_other_presets_match_in_float64(runs, preset):
    rec = runs[0][f"gpt64/{preset}"]
    assert rec["max_abs_diff"] <= TOL64 * max(1.0, rec["max_abs"]), rec


@pytest.mark.parametrize("key", [f"gpt/{p}" for p in W.MAIN_PRESETS if p != "adamw"]
                         + [f"gpt64/{p}" for p in W.OTHER_PRESETS])
def test_no_rank_runs_every_matrix_chain(runs, key):
    counts = runs[0][key]["counts"]
    n = runs[0][key]["n_matrices"]
    assert n == 8 and sum(counts) == n * W.STEPS  # each matrix's chain ran once per step
    assert all(c < n * W.STEPS for c in counts)
    owned = [set(r[key]["owned"]) for r in runs]
    assert not (owned[0] & owned[1]) and len(owned[0] | owned[1]) == n
    assert all(r[key]["comm_bytes"]["all_to_all"] > 0 for r in runs)


def test_adamw_is_local(runs):
    rec = runs[0]["gpt/adamw"]
    assert rec["counts"] == [0, 0] and "all_to_all" not in rec["comm_bytes"]


@pytest.mark.parametrize("key", [f"gpt/{p}" for p in W.MAIN_PRESETS]
                         + [f"gpt64/{p}" for p in W.OTHER_PRESETS])
def test_state_is_not_replicated(runs, key):
    # sharded momentum/Adam moments + owner-only state: the ranks together hold exactly the
    # single-process optimizer's state, no entry twice
    assert sum(r[key]["local_state_numel"] for r in runs) == runs[0][key]["reference_state_numel"]


@pytest.mark.parametrize("preset", W.EDGE_PRESETS)
def test_uneven_shards_and_an_unsharded_parameter(runs, preset):
    rec = runs[0][f"edge/{preset}"]
    assert rec["placements"]["0.weight"] == "(Shard(dim=1),)"  # by columns
    assert rec["placements"]["2.weight"] == "unsharded"
    assert rec["placements"]["4.weight"] == "(Shard(dim=0),)"  # 1 row: rank 1 holds none
    assert rec["max_abs_diff"] <= TOL32 * max(1.0, rec["max_abs"]), rec
    if preset != "adamw":
        assert sum(rec["counts"]) == 3 * W.STEPS and all(c < 3 * W.STEPS for c in rec["counts"])


@pytest.mark.parametrize("preset", W.DCP_PRESETS)
def test_dcp_resume_equals_uninterrupted(runs, preset):
    key = f"gpt/{preset}" if preset in W.MAIN_PRESETS else f"gpt64/{preset}"
    for rank in runs:
        assert rank[key]["dcp_max_abs_diff"] == 0.0  # the same operations: bit for bit


@pytest.mark.parametrize("preset", W.DCP_PRESETS)
def test_dcp_checkpoint_of_two_processes_resumes_in_one(worker_out, preset):
    # DCP reshards the DTensor state; owner-only state (NorMuon's row moment) is found by name
    rec = json.loads((worker_out / "reshard.json").read_text())[preset]
    tol = TOL32 if preset in W.MAIN_PRESETS else TOL64
    assert rec["max_abs_diff"] <= tol * max(1.0, rec["max_abs"]), rec


def test_nonfinite_on_one_rank_is_seen_by_all(runs):
    for rank in runs:
        rec = rank["nonfinite"]
        assert rec["raise"] == "raised" and rec["raise_unchanged"]
        assert rec["skip"] == "stepped" and rec["skip_skipped"] == 1 and rec["skip_unchanged"]
        assert rec["skip_others_moved"]


# --- one process ---------------------------------------------------------------------------------
def test_single_process_equals_chain_optimizer():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                              torch.nn.Tanh(), torch.nn.Linear(8, 3))
    ref = {k: v.clone() for k, v in net.state_dict().items()}
    out = []
    for make in (lambda: PRESETS["normuon"](net, lr=0.02),
                 lambda: shard(PRESETS["normuon"](net, lr=0.02))):
        net.load_state_dict(ref)
        opt = make()
        for _ in range(3):
            net.zero_grad()
            net(torch.ones(4, 6)).pow(2).sum().backward()
            opt.step()
        out.append({k: v.clone() for k, v in net.state_dict().items()})
    assert isinstance(opt, FSDPChainOptimizer) and opt.world_size == 1
    assert all(torch.equal(out[0][k], out[1][k]) for k in ref)


def test_chain_split_and_cost():
    assert elementwise_prefix(Chain(ema_momentum(), scale_by_adam(), orthogonalize("muon"))) == 2
    # a tap is not element-wise: probes see whole matrices on the owner
    assert elementwise_prefix(Chain(tap(lambda *a: None), ema_momentum())) == 0
    assert matrix_cost((8, 2), True) == 8 * 2 * 2 and matrix_cost((8, 2), False) == 16


def test_weight_decay_between_matrix_transforms_is_refused():
    w = torch.nn.Parameter(torch.randn(4, 4))
    chain = Chain(orthogonalize("muon"), add_decayed_weights(0.1), balance("rows"))
    with pytest.raises(ValueError, match="add_decayed_weights"):
        FSDPChainOptimizer([w], chain=chain, matrix=True)
    with pytest.raises(TypeError, match="ChainOptimizer"):
        shard(torch.optim.SGD([w], lr=0.1))
    opt = ChainOptimizer([w], chain=Chain(ema_momentum()), lr=0.1)
    w.grad = torch.ones_like(w)
    opt.step()
    with pytest.raises(ValueError, match="stepped"):
        shard(opt)


# --- matbal train --parallel fsdp ----------------------------------------------------------------
def _two_processes_and_one(tmp_path, args):
    """``matbal train --parallel fsdp`` under torchrun (2 processes) and ``train`` in this process;
    asserts the final parameters and validation loss agree; returns (summary, 1-process result)."""
    from matbal.train import TrainConfig, train
    from matbal.train.checkpoint import load_checkpoint
    flags = [x for k, v in args.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **NS32}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "matbal.train", *flags, "--parallel", "fsdp", "--out-dir", str(tmp_path),
         "--run-name", "two", "--quiet", "--threads", "1", "--device", "cpu"],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    one = train(TrainConfig(**args, out_dir=str(tmp_path), run_name="one", quiet=True, threads=1))
    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt")["model"]
    ref = one.model.state_dict()
    assert set(two) == set(ref)
    diff = max(float((two[k] - ref[k]).abs().max()) for k in ref)
    assert diff <= TOL32, diff
    assert abs(summary["final_val_loss"] - one.final_val_loss) <= 1e-5
    return summary, one


def test_train_cli_fsdp_conv_weights(tmp_path, monkeypatch):
    monkeypatch.setenv(*next(iter(NS32.items())))  # the in-process reference run too
    # CNN: conv weights (16, 1, 3, 3) and (32, 16, 3, 3) sharded by output channel, flattened to
    # (out, in·3·3) matrices on their owner
    args = dict(model="cnn", optimizer="muoneq-rc", lr=1e-2, steps=4, batch_size=16,
                eval_every=2, warmup_steps=1)
    summary, _ = _two_processes_and_one(tmp_path, args)
    assert sorted(summary["matrices_per_rank"]) == [4, 4]  # 2 conv matrices × 4 steps, split

def test_train_cli_fsdp_two_processes_equal_one(tmp_path, monkeypatch):
    monkeypatch.setenv(*next(iter(NS32.items())))  # the in-process reference run too
    args = dict(model="gpt", optimizer="muoneq-r", lr=1e-2, steps=4, n_layer=2, n_head=2,
                n_embd=24, block_size=16, batch_size=8, eval_every=2, eval_batches=3,
                warmup_steps=1, probe_every=2, record_every=2)
    summary, one = _two_processes_and_one(tmp_path, args)
    counts = summary["matrices_per_rank"]
    assert sum(counts) == 8 * 4 and max(counts) < 8 * 4  # 8 matrices × 4 steps, split
    for r in (0, 1):  # one optimizer shard per rank, as under DDP
        assert (tmp_path / "two" / ("checkpoint.pt" if r == 0 else "checkpoint.rank1.pt")).exists()
    # probes and the recorder see whole matrices on their owner; the run directory holds every
    # rank's rows and records, which together are the single-process run's
    from matbal.instruments.probes import read_rows
    from matbal.instruments.store import MatrixStore

    def rows(*paths):
        return {(r["step"], r["layer"], r["kind"], r["metric"]): r["value"]
                for path in paths for r in read_rows(path) if r["metric"] in DETERMINISTIC}
    two_rows = rows(tmp_path / "two" / "probes.jsonl", tmp_path / "two" / "probes.rank1.jsonl")
    one_rows = rows(tmp_path / "one" / "probes.jsonl")
    assert set(two_rows) == set(one_rows) and len(one_rows) > 100
    for key, v in one_rows.items():
        assert abs(two_rows[key] - v) <= 1e-4 * max(1.0, abs(v)), key

    def records(*paths):
        out = {}
        for path in paths:
            with MatrixStore(path, mode="r") as st:
                out.update({(r.step, r.layer, r.kind): r.shape for r in st.query()})
        return out
    assert records(tmp_path / "two" / "store", tmp_path / "two" / "store.rank1") == \
        records(tmp_path / "one" / "store")


DETERMINISTIC = ("frobenius_norm", "rms", "row_cv", "col_cv", "imbalance", "stable_rank",
                 "spectral_norm")


RESUME_SCRIPT = """
import json, os, sys
from matbal.train import TrainConfig, train
from matbal.train.distributed import full_state_dict, teardown
args = dict(model="gpt", optimizer="normuon", lr=1e-2, steps=5, n_layer=2, n_head=2, n_embd=24,
            block_size=16, batch_size=8, eval_every=2, eval_batches=3, warmup_steps=1,
            parallel="fsdp", quiet=True, threads=1, device="cpu", out_dir=sys.argv[1])
full = train(TrainConfig(**args, run_name="full"))
train(TrainConfig(**args, run_name="cut"), stop_at=3)
resumed = train(TrainConfig(**args, run_name="cut", resume="auto"))
a, b = full_state_dict(full.model), full_state_dict(resumed.model)
with open(os.path.join(sys.argv[1], f"result{os.environ['RANK']}.json"), "w") as f:
    json.dump([max(float((a[k] - b[k]).abs().max()) for k in a), resumed.step], f)
teardown()
"""


def test_train_fsdp_resume_is_bit_exact(tmp_path):
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **NS32}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(tmp_path / "runs")], env=env, capture_output=True, text=True,
        timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = [json.loads((tmp_path / "runs" / f"result{r}.json").read_text()) for r in (0, 1)]
    assert results == [[0.0, 5]] * 2  # both ranks: stopped at 3, resumed to 5, bit-exact


def test_bench_fsdp_bytes(tmp_path):
    # benchmarks/bench_fsdp.py at toy size: its byte accounting against the formulas of
    # BENCHMARKS.md §8 (W = 2, every matrix dimension even: exact)
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **NS32}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_fsdp", "--n-layer", "1",
                           "--n-embd", "32", "--block", "8", "--steps", "1", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=240,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())["rank0"]
    M = 32 * 96 + 32 * 32 + 128 * 32 + 32 * 128  # one block: c_attn, c_proj, fc, fc2
    assert res["fsdp"]["optimizer_bytes_sent"] == 4 * M / 2  # 2(W−1)M/W² entries
    assert res["naive"]["optimizer_bytes_sent"] == 4 * M / 2  # (W−1)M/W
    assert res["ddp"]["optimizer_bytes_sent"] >= 4 * M / 2  # (W−1)·largest share
    assert res["fsdp"]["matrix_chains_per_step"] == 2 and res["naive"][
        "matrix_chains_per_step"] == 4
