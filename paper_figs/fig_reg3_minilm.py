"""REG-3 on all-MiniLM-L6-v2: the accuracy-vs-retention front per optimizer, how far each layer type
moved, and the learning-rate sweeps behind the chosen lrs.

Reads ``reg3_minilm_finetune`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig
from matbal.lab.lr_protocol import LrChoice, plot_lr_sweep
from matbal.lab.training import OPTIMIZER_COLORS, OPTIMIZER_LABELS

NAME = "fig_reg3_minilm"
RESULTS = ["reg3_minilm_finetune"]
TYPES = ["query", "key", "value", "attn_out", "ffn_in", "ffn_out"]


def build(out_dir=None, results_dir=None):
    res = load_results("reg3_minilm_finetune", results_dir=results_dir)
    arms = [a["label"] for a in res.config["arms"]]
    fig, axes = figure(1, 3, width=10.5, height=3.1)
    ax = axes[0]
    for arm in arms:
        c = OPTIMIZER_COLORS.get(arm, "0.5")
        rows = res.where(arm=arm)
        ax.scatter([r["retention_spearman"] for r in rows], [r["test_acc"] for r in rows],
                   s=8, color=c, alpha=0.25)
        fin = [r for r in rows if r["chosen"]]
        x = np.array([r["retention_spearman"] for r in fin])
        y = np.array([r["test_acc"] for r in fin])
        ax.errorbar(x.mean(), y.mean(), xerr=x.std(ddof=1) if len(x) > 1 else 0,
                    yerr=y.std(ddof=1) if len(y) > 1 else 0, fmt="o", ms=5, color=c, capsize=2,
                    label=f"{OPTIMIZER_LABELS.get(arm, arm)} (lr {fin[0]['lr']:g})")
    ax.set_xlabel("retention: Spearman of prose similarities (1 = kept)")
    ax.set_ylabel("test accuracy (9 classes)")
    ax.legend(fontsize=5.5)
    ax.set_title("dots: every sweep run; markers: chosen lr, mean ± sd over seeds", fontsize=6.5)

    ax = axes[1]
    width = 0.8 / len(arms)
    for j, arm in enumerate(arms):
        fin = [r for r in res.where(arm=arm) if r["chosen"]]
        vals = [np.median([r[f"dW_{t}"] for r in fin]) for t in TYPES]
        ax.bar(np.arange(len(TYPES)) + (j - (len(arms) - 1) / 2) * width, vals, width,
               color=OPTIMIZER_COLORS.get(arm, "0.5"), label=OPTIMIZER_LABELS.get(arm, arm))
    ax.set_xticks(range(len(TYPES)), TYPES, fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel(r"median $\|W-W_0\|_F/\|W_0\|_F$")
    ax.set_title("how far each layer type moved (chosen lr)", fontsize=6.5)

    choices = {OPTIMIZER_LABELS.get(a, a): LrChoice(**res.summary["sweeps"][a]) for a in arms}
    plot_lr_sweep(choices, ax=axes[2], ylabel="validation accuracy (mean over 2 seeds)",
                  colors={OPTIMIZER_LABELS.get(a, a): OPTIMIZER_COLORS.get(a, "0.5") for a in arms})
    axes[2].set_title("lr sweeps (×2 grid; circle = chosen)", fontsize=6.5)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
