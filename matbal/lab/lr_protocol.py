"""The learning-rate protocol every training claim shares: a ×2 grid, ≥ 2 seeds per lr, an interior optimum.

A comparison of optimizers is only as fair as the learning rate each arm gets. The protocol:

1. per arm, a geometric grid with ratio ``factor`` (2 by default, or finer), at the **same budget**
   (steps, batch) as the final runs;
2. ``seeds_per_lr ≥ 2`` seeds at each lr; the score of an lr is the mean of the metric over seeds;
3. the chosen lr is the best score; it must be **interior** to the grid (a neighbour on each
   side). When the best lr sits on an edge, the grid is extended by one point past that edge and
   the new point is run, until the optimum is interior or ``max_extensions`` is spent — then the
   result says so (``interior=False``) instead of pretending;
4. the sweep (every run's lr, seed and metric) is returned, stored with the experiment's results
   and plotted with :func:`plot_lr_sweep`.

:func:`lr_grid` builds the grid, :func:`choose_lr` reads a finished sweep, :func:`sweep_lr` runs
the protocol with a ``run(lr, seed) -> metric`` callable (which should cache finished runs, as
:func:`matbal.lab.training.run_arm` does, so an interrupted sweep resumes without redoing them).

>>> lr_grid(0.01, 0.08)
[0.01, 0.02, 0.04, 0.08]
>>> loss = lambda lr, seed: (math.log10(lr) + 1.5) ** 2 + 0.01 * seed   # optimum near 0.03
>>> res = sweep_lr(loss, [0.001, 0.002, 0.004], seeds=(0, 1), progress=False)
>>> res.interior, res.best_lr, res.extensions        # grown upwards until the optimum is inside
(True, 0.032, 4)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["lr_grid", "choose_lr", "sweep_lr", "LrChoice", "plot_lr_sweep"]


def lr_grid(lo: float, hi: float, *, factor: float = 2.0) -> list[float]:
    """Geometric grid ``lo, lo·factor, …`` up to ``hi`` (inclusive within rounding), rounded to 12
    significant digits so grid points are stable dictionary keys."""
    if not (isinstance(lo, (int, float)) and lo > 0 and math.isfinite(lo)):
        raise ValueError(f"lo must be a positive finite number, got {lo!r}")
    if not (isinstance(hi, (int, float)) and hi >= lo and math.isfinite(hi)):
        raise ValueError(f"hi must be a finite number ≥ lo, got {hi!r}")
    if not (isinstance(factor, (int, float)) and factor > 1):
        raise ValueError(f"factor must be a number > 1, got {factor!r}")
    n = int(math.floor(math.log(hi / lo) / math.log(factor) + 1e-9)) + 1
    return [_r(lo * factor**k) for k in range(n)]


def _r(x: float) -> float:
    return float(f"{x:.12g}")


@dataclass(frozen=True)
class LrChoice:
    """The outcome of a sweep: the chosen lr, whether it is interior, and the per-lr table."""

    best_lr: float
    interior: bool
    edge: str | None  # "low" / "high" when the best lr is on that edge of the grid
    table: list[dict]  # per lr: lr, mean, std, n
    runs: list[dict] = field(default_factory=list)  # every run: lr, seed, value
    extensions: int = 0
    better: str = "lower"

    def as_dict(self) -> dict:
        return {"best_lr": self.best_lr, "interior": self.interior, "edge": self.edge,
                "table": self.table, "runs": self.runs, "extensions": self.extensions,
                "better": self.better}


def choose_lr(runs: Iterable[Mapping], *, better: str = "lower", min_seeds: int = 2,
              key: str = "value") -> LrChoice:
    """Pick the lr with the best mean ``key`` over seeds from ``runs`` (rows with ``lr``, ``seed``
    and ``key``). Non-finite values (a diverged run) count as the worst possible score.

    Raises ValueError when an lr has fewer than ``min_seeds`` seeds (the protocol needs ≥ 2).

    >>> rows = [{"lr": lr, "seed": s, "value": v} for lr, vs in
    ...         {0.01: (3.0, 3.1), 0.02: (2.5, 2.6), 0.04: (2.9, 3.3)}.items() for s, v in enumerate(vs)]
    >>> c = choose_lr(rows)
    >>> c.best_lr, c.interior, [round(t["mean"], 2) for t in c.table]
    (0.02, True, [3.05, 2.55, 3.1])
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    rows = [dict(r) for r in runs]
    if not rows:
        raise ValueError("runs is empty: nothing to choose from")
    by_lr: dict[float, list[float]] = {}
    for r in rows:
        by_lr.setdefault(_r(float(r["lr"])), []).append(float(r[key]))
    worst = math.inf if better == "lower" else -math.inf
    table = []
    for lr in sorted(by_lr):
        vals = np.array(by_lr[lr], dtype=float)
        if vals.size < min_seeds:
            raise ValueError(f"lr={lr:g} has {vals.size} seed(s); the protocol needs ≥ {min_seeds}")
        finite = bool(np.all(np.isfinite(vals)))
        mean = float(vals.mean()) if finite else worst
        std = float(vals.std(ddof=1)) if finite and vals.size > 1 else math.nan
        table.append({"lr": lr, "mean": mean, "std": std, "n": int(vals.size), "finite": finite})
    scores = np.array([t["mean"] for t in table])
    i = int(np.argmin(scores) if better == "lower" else np.argmax(scores))
    edge = None
    if len(table) == 1 or i == 0:
        edge = "low"
    elif i == len(table) - 1:
        edge = "high"
    return LrChoice(best_lr=table[i]["lr"], interior=edge is None, edge=edge, table=table,
                    runs=rows, better=better)


