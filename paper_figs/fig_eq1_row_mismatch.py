"""κ, x_min and Muon NS5 error vs row-scale range for none/R/C/RC/RACS (EQ-1).

Reads ``eq1_row_mismatch`` (medians over seeds) and x₀.₅ from ``eq2_xmin_governs``.
"""
from __future__ import annotations

from matbal.lab import (BALANCING_COLORS, BALANCING_ORDER, aggregate, figure, figure_cli,
                        label_panels, load_results, savefig)

NAME = "fig_eq1_row_mismatch"
RESULTS = ["eq1_row_mismatch", "eq2_xmin_governs"]


def build(out_dir=None, results_dir=None):
    res = load_results("eq1_row_mismatch", results_dir=results_dir)
    med = aggregate(res.where(kind="row"), by=("balancing", "range"),
                    values=("condition_number", "x_min", "ns_error"))
    fig, axes = figure(1, 3, width=7.0, height=2.4)
    panels = [("condition_number", r"$\kappa$", True), ("x_min", r"$x_{\min}$", True),
              ("ns_error", "Muon NS5 error", False)]
    markers = {"none": "o", "R": "s", "C": "v", "RC": "^", "RACS": "D"}
    for ax, (key, label, log) in zip(axes, panels):
        for b in [b for b in BALANCING_ORDER if b in res.config["methods"]]:
            rows = sorted((r for r in med if r["balancing"] == b), key=lambda r: r["range"])
            ax.plot([r["range"] for r in rows], [r[key] for r in rows], marker=markers[b],
                    color=BALANCING_COLORS[b], label=b if b != "none" else "unbalanced",
                    ls="--" if b in ("RC", "RACS") else "-", alpha=0.9)
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("row-scale range (max/min row scale)")
        ax.set_ylabel(label)
    x_half = load_results("eq2_xmin_governs", results_dir=results_dir).summary["x_half"]
    axes[1].axhline(x_half, color="gray", lw=0.6, ls=":")
    axes[1].text(1.2, x_half * 1.15, r"$P_5(x)=0.5$", fontsize=6, color="gray", va="bottom")
    axes[2].set_ylim(0, 1.05)
    axes[0].legend(fontsize=6)
    m, n = res.config["m"], res.config["n"]
    fig.suptitle(f"Row scale mismatch $X=D\\,G/\\sqrt{{n}}$, {m}×{n}: R, RC, RACS remove it, C does not",
                 fontsize=8)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
