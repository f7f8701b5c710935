"""NL-1: (a) final validation loss against lr for scale-matched Muon with NS 1/2/3/5/8 steps and the
exact polar factor (mean ± std over seeds, every seed a dot, the chosen lr circled); (b) each arm's
best lr (sub-grid parabola vertex; the grid optimum as an open marker) against its NS error
predicted from the recorded momenta, with the fitted slope and its seed-bootstrap interval.

Reads ``nslr1_ns_error_lr`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig
from matbal.lab.lr_protocol import LrChoice, plot_lr_sweep

NAME = "fig_nslr1_ns_error_lr"
RESULTS = ["nslr1_ns_error_lr"]


def build(out_dir=None, results_dir=None):
    import matplotlib

    res = load_results("nslr1_ns_error_lr", results_dir=results_dir)
    s, orthos = res.summary, res.config["orthos"]
    cmap = matplotlib.colormaps["viridis"]
    colors = {o: matplotlib.colors.to_hex(cmap(i / max(1, len(orthos) - 1)))
              for i, o in enumerate(orthos)}
    fig, (a, b) = figure(1, 2, width=7.2, height=3.0)
    plot_lr_sweep({o: LrChoice(**s["sweeps"][o]) for o in orthos}, ax=a, colors=colors)
    a.set_title(f"{res.config['steps']} steps, {len(res.config['seeds'])} seeds per lr, "
                f"width {res.config['model']['n_embd']}", fontsize=7)
    tab = s["table"]
    x = np.array([tab[o]["error_fro"] for o in orthos])
    y = np.array([tab[o]["subgrid_lr"] for o in orthos])
    for o, xi, yi in zip(orthos, x, y):
        b.scatter([xi], [yi], color=colors[o], s=22, zorder=3)
        b.scatter([xi], [tab[o]["grid_best_lr"]], facecolors="none", edgecolors=colors[o], s=30)
        b.annotate(o, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=6)
    sl = s["slope"]
    if np.isfinite(sl["estimate"]):
        c = np.polyfit(x, np.log2(y), 1)[1]  # intercept of the fit the slope comes from
        xs = np.linspace(x.min(), x.max(), 20)
        b.plot(xs, 2 ** (c + sl["estimate"] * xs), color="0.4", lw=0.8,
               label=f"slope {sl['estimate']:+.2f} [{sl['ci'][0]:+.2f}, {sl['ci'][1]:+.2f}] "
                     f"per unit error (log2 lr)")
        b.legend(fontsize=6)
    b.set_yscale("log", base=2)
    grid = [t["lr"] for o in orthos for t in s["sweeps"][o]["table"]]
    b.set_ylim(min(grid) / 1.2, max(grid) * 1.2)  # the swept range (a flat set has no autoscale)
    b.set_xlabel("predicted NS error ‖NS_k(M) − polar(M)‖_F / ‖polar(M)‖_F (median)")
    b.set_ylabel("best learning rate")
    b.set_title(f"coupling: {s['coupling']} (NL-1 {res.claims[0]['verdict']})", fontsize=7)
    label_panels([a, b])
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
