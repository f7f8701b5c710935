"""MU-1: Muon's NS5 maps [1e-2, 1] into ≈[0.68, 1.13] and never converges.

Exact scalar analysis of the Muon quintic p(x) = 3.4445x − 4.7750x³ + 2.0315x⁵: the band of P_k on
[1e-2, 1] for k = 5 … 100 (``matbal.output_band``), its fixed points and extrema (sympy,
``matbal.describe``); and the same measured on a matrix whose singular values fill [1e-2, 1]
(geometric spectrum, ``normalize="none"`` so the interval is exactly the input, float64 NS).
Criterion: the 5-step band is within 0.005 of [0.682, 1.134]; the band does not shrink with k
(width ≥ 0.3 at k = 100); the nonzero fixed point in (0, 1) is repelling; measured output σ =
prediction to 1e-9 and inside the band.
"""
from __future__ import annotations

import torch

import matbal
import matbal.synthetic as syn
from matbal.lab import experiment_cli, save_results, verdict

NAME = "mu1_muon_band"
CONFIG = {"lo": 1e-2, "hi": 1.0, "steps": [1, 2, 3, 4, 5, 6, 8, 10, 20, 50, 100],
          "m": 256, "n": 512, "published_band": [0.682, 1.134]}
QUICK = dict(CONFIG, steps=[5, 10, 100], m=32, n=64)


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    x = syn.prescribed_spectrum(cfg["m"], cfg["n"], syn.geometric_spectrum(
        min(cfg["m"], cfg["n"]), kappa=cfg["hi"] / cfg["lo"], top=cfg["hi"]), dtype=torch.float64)
    sx = matbal.svdvals(x)
    rows = []
    for k in cfg["steps"]:
        lo, hi = matbal.output_band("muon", k, cfg["lo"], cfg["hi"])
        s = matbal.svdvals(matbal.newton_schulz(x, schedule="muon", steps=k, normalize="none"))
        pred = matbal.predict_singular_values(sx, schedule="muon", steps=k, normalize="none")
        rows.append({"steps": k, "band_min": lo, "band_max": hi, "width": hi - lo,
                     "measured_min": float(s.min()), "measured_max": float(s.max()),
                     "max_dev_from_prediction": float((s - pred.sort(descending=True).values).abs().max()),
                     "inside_band": bool(s.min() >= lo - 1e-9 and s.max() <= hi + 1e-9)})
    d = matbal.describe("muon").steps[0]
    fps = [f for f in d.fixed_points if 0 < f.x < 1]
    mx = d.max_on_unit
    b5 = next(r for r in rows if r["steps"] == 5)
    b_last = rows[-1]
    dev_meas = max(r["max_dev_from_prediction"] for r in rows)
    inside = all(r["inside_band"] for r in rows)
    pub = cfg["published_band"]
    ok = (abs(b5["band_min"] - pub[0]) < 5e-3 and abs(b5["band_max"] - pub[1]) < 5e-3
          and b_last["width"] >= 0.3 and all(not f.attracting for f in fps) and dev_meas < 1e-9 and inside)
    measured = (
        f"P5([1e-2, 1]) = [{b5['band_min']:.4f}, {b5['band_max']:.4f}]; after {b_last['steps']} "
        f"steps still [{b_last['band_min']:.3f}, {b_last['band_max']:.3f}] (no convergence); fixed "
        f"point {fps[0].x:.4f} with slope {fps[0].slope:.3f} (repelling); max of p on [0, 1] "
        f"{mx[1]:.4f} at {mx[0]:.4f}; a {cfg['m']}×{cfg['n']} matrix with σ filling [1e-2, 1] "
        f"has every output σ inside the band and equal to the scalar prediction to {dev_meas:.0e}"
    )
    claim = verdict("MU-1", measured, "holds" if ok else "fails",
                    criterion="5-step band within 0.005 of [0.682, 1.134]; width ≥ 0.3 at k = 100; "
                              "fixed point repelling; measured σ = predicted to 1e-9 and inside the band")
    summary = {"band5": [b5["band_min"], b5["band_max"]], "fixed_point": fps[0].x,
               "fixed_point_slope": fps[0].slope, "max_on_unit": list(mx),
               "measured_vs_predicted": dev_meas}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
