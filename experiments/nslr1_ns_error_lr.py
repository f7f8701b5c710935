"""NL-1: does the best learning rate of Muon shift as its Newton–Schulz error grows?

Sources. Kim & Oh, "Convergence of Muon with Newton–Schulz" (arXiv 2601.19156, ICLR 2026): Muon
with ``q`` NS steps converges to a stationary point at the rate of the exact (SVD) polar update up
to a constant factor that tends to 1 doubly exponentially in ``q``. Shulgin, AlRashed, Orabona &
Richtárik, "Beyond the Ideal: Analyzing the Inexact Muon Update" (arXiv 2510.19933, AISTATS
2026): with an additive error δ of the orthogonalization oracle, "lower oracle precision requires
a smaller step size" (and a larger momentum), i.e. the optimal lr *decreases* as δ grows; their
NanoGPT runs show the optimal lr shifting with the NS precision. arXiv 2606.00371 ("How much
orthogonalization does Muon need?") finds that the final GPT-2 loss hardly depends on the
orthogonalizer. The statement tested here is 2510.19933's coupling: the sign of
``d log2(lr*) / d(NS error)``, predicted negative, written in ``CONFIG["rule"]`` before the runs.
(A competing mechanism, also written down before the runs: an inexact NS shrinks the update —
``ρ = ‖NS_k(M)‖_F/‖polar(M)‖_F < 1`` for the small singular values NS has not lifted — while
Muon's shape scale assumes ``ρ = 1``; that would make the best lr *grow* with the error. A
positive slope is what the rule calls "fails".)

Arms: scale-matched Muon (``muon`` preset, ``shape_rule="match_rms_adamw"``, MuonEq's update scale
``0.2·√max(m,n)``) with Muon's quintic NS for k = 1, 2, 3, 5, 8 steps and the exact polar factor
(``polar-m`` of :data:`matbal.lab.training.LAB_PRESETS`); :mod:`matbal.lab.ns_arms`.

NS error per arm, predicted from the recorded momenta (GPT RECORDING, Muon stream, steps ≥ 20):
Newton–Schulz acts on singular values alone, so its error on a recorded momentum ``M`` follows
from the spectrum of ``M`` — ``e_F = ‖NS_k(M) − polar(M)‖_F/‖polar(M)‖_F`` =
``√(mean_i (1 − P_k(x_i))²)``, ``x_i = σ_i/‖M‖_F`` (:func:`matbal.lab.ns_arms.spectrum_error`);
the arm's error is the median of ``e_F`` over the recorded hidden matrices. Reported beside it:
the worst-case band error ``max_{[x_min, 1]} |1 − P_k|`` at the median ``x_min`` (it saturates
at ≈ 1 for k ≤ 5 because these momenta have ``x_min`` of 1e-9 to 1e-4) and the size ratio ρ.

Protocol (:mod:`matbal.lab.lr_protocol`): per arm a ×√2 grid, 3 seeds per lr at the final budget
(EQ-5's width-64 char GPT, 400 steps, AdamW-group lr 0.003 from EQ-5), extended past an edge
optimum until it is interior. Best lr per arm below the grid spacing: the vertex of the parabola
in ``log2 lr`` through the best grid point and its neighbours (:func:`matbal.lab.lr_fit.subgrid_lr`).
Rule (pre-registered, ``CONFIG["rule"]``): OLS slope of ``log2(best lr)`` on the predicted NS
error across the arms, 95 % percentile interval over seed resamples (the same seeds for every
arm, :func:`matbal.lab.lr_fit.bootstrap_seeds`); NL-1 *holds* if the interval lies below 0,
*fails* otherwise (the text says whether the interval lies above 0 — the opposite coupling — or
contains 0). Also, per arm, final loss at its own best grid lr against the exact arm's (paired t
95 % interval, :func:`matbal.lab.arm_stats.apply_rule`) — Kim & Oh's "same rate up to a constant
→ 1" read as "the gap to exact closes as k grows".
"""
from __future__ import annotations

