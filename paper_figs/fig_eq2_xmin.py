"""Muon NS5 vs x_min: smallest output singular value and spectral error on a zoo of matrices (EQ-2).

Reads ``eq2_xmin_governs`` (measured points) and ``ns_bands`` (the P5 curve) only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_eq2_xmin"
RESULTS = ["eq2_xmin_governs", "ns_bands"]
FAMILY_STYLE = {"geometric": ("o", "#1f77b4"), "power_law": ("s", "#ff7f0e"),
                "low_rank": ("^", "#2ca02c"), "row_mismatch": ("v", "#d62728"),
                "rowcol_mismatch": ("D", "#9467bd"), "gaussian_square": ("P", "#8c564b"),
                "gaussian": ("X", "#7f7f7f")}


def build(out_dir=None, results_dir=None):
    res = load_results("eq2_xmin_governs", results_dir=results_dir)
    bands = load_results("ns_bands", results_dir=results_dir)
    x_half = res.summary["x_half"]
    fig, (a, b) = figure(1, 2, width=7.0, height=2.7)
    xc = np.array(bands.column("x", kind="curve", schedule="muon"))
    pc = np.array(bands.column("value", kind="curve", schedule="muon"))
    a.plot(xc, pc, color="k", lw=0.9, label=r"$P_5(x)$ (scalar prediction)", zorder=1)
    b.plot(xc, np.abs(1 - pc), color="k", lw=0.9, label=r"$1-P_5(x_{\min})$", zorder=1)
    for fam in res.unique("family"):
        mk, c = FAMILY_STYLE.get(fam, ("o", "gray"))
        sel = {"family": fam, "dtype": "float32"}  # the results also hold bfloat16 runs
        x = res.column("x_min", **sel)
        a.scatter(x, res.column("sigma_min_out", **sel), marker=mk, color=c, s=14,
                  label=fam.replace("_", " "), zorder=2, alpha=0.8)
        b.scatter(x, res.column("ns_error", **sel), marker=mk, color=c, s=14, zorder=2, alpha=0.8)
    for ax in (a, b):
        ax.set_xscale("log")
        ax.axvline(x_half, color="gray", ls=":", lw=0.8)
        ax.set_xlabel(r"$x_{\min}=1/(\kappa\sqrt{\mathrm{sr}})$")
    a.text(x_half * 1.2, 0.05, f"$x_{{0.5}}$ = {x_half:.2g}", fontsize=6, color="gray")
    a.axhline(0.5, color="gray", ls=":", lw=0.8)
    a.set_ylabel(r"smallest singular value of NS5$(X)$")
    a.set_ylim(0, 1.25)
    a.legend(fontsize=5.5, loc="upper left")
    b.set_ylabel(r"$\|\mathrm{NS}_5(X)-\mathrm{polar}(X)\|_2$")
    b.set_ylim(0, 1.05)
    b.legend(fontsize=6, loc="lower left")
    fig.suptitle("Muon NS5 (float32) on matrices with independent κ and sr: the error is a function of "
                 "$x_{\\min}$ alone below the band", fontsize=8)
    label_panels([a, b])
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
