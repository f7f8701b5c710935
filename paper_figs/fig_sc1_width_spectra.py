"""Momentum spectra of the char GPT against width (SC-1): x_eff = σ_(r−1)/‖M‖_F per matrix on a
log–log scale with the fitted power laws, NS5's half-lift x₀.₅ and the crossing widths; the
singular-value quantiles of the last block; x_eff over training at the widest width; the lr check.

Reads ``sc1_width_spectra`` only.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import NullFormatter

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig
from matbal.lab.training import LAYER_TYPES

NAME = "fig_sc1_width_spectra"
RESULTS = ["sc1_width_spectra"]
COLORS = dict(zip(LAYER_TYPES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")))
BLOCK_STYLE = {0: ("--", "o", "none"), 1: ("-", "s", None)}  # line, marker, face (None: filled)


def _style(block, last):
    return BLOCK_STYLE[1] if block == last else BLOCK_STYLE[0]


def build(out_dir=None, results_dir=None):
    res = load_results("sc1_width_spectra", results_dir=results_dir)
    cfg, summ = res.config, res.summary
    widths, x05, lo = cfg["widths"], summ["x05"], cfg["from_step"]
    base_lr = cfg["recording"]["lr"]
    fits = summ["fits"]
    last = max(f["block"] for f in fits.values())
    mom = [r for r in res.rows if r["record"] == "momentum"]
    fig, axes = figure(2, 2, width=6.8, height=5.2)
    a, b, c, d = axes.ravel()
    x_hi = cfg["max_extrapolation"] * widths[-1]

    # (a) x_eff vs width, fits, crossings
    for k, f in fits.items():
        col = COLORS.get(f["layer_type"], "k")
        ls, mk, face = _style(f["block"], last)
        vals = [[r["x_eff"] for r in mom if r["layer"] == k and r["width"] == w
                 and r["lr"] == base_lr and r["step"] >= lo] for w in widths]
        med = np.array([np.median(v) for v in vals])
        err = np.array([[m - np.percentile(v, 10), np.percentile(v, 90) - m]
                        for m, v in zip(med, vals)]).T
        a.errorbar(widths, med, yerr=err, color=col, marker=mk, mfc=face or col, ms=3.5,
                   ls="none", lw=0.8, label=f"h.{f['block']}.{f['layer_type']}")
        fx = f["x_eff"]
        cross = float(fx["crossing"])
        if not math.isfinite(cross):  # never crosses: draw to the extrapolation limit
            end = x_hi
        elif cross <= widths[0]:  # below x0.5 already: the measured range only
            end = widths[-1]
        else:
            end = min(x_hi, max(cross, widths[-1]))
        xs = np.geomspace(widths[0], end, 60)
        a.plot(xs, np.exp(fx["intercept"]) * xs ** fx["slope"], color=col, ls=ls, lw=0.8)
        if math.isfinite(cross) and widths[0] <= cross <= x_hi:
            a.plot([cross], [x05], marker="x", color=col, ms=5, ls="none")
    a.axhline(x05, color="k", lw=0.9, ls=":")
    a.axvspan(widths[-1], x_hi, color="0.92", zorder=0)
    a.text(widths[-1] * 4.5, x05 * 1.3, f"x₀.₅ = {x05:.2e}\n(Muon NS5)", fontsize=5.5)
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("width (n_embd); shaded: extrapolation")
    a.set_ylabel(r"$x_{\mathrm{eff}}=\sigma_{r-1}/\|M\|_F$")
    a.set_title("median over steps ≥ %d (bars 10–90 %%), power-law fits,\n× = crossing of x₀.₅"
                % lo, fontsize=6.5)
    a.legend(fontsize=4.8, ncol=2, loc="lower left")

    # (b) quantiles of the last block vs width
    for k, f in fits.items():
        if f["block"] != last:
            continue
        col = COLORS.get(f["layer_type"], "k")
        for q, ls in (("q10", ":"), ("q50", "-"), ("q90", "--")):
            med = [np.median([r[q] for r in mom if r["layer"] == k and r["width"] == w
                              and r["lr"] == base_lr and r["step"] >= lo]) for w in widths]
            b.plot(widths, med, color=col, ls=ls, marker=".", ms=3, lw=0.9,
                   label=f["layer_type"] if q == "q50" else None)
    b.axhline(x05, color="k", lw=0.9, ls=":")
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    b.set_xlabel("width (n_embd)")
    b.set_ylabel(r"quantile of $\sigma_i/\|M\|_F$")
    b.set_title(f"last block (h.{last}): 10 % dotted, median solid, 90 % dashed", fontsize=6.5)
    b.legend(fontsize=5.5, loc="lower left")

    # (c) x_eff over training at the widest width
    for k, f in fits.items():
        col = COLORS.get(f["layer_type"], "k")
        ls, _, _ = _style(f["block"], last)
        rs = sorted((r["step"], r["x_eff"]) for r in mom if r["layer"] == k
                    and r["width"] == widths[-1] and r["lr"] == base_lr)
        c.plot([s for s, _ in rs], [v for _, v in rs], color=col, ls=ls, lw=0.9)
    c.axvspan(0, lo, color="0.92", zorder=0)
    c.axhline(x05, color="k", lw=0.9, ls=":")
    c.set_yscale("log")
    c.set_xlabel("step")
    c.set_ylabel(r"$x_{\mathrm{eff}}$")
    c.set_title(f"width {widths[-1]} over training (shaded: burn-in, not fitted)", fontsize=6.5)

    # (d) lr sensitivity
    wc = cfg["lr_check"]["width"]
    lrs = sorted([base_lr] + [f * base_lr for f in cfg["lr_check"]["factors"]])
    for k, f in fits.items():
        col = COLORS.get(f["layer_type"], "k")
        ls, mk, face = _style(f["block"], last)
        med = summ["lr_sensitivity"][k]["median_x_eff"]
        d.plot(lrs, [med[f"{v:g}"] for v in lrs], color=col, ls=ls, marker=mk, mfc=face or col,
               ms=3.5, lw=0.9)
    d.axhline(x05, color="k", lw=0.9, ls=":")
    d.axvline(base_lr, color="0.6", lw=0.8)
    d.set_xscale("log")
    d.set_yscale("log")
    d.set_xticks(lrs, [f"{v:g}" for v in lrs])
    d.xaxis.set_minor_formatter(NullFormatter())
    d.set_xlabel("Muon lr")
    d.set_ylabel(r"median $x_{\mathrm{eff}}$")
    d.set_title(f"lr check at width {wc} (grey: the lr of every width)", fontsize=6.5)

    rc = cfg["recording"]
    fig.suptitle(f"SC-1: Muon momenta of the {rc['model']['n_layer']}-block char GPT, widths "
                 f"{widths[0]}–{widths[-1]}, {rc['steps']} steps (solid/filled: last block; "
                 f"dashed/open: first)", fontsize=7.5)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
