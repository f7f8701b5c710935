"""NS output band vs x_min for every schedule (~15 matmuls each), and the transfer curves P_k(x).

Reads ``ns_bands`` only. Claims MU-1 (Muon band ≈ [0.68, 1.13]) and PE-1 (PE band at 1e-3).
"""
from __future__ import annotations

import numpy as np

from matbal.lab import SCHEDULE_COLORS, SCHEDULE_LABELS, figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_ns_bands"
RESULTS = ["ns_bands"]


def build(out_dir=None, results_dir=None):
    res = load_results("ns_bands", results_dir=results_dir)
    fig, (a, b) = figure(1, 2, width=7.0, height=3.0)
    for name in res.config["schedules"]:
        k = res.config["steps"][name]
        c = SCHEDULE_COLORS[name]
        lab = f"{SCHEDULE_LABELS[name]}, {k} steps"
        if name == "cans":
            lo, hi = res.config["cans_interval"]
            lab = f"{SCHEDULE_LABELS[name]} fit to [{lo:g}, {hi:g}], {k} steps"
        x = np.array(res.column("x", kind="band", schedule=name))
        a.plot(x, res.column("band_min", kind="band", schedule=name), color=c, label=lab)
        a.plot(x, res.column("band_max", kind="band", schedule=name), color=c, ls="--", lw=0.9)
        xc = np.array(res.column("x", kind="curve", schedule=name))
        b.plot(xc, res.column("value", kind="curve", schedule=name), color=c, lw=1.0)
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_ylim(0, 1.3)
        ax.axhline(1, color="k", lw=0.5)
    a.set_xlabel(r"$x_{\min}$ (smallest $\sigma/\|X\|_F$)")
    a.set_ylabel(r"band of $P_k$ on $[x_{\min}, 1]$")
    a.set_title("output band: min (solid), max (dashed)")
    b.set_xlabel(r"normalized singular value $x=\sigma/\|X\|_F$")
    b.set_ylabel(r"$P_k(x)$")
    b.axvline(1e-3, color="gray", lw=0.5, ls=":")
    b.set_title("transfer curves")
    fig.legend(*a.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=6.5)
    label_panels([a, b])
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
