"""Row normalization vs orthogonalization on recorded Muon momenta of the char GPT, per layer
type over training, against Gaussian matrices of the same shapes, and the trend with width
(RM-1).

Reads ``rm1_row_vs_polar_momenta`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig
from matbal.lab.training import LAYER_TYPES

NAME = "fig_rm1_row_vs_polar"
RESULTS = ["rm1_row_vs_polar_momenta"]
COLORS = dict(zip(LAYER_TYPES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")))


def _series(res, lt, key):
    rows = [r for r in res.where(layer_type=lt) if r["step"] is not None
            and r.get("series", "main") == "main"]
    steps = sorted({r["step"] for r in rows})
    return np.array(steps), np.array([np.mean([r[key] for r in rows if r["step"] == t])
                                      for t in steps])


def build(out_dir=None, results_dir=None):
    res = load_results("rm1_row_vs_polar_momenta", results_dir=results_dir)
    types = res.summary["per_type"]
    fig, axes = figure(2, 3, width=9.0, height=4.6)
    a, b, wa, c, d, wb = axes.ravel()
    for lt in LAYER_TYPES:
        if lt not in types:
            continue
        col = COLORS[lt]
        m, n = types[lt]["shape"]
        lab = f"{lt} ({m}×{n})"
        s, e = _series(res, lt, "error")
        a.plot(s, e, color=col, label=lab)
        a.axhline(types[lt]["gaussian_error"], color=col, ls=":", lw=0.9)
        s, cr = _series(res, lt, "cos_r_polar")
        b.plot(s, cr, color=col, label=f"{lt}: cos(R, polar)")
        s, cn = _series(res, lt, "cos_ns5_polar")
        b.plot(s, cn, color=col, ls="--", lw=0.9)
        b.plot([s[-1] * 1.04], [types[lt]["gaussian_cos_r_polar"]], marker="<", color=col,
               clip_on=False, ls="none")
        s, x1 = _series(res, lt, "x_min")
        s, x2 = _series(res, lt, "x_min2")
        c.plot(s, x1, color=col, lw=0.9)
        c.plot(s, x2, color=col, ls="--")
        s, sr = _series(res, lt, "stable_rank")
        d.plot(s, sr, color=col, label=lab)
        if types[lt].get("gaussian_stable_rank"):
            d.axhline(types[lt]["gaussian_stable_rank"], color=col, ls=":", lw=0.9)
    a.set_ylabel(r"$\|s\,R(M)-\mathrm{polar}(M)\|_2$")
    a.set_title("error (dotted: Gaussian, same shape)")
    a.legend(fontsize=5.5, loc="upper right")
    b.set_ylabel("cosine")
    b.set_title("cos(R, polar) solid, cos(NS5, polar) dashed;\n◀ Gaussian cos(R, polar), same shape",
                fontsize=6.5)
    b.set_ylim(0, 1.02)
    c.set_yscale("log")
    c.set_ylabel(r"$\sigma/\|M\|_F$")
    c.set_title(r"$x_{\min}=\sigma_r/\|M\|_F$ solid (an LN null direction, see text);"
                "\n" r"$\sigma_{r-1}/\|M\|_F$ dashed", fontsize=6.5)
    d.set_ylabel("stable rank of M")
    d.set_yscale("log")
    d.set_title("stable rank (dotted: Gaussian, same shape)", fontsize=6.5)
    for ax in (a, b, c, d):
        ax.set_xlabel("step")
    _width_panels(res, wa, wb)
    rc = res.config["recording"]
    fig.suptitle(f"RM-1: recorded Muon momenta, {rc['model']['n_layer']}-layer char GPT; (a), (b), "
                 f"(d), (e): width {rc['model']['n_embd']}, {rc['steps']} steps (mean of the "
                 f"layers of a type); (c), (f): across widths", fontsize=7.5)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


def _width_panels(res, e, f):
    """cos(R, polar) and error/√(min/max) against width: medians over steps ≥ width_from_step
    with the 10th–90th percentile bars, and the fitted line of cos against ln(width)."""
    trend = res.summary.get("width_trend", {})
    widths = res.config.get("widths", [])
    lo = res.config.get("width_from_step", 0)
    for i, lt in enumerate(t for t in LAYER_TYPES if t in trend):
        col = COLORS[lt]
        for ax, key, div in ((e, "cos_r_polar", False), (f, "error", True)):
            vals = [[r[key] / (r["gaussian_rule"] if div else 1.0) for r in res.rows
                     if r.get("series") == "width" and r["width"] == w and r["layer_type"] == lt
                     and r["step"] >= lo] for w in widths]
            med = np.array([np.median(v) for v in vals])
            err = np.array([[m - np.percentile(v, 10), np.percentile(v, 90) - m]
                            for m, v in zip(med, vals)]).T
            x = np.array(widths) * (1 + 0.03 * (i - 1.5))  # a small dodge per layer type
            ax.errorbar(x, med, yerr=err, color=col, marker="o", ms=3, ls="none", lw=0.8,
                        label=lt)
        fit = trend[lt]["cos_r_polar"]
        xs = np.geomspace(widths[0], widths[-1], 50)
        e.plot(xs, fit["intercept"] + fit["slope"] * np.log(xs), color=col, lw=0.8)
    if widths:
        e.axhline(res.config["min_cos"], color="k", ls="--", lw=0.8)
        f.axhline(res.config["max_err_ratio"], color="k", ls="--", lw=0.8)
        for ax in (e, f):
            ax.set_xscale("log", base=2)
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.set_xlabel("width (n_embd)")
        wr = res.config["width_recording"]
        e.set_title(f"cos(R, polar) vs width ({wr['steps']}-step runs); line: fit\nin ln(width); "
                    f"dashed: rule {res.config['min_cos']}", fontsize=6.5)
        e.set_ylim(0, 1.02)
        e.set_ylabel("cos(R(M), polar(M))")
        e.legend(fontsize=5.5, loc="lower right")
        f.set_title(r"$\|s\,R(M)-\mathrm{polar}(M)\|_2/\sqrt{\min/\max}$ vs width;"
                    f"\ndashed: rule {res.config['max_err_ratio']:g}", fontsize=6.5)
        f.set_ylabel("error / Gaussian rule")
        f.set_ylim(bottom=0)


if __name__ == "__main__":
    figure_cli(build)
