"""SK-2: does a zero row/column, or a zero pattern without total support, stall Sinkhorn?

(a) No total support: upper-triangular all-ones n × n (only the diagonal lies on a positive
diagonal; ``[[1, 1], [0, 1]]`` for n = 2). ``matbal.sinkhorn_knopp`` to 2000 sweeps; the residual
history and its log-log slope over sweeps 100 … 2000 (−1 = sublinear 1/k). Control: a dense
positive matrix of the same size (linear).
(b) Zero row and column: a Gaussian matrix with one row and one column set to zero, ``racs``
(p = 2). matbal detects them, gives them scale 0, and balances the live block.
Criterion: (a) every no-total-support case still has residual > 1e-4 after 2000 sweeps with a
log-log slope in [−1.2, −0.5] (sublinear), the control converges to 1e-12 in < 100 sweeps, every
result is finite; (b) zero rows/columns are reported and the live block converges linearly.
"""
from __future__ import annotations

import numpy as np
import torch

import matbal
import matbal.synthetic as syn
from matbal.lab import asymptotic_rate, experiment_cli, loglog_slope, save_results, verdict

NAME = "sk2_sinkhorn_stall"
CONFIG = {"sizes": [2, 8, 32], "max_iter": 2000, "fit_from": 100, "zero_shape": [64, 128],
          "rtol": 1e-12}
QUICK = dict(CONFIG, sizes=[2], max_iter=300, fit_from=30, zero_shape=[16, 32])


def _log_sample(h, n_keep=60):
    k = np.unique(np.concatenate([np.arange(min(len(h), 20)),
                                  np.geomspace(1, len(h) - 1, n_keep).astype(int)]))
    return [(int(i), float(h[i])) for i in k if i < len(h)]


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rows, cases = [], []
    for n in cfg["sizes"]:
        for kind, b in (("triangular", torch.triu(torch.ones(n, n, dtype=torch.float64))),
                        ("dense", syn.gaussian(n, n, seed=n, dtype=torch.float64).abs() + 0.1)):
            res = matbal.sinkhorn_knopp(b, max_iter=cfg["max_iter"], rtol=cfg["rtol"], warn=False)
            h = res.history.numpy()
            k = np.arange(len(h))
            sel = k >= cfg["fit_from"]
            slope = loglog_slope(k[sel], h[sel]) if sel.sum() > 2 else float("nan")
            label = f"{kind} {n}×{n}"
            rows += [{"case": label, "sweep": i, "residual": v} for i, v in _log_sample(h)]
            cases.append({"case": label, "kind": kind, "n": n, "sweeps": res.iterations,
                          "converged": res.converged, "final_residual": float(h[-1]),
                          "loglog_slope": slope, "finite": bool(torch.isfinite(res.matrix).all()),
                          "off_diagonal_mass": float(res.matrix.triu(1).sum())})
    m, n = cfg["zero_shape"]
    x = syn.gaussian(m, n, seed=0, dtype=torch.float64)
    x[3] = 0
    x[:, 5] = 0
    res = matbal.racs(x, rtol=cfg["rtol"], max_iter=cfg["max_iter"], warn=False)
    rows += [{"case": f"zero row+col {m}×{n}", "sweep": i, "residual": float(v)}
             for i, v in enumerate(res.history.tolist())]
    zr = {"case": f"zero row+col {m}×{n}", "sweeps": res.iterations, "converged": res.converged,
          "zero_rows": int(res.zero_rows.sum()), "zero_cols": int(res.zero_cols.sum()),
          "finite": bool(torch.isfinite(res.matrix).all()),
          "rate": asymptotic_rate(res.history.tolist(), floor=1e-13)}
    tri = [c for c in cases if c["kind"] == "triangular"]
    dense = [c for c in cases if c["kind"] == "dense"]
    stall = all(c["final_residual"] > 1e-4 and -1.2 <= c["loglog_slope"] <= -0.5 for c in tri)
    ctrl = all(c["converged"] and c["sweeps"] < 100 for c in dense)
    finite = all(c["finite"] for c in cases) and zr["finite"]
    masked = zr["zero_rows"] == 1 and zr["zero_cols"] == 1 and zr["converged"]
    measured = (
        "no total support (upper-triangular ones): residual after "
        f"{cfg['max_iter']} sweeps "
        + ", ".join(f"n={c['n']}: {c['final_residual']:.1e} (slope {c['loglog_slope']:.2f})" for c in tri)
        + f" — sublinear ~1/k, never converged; dense controls converge in "
        f"{max(c['sweeps'] for c in dense)} sweeps; all results finite. Zero row + column: "
        f"detected ({zr['zero_rows']} row, {zr['zero_cols']} column, scale 0) and the live block "
        f"converges linearly (rate {zr['rate']:.3f}, {zr['sweeps']} sweeps)"
    )
    if stall and ctrl and finite and masked:
        v, cond = "holds under conditions", (
            "the stall is real for patterns without total support; an all-zero row/column makes "
            "the target infeasible, but once detected and masked (matbal does this) there is no stall")
    elif stall and ctrl and finite:
        v, cond = "holds", None
    else:
        v, cond = "fails", None
    claim = verdict("SK-2", measured, v, conditions=cond,
                    criterion="triangular: residual > 1e-4 after max_iter, log-log slope in "
                              "[−1.2, −0.5]; dense control < 100 sweeps; finite; zero row/col masked")
    return save_results(NAME, rows, cfg, summary={"cases": cases, "zero_row_col": zr},
                        claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
