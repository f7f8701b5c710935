"""One look for every paper figure: style, colours per balancing / schedule, and ``savefig``.

``savefig(fig, name)`` writes ``<name>.pdf`` and ``<name>.png`` into the figures directory (the
``out_dir`` argument, ``$MATBAL_FIGURES_DIR``, or ``paper_figs/out/``). The PNG is lowered in
resolution until it fits ``max_png_kb`` (default 300 KB), so committed previews stay small; the PDF
carries no creation date, so rebuilding an unchanged figure gives the same file.

Example
-------
>>> import tempfile, matplotlib
>>> matplotlib.use("Agg")
>>> fig, ax = figure(1, 1)
>>> _ = ax.plot([1, 2], [1, 4], color=BALANCING_COLORS["R"])
>>> [p.suffix for p in savefig(fig, "demo", out_dir=tempfile.mkdtemp())]
['.pdf', '.png']
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from .results import REPO_ROOT

__all__ = ["figures_dir", "apply_style", "figure", "savefig", "BALANCING_COLORS", "BALANCING_ORDER",
           "SCHEDULE_COLORS", "SCHEDULE_LABELS", "COLUMN_WIDTH", "label_panels"]

#: One column of a two-column paper, inches; ``figure`` sizes panels from it.
COLUMN_WIDTH = 3.4

BALANCING_ORDER = ("none", "R", "C", "RC", "RACS")
BALANCING_COLORS = {
    "none": "#4d4d4d",
    "R": "#1f77b4",
    "C": "#ff7f0e",
    "RC": "#2ca02c",
    "RACS": "#d62728",
    "polar": "#9467bd",
}
SCHEDULE_COLORS = {
    "muon": "#1f77b4",
    "polar_express": "#d62728",
    "you": "#2ca02c",
    "quintic_pade": "#ff7f0e",
    "cubic": "#8c564b",
    "cans": "#9467bd",
}
SCHEDULE_LABELS = {
    "muon": "Muon (Jordan)",
    "polar_express": "Polar Express",
    "you": "You (5-step)",
    "quintic_pade": "quintic Padé",
    "cubic": "cubic NS",
    "cans": "CANS cubic",
}

_STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,
}


def figures_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$MATBAL_FIGURES_DIR``, else ``paper_figs/out``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("MATBAL_FIGURES_DIR")
    return Path(env) if env else REPO_ROOT / "paper_figs" / "out"


def apply_style() -> None:
    """Set the shared matplotlib rcParams (non-interactive Agg backend when none is chosen)."""
    import matplotlib

    if "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    matplotlib.rcParams.update(_STYLE)


def figure(nrows: int = 1, ncols: int = 1, *, width: float | None = None,
           height: float | None = None, **kw: Any):
    """``plt.subplots`` in the shared style: width = ``ncols`` panels of ~one column / 1.4 each
    (at most two columns), height ~0.75 of a panel per row. Returns ``(fig, axes)``."""
    apply_style()
    import matplotlib.pyplot as plt

    panel = COLUMN_WIDTH / 1.4
    w = width if width is not None else min(2 * COLUMN_WIDTH + 0.6, max(COLUMN_WIDTH, panel * ncols + 0.4))
    h = height if height is not None else 0.8 * min(panel, w / ncols) * nrows + 0.35
    kw.setdefault("constrained_layout", True)
    return plt.subplots(nrows, ncols, figsize=(w, h), **kw)


def label_panels(axes, *, start: str = "a") -> None:
    """Bold ``(a)``, ``(b)``, … in the top-left corner of each axes."""
    import numpy as np

    for i, ax in enumerate(np.ravel(axes)):
        ax.text(-0.02, 1.02, f"({chr(ord(start) + i)})", transform=ax.transAxes, fontweight="bold",
                ha="right", va="bottom")


def savefig(fig, name: str, *, out_dir: str | os.PathLike | None = None, dpi: int = 200,
            max_png_kb: int = 300, close: bool = True) -> list[Path]:
    """Write ``<name>.pdf`` and ``<name>.png``; returns both paths.

    The PNG starts at ``dpi`` and is re-rendered at ×0.8 resolution until it is at most
    ``max_png_kb`` kilobytes (floor 60 dpi; a warning if it still does not fit).
    """
    d = figures_dir(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    pdf, png = d / f"{name}.pdf", d / f"{name}.png"
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None})
    cur = float(dpi)
    while True:
        fig.savefig(png, dpi=cur, metadata={"Software": None})
        size_kb = png.stat().st_size / 1024
        if size_kb <= max_png_kb:
            break
        if cur <= 60:
            warnings.warn(f"{png.name} is {size_kb:.0f} KB > {max_png_kb} KB even at 60 dpi")
            break
        cur = max(60.0, cur * 0.8)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return [pdf, png]
