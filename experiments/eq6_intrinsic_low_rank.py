"""EQ-6: does balancing help when ill-conditioning is intrinsic (low rank, decaying spectrum)?

Matrices whose small singular values come from the spectrum, not from row/column scales:
low rank + noise (``matbal.synthetic.low_rank_plus_noise``), Haar-random singular vectors with a
geometric or power-law spectrum (``prescribed_spectrum``). κ, sr, x_min and the Muon NS5 error
before and after R/C/RC/RACS (``equilibration_rows``), medians over seeds.
Criterion: no balancing changes x_min by more than 2× either way, nor the NS5 error by more than 0.05.
"""
from __future__ import annotations

import math

import matbal.synthetic as syn
from matbal.analysis.equilibration import equilibration_rows
from matbal.lab import aggregate, experiment_cli, save_results, verdict

NAME = "eq6_intrinsic_low_rank"
CONFIG = {"m": 256, "n": 512, "low_rank": [[2, 1e-1], [2, 1e-3], [8, 1e-1], [8, 1e-2], [8, 1e-3],
                                           [32, 1e-2], [32, 1e-3]],
          "geometric_kappas": [1e2, 1e4], "power_alphas": [1.0, 2.0], "seeds": [0, 1, 2],
          "methods": ["none", "R", "C", "RC", "RACS"], "schedule": "muon", "steps": 5}
QUICK = dict(CONFIG, m=32, n=64, low_rank=[[4, 1e-2]], geometric_kappas=[1e3], power_alphas=[1.0],
             seeds=[0])


def _matrices(cfg, seed):
    m, n, r = cfg["m"], cfg["n"], min(cfg["m"], cfg["n"])
    out = {}
    for rank, noise in cfg["low_rank"]:
        out[f"low_rank k={rank} noise={noise:g}"] = syn.low_rank_plus_noise(
            m, n, rank=rank, noise=noise, seed=seed)
    for k in cfg["geometric_kappas"]:
        out[f"geometric κ={k:g}"] = syn.prescribed_spectrum(
            m, n, syn.geometric_spectrum(r, kappa=k), seed=seed)
    for a in cfg["power_alphas"]:
        out[f"power law α={a:g}"] = syn.prescribed_spectrum(
            m, n, syn.power_law_spectrum(r, alpha=a), seed=seed)
    return out


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rows = []
    for seed in cfg["seeds"]:
        for r in equilibration_rows(_matrices(cfg, seed), methods=cfg["methods"],
                                    schedule=cfg["schedule"], steps=cfg["steps"]):
            rows.append({"seed": seed, **r})
    med = aggregate(rows, by=("matrix", "balancing"),
                    values=("condition_number", "stable_rank", "x_min", "ns_error"))
    base = {r["matrix"]: r for r in med if r["balancing"] == "none"}
    worst_ratio, worst_err, worst_at = 1.0, 0.0, ""
    for r in med:
        b = base[r["matrix"]]
        ratio = r["x_min"] / b["x_min"]
        if abs(math.log(ratio)) > abs(math.log(worst_ratio)):
            worst_ratio, worst_at = ratio, f"{r['matrix']} / {r['balancing']}"
        worst_err = max(worst_err, abs(r["ns_error"] - b["ns_error"]))
    ok = 0.5 <= worst_ratio <= 2.0 and worst_err <= 0.05
    racs = {r["matrix"]: r for r in med if r["balancing"] == "RACS"}
    ex = [f"{k}: x_min {base[k]['x_min']:.2g} → {racs[k]['x_min']:.2g}" for k in list(base)[:3]]
    measured = (
        f"{len(base)} intrinsic matrices ({cfg['m']}×{cfg['n']}), every balancing: x_min changes "
        f"by at most ×{worst_ratio:.2f} ({worst_at}), NS5 error by ≤ {worst_err:.3f}; e.g. "
        + "; ".join(ex)
    )
    claim = verdict("EQ-6", measured, "holds" if ok else "fails",
                    criterion="x_min within 2× and NS5 error within 0.05 of unbalanced, every "
                              "matrix and balancing")
    summary = {"worst_x_min_ratio": worst_ratio, "worst_at": worst_at, "worst_ns_error_change": worst_err}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
