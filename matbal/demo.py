"""``make demo``: a tour of matbal — kernels, a short training run with probes and the store.

1. Kernels: for each matrix of :data:`matbal.synthetic.GALLERY` (row/column scale mismatch, low rank,
   heavy rows, heavy tails, …) and each balancing (none, R, C, RC, RACS): κ, stable rank, x_min and
   the Muon NS5 spectral error (measured, and predicted exactly from the spectrum); figure
   ``equilibration.png`` ((a) x_min before/after, (b) the NS5 output band against x_min).
2. Training: a 2-layer character GPT trained briefly with MuonEq-R on the Python standard library's
   source, with spectral probes (``probes.jsonl``) and recorded gradients/momenta (a matrix store);
   figure ``probe_traces.png``.
3. The store analysed: equilibration effects on the recorded matrices (``store_analysis/``).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from . import synthetic
from .analysis import BALANCINGS, equilibration_rows
from .kernels.orthogonalize import compose, output_band


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of :func:`equilibration_rows` output."""
    head = f"{'matrix':<16}{'bal':<6}{'kappa':>10}{'sr':>8}{'x_min':>10}{'NS5 err':>9}{'pred':>9}"
    lines = [head, "-" * len(head)]
    last = None
    for r in rows:
        name = r["matrix"] if r["matrix"] != last else ""
        last = r["matrix"]
        kappa = "inf" if math.isinf(r["condition_number"]) else f"{r['condition_number']:.3g}"
        lines.append(f"{name:<16}{r['balancing']:<6}{kappa:>10}{r['stable_rank']:>8.2f}"
                     f"{r['x_min']:>10.2e}{r['ns_error']:>9.3f}{r['ns_error_pred']:>9.3f}")
    return "\n".join(lines)


