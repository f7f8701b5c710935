"""SK-1: RACS-2 / SinkGD converge to rows √n, columns √m at the linear rate σ₂(P̃)²; Ruiz at rate 1/2.

``matbal.racs(p=2)`` (= Sinkhorn–Knopp on X⊙X; one sweep = SinkGD's row-then-column step) in
float64 to rtol 1e-13 on Gaussian matrices of several shapes and on structured ones; the residual
history (max relative deviation of row/column norms) per sweep. Measured rate: geometric mean of
the last three ratios h[k+1]/h[k] above 1e-12 (``matbal.lab.asymptotic_rate``). Predictions:
σ₂(P̃)² with P̃ = X̂⊙X̂/√(mn) at the limit X̂ (Knight 2008), and for Gaussian X 2(m^-½ + n^-½)².
Ruiz (∞-norm, simultaneous square roots) on the same matrices: rate vs 1/2.
Criterion: measured/σ₂² ∈ [0.75, 1.1] everywhere; Gaussian σ₂² within 10 % of 2(m^-½+n^-½)² once
min(m, n) ≥ 128 (the formula is asymptotic);
limit rows √n, columns √m to 1e-10; Ruiz rate ∈ [0.45, 0.55].
"""
from __future__ import annotations

import math

import torch

import matbal
import matbal.synthetic as syn
from matbal.lab import asymptotic_rate, experiment_cli, save_results, verdict

NAME = "sk1_sinkhorn_rate"
CONFIG = {"gaussian_shapes": [[64, 64], [64, 256], [128, 512], [256, 256], [256, 1024], [512, 512]],
          "structured": ["rowcol_mismatch", "heavy_tailed", "heavy_rows", "low_rank"],
          "structured_shape": [256, 512], "rtol": 1e-13, "max_iter": 300, "floor": 1e-12,
          "ruiz_rtol": 1e-12}
QUICK = dict(CONFIG, gaussian_shapes=[[32, 64]], structured=["rowcol_mismatch"],
             structured_shape=[32, 64])


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    mats = [("gaussian", m, n, syn.gaussian(m, n, seed=0, dtype=torch.float64))
            for m, n in cfg["gaussian_shapes"]]
    sm, sn = cfg["structured_shape"]
    mats += [(name, sm, sn, syn.GALLERY[name](sm, sn, seed=0, dtype=torch.float64))
             for name in cfg["structured"]]
    rows, summ = [], []
    for name, m, n, x in mats:
        res = matbal.racs(x, p=2, rtol=cfg["rtol"], max_iter=cfg["max_iter"])
        xh = res.matrix
        s2 = float(matbal.svdvals(xh * xh / math.sqrt(m * n))[1] ** 2)
        rate = asymptotic_rate(res.history.tolist(), floor=cfg["floor"])
        target_dev = max(float((xh.norm(dim=1) / math.sqrt(n) - 1).abs().max()),
                         float((xh.norm(dim=0) / math.sqrt(m) - 1).abs().max()))
        rz = matbal.ruiz(x, rtol=cfg["ruiz_rtol"], max_iter=cfg["max_iter"])
        rz_rate = asymptotic_rate(rz.history.tolist(), floor=cfg["floor"])
        label = f"{name} {m}×{n}"
        for k, h in enumerate(res.history.tolist()):
            rows.append({"matrix": label, "method": "racs2", "sweep": k, "residual": h})
        for k, h in enumerate(rz.history.tolist()):
            rows.append({"matrix": label, "method": "ruiz", "sweep": k, "residual": h})
        summ.append({"matrix": label, "family": name, "m": m, "n": n, "rate": rate, "sigma2_sq": s2,
                     "gaussian_prediction": 2 * (m ** -0.5 + n ** -0.5) ** 2,
                     "sweeps": res.iterations, "target_dev": target_dev, "ruiz_rate": rz_rate,
                     "ruiz_sweeps": rz.iterations})
    ratio = [s["rate"] / s["sigma2_sq"] for s in summ]
    gauss = [s for s in summ if s["family"] == "gaussian"]
    big = [s for s in gauss if min(s["m"], s["n"]) >= 128]  # the formula is asymptotic
    gdev = max((abs(s["sigma2_sq"] / s["gaussian_prediction"] - 1) for s in big), default=0.0)
    gdev_all = {s["matrix"]: s["sigma2_sq"] / s["gaussian_prediction"] for s in gauss}
    tdev = max(s["target_dev"] for s in summ)
    rz = [s["ruiz_rate"] for s in summ]
    ok = (all(0.75 <= r <= 1.1 for r in ratio) and gdev <= 0.10 and tdev <= 1e-10
          and all(0.45 <= r <= 0.55 for r in rz))
    g = max(gauss, key=lambda s: s["m"] * s["n"])
    measured = (
        f"{len(summ)} matrices: measured rate / σ₂(P̃)² = {min(ratio):.2f}–{max(ratio):.2f} (e.g. "
        f"Gaussian {g['m']}×{g['n']}: {g['rate']:.4f} vs σ₂² {g['sigma2_sq']:.4f} vs "
        f"2(m^-½+n^-½)² {g['gaussian_prediction']:.4f}); Gaussian σ₂² / 2(m^-½+n^-½)² = "
        + ", ".join(f"{k.split()[1]}: {v:.2f}" for k, v in gdev_all.items())
        + f" (asymptotic: within {100 * gdev:.0f} % once min(m,n) ≥ 128); limit rows √n / columns √m to {tdev:.0e} in "
        f"{min(s['sweeps'] for s in summ)}–{max(s['sweeps'] for s in summ)} sweeps; Ruiz rate "
        f"{min(rz):.3f}–{max(rz):.3f}"
    )
    claim = verdict("SK-1", measured, "holds" if ok else "fails",
                    criterion="rate/σ₂² ∈ [0.75, 1.1]; Gaussian σ₂² within 10 % of 2(m^-½+n^-½)² "
                              "for min(m,n) ≥ 128; "
                              "targets to 1e-10; Ruiz rate ∈ [0.45, 0.55]")
    return save_results(NAME, rows, cfg, summary={"per_matrix": summ}, claims=[claim],
                        results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
