"""EQ-3 (kernel part): R(DX) = R(X), so MuonEq-R's direction ignores per-neuron rescaling; Muon's does not.

``D`` = positive diagonal with log-uniform entries over ``[1/range, 1]`` (a per-output-neuron
rescaling of the momentum). Distances of directions ``‖f(DX)/‖f(DX)‖_F − f(X)/‖f(X)‖_F‖_F`` for
f = R, NS5∘R (the MuonEq-R direction), NS5 (Muon), polar, NS5∘RC (MuonEq-RC, one-shot),
RACS (converged; REG's direction before its RMS normalization), and C
(which is invariant to the *right* scaling XD instead: ``c_right``). float32 as an optimizer runs.
Criterion: R and NS5∘R distances ≤ 1e-5 (rounding) for every range; Muon's NS5 distance ≥ 0.1 for
every range ≥ 10.
"""
from __future__ import annotations

import math

import torch

import matbal
import matbal.synthetic as syn
from matbal.lab import experiment_cli, save_results, verdict

NAME = "eq3_invariance"
CONFIG = {"m": 256, "n": 512, "ranges": [1e1, 1e2, 1e3, 1e4], "seeds": [0, 1, 2],
          "matrices": ["gaussian", "power_law"], "schedule": "muon", "steps": 5}
QUICK = dict(CONFIG, m=32, n=64, ranges=[1e2], seeds=[0])


def _rel(a, b) -> float:
    """Distance of the directions: ‖a/‖a‖_F − b/‖b‖_F‖_F (scale-free, as NS and RMS-normalized
    updates see them)."""
    a, b = a.double(), b.double()
    return float((a / a.norm() - b / b.norm()).norm())


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    m, n = cfg["m"], cfg["n"]

    def ns(t):
        return matbal.newton_schulz(t, schedule=cfg["schedule"], steps=cfg["steps"])

    ops = {
        "R": matbal.normalize_rows,
        "NS5_of_R": lambda t: ns(matbal.normalize_rows(t)),
        "NS5": ns,
        "polar": matbal.polar,
        "NS5_of_RC": lambda t: ns(matbal.rc_scale(t)),
        "RACS": lambda t: matbal.racs(t, rtol=1e-6).matrix,
    }
    rows = []
    for name in cfg["matrices"]:
        for seed in cfg["seeds"]:
            x = syn.GALLERY[name](m, n, seed=seed)
            for rng in cfg["ranges"]:
                # per-row (D) and per-column (D') positive scales, log-uniform over [1/range, 1]
                gen = torch.Generator().manual_seed(seed + 100)
                dr = torch.exp(-torch.rand(m, generator=gen) * math.log(rng))
                dc = torch.exp(-torch.rand(n, generator=gen) * math.log(rng))
                row = {"matrix": name, "seed": seed, "range": rng, "m": m, "n": n}
                for key, f in ops.items():
                    row[key] = _rel(f(dr[:, None] * x), f(x))
                row["C_right"] = _rel(matbal.normalize_cols(x * dc[None, :]), matbal.normalize_cols(x))
                rows.append(row)
    rmax = max(max(r["R"], r["NS5_of_R"]) for r in rows)
    muon_min = min(r["NS5"] for r in rows if r["range"] >= 10)
    ok = rmax <= 1e-5 and muon_min >= 0.1
    top = max(cfg["ranges"])
    t = [r for r in rows if r["range"] == top]
    med = {k: sorted(r[k] for r in t)[len(t) // 2] for k in ("NS5", "polar", "NS5_of_RC", "RACS")}
    lo = [r for r in rows if r["range"] == min(cfg["ranges"])]
    measured = (
        f"{m}×{n}, float32, distance of unit-Frobenius directions f(DX) vs f(X): R and the "
        f"MuonEq-R direction NS5(R(·)) ≤ {rmax:.1e} (rounding) for row scales up to {top:.0e}; "
        f"Muon NS5: "
        f"{min(r['NS5'] for r in lo):.2f}–{max(r['NS5'] for r in lo):.2f} at range "
        f"{min(cfg['ranges']):.0e}, median {med['NS5']:.2f} at {top:.0e} (exact polar "
        f"{med['polar']:.2f}); MuonEq-RC (one-shot) is not invariant ({med['NS5_of_RC']:.2g}), RACS is "
        f"({med['RACS']:.1e})"
    )
    claim = verdict("EQ-3", measured, "holds" if ok else "fails",
                    criterion="R and NS5∘R distance ≤ 1e-5; Muon NS5 distance ≥ 0.1 for range ≥ 10")
    summary = {"max_R_distance": rmax, "min_muon_distance": muon_min, "median_at_top_range": med}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
