"""all-MiniLM-L6-v2's hidden matrices: x_min and the predicted Muon NS5 error per layer and type,
before and after R / RC / RACS.

Reads ``minilm_weights`` only.
"""
from __future__ import annotations

from matbal.lab import BALANCING_COLORS, figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_minilm_weights"
RESULTS = ["minilm_weights"]
TYPES = ["query", "key", "value", "attn_out", "ffn_in", "ffn_out"]
MARKERS = dict(zip(TYPES, ["o", "s", "^", "D", "v", "P"]))


def _color(b):
    return BALANCING_COLORS.get(b, BALANCING_COLORS.get(b.lower(), "0.3"))


def build(out_dir=None, results_dir=None):
    res = load_results("minilm_weights", results_dir=results_dir)
    fig, axes = figure(1, 2, width=7.0, height=2.8)
    x_half = res.config["x_half_muon5"]
    balancings = [b for b in res.config["balancings"] if b in ("none", "R", "RC", "RACS")]
    for ax, key, ylabel in ((axes[0], "x_min", r"$x_{\min}=\sigma_{\min}/\|X\|_F$"),
                            (axes[1], "ns_error_muon_5", "predicted Muon NS5 error")):
        for j, b in enumerate(balancings):
            for t in TYPES:
                rows = sorted(res.where(balancing=b, type=t), key=lambda r: r["layer"])
                if not rows:
                    continue
                xs = [r["layer"] + 0.12 * (j - 1.5) for r in rows]
                ax.plot(xs, [r[key] for r in rows], MARKERS[t], ms=3.5, color=_color(b),
                        alpha=0.85, label=t if j == 0 else None)
            ax.plot([], [], "s", color=_color(b), label=f"balancing: {b}")
        ax.set_xlabel("encoder layer")
        ax.set_ylabel(ylabel)
    axes[0].set_yscale("log")
    axes[0].axhline(x_half, color="k", lw=0.6, ls="--")
    axes[0].text(0, x_half * 1.3, r"Muon NS5 half-lift $x_{0.5}$", fontsize=6)
    axes[1].legend(fontsize=5.5, ncol=2, loc="center right")
    s = res.summary
    base = res.where(balancing="none")
    below = [t for t in TYPES if any(r["type"] == t for r in base)
             and all(r["x_min"] < x_half for r in base if r["type"] == t)]
    axes[0].set_title(f"{s['below_x_half']} of {s['matrices']} matrices below $x_{{0.5}}$ "
                      f"(all of: {', '.join(below) or 'none'})", fontsize=7)
    err = s["median_ns5_error_by_type"]
    worst = max(err, key=err.get)
    axes[1].set_title(f"median NS5 error by type: {min(err.values()):.2f} ({min(err, key=err.get)}) "
                      f"to {err[worst]:.2f} ({worst})", fontsize=7)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
