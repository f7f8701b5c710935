"""How much orthogonalization does Muon need here? Newton–Schulz with 3, 5, 8 steps, a 5-step
cubic schedule and the exact polar factor, with and without the row balancing R (a finding).

Question (after arXiv 2606.00371, "How much orthogonalization does Muon need?": truncated Polar
Express, Muon-Jordan, a cubic 5-step schedule and an FP32 SVD polar reach nearly the same GPT-2
loss): does training quality on the char GPT track how accurately the update is orthogonalized?

Arms: two families with MuonEq's update scale ``0.2·√max(m,n)`` — without R (Muon's momentum,
``muon`` preset with ``shape_rule="match_rms_adamw"``) and with R (the ``muoneq-r`` preset) — each
with the orthogonalizer NS_k (Muon's quintic coefficients, k = 3, 5, 8), the cubic
``1.5x − 0.5x³`` × 5 steps, or the exact polar factor (SVD; ``polar-m`` / ``polar-rm`` of
:data:`matbal.lab.training.LAB_PRESETS`). NS accuracy of each orthogonalizer: its worst-case
spectral error ``max |1 − P_k(x)|`` over normalized singular values ``x ∈ [10⁻², 1]``
(:func:`matbal.worst_case_error`; 0 for the exact polar factor).

Budget (quick, one CPU thread): EQ-5's width-64 GPT and 400 steps, 3 paired seeds; the lr is the
one EQ-5's ×2 sweep chose for the family's NS5 arm (scale-matched Muon / MuonEq-R; recorded in
``CONFIG["lr"]``), not swept per orthogonalizer — a difference in the best lr between
orthogonalizers would show up here as a loss difference. Comparison per arm: paired t 95 % interval
of (arm − exact polar of the same family) in final validation loss.
"""
from __future__ import annotations

import math
import time

import numpy as np

from matbal.lab import VerdictRule, apply_rule, experiment_cli, save_results
from matbal.lab.ns_arms import FAMILIES, band_error, ortho_arm
from matbal.lab.training import char_gpt_base, mean_std, run_arm, runs_root

NAME = "ns_need_gpt"
QUESTION = ("Does training quality track how accurately Newton–Schulz orthogonalizes the update "
            "(NS 3/5/8 steps, cubic, exact SVD; with and without R)?")
CONFIG = {
    "model": {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64, "batch_size": 32},
    "steps": 400, "warmup_steps": 20, "eval_every": 20, "eval_batches": 8, "threads": 1,
    "seeds": [0, 1, 2],
    # EQ-5's swept lrs at width 64 (eq5_muoneq_gpt summary.widths["64"].chosen_lr): scale-matched
    # Muon, MuonEq-R, AdamW
    "lr": {"plain": 0.03, "R": 0.015, "adamw": 0.003},
    "orthos": ["ns3", "ns5", "ns8", "cubic5", "exact"], "families": list(FAMILIES),
    "error_lo": 0.01,
    "rule": {"metric": "final_val_loss", "better": "lower", "test": "paired", "interval": "t",
             "alpha": 0.05},
}
QUICK = dict(CONFIG, model={"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16,
                            "batch_size": 8},
             steps=6, warmup_steps=2, eval_every=3, eval_batches=2, seeds=[0, 1])


def arm(family: str, ortho: str, cfg):
    """The arm ``<family>-<ortho>`` at the family's lr (:func:`matbal.lab.ns_arms.ortho_arm`)."""
    return ortho_arm(family, ortho, lr=cfg["lr"][family], adamw_lr=cfg["lr"]["adamw"])