def plot_demo(rows: list[dict], path: Path) -> None:
    """Two panels: x_min per matrix and balancing; Muon NS5 output band vs x_min with the rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["matrix"] for r in rows))
    labels = list(dict.fromkeys(r["balancing"] for r in rows))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / len(labels)
    for j, lab in enumerate(labels):
        vals = [next(r["x_min"] for r in rows if r["matrix"] == n and r["balancing"] == lab)
                for n in names]
        ax1.bar(np.arange(len(names)) + j * width, np.maximum(vals, 1e-12), width, label=lab)
    ax1.set_yscale("log")
    ax1.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=35, ha="right")
    ax1.set_ylabel(r"$x_{\min}=\sigma_r/\|X\|_F$")
    ax1.set_title("x_min before/after balancing")
    ax1.legend(fontsize=8, ncol=len(labels))

    x = np.logspace(-5, 0, 400)
    P = compose("muon", 5)
    ax2.semilogx(x, P(x), color="k", lw=1.2, label="Muon NS5: $P_5(x)$")
    lo, hi = output_band("muon", 5, 1e-2, 1.0)
    ax2.axhspan(lo, hi, color="0.85", label=f"band on [1e-2,1]: [{lo:.3f}, {hi:.3f}]")
    markers = dict(zip(labels, "o^vsD*"))
    for lab in labels:
        pts = [(r["x_min"], 1 - r["ns_error"]) for r in rows if r["balancing"] == lab]
        ax2.scatter(*zip(*pts), marker=markers[lab], s=28, label=f"{lab}: (x_min, 1 − err)")
    ax2.set_xlabel("normalized singular value x")
    ax2.set_ylabel("NS5 output singular value")
    ax2.set_title("Finite NS is governed by x_min")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_training_tour(out: Path, *, steps: int = 40, seed: int = 0) -> dict:
    """Train a tiny GPT with MuonEq-R, probes every 5 steps (exact every 10) and gradients/momenta
    recorded every 20 steps; analyse the store; return a summary dict."""
    import shutil

    import torch

    from .instruments import MatrixStore, analyze_store, read_rows
    from .instruments.probes import plot_probe_traces
    from .train import TrainConfig, train

    run = out / "tour"
    marker = run / ".matbal-demo"
    if run.exists():  # the demo's own scratch run from an earlier `make demo`: start afresh
        if not marker.exists():
            raise FileExistsError(f"{run} exists and was not made by the demo; choose another --out")
        shutil.rmtree(run)
    run.mkdir(parents=True)
    marker.write_text("made by `matbal demo`; rebuilt on every run\n")
    cfg = TrainConfig(model="gpt", optimizer="muoneq-r", steps=steps, eval_every=steps // 2,
                      warmup_steps=5, seed=seed, out_dir=str(out), run_name="tour", quiet=True,
                      probe_every=5, probe_exact_every=10, record_every=20,
                      record_kinds="grad,momentum", threads=torch.get_num_threads())
    result = train(cfg)
    rows = read_rows(run / "probes.jsonl")
    plot_probe_traces(rows, out / "probe_traces.png", max_panels=2)
    with MatrixStore(run / "store", mode="r") as store:
        n_records = len(store)
        analysis = analyze_store(store, out=out / "store_analysis", progress=False)
    by_bal: dict[str, list[float]] = {}
    for r in analysis.rows:
        by_bal.setdefault(r["balancing"], []).append(r["x_min"])
    return {"val_loss": result.final_val_loss, "tokens_per_s": result.tokens_per_s,
            "probe_rows": len(rows), "records": n_records,
            "median_x_min": {k: float(np.median(v)) for k, v in by_bal.items()}}


def run_demo(out_dir: str | Path = "out/demo", *, m: int = 256, n: int = 512, seed: int = 0,
             train_steps: int = 40, threads: int = 1) -> list[dict]:
    """Run the tour; writes ``table.txt``, ``rows.json``, ``equilibration.png``,
    ``probe_traces.png``, ``tour/`` (the training run) and ``store_analysis/`` to ``out_dir``.
    ``train_steps=0`` skips the training part. ``threads``: torch CPU threads (default 1: the
    tour's matrices are small, and on a shared 2-core machine 2 threads were measured 5× slower)."""
    import torch

    torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    matrices = {name: make(m, n, seed=seed) for name, make in synthetic.GALLERY.items()}
    rows = equilibration_rows(matrices, methods=tuple(BALANCINGS))
    table = format_table(rows)
    print(f"matbal demo: {len(matrices)} synthetic {m}x{n} matrices x {len(BALANCINGS)} balancings "
          "(Muon NS5 error = max|1 - sigma_i(NS5(X))|, pred = exact scalar prediction)\n")
    print(table)
    (out / "table.txt").write_text(table + "\n")
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    plot_demo(rows, out / "equilibration.png")
    print(f"\nwrote {out / 'table.txt'}, {out / 'rows.json'}, {out / 'equilibration.png'} "
          f"({time.perf_counter() - t0:.1f} s)")
    if train_steps:
        t1 = time.perf_counter()
        print(f"\ntraining a 2-layer char GPT on the stdlib source with MuonEq-R for {train_steps} "
              "steps, probes every 5 steps, gradients/momenta recorded every 20 …")
        summary = run_training_tour(out, steps=train_steps, seed=seed)
        med = ", ".join(f"{k} {v:.2e}" for k, v in summary["median_x_min"].items())
        print(f"  validation loss {summary['val_loss']:.3f}, {summary['tokens_per_s']:,.0f} tokens/s; "
              f"{summary['probe_rows']} probe rows, {summary['records']} recorded matrices")
        print(f"  recorded matrices, median x_min by balancing: {med}")
        print("  (x_min ≈ 1e-8 everywhere is no balancing effect: gradients of layers that read a "
              "bias-free LayerNorm have an exact null direction — notebook 01 shows it)")
        print(f"wrote {out / 'tour'}/ (run: config, metrics, probes.jsonl, store/), "
              f"{out / 'probe_traces.png'}, {out / 'store_analysis'}/ "
              f"({time.perf_counter() - t1:.1f} s)")
    return rows
