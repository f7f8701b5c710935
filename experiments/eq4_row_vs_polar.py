"""EQ-4: when is row normalization R(X) a good stand-in for the polar factor ("zeroth-order whitening")?

R(X) = polar(X) exactly when the rows are orthogonal (XXᵀ diagonal). Two sweeps, float64:
(A) aspect ratio: Gaussian X (m × n, n fixed), m/n from 1/64 to 16 through the square;
(B) row coherence at a fixed wide shape: rows ``x_i = √ρ z + √(1−ρ) g_i`` (``matbal.lab.coherent_rows``).
Two error norms, both stored and both named wherever a number is reported:
- spectral: ‖s·R(X) − polar(X)‖₂ with s = min(1, √(n/m)) (the RMS row norm of polar(X): 1 for wide
  matrices, √(n/m) for tall ones); ‖polar(X)‖₂ = 1, so this is also the relative spectral error;
- relative Frobenius: ‖s·R(X) − polar(X)‖_F / ‖polar(X)‖_F, ‖polar(X)‖_F = √min(m, n) (the RMS
  error over singular directions — always ≤ the spectral one).
Row coherence =
‖R(X)R(X)ᵀ − I‖₂ on the wide side (``orthogonality_error(...).gram_spectral``) and the largest row
cosine. For Gaussian X, RRᵀ − I has edge ≈ 2√(m/n), so the error should be ≈ √(min(m,n)/max(m,n)).
Criterion, fixed before the run: (A) the spectral error increases monotonically toward m = n from
both sides, is ≥ 0.9 at the square and within 2× of √(min/max) wherever min(m, n) ≥ 16, and the
relative Frobenius error is also monotone toward the square; (B) both errors increase
monotonically with ρ. "holds" if all hold, "fails" otherwise.
"""
from __future__ import annotations

import math

import numpy as np
import torch

import matbal
import matbal.synthetic as syn
from matbal.lab import aggregate, coherent_rows, experiment_cli, save_results, verdict

NAME = "eq4_row_vs_polar"
CONFIG = {"n": 256, "m_values": [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
          "coherence_shape": [32, 256], "rhos": [0.0, 0.01, 0.03, 0.1, 0.3, 0.6, 0.9],
          "seeds": [0, 1, 2]}
QUICK = dict(CONFIG, n=32, m_values=[4, 16, 32, 64, 256], coherence_shape=[8, 64],
             rhos=[0.0, 0.1, 0.6], seeds=[0])


def _measure(x: torch.Tensor) -> dict:
    m, n = x.shape
    r = matbal.normalize_rows(x)
    q = matbal.polar(x)
    s = min(1.0, math.sqrt(n / m))
    err = float(torch.linalg.matrix_norm(s * r - q, ord=2))
    err_f = float(torch.linalg.matrix_norm(s * r - q) / math.sqrt(min(m, n)))
    gram = float(matbal.orthogonality_error(r if m <= n else r * s).gram_spectral)
    cos = r @ r.T
    cos.fill_diagonal_(0)
    return {"m": m, "n": n, "aspect": m / n, "error": err, "error_rel_frobenius": err_f,
            "gram_dev": gram,
            "max_row_cosine": float(cos.abs().max()),
            "predicted_gaussian": math.sqrt(min(m, n) / max(m, n))}


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rows = []
    for seed in cfg["seeds"]:
        for m in cfg["m_values"]:
            x = syn.gaussian(m, cfg["n"], seed=seed, dtype=torch.float64)
            rows.append({"sweep": "aspect", "rho": 0.0, "seed": seed, **_measure(x)})
        mc, nc = cfg["coherence_shape"]
        for rho in cfg["rhos"]:
            x = coherent_rows(mc, nc, rho=rho, seed=seed, dtype=torch.float64)
            rows.append({"sweep": "coherence", "rho": rho, "seed": seed, **_measure(x)})
    a = aggregate([r for r in rows if r["sweep"] == "aspect"], by=("aspect",),
                  values=("error", "error_rel_frobenius", "gram_dev", "predicted_gaussian"))
    c = aggregate([r for r in rows if r["sweep"] == "coherence"], by=("rho",),
                  values=("error", "error_rel_frobenius", "gram_dev", "max_row_cosine"))
    a.sort(key=lambda r: r["aspect"])
    c.sort(key=lambda r: r["rho"])
    asp = np.array([r["aspect"] for r in a])
    err = np.array([r["error"] for r in a])
    wide, tall = err[asp <= 1], err[asp >= 1]
    err_f = np.array([r["error_rel_frobenius"] for r in a])
    mono_a = bool(np.all(np.diff(wide) > 0) and np.all(np.diff(tall) < 0))
    mono_af = bool(np.all(np.diff(err_f[asp <= 1]) > 0) and np.all(np.diff(err_f[asp >= 1]) < 0))
    square = float(err[np.argmin(abs(np.log(asp)))])
    ratio = err / np.array([r["predicted_gaussian"] for r in a])
    big = np.array([min(r["aspect"], 1.0) * cfg["n"] >= 16 for r in a])  # min(m, n) ≥ 16
    law_ok = bool(np.all((ratio[big] >= 0.5) & (ratio[big] <= 2.0)))
    mono_c = bool(np.all(np.diff([r["error"] for r in c]) > 0)
                  and np.all(np.diff([r["error_rel_frobenius"] for r in c]) > 0))
    ok = mono_a and mono_af and law_ok and square >= 0.9 and mono_c
    measured = (
        f"Gaussian, n = {cfg['n']}, by m/n: spectral ‖s·R(X) − polar(X)‖₂ / relative Frobenius "
        f"‖s·R(X) − polar(X)‖_F/‖polar(X)‖_F = "
        + ", ".join(f"{r['aspect']:g}: {r['error']:.3f}/{r['error_rel_frobenius']:.3f}" for r in a)
        + f" (spectral = √(min/max) × {ratio[big].min():.2f}–{ratio[big].max():.2f} for min(m,n) ≥ "
        f"16); coherent rows {cfg['coherence_shape'][0]}×{cfg['coherence_shape'][1]}, spectral/"
        f"relative Frobenius: ρ = "
        + ", ".join(f"{r['rho']:g} → {r['error']:.2f}/{r['error_rel_frobenius']:.2f}" for r in c)
    )
    claim = verdict("EQ-4", measured, "holds" if ok else "fails",
                    criterion="spectral error monotone toward square from both sides, ≥ 0.9 at "
                              "the square, within 2× of √(min/max) for min(m,n) ≥ 16; relative "
                              "Frobenius error monotone toward the square; both monotone in ρ")
    summary = {"aspect_medians": a, "coherence_medians": c, "monotone_aspect": mono_a,
               "monotone_aspect_rel_frobenius": mono_af,
               "monotone_coherence": mono_c, "error_at_square": square}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
