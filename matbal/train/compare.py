"""Compare optimizers over seeds, and sweep learning rates; tables and figures rebuilt from files.

``run_compare(base, ["adamw", "muon"], seeds=3)`` trains every (optimizer, seed) with ``base``'s
other settings and the optimizer's lr from ``best_lrs.json`` (:mod:`matbal.train.lrs`), then
writes into the results folder::

    runs/<optimizer>-s<seed>/   one run directory each (config, metrics.jsonl, summary.json …)
    compare.json                optimizers, seeds, lr used and where it came from, the command
    table.csv, table.md         per optimizer: lr and where it came from (an lr that no sweep
                                chose is marked "†": ``preset default`` or ``given``), final and
                                best validation loss (mean ± std over seeds, sample std), mean
                                wall time, and the step time's median and 10th–90th percentile
                                over the logged intervals of all seeds (the spread: warm-up,
                                evaluation and machine noise show there)
    loss_curves.png             validation (left) and training (right) loss vs step: mean over
                                seeds with a ±1 std band

``run_sweep(base, optimizers, [1e-3, 3e-3, 1e-2], seeds=1)`` trains every (optimizer, lr, seed)
and writes ``runs/``, ``sweep.csv``, ``sweep.md`` and ``best_lrs.json`` (lowest mean final
validation loss per optimizer; a run whose loss becomes non-finite counts as diverged). The
tables and the figure are made by :func:`summarize_compare`, :func:`plot_compare` and
:func:`summarize_sweep` from the stored files only, so they can be rebuilt at any time.
"""
from __future__ import annotations

import csv
import json
import math
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig
from .lrs import load_best_lrs, resolve_lr
from .rundir import read_metrics, write_json

__all__ = ["run_compare", "run_sweep", "summarize_compare", "plot_compare", "summarize_sweep",
           "lr_source", "LR_SOURCES"]


