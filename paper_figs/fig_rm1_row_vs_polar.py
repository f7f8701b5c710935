"""Row normalization vs orthogonalization on recorded Muon momenta of the char GPT, per layer
type over training, against Gaussian matrices of the same shapes (RM-1).

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
    rows = [r for r in res.where(layer_type=lt) if r["step"] is not None]
    steps = sorted({r["step"] for r in rows})
    return np.array(steps), np.array([np.mean([r[key] for r in rows if r["step"] == t])
                                      for t in steps])


def build(out_dir=None, results_dir=None):
    res = load_results("rm1_row_vs_polar_momenta", results_dir=results_dir)
    types = res.summary["per_type"]
    fig, axes = figure(2, 2, width=6.4, height=4.6)
    a, b, c, d = axes.ravel()
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
    rc = res.config["recording"]
    fig.suptitle(f"RM-1: recorded Muon momenta, {rc['model']['n_layer']}-layer width-"
                 f"{rc['model']['n_embd']} char GPT (mean of the layers of a type)", fontsize=7.5)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