def sweep_lr(run: Callable[[float, int], float], grid: Sequence[float], *,
             seeds: Sequence[int] = (0, 1), better: str = "lower", max_extensions: int = 4,
             progress: bool = True, desc: str = "lr sweep") -> LrChoice:
    """Run the protocol: every ``(lr, seed)`` of ``grid × seeds`` through ``run``, then extend the
    grid past an edge optimum (same ratio as the grid's last step) until the optimum is interior.

    ``run(lr, seed)`` returns the metric (e.g. final validation loss at the final runs' budget).
    The returned :class:`LrChoice` records every run and how many extensions were made."""
    grid = sorted(_r(float(g)) for g in grid)
    if len(grid) < 2:
        raise ValueError(f"grid needs at least 2 learning rates, got {grid}")
    if len(set(seeds)) < 2:
        raise ValueError(f"seeds must hold at least 2 distinct seeds, got {list(seeds)}")
    up, down = grid[-1] / grid[-2], grid[1] / grid[0]
    done: dict[tuple[float, int], float] = {}

    def run_all(lrs):
        todo = [(lr, s) for lr in lrs for s in seeds if (lr, s) not in done]
        it = todo
        if progress and todo:
            from tqdm.auto import tqdm
            it = tqdm(todo, desc=desc, leave=False)
        for lr, s in it:
            done[(lr, s)] = float(run(lr, s))

    run_all(grid)
    extensions = 0
    while True:
        rows = [{"lr": lr, "seed": s, "value": v} for (lr, s), v in sorted(done.items())]
        choice = choose_lr(rows, better=better, min_seeds=len(set(seeds)))
        if choice.interior or extensions >= max_extensions:
            break
        new = _r(grid[0] / down) if choice.edge == "low" else _r(grid[-1] * up)
        grid = sorted(grid + [new])
        run_all([new])
        extensions += 1
    return LrChoice(**{**choice.__dict__, "extensions": extensions})


def plot_lr_sweep(choices: Mapping[str, LrChoice], *, ax=None, ylabel: str = "final val loss",
                  colors: Mapping[str, str] | None = None):
    """One line per arm: mean ± std over seeds against lr (log axis), every seed as a dot, the chosen
    lr circled; an arm whose optimum is not interior is marked "(edge)" in the legend. ``colors``:
    arm name → colour (default: the axes' colour cycle)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    for name, c in choices.items():
        lrs = [t["lr"] for t in c.table if t["finite"]]
        mean = np.array([t["mean"] for t in c.table if t["finite"]])
        std = np.nan_to_num(np.array([t["std"] for t in c.table if t["finite"]]))
        label = name if c.interior else f"{name} (edge)"
        (line,) = ax.plot(lrs, mean, marker="o", ms=3, label=label,
                          **({"color": colors[name]} if colors and name in colors else {}))
        ax.fill_between(lrs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        pts = [(r["lr"], r["value"]) for r in c.runs if math.isfinite(r["value"])]
        if pts:
            ax.scatter(*zip(*pts), s=6, color=line.get_color(), alpha=0.5)
        best = next(t for t in c.table if t["lr"] == c.best_lr)
        ax.scatter([c.best_lr], [best["mean"]], s=80, facecolors="none", edgecolors=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return ax
