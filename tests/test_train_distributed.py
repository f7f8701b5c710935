"""Several processes: a 2-process gloo run (torchrun) equals a 1-process run with the same global
batch, and the matrix chains are split between the ranks."""
import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from matbal.optim import PRESETS
from matbal.optim.distributed import DistributedChainOptimizer, distribute, partition
from matbal.train import TrainConfig, train
from matbal.train.checkpoint import load_checkpoint

ARGS = dict(model="gpt", optimizer="muoneq-r", lr=1e-2, steps=6, n_layer=2, n_head=2, n_embd=32,
            block_size=32, batch_size=8, eval_every=3, eval_batches=2, warmup_steps=2)
TEARDOWN_ABORT = "terminate called without an active exception"
TOL = 1e-6  # float32 parameters; observed max |Δ| ≈ 6e-8 (all-reduce vs full-batch mean order)


def test_partition_rules():
    assert partition([100, 100, 10, 400], 2) == [1, 1, 1, 0]
    owners = partition([64 * 192] * 2 + [64 * 64] * 2 + [64 * 256] * 4, 2)
    assert sorted(owners) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert partition([5] * 5, 3, method="round_robin") == [0, 1, 2, 0, 1]
    with pytest.raises(ValueError, match="method"):
        partition([1], 2, method="random")


def test_single_process_is_plain_chain_optimizer():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                              torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ref = {k: v.clone() for k, v in net.state_dict().items()}
    a = PRESETS["muon"](net, lr=0.02)
    b = distribute(PRESETS["muon"](net, lr=0.02))
    assert isinstance(b, DistributedChainOptimizer) and b.world_size == 1
    out = {}
    for opt in (a, b):
        net.load_state_dict(ref)
        for _ in range(3):
            net.zero_grad()
            net(torch.ones(4, 6)).pow(2).sum().backward()
            opt.step()
        out[opt] = {k: v.clone() for k, v in net.state_dict().items()}
    assert all(torch.equal(out[a][k], out[b][k]) for k in ref)
    assert b.matrices_computed == 3 * 2 and b.gather_counts() == [6]
    with pytest.raises(ValueError, match="stepped"):
        distribute(b)


def _flags(d):
    out = []
    for k, v in d.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def test_two_process_gloo_equals_one_process(tmp_path, monkeypatch):
    # float32 NS in both runs: the all-reduce sums gradients in another order (|Δ| ≈ 6e-8), which
    # bf16 NS (the measured "auto" choice on CPUs with AMX) would round up to ~1e-3
    monkeypatch.setenv("MATBAL_NS_DTYPE", "float32")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "matbal.train", *_flags(ARGS), "--out-dir", str(tmp_path), "--run-name", "two",
           "--quiet", "--threads", "1", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0 and TEARDOWN_ABORT in proc.stderr:
        # Seen once in CI (1 of ~60 runs; never reproduced in 54 runs here, with or without load):
        # a rank aborted by gloo's C++ side. teardown() now synchronizes before closing the group;
        # should it still happen, say so loudly and run once more rather than hide the result.
        warnings.warn(f"2-process run aborted ({TEARDOWN_ABORT!r}); retrying once:\n"
                      f"{proc.stderr[:2000]}\n...\n{proc.stderr[-2000:]}")
        shutil.rmtree(tmp_path / "two", ignore_errors=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[:3000] + "\n...\n" + proc.stderr[-3000:]
    one = train(TrainConfig(**ARGS, out_dir=str(tmp_path), run_name="one", quiet=True, threads=1))

    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt")["model"]
    ref = one.model.state_dict()
    diffs = {k: (ref[k] - two[k]).abs().max().item() for k in ref}
    assert max(diffs.values()) <= TOL, diffs

    summ = json.loads((tmp_path / "two" / "summary.json").read_text())
    per_step = summ["matrices_per_step"]  # 8 hidden matrices in 2 blocks
    counts = summ["matrices_per_rank"]
    assert summ["world_size"] == 2 and per_step == 8 and len(counts) == 2
    assert sum(counts) == ARGS["steps"] * per_step  # every matrix computed exactly once per step
    assert max(counts) < ARGS["steps"] * per_step   # no rank computed every matrix
    assert (tmp_path / "two" / "checkpoint.rank1.pt").exists()
    assert one.matrices_per_rank == [ARGS["steps"] * per_step]
    assert abs(summ["final_val_loss"] - one.final_val_loss) < 1e-4


def test_broadcast_str_single_process_is_identity():
    from matbal.train.distributed import DistInfo, broadcast_str

    assert broadcast_str("run-σ", DistInfo()) == "run-σ"
    assert broadcast_str("", DistInfo()) == ""
