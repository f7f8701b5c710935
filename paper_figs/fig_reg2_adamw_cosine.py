"""Cosine between each optimizer's direction and AdamW's, replayed on recorded gradient streams,
per layer type over training (REG-2).

Reads ``reg2_adamw_cosine`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig
from matbal.lab.training import LAYER_TYPES, OPTIMIZER_COLORS, OPTIMIZER_LABELS

NAME = "fig_reg2_adamw_cosine"
RESULTS = ["reg2_adamw_cosine"]
MAIN = ("reg", "muon")


def build(out_dir=None, results_dir=None):
    res = load_results("reg2_adamw_cosine", results_dir=results_dir)
    streams = res.config["streams"]
    dirs = res.config["directions"]
    groups: dict = {}
    for r in res.rows:
        key = (r["stream"], r["layer_type"], r["direction"])
        groups.setdefault(key, {}).setdefault(r["step"], []).append(r["cos_adamw"])
    fig, axes = figure(len(streams), len(LAYER_TYPES), width=7.2, height=1.75 * len(streams) + 0.6,
                       sharey=True, squeeze=False)
    for i, stream in enumerate(streams):
        for j, lt in enumerate(LAYER_TYPES):
            ax = axes[i, j]
            for d in dirs:
                series = groups[(stream, lt, d)]
                steps = sorted(series)
                per = np.array([series[t] for t in steps])
                main = d in MAIN
                ax.plot(steps, per.mean(1), color=OPTIMIZER_COLORS[d], lw=1.3 if main else 0.8,
                        ls="-" if main else "--", alpha=1 if main else 0.85,
                        label=OPTIMIZER_LABELS[d])
                if main:
                    ax.fill_between(steps, per.min(1), per.max(1), color=OPTIMIZER_COLORS[d],
                                    alpha=0.2, lw=0)
            ax.set_ylim(0, 1.02)
            if i == 0:
                ax.set_title(lt)
            if i == len(streams) - 1:
                ax.set_xlabel("step")
            if j == 0:
                ax.set_ylabel(f"{stream}-trained run\ncos to AdamW direction")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=6)
    fig.suptitle("Direction from the same gradient stream vs AdamW's $\\hat m/(\\sqrt{\\hat v}+"
                 "\\epsilon)$ (line: mean of the 2 layers; band: REG and Muon, min–max)",
                 fontsize=7)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir, dpi=160)


if __name__ == "__main__":
    figure_cli(build)
