"""Where does balancing stop helping Newton–Schulz? (a question none of the papers answers)

``X = D_r C D_c`` (``matbal.lab.scaled_core``): a core ``C`` with Haar singular vectors and a
geometric spectrum of condition number κ_core (intrinsic, cannot be balanced away), times
log-uniform row and column scales spanning ``scale_range`` (removable). A 2-D sweep over
scale_range × κ_core; for X, R(X), RC(X) (MuonEq one-shot) and RACS(X) (p = 2, converged): x_min,
the Muon NS5 error ‖NS5 − polar‖₂ (measured, float32), and the Polar Express steps needed to reach
worst-case error ≤ 1e-2 on [x_min, 1] (``matbal.steps_to_accuracy``). Also x_min of the core
alone: the ceiling any balancing could reach if it undid the scales exactly.
"""
from __future__ import annotations

import numpy as np

import matbal
from matbal.analysis.equilibration import equilibration_rows
from matbal.lab import experiment_cli, save_results, scaled_core

NAME = "balance_limits"
CONFIG = {"m": 128, "n": 256, "scale_ranges": [1.0, 1e1, 1e2, 1e3, 1e4],
          "core_kappas": [1.0, 1e1, 1e2, 1e3, 1e4], "seeds": [0, 1],
          "methods": ["none", "R", "RC", "RACS"], "schedule": "muon", "steps": 5,
          "steps_schedule": "polar_express", "steps_target": 1e-2}
QUICK = dict(CONFIG, m=32, n=64, scale_ranges=[1.0, 1e3], core_kappas=[1.0, 1e3], seeds=[0])
QUESTION = "Where does balancing stop helping Newton–Schulz?"


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    m, n = cfg["m"], cfg["n"]
    rows = []
    for seed in cfg["seeds"]:
        for kc in cfg["core_kappas"]:
            core = scaled_core(m, n, core_kappa=kc, scale_range=1.0, seed=seed)
            core_row = equilibration_rows({"core": core}, methods=("none",),
                                          schedule=cfg["schedule"], steps=cfg["steps"])[0]
            for sr in cfg["scale_ranges"]:
                x = scaled_core(m, n, core_kappa=kc, scale_range=sr, seed=seed)
                for r in equilibration_rows({"x": x}, methods=cfg["methods"],
                                            schedule=cfg["schedule"], steps=cfg["steps"]):
                    steps = matbal.steps_to_accuracy(cfg["steps_schedule"], cfg["steps_target"],
                                                     min(r["x_min"], 1.0), max_steps=200)
                    rows.append({"seed": seed, "core_kappa": kc, "scale_range": sr,
                                 "balancing": r["balancing"], "x_min": r["x_min"],
                                 "condition_number": r["condition_number"],
                                 "stable_rank": r["stable_rank"], "ns_error": r["ns_error"],
                                 "pe_steps": steps, "core_x_min": core_row["x_min"],
                                 "core_ns_error": core_row["ns_error"]})
    summary = _finding(rows, cfg)
    return save_results(NAME, rows, cfg, summary=summary, results_dir=results_dir)


