"""The GPU benchmark suite runs end to end: every part on the CPU with shapes divided by 64 and the
CUDA calls patched (device time is scarce; a typo must not cost a GPU run)."""
import os
import sys
import types

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def bench_gpu(monkeypatch):
    from benchmarks import bench_gpu as B

    monkeypatch.setattr(B, "SHRINK", 64)
    monkeypatch.setattr(B, "_dev", lambda: torch.device("cpu"))
    monkeypatch.setattr(B, "_sync", lambda: None)
    monkeypatch.setattr(B, "_has_cuda", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    props = types.SimpleNamespace(name="dry run", multi_processor_count=1, total_memory=2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    B.LIMITS.clear()
    return B


def test_every_part_of_the_gpu_suite_runs(bench_gpu):
    rows = bench_gpu.main(quick=False)
    errors = [r for r in rows if "error" in r]
    assert not errors, errors
    parts = {r["part"] for r in rows}
    assert parts == {"limits", "ns", "batched", "time_to_accuracy", "balance", "optim", "profile", "scaling",
                     "limits_dict"}
    ns = [r for r in rows if r["part"] == "ns"]
    assert {"matbal bf16", "torch.optim.Muon NS (bf16)", "hand-written bf16 loop"} <= {r["peer"] for r in ns}
    # every NS peer computes the same map: within bf16 rounding of float64 NS
    assert all(r["rel_err_vs_f64_NS"] < 0.2 for r in ns if r["rel_err_vs_f64_NS"] == r["rel_err_vs_f64_NS"])
    bal = [r for r in rows if r["part"] == "balance" and "final_imbalance" in r]
    assert all(r["final_imbalance"] < 1e-5 for r in bal), bal
