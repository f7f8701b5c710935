"""κ, stable rank, x_min and Muon NS5 error before/after R, C, RC, RACS on the synthetic gallery.

Reads ``reg1_racs_kappa`` only (medians over seeds). Claims REG-1, EQ-1, EQ-6.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import (BALANCING_COLORS, BALANCING_ORDER, aggregate, figure, figure_cli,
                        label_panels, load_results, savefig)

NAME = "fig_equilibration_gallery"
RESULTS = ["reg1_racs_kappa"]
PANELS = [("condition_number", r"condition number $\kappa$", True),
          ("stable_rank", "stable rank", True),
          ("x_min", r"$x_{\min}=1/(\kappa\sqrt{sr})$", True),
          ("ns_error", r"Muon NS5 error $\|NS_5-\mathrm{polar}\|_2$", False)]


def build(out_dir=None, results_dir=None):
    res = load_results("reg1_racs_kappa", results_dir=results_dir)
    med = aggregate(res.rows, by=("matrix", "balancing"), values=[p[0] for p in PANELS])
    mats = res.config["matrices"]
    # order: scale-driven first, then intrinsic, by unbalanced x_min
    base = {r["matrix"]: r["x_min"] for r in med if r["balancing"] == "none"}
    gain = {m: next(r["x_min"] for r in med if r["matrix"] == m and r["balancing"] == "RACS") / base[m]
            for m in mats}
    mats = sorted(mats, key=lambda m: -gain[m])
    fig, axes = figure(2, 2, width=7.0, height=4.6)
    methods = [b for b in BALANCING_ORDER if b in res.config["methods"]]
    xi = np.arange(len(mats))
    width = 0.8 / len(methods)
    for ax, (key, label, log) in zip(axes.ravel(), PANELS):
        for j, b in enumerate(methods):
            v = [next(r[key] for r in med if r["matrix"] == m and r["balancing"] == b) for m in mats]
            ax.bar(xi + (j - (len(methods) - 1) / 2) * width, v, width, color=BALANCING_COLORS[b],
                   label=b if b != "none" else "unbalanced")
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.set_xticks(xi)
        ax.set_xticklabels([m.replace("_", " ") for m in mats], rotation=35, ha="right", fontsize=6)
        ax.grid(axis="x", visible=False)
    axes[0, 0].axhline(1, color="k", lw=0.5)
    axes[0, 0].legend(ncol=3, fontsize=6, loc="upper right")
    m, n = res.config["m"], res.config["n"]
    fig.suptitle(f"Synthetic gallery, {m}×{n}, median of {len(res.config['seeds'])} seeds "
                 "(sorted by how much RACS raises $x_{\\min}$)", fontsize=8)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
