"""``matbal plot RUN_DIR``: one figure of a run directory — loss curves and probe traces.

The first panel is the training and validation loss vs step (``metrics.jsonl``); the next ones
are the probe traces of ``probes.jsonl`` when the run was probed (``--probe-every``): the panels
of :data:`matbal.instruments.probes.PANELS` present in the rows (see
:func:`matbal.instruments.probes.plot_probe_traces`). The figure goes to ``RUN_DIR/plot.png``,
or to ``out`` (a ``.png`` path, or a folder: ``<out>/<run name>.png``).

>>> import tempfile
>>> from matbal.train import TrainConfig, train
>>> d = tempfile.mkdtemp()
>>> res = train(TrainConfig(model="mlp", optimizer="muon", steps=6, eval_every=3, log_every=2,
...                         warmup_steps=1, mlp_hidden=16, quiet=True, out_dir=d, run_name="r",
...                         probe_every=2))
>>> plot_run(res.run_dir).name
'plot.png'
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from ..instruments.probes import draw_probe_traces, present_panels, read_rows
from .rundir import read_metrics

__all__ = ["plot_run", "plot_main"]


def _target(run_dir: Path, out) -> Path:
    if out is None:
        return run_dir / "plot.png"
    out = Path(out)
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{run_dir.name}.png"


def plot_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
             panels=None, layers=None, max_panels: int | None = 4) -> Path:
    """Save the loss curves and probe traces of ``run_dir`` (module docstring); returns the PNG's
    path. ``panels``/``layers``/``max_panels`` choose the probe panels as in
    :func:`~matbal.instruments.probes.plot_probe_traces`. Raises ``FileNotFoundError`` when
    ``run_dir`` holds neither ``metrics.jsonl`` nor ``probes.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..instruments.probes import PANELS

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir {run_dir} is not a directory")
    metrics = read_metrics(run_dir)
    probe_path = run_dir / "probes.jsonl"
    rows = read_rows(probe_path) if probe_path.exists() else []
    if not metrics and not rows:
        raise FileNotFoundError(f"{run_dir} holds neither metrics.jsonl nor probes.jsonl: not a "
                                "matbal run directory")
    chosen = present_panels(rows, PANELS if panels is None else panels, max_panels=max_panels)
    n = 1 + len(chosen)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4 * nrows), squeeze=False)
    flat = list(axes.flat)
    ax = flat[0]
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        pts = [(m["step"], m[key]) for m in metrics if m.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o" if key == "val_loss" else None, ms=3, lw=1.2,
                    label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{run_dir.name}: loss", fontsize=10)
    ax.grid(alpha=0.3)
    if metrics:
        ax.legend(fontsize=8)
    draw_probe_traces(flat[1:], rows, chosen, layers=layers)
    for extra in flat[n:]:
        extra.set_visible(False)
    fig.tight_layout()
    path = _target(run_dir, out)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_main(args) -> int:
    """``matbal plot`` (arguments parsed by :mod:`matbal.cli`)."""
    path = plot_run(args.run_dir, args.out, layers=args.layers or None)
    print(path)
    return 0
