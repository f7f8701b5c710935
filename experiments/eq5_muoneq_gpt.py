"""EQ-5: does MuonEq-R train to a lower validation loss than Muon, and Muon than AdamW?

The paper's numbers are for 1B-parameter models (final validation loss MuonEq-R 2.555, Muon 2.570,
AdamW 2.689). Here: the character-level GPT of ``matbal.train`` (2 layers, context 64, batch 32
sequences) on the Python stdlib source at two widths, 64 (the default) and 128, 400 steps, CPU
float32, one thread per run. Everything below is done at each width separately.

Arms. AdamW, Muon, MuonEq-R, MuonEq-RC, and three controls:

- *scale-matched Muon*: Muon with MuonEq's update scale ``0.2·√max(m,n)`` (``match_rms_adamw``,
  Moonlight) instead of ``√max(1, m/n)``. MuonEq differs from the Muon preset by that scale as well
  as by the balancing (the momentum conventions only rescale the NS input, which NS normalizes
  away); at equal nominal lr MuonEq's steps are 1.6–3.2× larger on these shapes;
- *polar(M)*: scale-matched Muon with the exact polar factor (SVD) instead of Newton–Schulz;
- *polar(R(M))*: MuonEq-R with the exact polar factor.

polar(M) vs scale-matched Muon and polar(R(M)) vs MuonEq-R measure what NS's inaccuracy costs or
gains; polar(R(M)) vs polar(M) is the row balancing's change of *direction* with no NS error — it
separates "balancing makes NS more accurate" from "balancing changes the update".

Protocol (:mod:`matbal.lab.lr_protocol`, :mod:`matbal.lab.arm_stats`), fixed before any run: per
arm an lr sweep on a ×2 grid with 2 seeds per lr at the final budget (400 steps), the lr with the
lowest mean final validation loss, the grid extended past an edge until the optimum is interior;
AdamW is swept first and its lr is every other arm's AdamW-group lr (embeddings, gains). Then
seeds 0–4 at each arm's lr (the sweep's seeds 0, 1 are reused). Seed ``i`` pairs arms: same
initialisation and batch order.

Rules (pre-registered, ``CONFIG["rules"]``): each comparison is a paired t 95 % interval of
(B − A) over the 5 seeds (:func:`~matbal.lab.arm_stats.apply_rule`). At one width EQ-5 *holds* if
"Muon < AdamW" and "MuonEq-R < Muon" both hold on final validation loss and MuonEq-R is also
below scale-matched Muon; *holds under conditions* if the first two hold but not the third (the
gain over the Muon preset is then the update scale); *fails* otherwise. "Faster" is claimed only
if MuonEq-R's steps to AdamW's final mean loss (linear interpolation between evaluations) are
below Muon's by the same paired rule. Across widths (:func:`combine_widths`): *holds* if it holds
at every width, *fails* if it fails at every width, *holds under conditions* otherwise (the
conditions name each width's verdict).

Grids: width 64 keeps the ×2 grids of the first run of this protocol (centred on the earlier
half-decade sweep's optimum); width 128 centres each arm's grid on the lr width 64 chose, AdamW's
half a step lower (Adam's best lr falls with width; Muon's shape-scaled lr is meant to transfer,
Moonlight arXiv 2502.16982). The protocol extends any grid whose optimum lands on an edge.

Run with ``--jobs 2`` to prefill the run cache on two processes
(:func:`matbal.lab.training.run_parallel`); the protocol then walks the cached runs in order, so
the result does not depend on ``--jobs``.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from matbal.lab import VerdictRule, apply_rule, experiment_cli, save_results, verdict
from matbal.lab.lr_protocol import sweep_lr
from matbal.lab.training import (Arm, char_gpt_base, interleaved_step_times, mean_std, run_arm,
                                 run_parallel, runs_root)

NAME = "eq5_muoneq_gpt"
OPT_NAMES = {"adamw": "AdamW", "muon": "Muon", "muoneq-r": "MuonEq-R", "muoneq-rc": "MuonEq-RC",
             "muon-moonlight-scale": "scale-matched Muon", "polar-m": "polar(M)",
             "polar-rm": "polar(R(M))"}
MOONLIGHT = "match_rms_adamw"  # 0.2·√max(m, n)
_LOSS = {"metric": "final_val_loss", "better": "lower", "test": "paired", "interval": "t",
         "alpha": 0.05}
_STEPS = dict(_LOSS, metric="steps_to_target")
CONFIG = {
    "model": {"n_layer": 2, "n_head": 4, "block_size": 64, "batch_size": 32},
    "widths": [64, 128],
    "steps": 400, "warmup_steps": 20, "eval_every": 20, "eval_batches": 8, "threads": 1,
    "sweep_seeds": [0, 1], "seeds": [0, 1, 2, 3, 4], "max_extensions": 3,
    "arms": [  # AdamW first: its chosen lr is every other arm's AdamW-group lr
        {"label": "adamw", "optimizer": "adamw"},
        {"label": "muon", "optimizer": "muon"},
        {"label": "muoneq-r", "optimizer": "muoneq-r"},
        {"label": "muoneq-rc", "optimizer": "muoneq-rc"},
        {"label": "muon-moonlight-scale", "optimizer": "muon",
         "optimizer_kwargs": {"shape_rule": MOONLIGHT}},
        {"label": "polar-m", "optimizer": "polar-m"},
        {"label": "polar-rm", "optimizer": "polar-rm"},
    ],
    # ×2 grids per width (keys: str(width))
    "grids": {
        "64": {"adamw": [0.0015, 0.003, 0.006], "muon": [0.025, 0.05, 0.1],
               "muoneq-r": [0.015, 0.03, 0.06], "muoneq-rc": [0.015, 0.03, 0.06],
               "muon-moonlight-scale": [0.015, 0.03, 0.06], "polar-m": [0.015, 0.03, 0.06],
               "polar-rm": [0.015, 0.03, 0.06]},
        "128": {"adamw": [0.00075, 0.0015, 0.003], "muon": [0.025, 0.05, 0.1],
                "muoneq-r": [0.0075, 0.015, 0.03], "muoneq-rc": [0.0075, 0.015, 0.03],
                "muon-moonlight-scale": [0.015, 0.03, 0.06], "polar-m": [0.015, 0.03, 0.06],
                "polar-rm": [0.0075, 0.015, 0.03]},
    },
    # comparison name → (arm A, arm B, rule): the rule decides "B better than A"
    "rules": {
        "muon_vs_adamw": ["adamw", "muon", _LOSS],
        "muoneq-r_vs_muon": ["muon", "muoneq-r", _LOSS],
        "muoneq-r_vs_scale_matched_muon": ["muon-moonlight-scale", "muoneq-r", _LOSS],
        "faster: muoneq-r_vs_muon": ["muon", "muoneq-r", _STEPS],
        "muoneq-rc_vs_muoneq-r": ["muoneq-r", "muoneq-rc", _LOSS],
        "scale_matched_muon_vs_muon": ["muon", "muon-moonlight-scale", _LOSS],
        "polar-m_vs_scale_matched_muon": ["muon-moonlight-scale", "polar-m", _LOSS],
        "polar-rm_vs_muoneq-r": ["muoneq-r", "polar-rm", _LOSS],
        "polar-rm_vs_polar-m": ["polar-m", "polar-rm", _LOSS],
    },
    "timing": {"rounds": 4, "steps": 5},
    "paper_1b": {"muoneq-r": 2.555, "muon": 2.570, "adamw": 2.689},
}
QUICK = dict(CONFIG, model={"n_layer": 1, "n_head": 2, "block_size": 16, "batch_size": 8},
             widths=[16, 32], steps=8, warmup_steps=2, eval_every=4, eval_batches=2,
             seeds=[0, 1], max_extensions=0,
             grids={str(w): {k: g[1:] for k, g in CONFIG["grids"]["64"].items()}
                    for w in (16, 32)},
             timing={"rounds": 1, "steps": 2})
_ORDER = ("fails", "holds under conditions", "holds")


def steps_to_target(metrics, target: float) -> float:
    """First step at which the validation loss reaches ``target``, linearly interpolated between
    the evaluations around the crossing (``nan`` if never reached).

    >>> steps_to_target([{"step": 10, "val_loss": 3.0}, {"step": 20, "val_loss": 2.0}], 2.5)
    15.0
    """
    pts = [(m["step"], m["val_loss"]) for m in metrics if m.get("val_loss") is not None]
    prev = None
    for t, v in pts:
        if v <= target:
            if prev is None or prev[1] == v:
                return float(t)
            return float(prev[0] + (prev[1] - target) / (prev[1] - v) * (t - prev[0]))
        prev = (t, v)
    return math.nan


def combine_widths(per_width: dict[str, str]) -> tuple[str, str | None]:
    """The verdict across widths from each width's: holds if it holds at every width, fails if it
    fails at every width, holds under conditions otherwise (the conditions list each width).

    >>> combine_widths({"64": "holds", "128": "holds"})
    ('holds', None)
    >>> combine_widths({"64": "holds", "128": "fails"})
    ('holds under conditions', 'width 64: holds; width 128: fails')
    """
    vs = set(per_width.values())
    if vs == {"holds"}:
        return "holds", None
    if vs == {"fails"}:
        return "fails", None
    return "holds under conditions", "; ".join(f"width {w}: {v}" for w, v in per_width.items())


class _Protocol:
    """The runs of one invocation: ``one(width, arm, lr, seed)`` trains (or reads back) a run;
    ``sweep(width, arm)`` runs the lr protocol for an arm and then its final seeds."""

    def __init__(self, cfg, root, bar=None):
        self.cfg, self.root, self.bar = cfg, root, bar
        self.runs: dict[tuple[int, str, float, int], dict] = {}
        self.adamw_lr: dict[int, float] = {}

    def arm(self, width, a, lr):
        return Arm(f"w{width}-{a['label']}-lr{lr:g}", a["optimizer"], lr=lr,
                   adamw_lr=None if a["optimizer"] == "adamw" else self.adamw_lr[width],
                   optimizer_kwargs=a.get("optimizer_kwargs", {}))

    def one(self, width, a, lr, seed):
        key = (width, a["label"], lr, seed)
        if key not in self.runs:
            base = char_gpt_base(self.cfg, n_embd=width)
            self.runs[key] = run_arm(base, self.arm(width, a, lr), seed, out_dir=self.root)
            if self.bar is not None:
                self.bar.update(1)
        return self.runs[key]

    def sweep(self, width, label, adamw_lr=None):
        cfg = self.cfg
        if adamw_lr is not None:
            self.adamw_lr[width] = adamw_lr
        a = next(x for x in cfg["arms"] if x["label"] == label)
        choice = sweep_lr(lambda lr, s: self.one(width, a, lr, s)["final_val_loss"],
                          cfg["grids"][str(width)][label], seeds=cfg["sweep_seeds"],
                          max_extensions=cfg["max_extensions"], progress=False)
        if label == "adamw":
            self.adamw_lr[width] = choice.best_lr
        for seed in cfg["seeds"]:
            self.one(width, a, choice.best_lr, seed)
        return choice


def _prefill(cfg, root, jobs):
    """Train every run of the protocol on ``jobs`` processes (AdamW's sweeps first: their lrs
    enter the other arms); the sequential walk afterwards reads them back."""
    def task(width, label, adamw_lr=None):
        return _Protocol(cfg, root).sweep(width, label, adamw_lr).best_lr

    widths = sorted(cfg["widths"], reverse=True)  # the widest (slowest) first
    adamw = run_parallel(task, [(w, "adamw") for w in widths], jobs, desc=f"{NAME}: AdamW sweeps")
    rest = [(w, a["label"], lr) for w, lr in zip(widths, adamw) for a in cfg["arms"]
            if a["label"] != "adamw"]
    run_parallel(task, rest, jobs, desc=f"{NAME}: arm sweeps ({jobs} processes)")


def _analyse_width(cfg, proto: _Protocol, width: int, choices: dict) -> dict:
    """Final runs, comparisons and the width's verdict."""
    labels = [a["label"] for a in cfg["arms"]]
    runs = {k[1:]: r for k, r in proto.runs.items() if k[0] == width}
    final = {lab: [runs[(lab, choices[lab].best_lr, s)] for s in cfg["seeds"]] for lab in labels}
    target = float(np.mean([r["final_val_loss"] for r in final["adamw"]]))
    for rs in final.values():
        for r in rs:
            r["steps_to_target"] = steps_to_target(r["metrics"], target)
    adamw_lr = proto.adamw_lr[width]
    arms_best = [Arm(lab, a["optimizer"], lr=choices[lab].best_lr,
                     adamw_lr=None if a["optimizer"] == "adamw" else adamw_lr,
                     optimizer_kwargs=a.get("optimizer_kwargs", {}))
                 for lab, a in zip(labels, cfg["arms"])]
    # the runs' own step times depend on what else ran on the machine; time the arms round-robin
    timing = interleaved_step_times(char_gpt_base(cfg, n_embd=width), arms_best, **cfg["timing"])

    rows, table = [], {}
    for (lab, lr, seed), r in sorted(runs.items()):
        rows.append({"record": "sweep", "width": width, "arm": lab, "lr": lr, "seed": seed,
                     "final_val_loss": r["final_val_loss"], "wall_time_s": r["wall_time_s"],
                     "chosen": lr == choices[lab].best_lr, "reused": r["reused"]})
    for lab, rs in final.items():
        for r in rs:
            rows.append({"record": "run", "width": width, "arm": lab, "seed": r["seed"],
                         "step": r["step"], "lr": r["lr"], "adamw_lr": r["adamw_lr"],
                         "final_val_loss": r["final_val_loss"], "best_val_loss": r["best_val_loss"],
                         "final_train_loss": r["final_train_loss"],
                         # None: the seed never reached the target (NaN would not round-trip)
                         "steps_to_target": (r["steps_to_target"]
                                             if math.isfinite(r["steps_to_target"]) else None),
                         "wall_time_s": r["wall_time_s"],
                         "step_time_ms": 1e3 * r["mean_step_time_s"], "reused": r["reused"]})
            for m in r["metrics"]:
                for key in ("val_loss", "train_loss"):
                    if m.get(key) is not None:
                        rows.append({"record": "curve", "width": width, "arm": lab,
                                     "seed": r["seed"], "step": int(m["step"]), key: float(m[key])})
        stt = [r["steps_to_target"] for r in rs]
        table[lab] = {
            "lr": rs[0]["lr"], "adamw_lr": rs[0]["adamw_lr"],
            "final_val_loss": mean_std(r["final_val_loss"] for r in rs),
            "best_val_loss": mean_std(r["best_val_loss"] for r in rs),
            "steps_to_target": mean_std(stt) if all(map(math.isfinite, stt)) else None,
            "steps_to_target_reached": int(sum(map(math.isfinite, stt))),
            "step_time_ms": mean_std(1e3 * r["mean_step_time_s"] for r in rs),
            "wall_time_s": mean_std(r["wall_time_s"] for r in rs),
            "interleaved_step_ms": timing[lab]["step_ms"],
            "interleaved_optimizer_ms": timing[lab]["optimizer_ms"]}
        rows.append({"record": "timing", "width": width, "arm": lab,
                     "step_time_ms": timing[lab]["step_ms"],
                     "optimizer_ms": timing[lab]["optimizer_ms"]})

    comparisons = {}
    for name, (a, b, rule_d) in cfg["rules"].items():
        rule = VerdictRule.from_dict(rule_d)
        xa = [r[rule.metric] for r in final[a]]
        xb = [r[rule.metric] for r in final[b]]
        if not all(map(math.isfinite, xa + xb)):
            comparisons[name] = {"verdict": "inconclusive", "text": f"not every seed reached the "
                                 f"target ({sum(map(math.isfinite, xa))}/{len(xa)} {a}, "
                                 f"{sum(map(math.isfinite, xb))}/{len(xb)} {b})"}
            continue
        comparisons[name] = apply_rule(rule, xa, xb)

    def v(name):
        return comparisons[name]["verdict"]

    main_ok = v("muon_vs_adamw") == "holds" and v("muoneq-r_vs_muon") == "holds"
    if main_ok and v("muoneq-r_vs_scale_matched_muon") == "holds":
        result = "holds"
    elif main_ok:
        result = "holds under conditions"
    else:
        result = "fails"
    env = json.loads((Path(final["adamw"][0]["run_dir"]) / "env.json").read_text())
    return {"rows": rows, "table": table, "comparisons": comparisons, "verdict": result,
            "faster_shown": v("faster: muoneq-r_vs_muon") == "holds", "target_loss": target,
            "n_params": env["n_params"], "adamw_group_lr": adamw_lr,
            "chosen_lr": {k: c.best_lr for k, c in choices.items()},
            "interior": {k: c.interior for k, c in choices.items()},
            "sweeps": {k: c.as_dict() for k, c in choices.items()}}


