"""Momenta at real width (all-MiniLM-L6-v2 fine-tuned by Muon) beside the width-64 char GPT: x_min,
the NS5 error before/after balancing, and RM-1's cos(R(M), polar(M)) per layer type.

Reads ``minilm_recorded`` only (its summary carries the width-64 medians).
"""
from __future__ import annotations

import numpy as np

from matbal.lab import BALANCING_COLORS, figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_minilm_recorded"
RESULTS = ["minilm_recorded"]


def build(out_dir=None, results_dir=None):
    res = load_results("minilm_recorded", results_dir=results_dir)
    s = res.summary
    types = list(s["per_type"])
    w64 = s.get("width64", {}).get("rm1_per_type", {})
    fig, axes = figure(1, 3, width=10.0, height=2.9)
    x = np.arange(len(types))

    ax = axes[0]
    ax.bar(x, [s["per_type"][t]["x_min"] for t in types], 0.6, color="#1f77b4",
           label="MiniLM (384–1536)")
    for i, (t64, v) in enumerate(w64.items()):
        ax.axhline(v["x_min"], color="0.4", lw=0.6, ls=":")
    if w64:
        ax.plot([], [], color="0.4", lw=0.6, ls=":", label="char GPT width 64 (per type)")
    ax.axhline(1.07e-3, color="k", lw=0.8, ls="--", label=r"Muon NS5 $x_{0.5}$")
    ax.set_yscale("log")
    ax.set_xticks(x, types, fontsize=6)
    ax.set_ylabel(r"median momentum $x_{\min}$")
    ax.legend(fontsize=5.5)

    ax = axes[1]
    bals = [b for b in res.config["balancings"] if b in ("none", "R", "RC", "RACS")]
    w = 0.8 / len(bals)
    for j, b in enumerate(bals):
        ax.bar(x + (j - (len(bals) - 1) / 2) * w, [s["per_type"][t][f"ns_error_{b}"] for t in types],
               w, color=BALANCING_COLORS.get(b, "0.5"), label=b)
    ax.set_xticks(x, types, fontsize=6)
    ax.set_ylabel("median measured Muon NS5 error")
    ax.legend(fontsize=5.5, title="balancing", title_fontsize=6)

    ax = axes[2]
    ax.bar(x - 0.2, [s["per_type"][t]["cos_r_polar"] for t in types], 0.4, color="#d62728",
           label="cos(R(M), polar(M))")
    ax.bar(x + 0.2, [s["per_type"][t]["cos_ns5_polar"] for t in types], 0.4, color="#1f77b4",
           label="cos(NS5(M), polar(M))")
    if w64:
        ax.axhline(float(np.median([v["cos_r_polar"] for v in w64.values()])), color="#d62728",
                   lw=0.8, ls=":", label="cos(R, polar), width 64 (median)")
    ax.set_xticks(x, types, fontsize=6)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=5.5)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
