"""Schedules designed for the measured x_min of recorded momenta vs the fixed Muon schedule (DS-1):
(a) worst-case error on [ℓ, 1] against steps, designed (solid) vs Muon (dotted) at each measured ℓ
and at ℓ = 1e-3 / 1e-4, a star at the fewest designed steps whose error is at most the 5-step
one; (b) the same, designed vs the published Polar Express list (dashed);
(c) max|1 − σ| of the output on every recorded momentum against its x_min — Muon-5 vs the layer
type's designed schedule, NS iterated in float32 (filled) and bfloat16 (open); (d) the same for the
relative Frobenius distance to the exact polar factor (the bulk of the spectrum).

Reads ``ds1_designed_schedules`` only.
"""
from __future__ import annotations

from matbal.lab import SCHEDULE_COLORS, figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_ds1_designed_schedules"
RESULTS = ["ds1_designed_schedules"]
PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
DESIGNED_COLOR = "#2ca02c"


def build(out_dir=None, results_dir=None):
    res = load_results("ds1_designed_schedules", results_dir=results_dir)
    los = res.summary["los"]
    fig, axes = figure(1, 4, width=7.0, height=2.4)
    for i, (label, lo) in enumerate(los.items()):
        rows = sorted(res.where(record="design", lo_label=label), key=lambda r: r["steps"])
        ks = [r["steps"] for r in rows]
        color = PALETTE[i % len(PALETTE)]
        name = f"{label} (ℓ={lo:.2g})" if label != f"{lo:g}" else f"ℓ = {label}"
        for ax, ref, style in ((axes[0], "muon", ":"), (axes[1], "pe_published", "--")):
            ax.plot(ks, [r["designed_error"] for r in rows], "o-", ms=2.5, color=color, label=name)
            ax.plot(ks, [r[f"{ref}_error"] for r in rows], style, color=color, lw=1)
            k = res.summary["fewest_steps"][label][ref]["designed_steps"]
            if k is not None:
                e = next(r["designed_error"] for r in rows if r["steps"] == k)
                ax.plot([k], [e], "*", ms=8, color=color, mec="k", mew=0.4)
    for ax, title in ((axes[0], "designed vs Muon (dotted)"),
                      (axes[1], "designed vs PE list (dashed)")):
        ax.set_yscale("log")
        ax.set_ylim(1e-3, 1.5)
        ax.axvline(5, color="0.6", lw=0.6)
        ax.set_xlabel("NS steps k")
        ax.set_title(title, fontsize=6.5)
    axes[0].set_ylabel(r"worst-case error on $[\ell,1]$")
    axes[0].legend(fontsize=5, loc="lower left")
    mats = res.where(record="matrix")
    for ax, metric, ylabel in ((axes[2], "orth_err", r"$\max_i|1-\sigma_i(O)|$"),
                               (axes[3], "rel_fro", r"$\|O-\mathrm{polar}(M)\|_F/\|\mathrm{polar}(M)\|_F$")):
        for dname, fill in (("float32", True), ("bfloat16", False)):
            rs = [r for r in mats if r["dtype"] == dname and r.get(f"designed_{metric}") is not None]
            for key, color, lab in (("muon5", SCHEDULE_COLORS["muon"], "Muon-5"),
                                    ("designed", DESIGNED_COLOR, "designed k*")):
                ax.scatter([r["x_min"] for r in rs], [r[f"{key}_{metric}"] for r in rs], s=5,
                           lw=0.5, color=color if fill else "none", edgecolors=color,
                           label=f"{lab}, {dname}")
        ax.set_xscale("log")
        ax.set_xlabel(r"$x_{\min}$ of the momentum")
        ax.set_ylabel(ylabel)
        ax.set_title("recorded momenta", fontsize=6.5)
    axes[2].legend(fontsize=5)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