def _width_text(cfg, width: int, w: dict) -> str:
    labels = [a["label"] for a in cfg["arms"]]
    table, comparisons = w["table"], w["comparisons"]
    n = len(cfg["seeds"])

    def txt(name):
        a, b, _ = cfg["rules"][name]
        return f"{OPT_NAMES[b]} − {OPT_NAMES[a]}: {comparisons[name]['text']} → " \
               f"{comparisons[name]['verdict']}"

    def ms(lab):
        m, s = table[lab]["final_val_loss"]
        return f"{m:.3f} ± {s:.3f}"

    lrs = ", ".join(f"{OPT_NAMES[lab]} {w['chosen_lr'][lab]:g}"
                    + ("" if w["interior"][lab] else " (edge)") for lab in labels)
    stt = ", ".join(f"{OPT_NAMES[lab]} {table[lab]['steps_to_target'][0]:.0f}"
                    if table[lab]["steps_to_target"] else
                    f"{OPT_NAMES[lab]} {table[lab]['steps_to_target_reached']}/{n} seeds reach it"
                    for lab in labels)
    return (
        f"**Width {width}** ({w['n_params'] / 1e3:.0f} k parameters) — verdict at this width: "
        f"{w['verdict']}. Swept lrs: {lrs}; AdamW group {w['adamw_group_lr']:g}. Final "
        f"validation loss (nats/char, mean ± sd over {n} seeds): "
        + ", ".join(f"{OPT_NAMES[lab]} {ms(lab)}" for lab in labels) + ". "
        + "; ".join(txt(k) for k in cfg["rules"] if not k.startswith("faster"))
        + f". Steps to AdamW's final mean loss {w['target_loss']:.3f} (mean): {stt}; "
        + txt("faster: muoneq-r_vs_muon") + " — 'faster' "
        + ("is shown" if w["faster_shown"] else "is not shown")
        + ". Step time, round-robin (full step / optimizer.step, ms): "
        + ", ".join(f"{OPT_NAMES[a]} {table[a]['interleaved_step_ms']:.0f} / "
                    f"{table[a]['interleaved_optimizer_ms']:.1f}" for a in labels) + ".")


