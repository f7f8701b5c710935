"""Figure of a stored GPU benchmark run: NS throughput per peer against the measured bf16 matmul
rate, and optimizer step time relative to torch.optim.Muon.

    python benchmarks/plot_gpu.py [benchmarks/results/gpu-h100.json]   # → the same path, .png

The JSON is what ``python -m benchmarks.bench_gpu --out FILE`` writes; nothing is re-measured here.
"""
from __future__ import annotations

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "results", "gpu-h100.json")
NS_PEERS = ["matbal bf16", "matbal bf16, Gram form", "torch.optim.Muon NS (bf16)", "hand-written bf16 loop",
            "matbal f32 (TF32 on)", "matbal f32 (TF32 off)"]
OPT_PEERS = ["matbal muon", "matbal muon, session-3 code (before)",
             "matbal muon (ns_form='auto': Gram NS on wide shapes)", "matbal muoneq-r",
             "matbal reg", "matbal adamw", "torch.optim.Muon", "torch.optim.AdamW (foreach)"]


def plot(path: str = DEFAULT) -> str:
    with open(path) as f:
        d = json.load(f)
    rows = d["rows"]
    lim = next(r for r in rows if r["part"] == "limits_dict")
    ns = [r for r in rows if r["part"] == "ns"]
    shapes = list(dict.fromkeys(r["shape"] for r in ns))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.2, 1]})
    for peer in NS_PEERS:
        ys = {r["shape"]: r["TFLOP/s"] for r in ns if r["peer"] == peer}
        if ys:
            a.plot(range(len(shapes)), [ys.get(s, float("nan")) for s in shapes], "o-", label=peer, ms=4)
    a.axhline(lim["bf16_tflops"], color="k", ls="--", lw=1)
    a.text(0, lim["bf16_tflops"] * 0.93, f"bf16 matmul 8192³: {lim['bf16_tflops']:.0f} TFLOP/s", fontsize=8, va="top")
    a.set_xticks(range(len(shapes)), shapes, fontsize=8)
    a.set_ylabel("useful TFLOP/s (5 Muon steps)")
    a.set_title(f"Newton–Schulz on {lim['device']}", fontsize=10)
    a.legend(fontsize=7, loc="center right")
    opt = [r for r in rows if r["part"] == "optim"]
    models = list(dict.fromkeys(r["model"] for r in opt))
    w = 0.8 / len(models)
    for i, model in enumerate(models):
        ys = {r["optimizer"]: r["x_torch_muon"] for r in opt if r["model"] == model}
        a_x = [k + i * w for k in range(len(OPT_PEERS))]
        b.barh(a_x, [ys.get(p, float("nan")) for p in OPT_PEERS], height=w, label=model.split(",")[0])
    b.axvline(1.0, color="k", lw=1)
    b.set_yticks([k + 0.4 - w / 2 for k in range(len(OPT_PEERS))],
                 [p.replace(" (ns_form='auto': Gram NS on wide shapes)", ", Gram NS") for p in OPT_PEERS], fontsize=8)
    b.invert_yaxis()
    b.set_xlabel("step time / torch.optim.Muon step time")
    b.set_title("Optimizer step, float32 params", fontsize=10)
    b.legend(fontsize=7)
    fig.suptitle(f"matbal GPU benchmarks, {d['machine']['date'][:10]} (torch {lim['torch']})", fontsize=10)
    fig.tight_layout()
    out = os.path.splitext(path)[0] + ".png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(plot(sys.argv[1] if len(sys.argv) > 1 else DEFAULT))
