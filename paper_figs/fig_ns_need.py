"""Final validation loss of the char GPT against the orthogonalizer's worst-case NS error
(NS 3/5/8 steps, cubic 5 steps, exact polar), with and without the row balancing R: mean ± std
over seeds.

Reads ``ns_need_gpt`` only.
"""
from __future__ import annotations

from matbal.lab import figure, figure_cli, load_results, savefig

NAME = "fig_ns_need"
RESULTS = ["ns_need_gpt"]
COLORS = {"plain": "#9467bd", "R": "#d62728"}
LABELS = {"plain": "without R (Muon momentum, MuonEq's scale)", "R": "with R (MuonEq-R)"}


def build(out_dir=None, results_dir=None):
    res = load_results("ns_need_gpt", results_dir=results_dir)
    tab = res.summary["table"]
    lo = res.config["error_lo"]
    fig, ax = figure(1, 1, width=4.2, height=3.0)
    positive = [t["ns_error"] for t in tab.values() if t["ns_error"] > 0]
    floor = min(positive) / 4 if positive else 1e-3  # where the exact polar factor (error 0) sits
    for fam in res.config["families"]:
        pts = [(max(t["ns_error"], floor), *t["final_val_loss"], t["ortho"])
               for t in tab.values() if t["family"] == fam]
        pts.sort()
        x, m, s, names = zip(*pts)
        ax.errorbar(x, m, yerr=s, fmt="o-", color=COLORS[fam], capsize=3, ms=4, lw=1,
                    label=LABELS[fam])
        for xi, mi, name in zip(x, m, names):
            ax.annotate(name, (xi, mi), textcoords="offset points", xytext=(4, 3), fontsize=6,
                        color=COLORS[fam])
    ax.set_xscale("log")
    ax.set_xlabel(f"worst-case NS error on [{lo:g}, 1] (exact polar plotted at {floor:.2g})")
    ax.set_ylabel("final validation loss")
    ax.set_title(f"{res.config['steps']} steps, {len(res.config['seeds'])} paired seeds, "
                 f"width {res.config['model']['n_embd']}", fontsize=7)
    ax.legend(fontsize=6)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
