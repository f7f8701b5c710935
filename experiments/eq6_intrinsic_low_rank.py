"""EQ-6: does balancing help when ill-conditioning is intrinsic (low rank, decaying spectrum)?

Matrices whose small singular values come from the spectrum, not from row/column scales:
low rank + noise (``matbal.synthetic.low_rank_plus_noise``), Haar-random singular vectors with a
geometric or power-law spectrum (``prescribed_spectrum``) — all *incoherent* (Haar singular
vectors: the rows are already balanced) — and *coherent* low rank: the rank-k part lives on only
``s`` of the m rows (Haar within those rows; ``_coherent_low_rank``), plus the same noise, so the
other rows carry noise only and row balancing inflates them. κ, sr, x_min and the Muon NS5 error
before and after R/C/RC/RACS (``equilibration_rows``), medians over seeds.

Rule, fixed before the run (per matrix and balancing, against the unbalanced matrix):
"helps" = x_min up more than 2× or NS5 error down more than 0.05; "hurts" = x_min down more than 2×
or NS5 error up more than 0.05. "holds" if nothing helps or hurts anywhere; "holds under
conditions" if nothing helps but something hurts (reported where); "fails" if anything helps.
"""
from __future__ import annotations

import math

import torch

import matbal.synthetic as syn
from matbal.analysis.equilibration import equilibration_rows
from matbal.lab import aggregate, experiment_cli, save_results, verdict

NAME = "eq6_intrinsic_low_rank"
CONFIG = {"m": 256, "n": 512, "low_rank": [[2, 1e-1], [2, 1e-3], [8, 1e-1], [8, 1e-2], [8, 1e-3],
                                           [32, 1e-2], [32, 1e-3]],
          "geometric_kappas": [1e2, 1e4], "power_alphas": [1.0, 2.0], "seeds": [0, 1, 2],
          "coherent": [[2, 8, 1e-3], [2, 8, 1e-2], [2, 32, 1e-3], [8, 32, 1e-3], [8, 32, 1e-2],
                       [8, 128, 1e-3]],
          "methods": ["none", "R", "C", "RC", "RACS"], "schedule": "muon", "steps": 5,
          "x_min_factor": 2.0, "ns_error_change": 0.05}
QUICK = dict(CONFIG, m=32, n=64, low_rank=[[4, 1e-2]], geometric_kappas=[1e3], power_alphas=[1.0],
             coherent=[[2, 8, 1e-3]], seeds=[0])


def _coherent_low_rank(m, n, *, rank, rows, noise, seed):
    """``X = E_S Q Vᵀ + noise·G/√max(m, n)``: a rank-``rank`` part whose left singular vectors are
    supported on ``rows`` row indices ``S`` (Haar ``Q`` in those coordinates, Haar ``V``)."""
    g = torch.Generator().manual_seed(10_000 + seed)
    q = syn.random_orthogonal(rows, rank, generator=g)
    v = syn.random_orthogonal(n, rank, generator=g)
    idx = torch.randperm(m, generator=g)[:rows]
    x = noise * torch.randn(m, n, generator=g, dtype=torch.float64) / math.sqrt(max(m, n))
    x[idx] += (q @ v.T).to(torch.float64)
    return x.to(torch.float32)


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
    for rank, rows, noise in cfg["coherent"]:
        out[f"coherent k={rank} on {rows} rows noise={noise:g}"] = _coherent_low_rank(
            m, n, rank=rank, rows=rows, noise=noise, seed=seed)
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
    fx, de = cfg["x_min_factor"], cfg["ns_error_change"]
    helps, hurts, worst_ratio, worst_err, worst_at = [], [], 1.0, 0.0, ""
    for r in med:
        b = base[r["matrix"]]
        ratio, d_err = r["x_min"] / b["x_min"], r["ns_error"] - b["ns_error"]
        tag = (f"{r['matrix']} / {r['balancing']}: x_min {b['x_min']:.2g} → {r['x_min']:.2g}, "
               f"NS5 error {b['ns_error']:.3f} → {r['ns_error']:.3f}")
        if ratio > fx or d_err < -de:
            helps.append((-d_err, tag))
        if ratio < 1 / fx or d_err > de:
            hurts.append((d_err, tag))
        if not r["matrix"].startswith("coherent"):
            if abs(math.log(ratio)) > abs(math.log(worst_ratio)):
                worst_ratio, worst_at = ratio, f"{r['matrix']} / {r['balancing']}"
            worst_err = max(worst_err, abs(d_err))
    result = "fails" if helps else "holds under conditions" if hurts else "holds"
    helps = [t for _, t in sorted(helps, reverse=True)]  # largest effect first
    hurts = [t for _, t in sorted(hurts, reverse=True)]
    n_inc = sum(1 for k in base if not k.startswith("coherent"))
    n_pairs = len(med) - len(base)
    measured = (
        f"{n_inc} incoherent intrinsic matrices ({cfg['m']}×{cfg['n']}, Haar singular vectors), "
        f"every balancing: x_min changes by at most ×{worst_ratio:.2f} ({worst_at}), NS5 error by "
        f"≤ {worst_err:.3f}; with {len(base) - n_inc} coherent low-rank matrices added, balancing "
        f"helps in {len(helps)} and hurts in {len(hurts)} of {n_pairs} (matrix, balancing) pairs"
        + (" — largest: " + "; ".join(hurts[:3]) if hurts else "")
        + (" — helps: " + "; ".join(helps[:3]) if helps else "")
    )
    conditions = None
    if result == "holds under conditions":
        where = sorted({h.split(" / ")[1].split(":")[0] for h in hurts})
        mats = sorted({h.split(" / ")[0] for h in hurts})
        conditions = (f"no balancing helps any intrinsic matrix; with coherent low rank (the "
                      f"low-rank part on few rows) {', '.join(where)} hurt (x_min down > {fx:g}× or "
                      f"NS5 error up > {de:g}) on: {', '.join(mats)}")
    claim = verdict("EQ-6", measured, result, conditions=conditions,
                    criterion=f"helps = x_min up > {fx:g}× or NS5 error down > {de:g}; hurts = x_min "
                              f"down > {fx:g}× or NS5 error up > {de:g} (vs unbalanced, medians over "
                              "seeds); holds if neither anywhere, holds under conditions if only "
                              "hurts, fails if anything helps")
    summary = {"worst_x_min_ratio_incoherent": worst_ratio, "worst_at_incoherent": worst_at,
               "worst_ns_error_change_incoherent": worst_err, "helps": helps, "hurts": hurts}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
