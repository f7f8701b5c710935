"""Fine-tuning an AdamW-pretrained char GPT on a shifted text: new-task and old-task validation
loss over fine-tuning (mean ± std over seeds), the lr sweep's trade-off, and how far the hidden
matrices moved (REG-3).

Reads ``reg3_finetune_shift`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig, seed_band
from matbal.lab.training import LAYER_TYPES, OPTIMIZER_COLORS, OPTIMIZER_LABELS

NAME = "fig_reg3_finetune"
RESULTS = ["reg3_finetune_shift"]


def _band(res, opt, key):
    return seed_band(res.where(record="curve", optimizer=opt), key)


def build(out_dir=None, results_dir=None):
    res = load_results("reg3_finetune_shift", results_dir=results_dir)
    opts = list(res.config["sweep"])
    chosen = res.summary["chosen_lr"]
    fig, axes = figure(2, 2, width=6.6, height=4.8)
    a, b, c, d = axes.ravel()
    for opt in opts:
        col = OPTIMIZER_COLORS[opt]
        for ax, key in ((a, "new_val"), (b, "old_val")):
            s, m, sd = _band(res, opt, key)
            ax.plot(s, m, color=col, label=f"{OPTIMIZER_LABELS[opt]} (lr {chosen[opt]:g})")
            ax.fill_between(s, m - sd, m + sd, color=col, alpha=0.2, lw=0)
        sw = sorted(res.where(record="sweep", optimizer=opt), key=lambda r: r["lr"])
        c.plot([r["new_final"] for r in sw], [r["forgetting"] for r in sw], marker="o",
               color=col, label=OPTIMIZER_LABELS[opt])
        for r in sw:
            c.annotate(f"{r['lr']:g}", (r["new_final"], r["forgetting"]), fontsize=5,
                       xytext=(3, 2), textcoords="offset points", color=col)
    before = res.summary["before"]
    a.axhline(before["new"], color="k", lw=0.5, ls=":")
    b.axhline(before["old"], color="k", lw=0.5, ls=":")
    a.set_title("new task (pydoc docs): val loss")
    b.set_title("old task (stdlib code): val loss = retention")
    for ax in (a, b):
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("nats / char")
    newv = [r["new_val"] for r in res.where(record="curve") if r["step"] > 0]
    if newv:
        a.set_ylim(min(newv) - 0.05, before["new"] + 0.05)
    a.legend(fontsize=6)
    c.set_xlabel("final new-task loss (1 seed)")
    c.set_ylabel("forgetting: old-task loss − before")
    c.set_title("lr sweep (labels: lr)")
    c.legend(fontsize=6)
    width = 0.8 / len(opts)
    for i, opt in enumerate(opts):
        vals = [np.mean([r["rel_frobenius"] for r in res.where(record="weights", optimizer=opt,
                                                                  layer_type=lt)])
                for lt in LAYER_TYPES]
        d.bar(np.arange(len(LAYER_TYPES)) + (i - (len(opts) - 1) / 2) * width, vals, width,
              color=OPTIMIZER_COLORS[opt], label=OPTIMIZER_LABELS[opt])
    d.set_xticks(range(len(LAYER_TYPES)))
    d.set_xticklabels(LAYER_TYPES, fontsize=6)
    d.set_ylabel(r"$\|W-W_0\|_F/\|W_0\|_F$")
    d.set_title("hidden matrices moved (mean over seeds, layers)")
    pre = res.config["pretrain"]
    fig.suptitle(f"REG-3: AdamW-pretrained ({pre['steps']} steps on code) char GPT fine-tuned "
                 f"{res.config['finetune']['steps']} steps on docs; "
                 f"{len(res.config['seeds'])} seeds, dotted = before fine-tuning", fontsize=7)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
