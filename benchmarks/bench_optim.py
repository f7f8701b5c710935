"""Optimizer steps: every ``matbal.optim.PRESETS`` entry vs ``torch.optim.AdamW`` on the matrix
shapes of a small GPT (full: width 768, 12 layers; default: width 512, 2 layers; quick: width 128, 2 layers), side by side; and
matbal ``muon`` vs ``torch.optim.Muon`` (bf16 NS) on one 1024×4096 matrix (quick: 256×1024),
torch's step measured once (minutes)."""
from __future__ import annotations

import time
import warnings

import torch

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C
from benchmarks.bench_ns import gpt_shapes
from matbal.optim import PRESETS


def _params(shapes, seed=0):
    ps = []
    for i, ((m, n), k) in enumerate(shapes):
        for j in range(k):
            p = torch.nn.Parameter(syn.gaussian(m, n, seed=100 * i + j) * 0.02)
            p.grad = syn.gaussian(m, n, seed=10_000 + 100 * i + j)
            ps.append(p)
    return ps


def gpt_table(quick: bool, full: bool) -> list[dict]:
    width, layers = (128, 2) if quick else ((768, 12) if full else (512, 2))
    shapes = gpt_shapes(width, layers)
    opts = {}
    for name, ctor in PRESETS.items():
        opts[f"matbal {name}"] = ctor(_params(shapes), lr=1e-3)
    opts["torch.optim.AdamW"] = torch.optim.AdamW(_params(shapes), lr=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = C.interleaved({k: o.step for k, o in opts.items()}, repeats=3, warmup=1)
    base = res["matbal muon"]["median"]
    adam = res["torch.optim.AdamW"]["median"]
    nmat = sum(k for _, k in shapes)
    rows = [{"model": f"GPT w{width} L{layers} ({nmat} matrices)", "optimizer": k, "median_s": v["median"],
             "min_s": v["min"], "x_matbal_muon": v["median"] / base, "x_torch_adamw": v["median"] / adam}
            for k, v in res.items()]
    C.print_table("Optimizer step time on GPT matrix shapes (float32 params, CPU)", rows)
    return rows


def muon_vs_torch(quick: bool) -> list[dict]:
    m, n = (256, 1024) if quick else (1024, 4096)
    from matbal.optim import muon

    def mk():
        p = torch.nn.Parameter(syn.gaussian(m, n, seed=1) * 0.02)
        p.grad = syn.gaussian(m, n, seed=2)
        return p

    ours = muon([mk()], lr=1e-3, ns_dtype=torch.float32)
    tp = mk()
    theirs = torch.optim.Muon([tp], lr=1e-3)
    r = C.interleaved({"matbal muon (float32 NS)": ours.step}, repeats=5, warmup=1)
    t0 = time.perf_counter()
    theirs.step()                      # measured once: bf16 NS at ~1 GFLOP/s
    t_torch = time.perf_counter() - t0
    r2 = C.interleaved({"matbal muon (float32 NS)": ours.step}, repeats=3, warmup=0)
    times = r["matbal muon (float32 NS)"]["times"] + r2["matbal muon (float32 NS)"]["times"]
    import statistics

    t_ours = statistics.median(times)
    rows = [{"matrix": f"{m}×{n}" + (" (quick mode; goal is stated for ≥1024×4096)" if quick else ""),
             "torch.optim.Muon step_s (bf16 NS, n=1)": t_torch,
             "matbal muon step_s (median, n=%d)" % len(times): t_ours,
             "speedup": t_torch / t_ours, "goal": "≥ 50× (CPU)", "met": t_torch / t_ours >= 50,
             "GPU (≤1.1× torch)": "CUDA runs: bench_gpu optim part (BENCHMARKS §7)"}]
    C.print_table("matbal muon vs torch.optim.Muon: one step on one matrix", rows)
    return rows


def dtype_policy_table(quick: bool) -> list[dict]:
    """The measured NS dtype policy (``ns_dtype="auto"``) against float32 NS and torch.optim.Muon
    (stock bf16 NS) on a GPT stack, side by side; plus the accuracy each dtype costs against float64
    NS5 on one matrix. The policy's decision and the bf16/float32 matmul rates are printed first."""
    from matbal.kernels.dtype_policy import dtype_policy_report
    from matbal.optim import muon

    rep = dtype_policy_report("cpu")
    r32, r16 = C.measure_sgemm(1024), C.measure_sgemm(1024, dtype=torch.bfloat16)
    print(f"ns_dtype='auto' on this CPU: {rep['choice']} ({rep['reason']}); "
          f"1024² matmul: float32 {r32:.0f}, bf16 {r16:.0f} GFLOP/s")
    width, layers = (256, 2) if quick else (512, 4)
    shapes = gpt_shapes(width, layers)
    peers = {"matbal muon (ns_dtype='auto')": muon(_params(shapes), lr=1e-3),
             "matbal muon (float32 NS)": muon(_params(shapes), lr=1e-3, ns_dtype=torch.float32),
             "torch.optim.Muon (bf16 NS)": torch.optim.Muon(_params(shapes), lr=1e-3)}
    res = C.interleaved({k: o.step for k, o in peers.items()}, repeats=3 if quick else 5, warmup=1)
    ref = res["torch.optim.Muon (bf16 NS)"]["median"]
    nmat = sum(k for _, k in shapes)
    rows = [{"model": f"GPT w{width} L{layers} ({nmat} matrices)", "optimizer": k,
             "median_s": v["median"], "min_s": v["min"], "x_torch_muon": v["median"] / ref,
             "auto_choice": rep["choice"]} for k, v in res.items()]
    x = syn.gaussian(512, 2048, seed=3).double()
    exact = matbal.newton_schulz(x, schedule="muon", steps=5, dtype=torch.float64)
    for dt in (torch.float32, torch.bfloat16):
        out = matbal.newton_schulz(x.float(), schedule="muon", steps=5, dtype=dt).double()
        rows.append({"model": "NS5 accuracy, 512×2048 Gaussian", "optimizer": f"NS5 in {dt}",
                     "rel_frobenius_vs_float64_ns5": float((out - exact).norm() / exact.norm())})
    C.print_table("NS dtype policy: muon step vs torch.optim.Muon, and its accuracy cost", rows)
    return rows


def main(quick: bool = True, full: bool = False) -> list[dict]:
    return C.parts_rows([("gpt", lambda: gpt_table(quick, full)),
                         ("dtype_policy", lambda: dtype_policy_table(quick)),
                         ("muon_vs_torch", lambda: muon_vs_torch(quick))])


if __name__ == "__main__":
    main(quick=True)