def _finding(rows, cfg) -> dict:
    """The headline numbers, computed from the rows (nothing typed in by hand)."""
    import scipy.optimize

    def pick(b):
        return {(r["seed"], r["core_kappa"], r["scale_range"]): r for r in rows if r["balancing"] == b}

    none, racs, rc, rr = pick("none"), pick("RACS"), pick("RC"), pick("R")

    def recovery(d):
        v = np.array([d[k]["x_min"] / d[k]["core_x_min"] for k in d])
        return float(v.min()), float(v.max())

    P = matbal.compose(cfg["schedule"], cfg["steps"])
    x_half = scipy.optimize.brentq(lambda x: P(x) - 0.5, 1e-6, 0.05, xtol=1e-12)
    gap = max(abs(racs[k]["ns_error"] - racs[k]["core_ns_error"]) for k in racs)
    drop = {k: none[k]["ns_error"] - racs[k]["ns_error"] for k in racs}
    hard = [k for k in racs if racs[k]["core_x_min"] < x_half]  # core below Muon's x_0.5
    easy = [k for k in racs if k not in hard]
    saved = {k: none[k]["pe_steps"] - racs[k]["pe_steps"] for k in racs}
    top = max(cfg["scale_ranges"])
    saved_top = {k[1]: saved[k] for k in saved if k[2] == top and k[0] == cfg["seeds"][0]}
    decades = {k[1]: float(np.log10(racs[k]["x_min"] / none[k]["x_min"])) for k in racs
               if k[2] == top and k[0] == cfg["seeds"][0]}
    tail = matbal.get_schedule(cfg["steps_schedule"]).coefficients[-1][0]
    per_decade = float(np.log(10) / np.log(tail))
    floor = matbal.steps_to_accuracy(cfg["steps_schedule"], cfg["steps_target"], 1e-3)
    r_lo, r_hi = recovery(racs)
    rc_lo, rc_hi = recovery(rc)
    rr_lo, rr_hi = recovery(rr)
    finding = (
        f"(1) A ceiling: balancing gives back the core's x_min and no more. RACS restores "
        f"x_min(RACS(X)) = {r_lo:.2f}–{r_hi:.2f} × x_min(core) in every cell (scale ranges up to "
        f"{top:.0e}), one-shot RC {rc_lo:.2f}–{rc_hi:.2f}×, R alone {rr_lo:.2g}–{rr_hi:.2g}× (it "
        f"leaves the column scales). The Muon NS5 error after RACS equals the core's own NS5 "
        f"error to {gap:.3f}. "
        f"(2) For Muon's fixed 5 steps, what decides is whether the core's x_min clears Muon's "
        f"x₀.₅ = {x_half:.2g} (P5(x₀.₅) = 0.5). In the {len(easy)} cells where it does, RACS "
        f"brings the NS5 error down to ≤ {max(racs[k]['ns_error'] for k in easy):.2f} (from up to "
        f"{max(none[k]['ns_error'] for k in easy):.2f}; largest drop "
        f"{max(drop[k] for k in easy):.2f}); in the {len(hard)} cells where it does not "
        f"(κ_core ≥ {min((k[1] for k in hard), default=float('nan')):.0e} here) the error after "
        f"RACS is still ≥ {min((racs[k]['ns_error'] for k in hard), default=float('nan')):.2f} and "
        f"balancing improves it by ≤ {max((drop[k] for k in hard), default=float('nan')):.2f}: "
        f"balancing stops helping NS5 once the core's κ√sr passes ≈ 1/x₀.₅ ≈ "
        f"{1 / x_half:.0f}, however large the scale mismatch. "
        f"(3) Counted in Polar Express steps to error {cfg['steps_target']:g} the picture "
        f"reverses: at scale range {top:.0e} RACS saves "
        + ", ".join(f"{saved_top[kc]} steps at κ_core {kc:.0e} ({decades[kc]:.1f} decades of "
                    f"x_min)" for kc in sorted(saved_top))
        + ". Balancing saves the most steps where the core is worst, because each recovered "
        f"decade of x_min is worth ≈ {per_decade:.1f} steps of PE's tail (slope {tail:g} at 0) and "
        f"PE needs {floor} steps anyway once x_min ≳ 1e-3. Whether balancing 'helps NS' depends on the budget: "
        "with a fixed 5-step NS it stops mattering once the core is ill-conditioned; with NS run "
        "to an accuracy it always saves the decades the scales cost, and never those the core costs."
    )
    return {"question": QUESTION, "finding": finding, "x_half_muon_ns5": x_half,
            "racs_recovery_range": [r_lo, r_hi], "rc_recovery_range": [rc_lo, rc_hi],
            "r_recovery_range": [rr_lo, rr_hi], "racs_vs_core_ns_error_gap": gap,
            "cells": len(racs), "cells_core_above_x_half": len(easy),
            "max_ns5_drop_where_core_below_x_half": max((drop[k] for k in hard), default=None),
            "pe_steps_saved_at_top_range": {f"{k:g}": v for k, v in sorted(saved_top.items())}}


if __name__ == "__main__":
    experiment_cli(main)