def main(quick: bool = False, results_dir=None, jobs: int = 1):
    cfg = QUICK if quick else CONFIG
    t0 = time.perf_counter()
    root = runs_root(NAME, results_dir)
    if jobs > 1:
        _prefill(cfg, root, jobs)
    from tqdm.auto import tqdm

    n_per_width = sum(len(g) for g in cfg["grids"][str(cfg["widths"][0])].values()) * \
        len(cfg["sweep_seeds"]) + len(cfg["arms"]) * len(set(cfg["seeds"]) - set(cfg["sweep_seeds"]))
    bar = tqdm(total=n_per_width * len(cfg["widths"]), desc=NAME, disable=quick)
    proto = _Protocol(cfg, root, bar)
    widths = {}
    for width in cfg["widths"]:
        choices = {a["label"]: proto.sweep(width, a["label"]) for a in cfg["arms"]}
        widths[width] = _analyse_width(cfg, proto, width, choices)
    bar.close()

    per_width = {str(w): widths[w]["verdict"] for w in cfg["widths"]}
    result, conditions = combine_widths(per_width)
    n = len(cfg["seeds"])
    tokens = cfg["steps"] * cfg["model"]["batch_size"] * cfg["model"]["block_size"]
    scale = (f"{cfg['model']['n_layer']}-layer char GPT at widths "
             f"{', '.join(map(str, cfg['widths']))} ("
             + ", ".join(f"{widths[w]['n_params'] / 1e3:.0f} k" for w in cfg["widths"])
             + f" parameters), {cfg['steps']} steps × {cfg['model']['batch_size']}×"
             f"{cfg['model']['block_size']} characters ({tokens / 1e6:.2f} M tokens), {n} paired "
             f"seeds, CPU float32, 1 thread per run")
    paper = cfg["paper_1b"]
    compute_s = time.perf_counter() - t0
    run_s = sum(r["wall_time_s"] for r in proto.runs.values())
    measured = (
        f"{scale}; lr per arm and width from a ×2 sweep, {len(cfg['sweep_seeds'])} seeds per lr "
        f"at {cfg['steps']} steps (paper, 1B: MuonEq-R {paper['muoneq-r']}, Muon {paper['muon']}, "
        f"AdamW {paper['adamw']}). "
        + " ".join(_width_text(cfg, w, widths[w]) for w in cfg["widths"])
        + " Mechanism: polar(M) vs scale-matched Muon and polar(R(M)) vs MuonEq-R isolate NS's "
          "inexactness, polar(R(M)) vs polar(M) the balancing's change of direction. "
        + f"Compute: {len(proto.runs)} runs, {run_s / 60:.0f} min of training (summed over "
          f"processes), {compute_s / 60:.0f} min in this invocation (cached runs reused).")
    claim = verdict("EQ-5", measured, result, conditions=conditions,
                    criterion=(f"per width, paired t 95% CI of the mean difference over {n} seeds "
                               f"(same data order per seed), each arm at its swept lr: holds if "
                               f"Muon < AdamW and MuonEq-R < Muon on final val loss and MuonEq-R < "
                               f"scale-matched Muon; 'holds under conditions' if only the first "
                               f"two; 'faster' only if steps to AdamW's final loss are also lower "
                               f"(same test). Across widths: holds if it holds at every width, "
                               f"fails if at none, else holds under conditions"))
    rows = [r for w in cfg["widths"] for r in widths[w]["rows"]]
    summary = {"scale": scale, "tokens": tokens, "paper_1b": paper, "verdict_per_width": per_width,
               "widths": {str(w): {k: v for k, v in widths[w].items() if k != "rows"}
                          for w in cfg["widths"]},
               "runs": len(proto.runs), "run_wall_s_total": round(run_s, 1),
               "compute_s": round(compute_s, 1), "jobs": jobs,
               "measured_on": "CPU, 1 thread per run, float32 NS"}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