def ns_error(ortho: str, lo: float) -> float:
    """Worst-case spectral error of the orthogonalizer on normalized singular values [lo, 1]."""
    return band_error(ortho, lo)


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    t0 = time.perf_counter()
    base = char_gpt_base(cfg)
    root = runs_root(NAME, results_dir)
    from tqdm.auto import tqdm

    arms = [arm(f, o, cfg) for f in cfg["families"] for o in cfg["orthos"]]
    runs = {}
    with tqdm(total=len(arms) * len(cfg["seeds"]), desc=NAME, disable=quick) as bar:
        for a in arms:
            runs[a.label] = []
            for s in cfg["seeds"]:
                runs[a.label].append(run_arm(base, a, s, out_dir=root))
                bar.update(1)
    rule = VerdictRule.from_dict(cfg["rule"])
    rows, table, comp = [], {}, {}
    for f in cfg["families"]:
        exact = [r["final_val_loss"] for r in runs[f"{f}-exact"]]
        for o in cfg["orthos"]:
            label = f"{f}-{o}"
            vals = [r["final_val_loss"] for r in runs[label]]
            err = ns_error(o, cfg["error_lo"])
            for r in runs[label]:
                rows.append({"record": "run", "arm": label, "family": f, "ortho": o,
                             "seed": r["seed"], "lr": r["lr"], "ns_error": err,
                             "final_val_loss": r["final_val_loss"],
                             "wall_time_s": r["wall_time_s"], "reused": r["reused"]})
            table[label] = {"family": f, "ortho": o, "ns_error": err,
                            "final_val_loss": mean_std(vals)}
            if o != "exact":
                comp[label] = apply_rule(rule, exact, vals)  # "holds": NS_k below exact polar
    # does the loss order follow the error order? Spearman ρ(ns_error, mean loss) per family
    from scipy.stats import spearmanr

    rho = {}
    for f in cfg["families"]:
        e = [table[f"{f}-{o}"]["ns_error"] for o in cfg["orthos"]]
        m = [table[f"{f}-{o}"]["final_val_loss"][0] for o in cfg["orthos"]]
        r = spearmanr(e, m).statistic
        rho[f] = None if r is None or not math.isfinite(r) else float(r)
    n = len(cfg["seeds"])
    run_s = sum(r["wall_time_s"] for rs in runs.values() for r in rs)

    def fam_text(f):
        parts = []
        for o in cfg["orthos"]:
            t = table[f"{f}-{o}"]
            m, s = t["final_val_loss"]
            parts.append(f"{o} {m:.3f} ± {s:.3f} (NS error {t['ns_error']:.2g})")
        diffs = "; ".join(f"{o} − exact: {comp[f'{f}-{o}']['text']}" for o in cfg["orthos"]
                          if o != "exact")
        rr = "n/a" if rho[f] is None else f"{rho[f]:+.2f}"
        return (f"{'with R' if f == 'R' else 'without R'} (lr {cfg['lr'][f]:g}): "
                + ", ".join(parts) + f". {diffs}. Spearman ρ(NS error, mean loss) = {rr}")

    differ = {k: v["verdict"] != "inconclusive" for k, v in comp.items()}
    finding = (
        f"{cfg['model']['n_layer']}-layer width-{cfg['model']['n_embd']} char GPT, "
        f"{cfg['steps']} steps, {n} paired seeds, CPU float32, 1 thread; final validation loss "
        f"(mean ± sd), NS error = worst case on singular values in [{cfg['error_lo']:g}, 1]. "
        + " ".join(fam_text(f) + "." for f in cfg["families"])
        + f" {sum(differ.values())} of {len(differ)} truncated/cubic orthogonalizers differ "
          f"from the exact polar factor by the paired test"
        + (f" ({', '.join(k for k, d in differ.items() if d)})" if any(differ.values()) else "")
        + f". Caveat: one lr per family (EQ-5's NS5 choice), {n} seeds. Compute: "
          f"{len(arms) * n} runs, {run_s / 60:.0f} min of training."
    )
    summary = {"question": QUESTION, "finding": finding, "table": table, "comparisons": comp,
               "spearman_error_loss": rho, "run_wall_s_total": round(run_s, 1),
               "compute_s": round(time.perf_counter() - t0, 1),
               "measured_on": "CPU, 1 thread, float32 NS",
               "reference": "arXiv 2606.00371 (How much orthogonalization does Muon need?)"}
    return save_results(NAME, rows, cfg, summary=summary, results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
