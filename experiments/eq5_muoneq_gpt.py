"""EQ-5: does MuonEq-R train to a lower validation loss than Muon, and Muon than AdamW?

The paper's numbers are for 1B-parameter models (final validation loss MuonEq-R 2.555, Muon 2.570,
AdamW 2.689). Here: the default character-level GPT of ``matbal.train`` (2 layers, width 64,
context 64, batch 32 sequences) on the Python stdlib source, 400 steps, CPU float32, one thread.

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
(B − A) over the 5 seeds (:func:`~matbal.lab.arm_stats.apply_rule`). EQ-5 *holds* if
"Muon < AdamW" and "MuonEq-R < Muon" both hold on final validation loss and MuonEq-R is also
below scale-matched Muon; *holds under conditions* if the first two hold but not the third (the
gain over the Muon preset is then the update scale); *fails* otherwise. "Faster" is claimed only
if MuonEq-R's steps to AdamW's final mean loss (linear interpolation between evaluations) are
below Muon's by the same paired rule.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from matbal.lab import VerdictRule, apply_rule, experiment_cli, save_results, verdict
from matbal.lab.lr_protocol import sweep_lr
from matbal.lab.training import Arm, interleaved_step_times, mean_std, run_arm, runs_root
from matbal.train import TrainConfig

NAME = "eq5_muoneq_gpt"
OPT_NAMES = {"adamw": "AdamW", "muon": "Muon", "muoneq-r": "MuonEq-R", "muoneq-rc": "MuonEq-RC",
             "muon-moonlight-scale": "scale-matched Muon", "polar-m": "polar(M)",
             "polar-rm": "polar(R(M))"}
MOONLIGHT = "match_rms_adamw"  # 0.2·√max(m, n)
_LOSS = {"metric": "final_val_loss", "better": "lower", "test": "paired", "interval": "t",
         "alpha": 0.05}
_STEPS = dict(_LOSS, metric="steps_to_target")
CONFIG = {
    "model": {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64, "batch_size": 32},
    "steps": 400, "warmup_steps": 20, "eval_every": 20, "eval_batches": 8, "threads": 1,
    "sweep_seeds": [0, 1], "seeds": [0, 1, 2, 3, 4], "max_extensions": 3,
    # ×2 grids centred on the earlier half-decade sweep's optimum (best_lrs.json); AdamW first
    "arms": [
        {"label": "adamw", "optimizer": "adamw", "grid": [0.0015, 0.003, 0.006]},
        {"label": "muon", "optimizer": "muon", "grid": [0.025, 0.05, 0.1]},
        {"label": "muoneq-r", "optimizer": "muoneq-r", "grid": [0.015, 0.03, 0.06]},
        {"label": "muoneq-rc", "optimizer": "muoneq-rc", "grid": [0.015, 0.03, 0.06]},
        {"label": "muon-moonlight-scale", "optimizer": "muon", "grid": [0.015, 0.03, 0.06],
         "optimizer_kwargs": {"shape_rule": MOONLIGHT}},
        {"label": "polar-m", "optimizer": "polar-m", "grid": [0.015, 0.03, 0.06]},
        {"label": "polar-rm", "optimizer": "polar-rm", "grid": [0.015, 0.03, 0.06]},
    ],
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
QUICK = dict(CONFIG, model={"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16,
                            "batch_size": 8},
             steps=8, warmup_steps=2, eval_every=4, eval_batches=2, seeds=[0, 1],
             max_extensions=0, arms=[dict(a, grid=a["grid"][1:]) for a in CONFIG["arms"]],
             timing={"rounds": 1, "steps": 2})


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


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    t0 = time.perf_counter()
    base = TrainConfig(model="gpt", steps=cfg["steps"], warmup_steps=cfg["warmup_steps"],
                       eval_every=cfg["eval_every"], eval_batches=cfg["eval_batches"],
                       device="cpu", log_every=cfg["eval_every"], threads=cfg["threads"],
                       **cfg["model"])
    root = runs_root(NAME, results_dir)
    runs: dict[tuple[str, float, int], dict] = {}
    choices, adamw_lr = {}, None
    from tqdm.auto import tqdm

    n_sweep = sum(len(a["grid"]) for a in cfg["arms"]) * len(cfg["sweep_seeds"])
    n_final = len(cfg["arms"]) * len(set(cfg["seeds"]) - set(cfg["sweep_seeds"]))
    bar = tqdm(total=n_sweep + n_final, desc=NAME, disable=quick)

    def arm_at(a, lr):
        return Arm(f"{a['label']}-lr{lr:g}", a["optimizer"], lr=lr,
                   adamw_lr=None if a["optimizer"] == "adamw" else adamw_lr,
                   optimizer_kwargs=a.get("optimizer_kwargs", {}))

    def one(a, lr, seed):
        key = (a["label"], lr, seed)
        if key not in runs:
            runs[key] = run_arm(base, arm_at(a, lr), seed, out_dir=root)
            bar.update(1)
        return runs[key]

    for a in cfg["arms"]:  # AdamW first: its lr is every other arm's AdamW-group lr
        choices[a["label"]] = sweep_lr(lambda lr, s, a=a: one(a, lr, s)["final_val_loss"],
                                       a["grid"], seeds=cfg["sweep_seeds"],
                                       max_extensions=cfg["max_extensions"], progress=False)
        if a["label"] == "adamw":
            adamw_lr = choices["adamw"].best_lr
        for seed in cfg["seeds"]:
            one(a, choices[a["label"]].best_lr, seed)
    bar.close()
    labels = [a["label"] for a in cfg["arms"]]
    final = {lab: [runs[(lab, choices[lab].best_lr, s)] for s in cfg["seeds"]] for lab in labels}
    target = float(np.mean([r["final_val_loss"] for r in final["adamw"]]))
    for rs in final.values():
        for r in rs:
            r["steps_to_target"] = steps_to_target(r["metrics"], target)
    arms_best = [Arm(lab, a["optimizer"], lr=choices[lab].best_lr,
                     adamw_lr=None if a["optimizer"] == "adamw" else adamw_lr,
                     optimizer_kwargs=a.get("optimizer_kwargs", {}))
                 for lab, a in zip(labels, cfg["arms"])]
    # the runs' own step times depend on what else ran on the machine; time the arms round-robin
    timing = interleaved_step_times(base, arms_best, **cfg["timing"])

    rows, table = [], {}
    for (lab, lr, seed), r in sorted(runs.items()):
        rows.append({"record": "sweep", "arm": lab, "lr": lr, "seed": seed,
                     "final_val_loss": r["final_val_loss"], "wall_time_s": r["wall_time_s"],
                     "chosen": lr == choices[lab].best_lr, "reused": r["reused"]})
    for lab, rs in final.items():
        for r in rs:
            rows.append({"record": "run", "arm": lab, "seed": r["seed"], "step": r["step"],
                         "lr": r["lr"], "adamw_lr": r["adamw_lr"],
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
                        rows.append({"record": "curve", "arm": lab, "seed": r["seed"],
                                     "step": int(m["step"]), key: float(m[key])})
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
        rows.append({"record": "timing", "arm": lab, "step_time_ms": timing[lab]["step_ms"],
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

    def txt(name):
        a, b, _ = cfg["rules"][name]
        return f"{OPT_NAMES[b]} − {OPT_NAMES[a]}: {comparisons[name]['text']} → {v(name)}"

    env = json.loads((Path(final["adamw"][0]["run_dir"]) / "env.json").read_text())
    n_params = env["n_params"]
    n = len(cfg["seeds"])
    tokens = cfg["steps"] * cfg["model"]["batch_size"] * cfg["model"]["block_size"]
    scale = (f"{cfg['model']['n_layer']}-layer width-{cfg['model']['n_embd']} char GPT "
             f"({n_params / 1e3:.0f} k parameters), {cfg['steps']} steps × "
             f"{cfg['model']['batch_size']}×{cfg['model']['block_size']} characters "
             f"({tokens / 1e6:.2f} M tokens), {n} paired seeds, CPU float32, 1 thread")

    def ms(lab):
        m, s = table[lab]["final_val_loss"]
        return f"{m:.3f} ± {s:.3f}"

    main_ok = v("muon_vs_adamw") == "holds" and v("muoneq-r_vs_muon") == "holds"
    if main_ok and v("muoneq-r_vs_scale_matched_muon") == "holds":
        result, conditions = "holds", None
    elif main_ok:
        result = "holds under conditions"
        conditions = (f"MuonEq-R beats the Muon preset, but not Muon with MuonEq's update scale "
                      f"0.2·√max(m,n) ({txt('muoneq-r_vs_scale_matched_muon')}): the gain over "
                      f"the Muon preset is the update scale, not shown to be the row balancing")
    else:
        result, conditions = "fails", None
    faster = v("faster: muoneq-r_vs_muon") == "holds"
    paper = cfg["paper_1b"]
    lrs = ", ".join(f"{OPT_NAMES[lab]} {choices[lab].best_lr:g}"
                    + ("" if choices[lab].interior else " (edge)") for lab in labels)
    stt = ", ".join(f"{OPT_NAMES[lab]} {table[lab]['steps_to_target'][0]:.0f}"
                    if table[lab]["steps_to_target"] else
                    f"{OPT_NAMES[lab]} {table[lab]['steps_to_target_reached']}/{n} seeds reach it"
                    for lab in labels)
    compute_s = time.perf_counter() - t0
    run_s = sum(r["wall_time_s"] for r in runs.values())
    measured = (
        f"{scale}; lr per arm from a ×2 sweep, {len(cfg['sweep_seeds'])} seeds per lr at "
        f"{cfg['steps']} steps ({lrs}; AdamW group "
        f"{adamw_lr:g}). Final validation loss (nats/char, mean ± sd over {n} seeds): "
        + ", ".join(f"{OPT_NAMES[lab]} {ms(lab)}" for lab in labels)
        + f" (paper, 1B: MuonEq-R {paper['muoneq-r']}, Muon {paper['muon']}, AdamW "
        f"{paper['adamw']}). " + "; ".join(txt(k) for k in cfg["rules"] if not k.startswith("faster"))
        + f". Steps to AdamW's final mean loss {target:.3f} (mean): {stt}; "
        + txt("faster: muoneq-r_vs_muon") + " — 'faster' "
        + ("is shown" if faster else "is not shown") + ". Mechanism: polar(M) vs scale-matched "
        f"Muon and polar(R(M)) vs MuonEq-R isolate NS's inexactness, polar(R(M)) vs polar(M) the "
        f"balancing's change of direction. Step time, round-robin (full step / optimizer.step, "
        f"ms): " + ", ".join(f"{OPT_NAMES[a]} {timing[a]['step_ms']:.0f} / "
                             f"{timing[a]['optimizer_ms']:.1f}" for a in labels)
        + f". Compute: {len(runs)} runs, {run_s / 60:.0f} min of training, {compute_s / 60:.0f} min "
          f"in this invocation (cached runs reused)."
    )
    claim = verdict("EQ-5", measured, result, conditions=conditions,
                    criterion=(f"paired t 95% CI of the mean difference over {n} seeds (same data "
                               f"order per seed), each arm at its swept lr: holds if Muon < AdamW "
                               f"and MuonEq-R < Muon on final val loss and MuonEq-R < scale-matched "
                               f"Muon; 'holds under conditions' if only the first two; 'faster' "
                               f"only if steps to AdamW's final loss are also lower (same test)"))
    summary = {"scale": scale, "n_params": n_params, "tokens": tokens, "table": table,
               "paper_1b": paper, "target_loss": target, "comparisons": comparisons,
               "faster_shown": faster,
               "chosen_lr": {k: c.best_lr for k, c in choices.items()}, "adamw_group_lr": adamw_lr,
               "interior": {k: c.interior for k, c in choices.items()},
               "sweeps": {k: c.as_dict() for k, c in choices.items()},
               "runs": len(runs), "run_wall_s_total": round(run_s, 1),
               "compute_s": round(compute_s, 1), "measured_on": "CPU, 1 thread, float32 NS"}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