import math
import time

import numpy as np

from matbal import svdvals
from matbal.lab import VerdictRule, apply_rule, experiment_cli, save_results, verdict
from matbal.lab.lr_fit import bootstrap_seeds, subgrid_lr
from matbal.lab.lr_protocol import lr_grid, sweep_lr
from matbal.lab.ns_arms import band_error, ortho_arm, spectrum_error
from matbal.lab.training import (RECORDING, RECORDING_QUICK, layer_type, mean_std, recorded_gpt,
                                 run_arm, runs_root)
from matbal.train import TrainConfig

NAME = "nslr1_ns_error_lr"
CONFIG = {
    "model": {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64, "batch_size": 32},
    "steps": 400, "warmup_steps": 20, "eval_every": 20, "eval_batches": 8, "threads": 1,
    "family": "plain", "orthos": ["ns1", "ns2", "ns3", "ns5", "ns8", "exact"],
    "adamw_lr": 0.003,  # EQ-5's swept AdamW lr, the AdamW-group lr of every arm
    # ×√2 grid around EQ-5's scale-matched Muon optimum (0.03), the same start for every arm
    "grid": {"lo": 0.015, "hi": 0.045, "factor": 2 ** 0.5}, "seeds": [0, 1, 2],
    "max_extensions": 4,
    "recording": RECORDING, "stream": "muon", "from_step": 20, "predictor": "error_fro",
    "rule": {"slope_of": "log2(subgrid best lr)", "on": "predicted NS error (median e_F)",
             "predicted_sign": -1, "interval": "seed bootstrap percentile", "resamples": 2000,
             "alpha": 0.05, "bootstrap_seed": 0,
             "source": "arXiv 2510.19933: lower oracle precision requires a smaller step size"},
    "vs_exact": {"metric": "final_val_loss", "better": "lower", "test": "paired", "interval": "t",
                 "alpha": 0.05},
}
QUICK = dict(CONFIG, model={"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16,
                            "batch_size": 8},
             steps=6, warmup_steps=2, eval_every=3, eval_batches=2, seeds=[0, 1],
             grid={"lo": 0.02, "hi": 0.04, "factor": 2.0}, max_extensions=0,
             recording=RECORDING_QUICK, from_step=2, rule=dict(CONFIG["rule"], resamples=200))


def predicted_errors(cfg, results_dir) -> tuple[list[dict], dict]:
    """Per recorded momentum (steps ≥ from_step): x_min and each arm's e_F and ρ; per arm the
    medians and the band error at the median x_min."""
    from matbal.instruments.store import MatrixStore

    rec = recorded_gpt(cfg["recording"], cfg["stream"], results_dir=results_dir)
    rows = []
    with MatrixStore(rec["store"], mode="r") as store:
        moms = [r for r in store.query(run=cfg["stream"], kind="momentum")
                if r.step >= cfg["from_step"]]
        for r, mom in zip(moms, store.get_many(moms, verify=False)):
            s = svdvals(mom.double()).numpy()
            row = {"record": "momentum", "step": r.step, "layer": r.layer,
                   "layer_type": layer_type(r.layer), "m": mom.shape[0], "n": mom.shape[1],
                   "x_min": float(s.min() / np.linalg.norm(s))}
            for o in cfg["orthos"]:
                e = spectrum_error(s, o)
                row[f"error_fro_{o}"], row[f"size_ratio_{o}"] = e["error_fro"], e["size_ratio"]
            rows.append(row)
    x_min = float(np.median([r["x_min"] for r in rows]))
    per_arm = {o: {"error_fro": float(np.median([r[f"error_fro_{o}"] for r in rows])),
                   "size_ratio": float(np.median([r[f"size_ratio_{o}"] for r in rows])),
                   "band_error_xmin": band_error(o, x_min)} for o in cfg["orthos"]}
    return rows, {"arms": per_arm, "median_x_min": x_min, "matrices": len(rows),
                  "recording_lr": rec["lr"], "recording_final_val_loss": rec["final_val_loss"]}


