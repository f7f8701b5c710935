"""Validation loss of the char GPT under AdamW, Muon, MuonEq-R/RC and the controls (scale-matched
Muon, exact polar(M) and polar(R(M))): mean ± std over seeds at each arm's swept lr, and the lr
sweeps themselves (EQ-5), one row of panels per width.

Reads ``eq5_muoneq_gpt`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig, seed_band
from matbal.lab.lr_protocol import LrChoice, plot_lr_sweep
from matbal.lab.training import OPTIMIZER_COLORS, OPTIMIZER_LABELS

NAME = "fig_eq5_loss_curves"
RESULTS = ["eq5_muoneq_gpt"]


def _band(res, arm, key, width):
    return seed_band(res.where(record="curve", arm=arm, width=width), key)


def _width_row(res, axes, width: int) -> None:
    """One row of panels for one width: curves, zoom, final losses, lr sweeps."""
    w = res.summary["widths"][str(width)]
    arms = [a["label"] for a in res.config["arms"]]
    steps_total = res.config["steps"]
    for arm in arms:
        steps, mean, std = _band(res, arm, "val_loss", width)
        ls = {"muon-moonlight-scale": "--", "polar-m": ":", "polar-rm": ":"}.get(arm, "-")
        for ax in axes[:2]:
            ax.plot(steps, mean, color=OPTIMIZER_COLORS[arm], ls=ls, label=OPTIMIZER_LABELS[arm])
            ax.fill_between(steps, mean - std, mean + std, color=OPTIMIZER_COLORS[arm], alpha=0.2,
                            lw=0)
    axes[0].set_ylabel(f"width {width}\nvalidation loss (nats / char)")
    axes[0].set_title(f"EQ-5 {w['verdict']} ({w['n_params'] / 1e3:.0f} k params)\n"
                      f"mean ± std, {len(res.config['seeds'])} seeds", fontsize=6, loc="right")
    lo = steps_total // 2
    zoom = [r["val_loss"] for r in res.where(record="curve", width=width)
            if r.get("val_loss") is not None and r["step"] >= lo]
    axes[1].set_xlim(lo, steps_total * 1.01)
    if zoom:
        axes[1].set_ylim(min(zoom) - 0.02, max(zoom) + 0.02)
    axes[1].set_title(f"zoom: steps ≥ {lo}")
    for ax in axes[:2]:
        ax.set_xlabel("step")
    axes[0].legend(fontsize=5.5, loc="upper right")
    tab = w["table"]
    near = [a for a in arms if a != "adamw"]  # AdamW is far above: shown as text, off scale
    for i, arm in enumerate(near):
        m, s = tab[arm]["final_val_loss"]
        axes[2].errorbar(i, m, yerr=s, fmt="o", color=OPTIMIZER_COLORS[arm], capsize=3)
        axes[2].text(i + 0.12, m, f"{m:.3f}", ha="left", va="center", fontsize=6)
    axes[2].set_xticks(range(len(near)))
    axes[2].set_xticklabels([f"{OPTIMIZER_LABELS[a].replace(', ', chr(10))}\n"
                             f"{tab[a]['interleaved_step_ms']:.0f} ms/step" for a in near],
                            rotation=30, ha="right", fontsize=5.5)
    axes[2].set_xlim(-0.5, len(near) - 0.2)
    ma, sa = tab["adamw"]["final_val_loss"]
    axes[2].set_title(f"final, mean ± std; off scale: AdamW\n{ma:.3f} ± {sa:.3f}, "
                      f"{tab['adamw']['interleaved_step_ms']:.0f} ms/step", fontsize=6.5, loc="right")
    axes[2].set_ylabel("final validation loss")
    sweeps = {OPTIMIZER_LABELS[k]: LrChoice(**v) for k, v in w["sweeps"].items()}
    axes[3].set_prop_cycle(color=[OPTIMIZER_COLORS[k] for k in w["sweeps"]])
    plot_lr_sweep(sweeps, ax=axes[3])
    axes[3].legend(fontsize=4.5)
    axes[3].set_title(f"lr sweeps ({len(res.config['sweep_seeds'])} seeds per lr, "
                      f"{steps_total} steps)", fontsize=6.5)


def build(out_dir=None, results_dir=None):
    res = load_results("eq5_muoneq_gpt", results_dir=results_dir)
    widths = res.config["widths"]
    fig, axes = figure(len(widths), 4, width=9.5, height=2.6 * len(widths))
    axes = np.atleast_2d(axes)
    for row, width in zip(axes, widths):
        _width_row(res, row, width)
    p = res.summary["paper_1b"]
    fig.suptitle(f"EQ-5 at small scale: {res.summary['scale']}\n(the paper's 1B-parameter "
                 f"runs: MuonEq-R {p['muoneq-r']}, Muon {p['muon']}, AdamW {p['adamw']}); "
                 f"step times measured round-robin", fontsize=7)
    label_panels(list(axes.ravel()))
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
