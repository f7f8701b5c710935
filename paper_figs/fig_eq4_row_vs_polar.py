"""How far is row normalization from the polar factor? vs aspect ratio and row coherence (EQ-4).

Reads ``eq4_row_vs_polar`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import aggregate, figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_eq4_row_vs_polar"
RESULTS = ["eq4_row_vs_polar"]


def build(out_dir=None, results_dir=None):
    res = load_results("eq4_row_vs_polar", results_dir=results_dir)
    a_rows = sorted(aggregate(res.where(sweep="aspect"), by=("aspect",),
                              values=("error", "predicted_gaussian")), key=lambda r: r["aspect"])
    c_rows = sorted(aggregate(res.where(sweep="coherence"), by=("rho",),
                              values=("error", "gram_dev", "max_row_cosine")), key=lambda r: r["rho"])
    fig, (a, b) = figure(1, 2, width=7.0, height=2.6)
    asp = np.array([r["aspect"] for r in a_rows])
    a.plot(asp, [r["error"] for r in a_rows], "o-", color="#1f77b4", label="measured (median)")
    a.plot(asp, [r["predicted_gaussian"] for r in a_rows], "k--", lw=0.8,
           label=r"$\sqrt{\min(m,n)/\max(m,n)}$")
    a.scatter(res.column("aspect", sweep="aspect"), res.column("error", sweep="aspect"), s=5,
              color="#1f77b4", alpha=0.35, zorder=3)
    a.set_xscale("log", base=2)
    a.set_xlabel(f"aspect ratio m/n (Gaussian, n = {res.config['n']})")
    a.set_ylabel(r"$\|s\,R(X)-\mathrm{polar}(X)\|_2$")
    a.axvline(1, color="gray", lw=0.5, ls=":")
    a.legend(fontsize=6)
    a.set_title("error peaks at square shapes")
    rho = [r["rho"] for r in c_rows]
    b.plot(rho, [r["error"] for r in c_rows], "o-", color="#d62728", label=r"$\|s\,R(X)-\mathrm{polar}(X)\|_2$")
    b.plot(rho, [r["gram_dev"] for r in c_rows], "s--", color="#7f7f7f", lw=0.9,
           label=r"row coherence $\|RR^\top-I\|_2$")
    mc, nc = res.config["coherence_shape"]
    b.set_xlabel(rf"row correlation $\rho$ ({mc}×{nc}, $x_i=\sqrt{{\rho}}z+\sqrt{{1-\rho}}g_i$)")
    b.set_ylabel("error / coherence")
    b.set_yscale("log")
    b.legend(fontsize=6)
    b.set_title("error grows with row coherence")
    label_panels([a, b])
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
