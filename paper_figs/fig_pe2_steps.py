"""Steps to a worst-case accuracy: Polar Express vs quintic Padé vs cubic (PE-2).

Reads ``pe2_steps_to_accuracy`` only.
"""
from __future__ import annotations

from matbal.lab import SCHEDULE_COLORS, SCHEDULE_LABELS, figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_pe2_steps"
RESULTS = ["pe2_steps_to_accuracy"]


def build(out_dir=None, results_dir=None):
    res = load_results("pe2_steps_to_accuracy", results_dir=results_dir)
    los = res.config["los"]
    fig, axes = figure(1, len(los), width=7.0, height=2.4, sharey=True)
    axes = [axes] if len(los) == 1 else list(axes)
    for ax, lo in zip(axes, los):
        for s in res.config["schedules"]:
            rows = [r for r in res.where(lo=lo, schedule=s) if r["steps"] is not None]
            if not rows:
                ax.plot([], [], color=SCHEDULE_COLORS[s], label=f"{SCHEDULE_LABELS[s]} (never)")
                continue
            ax.plot([r["target"] for r in rows], [r["steps"] for r in rows], "o-", ms=3,
                    color=SCHEDULE_COLORS[s], label=SCHEDULE_LABELS[s])
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel(r"target worst-case error on $[\ell,1]$")
        ax.set_title(rf"$\ell$ = {lo:g}")
    axes[0].set_ylabel("Newton–Schulz steps needed")
    axes[0].legend(fontsize=6)
    label_panels(axes)
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
