"""Update RMS·√max(m, n) of exact polar vs Muon / Polar Express NS5, as a function of x_min (MU-2).

Reads ``mu2_update_rms`` only.
"""
from __future__ import annotations

from matbal.lab import SCHEDULE_COLORS, SCHEDULE_LABELS, figure, figure_cli, load_results, savefig

NAME = "fig_mu2_update_rms"
RESULTS = ["mu2_update_rms"]
SHAPE_MARKERS = ["o", "s", "^", "D"]


def build(out_dir=None, results_dir=None):
    res = load_results("mu2_update_rms", results_dir=results_dir)
    fig, ax = figure(1, 1, width=3.6, height=2.7)
    shapes = [tuple(s) for s in res.config["shapes"]]
    for i, (m, n) in enumerate(shapes):
        rows = sorted(res.where(m=m, n=n), key=lambda r: r["x_min"])
        x = [r["x_min"] for r in rows]
        mk = SHAPE_MARKERS[i % len(SHAPE_MARKERS)]
        for sch in res.config["schedules"]:
            ax.plot(x, [r[sch] for r in rows], marker=mk, ms=3.5, lw=0, color=SCHEDULE_COLORS[sch],
                    alpha=0.8, label=f"{SCHEDULE_LABELS[sch]} NS5, {m}×{n}")
        ax.plot(x, [r["polar"] for r in rows], marker=mk, ms=3, lw=0, color="k",
                label=f"exact polar, {m}×{n}")
    ax.set_xscale("log")
    ax.set_xlabel(r"$x_{\min}$")
    ax.set_ylabel(r"RMS$(O)\cdot\sqrt{\max(m,n)}$")
    ax.axhline(1, color="k", lw=0.5)
    ax.legend(fontsize=5, ncol=1, loc="lower right")
    ax.set_title("exact polar = 1; NS5 < 1 only for small $x_{\\min}$ (geometric, power-law,\n"
                 "Gaussian spectra; the value depends on the whole spectrum)", fontsize=6.5)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
