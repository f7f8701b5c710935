"""Figure: spectral effects of equilibration on recorded matrices.

A grid with one row per kind (grad, momentum, …; per (run, kind) when the rows come from several
runs) and one column per metric (κ, stable rank,
x_min, NS error); in each panel a box plot per balancing (none, R, C, RC, RACS) with the
individual matrices as jittered points, log y-axis (linear where a panel spans less than a
decade). Non-finite values (κ = inf of a
rank-deficient matrix) and non-positive ones (x_min = 0) cannot be drawn on a log axis: they are
left out and counted in the panel title.

>>> rows = [{"kind": "grad", "balancing": b, "condition_number": 10.0, "stable_rank": 2.0,
...          "x_min": 0.1, "ns_error": 0.3} for b in ("none", "R")]
>>> fig = equilibration_figure(rows, methods=("none", "R"))
>>> len(fig.axes)
4
"""
from __future__ import annotations

import math

from .analyze import runs_of

__all__ = ["equilibration_figure"]

_LABELS = {"condition_number": "κ = σ₁/σ_r", "stable_rank": "stable rank ‖X‖²_F/‖X‖²₂",
           "x_min": "x_min = σ_r/‖X‖_F", "ns_error": "NS error max|1−σ(NS(X))|"}


def equilibration_figure(rows: list[dict], *, methods, metrics=tuple(_LABELS),
                         schedule="muon", steps=5):
    """A matplotlib ``Figure`` of ``rows`` from ``analyze_store`` (made without pyplot, so the
    session's backend is left alone; ``fig.savefig`` writes PNG/PDF)."""
    import matplotlib.ticker
    import numpy as np
    from matplotlib.figure import Figure

    runs = runs_of(rows)
    if len(runs) > 1:
        panels = [(run, kind) for run in runs
                  for kind in sorted({r["kind"] for r in rows if r.get("run", "") == run})]
    else:
        panels = [(None, kind) for kind in sorted({r["kind"] for r in rows})]
    fig = Figure(figsize=(3.4 * len(metrics), 2.9 * len(panels)))
    axes = fig.subplots(len(panels), len(metrics), squeeze=False)
    rng = np.random.default_rng(0)
    for i, (run, kind) in enumerate(panels):
        sub = [r for r in rows if r["kind"] == kind and (run is None or r.get("run", "") == run)]
        label = kind if run is None else f"{run}/{kind}"
        for j, metric in enumerate(metrics):
            ax = axes[i][j]
            data, dropped = [], 0
            for b in methods:
                v = [r[metric] for r in sub if r["balancing"] == b]
                ok = [x for x in v if math.isfinite(x) and x > 0]
                dropped += len(v) - len(ok)
                data.append(ok)
            pos = list(range(1, len(methods) + 1))
            drawn = [(p, d) for p, d in zip(pos, data) if d]
            if drawn:
                ax.boxplot([d for _, d in drawn], positions=[p for p, _ in drawn], widths=0.5,
                           showfliers=False)
                for p, d in drawn:
                    ax.scatter(p + rng.uniform(-0.15, 0.15, len(d)), d, s=6, alpha=0.5,
                               color="C0", zorder=3)
                allv = [x for _, d in drawn for x in d]
                if max(allv) > 10 * min(allv):  # log only where the values span a decade
                    ax.set_yscale("log")
                    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xticks(pos)
            ax.set_xticklabels(methods)
            title = f"{label}: {_LABELS.get(metric, metric)}"
            if dropped:
                title += f"\n({dropped} non-finite/≤0 not shown)"
            ax.set_title(title, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="major", axis="y", alpha=0.3)
    n = len({(r.get("run"), r.get("step"), r.get("layer"), r["kind"]) for r in rows})
    fig.suptitle(f"Spectral effects of equilibration on recorded matrices ({n} matrices"
                 + (f" of {len(runs)} runs" if len(runs) > 1 else "") + "; "
                 f"NS: {schedule}, {steps} steps)", fontsize=10)
    fig.tight_layout()
    return fig
