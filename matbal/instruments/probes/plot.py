"""Figures of probe rows: one panel per ``(kind, metric)``, one line per layer, value vs step.

:data:`PANELS` is the table of panels tried by default, in order; a panel is drawn only when the
rows hold its ``(kind, metric)`` (so a run on a plain AdamW has no ``ns_input`` panel). Pass
``panels=`` to choose others: any ``(kind, metric, title, log_y)``.

>>> import tempfile, torch
>>> from pathlib import Path
>>> from matbal.instruments.probes import Probes
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 2))
>>> opt = torch.optim.AdamW(net.parameters())
>>> with Probes(every=1, exact_every=1).attach(opt, model=net) as probes:
...     for _ in range(3):
...         net(torch.randn(4, 8)).square().sum().backward(); opt.step(); opt.zero_grad()
>>> [p[:2] for p in present_panels(probes.sink.rows)][:2]
[('update', 'cos_adamw'), ('grad', 'stable_rank')]
>>> path = plot_probe_traces(probes.sink.rows, Path(tempfile.mkdtemp()) / "traces.png")
>>> path.stat().st_size > 0
True
"""
from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["PANELS", "present_panels", "draw_probe_traces", "plot_probe_traces"]

#: Default panels ``(kind, metric, title, log_y)``, in the order they are tried.
PANELS: tuple[tuple[str, str, str, bool], ...] = (
    ("ns_input", "x_min", "x_min of the NS input (exact, float64 SVD)", True),
    ("update", "cos_adamw", "cos(update, AdamW direction)", False),
    ("grad", "stable_rank", "stable rank of the gradient (exact)", False),
    ("grad", "stable_rank_upper", "stable rank of the gradient (upper bracket)", False),
    ("update", "rms", "RMS of the update", True),
    ("param", "stable_rank", "stable rank of the weights (exact)", False),
)


def present_panels(rows: Sequence[dict], panels: Iterable = PANELS, *,
                   max_panels: int | None = 4) -> list[tuple[str, str, str, bool]]:
    """The ``panels`` whose ``(kind, metric)`` occurs in ``rows`` (at most ``max_panels``)."""
    have = {(r["kind"], r["metric"]) for r in rows}
    out = [tuple(p) for p in panels if (p[0], p[1]) in have]
    return out if max_panels is None else out[:max_panels]


def _short_names(layers: list[str]) -> dict[str, str]:
    """Layer names without the dotted prefix all of them share (``transformer.h.0.x`` → ``0.x``
    when every name starts with ``transformer.h.``)."""
    parts = [name.split(".") for name in layers]
    k = 0
    while len(layers) > 1 and all(len(p) > k + 1 and p[k] == parts[0][k] for p in parts):
        k += 1
    return {name: ".".join(p[k:]) for name, p in zip(layers, parts)}


def draw_probe_traces(axes, rows: Sequence[dict], panels: Sequence, *, layers=None,
                      legend_max: int = 16) -> None:
    """Draw ``panels`` (``(kind, metric, title, log_y)``) of ``rows`` on ``axes`` (one each);
    ``layers``: fnmatch globs selecting the layers drawn."""
    pats = (layers,) if isinstance(layers, str) else layers
    for ax, (kind, metric, title, log) in zip(axes, panels):
        series: dict[str, list[tuple[int, float]]] = {}
        for r in rows:
            if r["kind"] == kind and r["metric"] == metric and (
                    pats is None or any(fnmatch.fnmatchcase(r["layer"], p) for p in pats)):
                series.setdefault(r["layer"], []).append((r["step"], r["value"]))
        short = _short_names(sorted(series))
        for layer in sorted(series):
            ax.plot(*zip(*sorted(series[layer])), marker="o", ms=3, lw=1, label=short[layer])
        if log and any(v > 0 for pts in series.values() for _, v in pts):
            ax.set_yscale("log")  # non-positive values are left out of a log axis
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if 0 < len(series) <= legend_max:
            ax.legend(fontsize=7)


def plot_probe_traces(rows: Sequence[dict], path: str | Path, *, panels: Iterable | None = None,
                      layers=None, max_panels: int | None = 4) -> Path:
    """Save a figure of probe traces (one panel per present :data:`PANELS` entry, or per entry of
    ``panels``; one line per layer) to ``path``; returns ``path``. Raises ``ValueError`` when
    ``rows`` hold none of the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = present_panels(rows, PANELS if panels is None else panels, max_panels=max_panels)
    if not chosen:
        raise ValueError("rows hold none of the requested (kind, metric) panels; present: "
                         f"{sorted({(r['kind'], r['metric']) for r in rows})[:8]}")
    fig, axes = plt.subplots(1, len(chosen), figsize=(6 * len(chosen), 4.2), squeeze=False)
    draw_probe_traces(axes[0], rows, chosen, layers=layers)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

