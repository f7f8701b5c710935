"""Sinkhorn / RACS-2 imbalance per sweep with the σ₂(P̃)² prediction; Ruiz; the stall (SK-1, SK-2).

Reads ``sk1_sinkhorn_rate`` and ``sk2_sinkhorn_stall`` only.
"""
from __future__ import annotations

import numpy as np

from matbal.lab import figure, figure_cli, label_panels, load_results, savefig

NAME = "fig_sinkhorn_rate"
RESULTS = ["sk1_sinkhorn_rate", "sk2_sinkhorn_stall"]


def build(out_dir=None, results_dir=None):
    sk1 = load_results("sk1_sinkhorn_rate", results_dir=results_dir)
    sk2 = load_results("sk2_sinkhorn_stall", results_dir=results_dir)
    fig, (a, b) = figure(1, 2, width=7.0, height=2.8)
    per = sk1.summary["per_matrix"]
    cmap = __import__("matplotlib").colormaps["viridis"]
    floor = sk1.config["floor"]
    for i, s in enumerate(per):
        c = cmap(i / max(1, len(per) - 1))
        rows = sk1.where(matrix=s["matrix"], method="racs2")
        k = np.array([r["sweep"] for r in rows])
        h = np.array([r["residual"] for r in rows])
        a.semilogy(k, h, "o-", ms=2.5, color=c, label=f"{s['matrix']}: $\\sigma_2^2$={s['sigma2_sq']:.3f}")
        # prediction: slope σ₂² per sweep, anchored at sweep 2
        if len(h) > 3:
            kk = np.arange(2, k[-1] + 1)
            a.semilogy(kk, h[2] * s["sigma2_sq"] ** (kk - 2), ":", color=c, lw=0.9)
    rz = sk1.where(matrix=per[-1]["matrix"], method="ruiz")
    a.semilogy([r["sweep"] for r in rz], [r["residual"] for r in rz], "-", color="#d62728", lw=1,
               label=f"Ruiz (∞-norm), {per[-1]['matrix']}")
    kz = np.arange(0, len(rz))
    a.semilogy(kz, rz[2]["residual"] * 0.5 ** (kz - 2), ":", color="#d62728", lw=0.8)
    a.set_ylim(floor / 10, 20)
    a.set_xlim(0, 40)
    a.set_xlabel("sweep")
    a.set_ylabel("imbalance residual")
    a.set_title(r"RACS-2 (solid) vs rate $\sigma_2(\tilde P)^2$ (dotted); Ruiz vs $2^{-k}$", fontsize=7)
    a.legend(fontsize=4.8, loc="upper right")
    cases = sk2.summary["cases"]
    for c in cases:
        rows = sk2.where(case=c["case"])
        k = np.array([r["sweep"] for r in rows], dtype=float)
        h = np.array([r["residual"] for r in rows])
        ok = (k > 0) & (h > 0)
        role = c.get("role", "slow" if c["kind"] == "triangular" else "control")
        tag = (f" (slope {c['loglog_slope']:.2f})" if role == "slow"
               else {"control": " (control)", "infeasible": " (infeasible, unmasked)"}[role])
        b.loglog(k[ok], h[ok], {"slow": "-", "control": "--", "infeasible": ":"}[role], lw=1.1,
                 label=f"{c['case']}{tag}")
    z = sk2.summary["zero_row_col"]
    rows = sk2.where(case=z["case"])
    k = np.array([r["sweep"] for r in rows], dtype=float)
    h = np.array([r["residual"] for r in rows])
    ok = (k > 0) & (h > 0)
    b.loglog(k[ok], h[ok], "k-.", lw=1, label=f"{z['case']} (masked)")
    kk = np.geomspace(1, sk2.config["max_iter"], 50)
    b.loglog(kk, 0.5 / kk, color="gray", lw=0.6, ls=":", label="1/k")
    b.set_ylim(1e-13, 10)
    b.set_xlabel("sweep")
    b.set_ylabel("residual")
    b.set_title("no total support: sublinear stall", fontsize=7)
    b.legend(fontsize=5, loc="lower right")
    label_panels([a, b])
    return savefig(fig, NAME, out_dir=out_dir)


if __name__ == "__main__":
    figure_cli(build)
