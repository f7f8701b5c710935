"""Where does balancing stop helping NS? Heatmaps over scale mismatch × intrinsic conditioning.

Reads ``balance_limits`` only (median over seeds). Also the picture for EQ-6 (scale range 1 = the
purely intrinsic column).
"""
from __future__ import annotations

import numpy as np

from matbal.lab import aggregate, figure, figure_cli, load_results, savefig

NAME = "fig_balance_limits"
RESULTS = ["balance_limits"]


def _grid(med, cfg, b, key):
    g = np.full((len(cfg["core_kappas"]), len(cfg["scale_ranges"])), np.nan)
    for r in med:
        if r["balancing"] == b:
            g[cfg["core_kappas"].index(r["core_kappa"]), cfg["scale_ranges"].index(r["scale_range"])] = r[key]
    return g


def _heat(ax, g, cfg, title, fmt, vmin, vmax, cmap):
    im = ax.imshow(g, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            r, gg, bb, _ = im.cmap(im.norm(g[i, j]))
            lum = 0.2126 * r + 0.7152 * gg + 0.0722 * bb  # text readable on any cell colour
            ax.text(j, i, fmt(g[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if lum < 0.5 else "black")
    ax.set_xticks(range(len(cfg["scale_ranges"])))
    ax.set_xticklabels([f"$10^{{{int(round(np.log10(s)))}}}$" for s in cfg["scale_ranges"]])
    ax.set_yticks(range(len(cfg["core_kappas"])))
    ax.set_yticklabels([f"$10^{{{int(round(np.log10(k)))}}}$" for k in cfg["core_kappas"]])
    ax.set_xlabel("row & column scale range")
    ax.set_title(title, fontsize=7)
    ax.grid(False)
    return im


def build(out_dir=None, results_dir=None):
    res = load_results("balance_limits", results_dir=results_dir)
    cfg = res.config
    med = aggregate(res.rows, by=("core_kappa", "scale_range", "balancing"),
                    values=("ns_error", "pe_steps", "x_min", "core_x_min"))
    fig, axes = figure(1, 4, width=7.2, height=2.35)
    e0 = _grid(med, cfg, "none", "ns_error")
    e_r = _grid(med, cfg, "R", "ns_error")
    e_racs = _grid(med, cfg, "RACS", "ns_error")
    saved = _grid(med, cfg, "none", "pe_steps") - _grid(med, cfg, "RACS", "pe_steps")
    f2 = lambda v: f"{v:.2f}"  # noqa: E731
    _heat(axes[0], e0, cfg, "(a) Muon NS5 error,\nunbalanced", f2, 0, 1, "magma_r")
    _heat(axes[1], e_r, cfg, "(b) … after R\n(MuonEq-R)", f2, 0, 1, "magma_r")
    im = _heat(axes[2], e_racs, cfg, "(c) … after RACS\n(≈ the core's own error)", f2, 0, 1, "magma_r")
    im2 = _heat(axes[3], saved, cfg, f"(d) Polar Express steps saved\nby RACS (to error {cfg['steps_target']:g})",
                lambda v: f"{v:.0f}", 0, np.nanmax(saved), "Greens")
    axes[0].set_ylabel(r"core condition number $\kappa_{\rm core}$")
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.colorbar(im, ax=axes[:3], shrink=0.8, pad=0.01).set_label("‖NS5 − polar‖₂", fontsize=6)
    fig.colorbar(im2, ax=axes[3], shrink=0.8, pad=0.02).set_label("steps", fontsize=6)
    m, n = cfg["m"], cfg["n"]
    fig.suptitle(f"$X = D_r\\,C\\,D_c$ ({m}×{n}): balancing removes the scales, never the core's "
                 "conditioning", fontsize=8)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
