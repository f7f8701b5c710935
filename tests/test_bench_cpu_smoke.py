"""The CPU benchmark parts added for batching run end to end on tiny sizes (a typo or a changed
API fails here, not in a long benchmark run), and their peers agree on the results."""
import math

import pytest
import torch

from benchmarks import bench_balance, bench_metrics, bench_ns


def test_batched_matvec_table_runs_and_forms_agree():
    rows = bench_metrics.batched_matvec(quick=True, shapes=[(3, 8, 24)])
    assert {(r["work"], r["form"]) for r in rows} == {
        (w, f) for w in ("a·v", "quick_stats", "racs p=2")
        for f in ("column form", "row form (matbal)", "loop of single matrices")}
    assert all(r["median_s"] > 0 and math.isfinite(r["x_row_form"]) for r in rows)


def test_batched_ns_rows_run_on_a_tiny_gpt():
    rows = bench_ns._batched_rows(16, 1, quick=True)
    assert len(rows) == 5 and all(r["median_s"] > 0 and r["loop_over_this"] > 0 for r in rows)
    assert rows[0]["model"] == "GPT width 16, 1 layers (4 matrices)"


def test_floor_table_runs_in_both_thread_configs_and_restores_threads():
    pytest.importorskip("ot")
    before = torch.get_num_threads()
    rows = bench_balance.floor_table(quick=True, shape=(16, 48), configs=((1, 0.0), (None, 0.001)))
    assert torch.get_num_threads() == before
    assert len(rows) == 10 and len({r["threads"] for r in rows}) == 2
    assert all(r["median_s"] > 0 and math.isfinite(r["POT_over_this"]) for r in rows)


def test_gemm_only_ns5_is_the_muon_iteration():
    x = torch.randn(3, 8, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = x / x.norm(dim=(-2, -1), keepdim=True)
    import matbal

    ref = matbal.newton_schulz(x, steps=5, eps=0.0)
    torch.testing.assert_close(bench_ns._ns5_gemms_only(x), ref, rtol=0, atol=1e-12)


def test_interleaved_settles_only_after_the_named_peers():
    import time

    from benchmarks import _common as C

    calls = []
    fns = {"blas": lambda: calls.append(("blas", time.perf_counter())),
           "torch": lambda: calls.append(("torch", time.perf_counter()))}
    C.interleaved(fns, repeats=2, warmup=0, settle=0.2, settle_after=["blas"])
    gaps = [(a[0], b[1] - a[1]) for a, b in zip(calls, calls[1:])]
    assert all(g >= 0.2 for name, g in gaps if name == "blas")
    assert all(g < 0.1 for name, g in gaps if name == "torch")
    with pytest.raises(ValueError, match="names no peer"):
        C.interleaved(fns, repeats=1, settle=0.01, settle_after=["nope"])


def test_fused_sinkhorn_prototype_matches_the_hand_loop():
    from benchmarks import fused_sinkhorn as F

    if not F.available():
        pytest.skip("no g++/ninja: the C++ prototype cannot be built")
    try:
        F._ext()  # a benchmark-only build: a toolchain that cannot build it is not a matbal bug
    except (RuntimeError, OSError, ImportError) as exc:
        pytest.skip(f"the C++ prototype did not build here: {exc}")
    x = torch.randn(40, 96, generator=torch.Generator().manual_seed(0))
    K, rows, cols = F.prep(x)
    torch.testing.assert_close(K, x * x, rtol=0, atol=0)
    torch.testing.assert_close(rows, (x * x).sum(1), rtol=1e-5, atol=0)
    torch.testing.assert_close(cols, (x * x).sum(0), rtol=1e-5, atol=0)
    r, c = torch.rand(40) + 0.5, torch.rand(96) + 0.5
    out = F.scale_out(x, r, c, torch.empty_like(x))
    torch.testing.assert_close(out, x * r[:, None] * c[None, :], rtol=1e-6, atol=0)
    bal, sweeps = F.fused_sinkhorn(x)
    u, v, _, hand_sweeps = bench_balance.hand_sinkhorn(x)
    assert sweeps == hand_sweeps
    torch.testing.assert_close(bal, x * u.sqrt()[:, None] * v.sqrt()[None, :], rtol=1e-4, atol=1e-6)
    with pytest.raises(RuntimeError, match="float32"):
        F.prep(x.double())


def test_fixed_cost_table_runs_and_the_hand_loop_is_racs():
    x = torch.randn(2, 12, 20, generator=torch.Generator().manual_seed(0))
    from matbal.kernels.balancing import racs_matrix

    torch.testing.assert_close(bench_balance.hand_fixed(x, 5), racs_matrix(x, p=2, steps=5),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bench_balance.hand_fixed(x[0], 3), racs_matrix(x[0], p=2, steps=3),
                               rtol=1e-5, atol=1e-6)
    rows = bench_balance.fixed_table(quick=True, small=[(16, 16), (2, 8, 8)], large=[(32, 64)])
    assert {r["peer"] for r in rows if "peer" in r} >= {"hand loop", "racs_matrix (lean path)"}
    assert all(r["median_us_per_call"] > 0 and r["lean_vs_hand_max_rel"] < 1e-5
               for r in rows if "peer" in r)
    assert sum("what" in r for r in rows) == 4


def test_goals_header_and_ns_rate_rows():
    from benchmarks import bench_goals

    head = bench_goals.header()
    assert {"cpu", "flags", "capability", "threads", "utc", "load_avg"} <= set(head)
    rows = bench_goals.ns_rate(True, shapes=[(16, 32)])
    assert [r["dtype"] for r in rows] == ["float32", "bfloat16"]
    assert all(r["ns_gflops"] > 0 and r["ns_over_matmul"] > 0 for r in rows)
    assert set(bench_goals._parts()) == {"ns", "muon", "adamw", "hand", "racs", "probes"}