def slope(xs, ys) -> float:
    """OLS slope of ys on xs (nan when xs has no spread or a y is not finite; exactly 0 when the
    ys are all equal, not a rounding residue whose sign the rule would read)."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    if np.ptp(x) == 0 or not np.all(np.isfinite(y)):
        return math.nan
    if np.ptp(y) == 0:
        return 0.0
    return float(np.polyfit(x, y, 1)[0])


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    t0 = time.perf_counter()
    mom_rows, pred = predicted_errors(cfg, results_dir)
    base = TrainConfig(model="gpt", steps=cfg["steps"], warmup_steps=cfg["warmup_steps"],
                       eval_every=cfg["eval_every"], eval_batches=cfg["eval_batches"],
                       device="cpu", log_every=cfg["eval_every"], threads=cfg["threads"],
                       **cfg["model"])
    root = runs_root(NAME, results_dir)
    grid = lr_grid(cfg["grid"]["lo"], cfg["grid"]["hi"], factor=cfg["grid"]["factor"])
    fam, seeds = cfg["family"], cfg["seeds"]
    runs: dict[tuple[str, float, int], dict] = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(cfg["orthos"]) * len(grid) * len(seeds), desc=NAME, disable=quick)

    def one(o, lr, seed):
        key = (o, lr, seed)
        if key not in runs:
            a = ortho_arm(fam, o, lr=lr, adamw_lr=cfg["adamw_lr"], label=f"{fam}-{o}-lr{lr:g}")
            runs[key] = run_arm(base, a, seed, out_dir=root)
            bar.update(1)
        return runs[key]

    choices = {o: sweep_lr(lambda lr, s, o=o: one(o, lr, s)["final_val_loss"], grid, seeds=seeds,
                           max_extensions=cfg["max_extensions"], progress=False)
               for o in cfg["orthos"]}
    bar.close()

    # per arm: (n_lr, n_seeds) final losses on its grid, the sub-grid optimum, the predicted error
    vals = {o: np.array([[runs[(o, t["lr"], s)]["final_val_loss"] for s in seeds]
                         for t in choices[o].table]) for o in cfg["orthos"]}
    lrs = {o: [t["lr"] for t in choices[o].table] for o in cfg["orthos"]}
    err = {o: pred["arms"][o][cfg["predictor"]] for o in cfg["orthos"]}

    def fit_slope(means):
        return slope([err[o] for o in cfg["orthos"]],
                     [subgrid_lr(lrs[o], means[o])["log2_lr"] for o in cfg["orthos"]])

    rule = cfg["rule"]
    boot = bootstrap_seeds(vals, fit_slope, resamples=rule["resamples"], alpha=rule["alpha"],
                           seed=rule["bootstrap_seed"])
    band_slope = slope([pred["arms"][o]["band_error_xmin"] for o in cfg["orthos"]],
                       [subgrid_lr(lrs[o], vals[o].mean(axis=1))["log2_lr"] for o in cfg["orthos"]])
    lo, hi = boot["ci"]
    if math.isfinite(lo) and hi < 0:
        coupling = "negative"
    elif math.isfinite(lo) and lo > 0:
        coupling = "positive"
    else:
        coupling = "inconclusive"
    result = "holds" if coupling == ("negative" if rule["predicted_sign"] < 0 else "positive") \
        else "fails"

    vs_rule = VerdictRule.from_dict(cfg["vs_exact"])
    best = {o: [runs[(o, choices[o].best_lr, s)]["final_val_loss"] for s in seeds]
            for o in cfg["orthos"]}
    comps = {o: apply_rule(vs_rule, best["exact"], best[o]) for o in cfg["orthos"] if o != "exact"}

    table, rows = {}, list(mom_rows)
    for o in cfg["orthos"]:
        sub = subgrid_lr(lrs[o], vals[o].mean(axis=1))
        table[o] = {**pred["arms"][o], "grid_best_lr": choices[o].best_lr,
                    "interior": choices[o].interior, "extensions": choices[o].extensions,
                    "subgrid_lr": sub["lr"], "bracketed": sub["bracketed"],
                    "final_val_loss_at_best": mean_std(best[o])}
        for t, lr in zip(vals[o], lrs[o]):
            for s, v in zip(seeds, t):
                r = runs[(o, lr, s)]
                # None: a diverged run (NaN would not round-trip through the results files)
                rows.append({"record": "sweep", "arm": o, "lr": lr, "seed": s,
                             "final_val_loss": float(v) if math.isfinite(v) else None,
                             "chosen": lr == choices[o].best_lr, "ns_error": err[o],
                             "wall_time_s": r["wall_time_s"], "reused": r["reused"]})
    run_s = sum(r["wall_time_s"] for r in runs.values())
    compute_s = time.perf_counter() - t0
    n = len(seeds)
    scale = (f"{cfg['model']['n_layer']}-layer width-{cfg['model']['n_embd']} char GPT, "
             f"{cfg['steps']} steps, CPU float32 NS, 1 thread, scale-matched Muon "
             f"(0.2·√max(m,n)), AdamW-group lr {cfg['adamw_lr']:g}")
    arms_txt = "; ".join(
        f"{o}: e_F {table[o]['error_fro']:.3f} (ρ {table[o]['size_ratio']:.2f}), best lr "
        f"{table[o]['subgrid_lr']:.3g} (grid {table[o]['grid_best_lr']:g}"
        + ("" if table[o]["interior"] else ", edge") + f"), loss {table[o]['final_val_loss_at_best'][0]:.3f}"
        for o in cfg["orthos"])
    vs_txt = "; ".join(f"{o} − exact {c['text']} → {c['verdict']}" for o, c in comps.items())
    measured = (
        f"{scale}; ×{cfg['grid']['factor']:.3g} lr grid, {n} seeds per lr, extended until interior; "
        f"NS error = median over {pred['matrices']} recorded Muon momenta (steps ≥ "
        f"{cfg['from_step']}, median x_min {pred['median_x_min']:.1e}) of the spectrum-predicted "
        f"‖NS_k(M) − polar(M)‖_F/‖polar(M)‖_F. Per arm: {arms_txt}. Slope d log2(best lr)/d(NS "
        f"error) = {boot['estimate']:+.2f} (95% seed-bootstrap CI [{lo:+.2f}, {hi:+.2f}], "
        f"{boot['resamples']} resamples, {boot['dropped']} dropped): coupling {coupling}"
        + (" — the opposite sign of arXiv 2510.19933's" if coupling == "positive" else "")
        + f"; on the band error at the median x_min the slope is {band_slope:+.2f}. At each arm's "
          f"own best lr vs exact polar (final val loss): {vs_txt}. Compute: {len(runs)} runs, "
          f"{run_s / 60:.0f} min of training, {compute_s / 60:.0f} min in this invocation."
    )
    claim = verdict("NL-1", measured, result, criterion=(
        f"pre-registered: OLS slope of log2(sub-grid best lr) on the predicted NS error across "
        f"{len(cfg['orthos'])} arms, {100 * (1 - rule['alpha']):.0f}% percentile interval over "
        f"{rule['resamples']} paired seed resamples; holds if the interval lies below 0 (the sign "
        f"predicted by arXiv 2510.19933), fails otherwise"))
    summary = {"scale": scale, "table": table, "predicted": pred, "slope": boot,
               "slope_band_error": band_slope, "coupling": coupling, "vs_exact": comps,
               "sweeps": {o: c.as_dict() for o, c in choices.items()},
               "runs": len(runs), "run_wall_s_total": round(run_s, 1),
               "compute_s": round(compute_s, 1), "measured_on": "CPU, 1 thread, float32 NS",
               "references": ["arXiv 2601.19156", "arXiv 2510.19933", "arXiv 2606.00371"]}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