def _results_dir(results, kind: str, base: TrainConfig) -> Path:
    path = Path(results) if results else Path("out") / (
        f"{kind}-{base.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    (path / "runs").mkdir(parents=True, exist_ok=True)
    return path


def _train_one(cfg: TrainConfig) -> dict[str, Any]:
    from .loop import train

    try:
        res = train(cfg)
        return {"status": "ok", **res.summary()}
    except FloatingPointError as e:  # diverged: recorded, not fatal for a sweep
        return {"status": "diverged", "error": str(e), "final_val_loss": math.inf,
                "best_val_loss": math.inf}
    except Exception:  # noqa: BLE001 - keep the other runs going, record why this one failed
        return {"status": "failed", "error": traceback.format_exc(limit=3),
                "final_val_loss": math.inf, "best_val_loss": math.inf}


def _mean_std(xs) -> tuple[float, float]:
    a = np.asarray(list(xs), dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _fmt(mean: float, std: float, digits: int = 4) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(mean) else "diverged"


def _write_tables(path: Path, name: str, header: list[str], rows: list[list],
                  notes: list[str] = ()) -> None:
    with open(path / f"{name}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    md += ([""] + list(notes)) if notes else []
    (path / f"{name}.md").write_text("\n".join(md) + "\n")


#: How ``compare.json``'s lr ``source`` reads in the table; ``tuned``: the lr was chosen by a sweep.
LR_SOURCES = {"best_lrs": ("swept", True), "config": ("given", False),
              "preset default": ("preset default", False)}


def lr_source(source: str) -> tuple[str, bool]:
    """``(label, tuned)`` of an lr source recorded by :func:`run_compare` (a path: a sweep file
    given with ``--lrs``)."""
    return LR_SOURCES.get(source, ("swept", True))


def _step_time_spread(rs: list[dict]) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile (ms) of the logged ``step_time_s`` of all seeds' runs
    (each logged value is the mean over its logging interval); NaNs when none was logged."""
    xs = [1e3 * m["step_time_s"] for r in rs for m in r["metrics"]
          if m.get("step_time_s") is not None]
    if not xs:
        return math.nan, math.nan, math.nan
    q = np.percentile(np.asarray(xs, dtype=float), [50, 10, 90])
    return float(q[0]), float(q[1]), float(q[2])


# --- compare -----------------------------------------------------------------------------------
def run_compare(base: TrainConfig, optimizers: list[str], *, seeds: int = 3,
                lrs_path: str | None = None, results: str | None = None,
                command: str = "") -> Path:
    """Train each optimizer for seeds ``0..seeds-1``; write tables and the figure. Returns the
    results folder."""
    out = _results_dir(results, "compare", base)
    table = load_best_lrs(lrs_path)
    lrs = {}
    for opt in optimizers:
        lr, adamw_lr, source = resolve_lr(base.model, opt, base.lr, base.adamw_lr, table=table)
        if opt == "adamw":
            adamw_lr = None
        lrs[opt] = {"lr": lr, "adamw_lr": adamw_lr,
                    "source": source if lrs_path is None or source != "best_lrs"
                    else str(lrs_path)}
    write_json(out / "compare.json", {"optimizers": optimizers, "seeds": seeds, "lrs": lrs,
                                      "base_config": base.to_dict(), "command": command})
    for opt in optimizers:
        for seed in range(seeds):
            cfg = base.replace(optimizer=opt, seed=seed, lr=lrs[opt]["lr"],
                               adamw_lr=lrs[opt]["adamw_lr"],
                               out_dir=str(out / "runs"), run_name=f"{opt}-s{seed}", resume="")
            rec = _train_one(cfg)
            if rec["status"] != "ok":
                write_json(out / "runs" / f"{opt}-s{seed}" / "failure.json", rec)
    summarize_compare(out)
    plot_compare(out)
    return out


def _load_runs(out: Path, optimizers: list[str], seeds: int) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for opt in optimizers:
        runs[opt] = []
        for seed in range(seeds):
            d = out / "runs" / f"{opt}-s{seed}"
            s = d / "summary.json"
            runs[opt].append({"dir": d, "summary": json.loads(s.read_text()) if s.exists()
                              else None, "metrics": read_metrics(d)})
    return runs


def summarize_compare(out: str | Path) -> list[list]:
    """``table.csv`` / ``table.md`` from the stored runs of a compare folder; returns the rows."""
    out = Path(out)
    meta = json.loads((out / "compare.json").read_text())
    runs = _load_runs(out, meta["optimizers"], meta["seeds"])
    header = ["optimizer", "lr", "lr source", "seeds", "final val loss", "best val loss",
              "wall time (s)", "step time median (ms)", "step time p10–p90 (ms)"]
    rows, untuned = [], []
    for opt, rs in runs.items():
        ok = [r["summary"] for r in rs if r["summary"] is not None]
        fin = _mean_std(s["final_val_loss"] for s in ok)
        best = _mean_std(s["best_val_loss"] for s in ok)
        wall = _mean_std(s["wall_time_s"] for s in ok)[0]
        med, lo, hi = _step_time_spread(rs)
        label, tuned = lr_source(meta["lrs"][opt].get("source", "best_lrs"))
        if not tuned:
            untuned.append(opt)
        rows.append([opt, f"{meta['lrs'][opt]['lr']:g}{'' if tuned else ' †'}", label,
                     f"{len(ok)}/{len(rs)}", _fmt(*fin), _fmt(*best), f"{wall:.1f}",
                     f"{med:.2f}", f"{lo:.2f}–{hi:.2f}"])
    notes = [f"† lr not tuned for this model ({', '.join(untuned)}): no sweep chose it, so the "
             "comparison is not at each optimizer's best lr (see matbal/train/lrs.py)."
             ] if untuned else []
    _write_tables(out, "table", header, rows, notes)
    return rows


def _curve(rs: list[dict], key: str):
    """Steps and per-seed values of ``key`` on the steps every seed logged."""
    series = [{m["step"]: m[key] for m in r["metrics"] if m.get(key) is not None} for r in rs]
    series = [s for s in series if s]
    if not series:
        return None, None
    steps = sorted(set.intersection(*(set(s) for s in series)))
    return np.array(steps), np.array([[s[t] for t in steps] for s in series], dtype=float)


def plot_compare(out: str | Path) -> Path:
    """``loss_curves.png``: validation and training loss vs step, mean ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    meta = json.loads((out / "compare.json").read_text())
    runs = _load_runs(out, meta["optimizers"], meta["seeds"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, key, title in ((axes[0], "val_loss", "validation loss"),
                           (axes[1], "train_loss", "training loss")):
        for opt, rs in runs.items():
            steps, vals = _curve(rs, key)
            if steps is None:
                continue
            mean, std = vals.mean(0), vals.std(0, ddof=1) if len(vals) > 1 else 0 * vals[0]
            tuned = lr_source(meta["lrs"][opt].get("source", "best_lrs"))[1]
            line, = ax.plot(steps, mean, label=f"{opt} (lr {meta['lrs'][opt]['lr']:g}"
                                               f"{'' if tuned else ', not tuned'})")
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel(title)
        ax.set_title(f"{title}: mean ± std over {meta['seeds']} seeds")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    path = out / "loss_curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --- sweep -------------------------------------------------------------------------------------
def run_sweep(base: TrainConfig, optimizers: list[str], lrs: list[float], *, seeds: int = 1,
              results: str | None = None, command: str = "") -> Path:
    """Train every (optimizer, lr, seed); write ``sweep.csv``/``sweep.md``/``best_lrs.json``."""
    out = _results_dir(results, "sweep", base)
    write_json(out / "sweep.json", {"optimizers": optimizers, "lrs": lrs, "seeds": seeds,
                                    "base_config": base.to_dict(), "command": command})
    for opt in optimizers:
        for lr in lrs:
            for seed in range(seeds):
                name = f"{opt}-lr{lr:g}-s{seed}"
                cfg = base.replace(optimizer=opt, lr=lr, seed=seed, out_dir=str(out / "runs"),
                                   run_name=name, resume="",
                                   adamw_lr=None if opt == "adamw" else base.adamw_lr)
                rec = _train_one(cfg)
                if rec["status"] != "ok":
                    write_json(out / "runs" / name / "failure.json", rec)
    summarize_sweep(out)
    return out


def summarize_sweep(out: str | Path) -> dict[str, Any]:
    """Tables and ``best_lrs.json`` from the stored runs of a sweep folder; returns the table."""
    out = Path(out)
    meta = json.loads((out / "sweep.json").read_text())
    base = meta["base_config"]
    header = ["optimizer", "lr", "final val loss", "best val loss", "status", "chosen"]
    rows, best = [], {}
    for opt in meta["optimizers"]:
        scores = {}
        for lr in meta["lrs"]:
            finals, bests, status = [], [], "ok"
            for seed in range(meta["seeds"]):
                s = out / "runs" / f"{opt}-lr{lr:g}-s{seed}" / "summary.json"
                if s.exists():
                    d = json.loads(s.read_text())
                    finals.append(d["final_val_loss"])
                    bests.append(d["best_val_loss"])
                else:
                    finals.append(math.inf)
                    bests.append(math.inf)
                    status = "diverged/failed"
            fin = _mean_std(finals)
            scores[lr] = (fin[0] if math.isfinite(fin[0]) else math.inf, fin, _mean_std(bests),
                          status)
        chosen = min(scores, key=lambda lr: (scores[lr][0], lr))
        for lr, (_, fin, bst, status) in scores.items():
            rows.append([opt, f"{lr:g}", _fmt(*fin), _fmt(*bst), status,
                         "*" if lr == chosen else ""])
        best[opt] = {"lr": chosen, "adamw_lr": None if opt == "adamw" else base["adamw_lr"],
                     "final_val_loss": scores[chosen][0], "swept": meta["lrs"],
                     "seeds": meta["seeds"], "steps": base["steps"],
                     "edge_of_grid": chosen in (min(meta["lrs"]), max(meta["lrs"])),
                     "command": meta["command"]}
    _write_tables(out, "sweep", header, rows)
    shape = {k: base[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "batch_size",
                                  "mlp_hidden", "cnn_channels", "schedule", "warmup_steps")}
    write_json(out / "best_lrs.json", {
        "_comment": "best lr per model and optimizer from `matbal compare --sweep`; copy over "
                    "matbal/train/best_lrs.json or pass with `matbal compare --lrs`",
        "_config": shape, base["model"]: best})
    return best
