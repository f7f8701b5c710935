"""NM-1: row norms of orthogonalized updates — non-uniform for tall matrices, unit for wide exact polar.

For tall (m > n) and wide (m < n) matrices of several kinds, the row norms of O = polar(X)
(float64) and O = Muon NS5(X) (float32): their coefficient of variation (std/mean) and, for wide
exact polar, the largest |‖o_i‖ − 1|. For tall X the squared row norms of polar(X) are the
leverage scores of X's column space (they sum to n), equal only if that space is "incoherent".
Criterion: wide exact polar rows are unit to 1e-10; tall exact polar has row-norm CV ≥ 0.05 for
every matrix (graded: "holds under conditions" when only some matrices reach it). Synthetic
matrices only: NorMuon's observation is about trained momenta (the training experiments).
"""
from __future__ import annotations

import matbal
import matbal.synthetic as syn
from matbal.lab import experiment_cli, save_results, verdict

NAME = "nm1_row_norms"
CONFIG = {"tall": [1024, 256], "wide": [256, 1024], "seeds": [0, 1, 2],
          "matrices": ["gaussian", "heavy_rows", "heavy_cols", "power_law", "low_rank", "heavy_tailed"]}
QUICK = dict(CONFIG, tall=[128, 32], wide=[32, 128], seeds=[0], matrices=["gaussian", "heavy_rows"])


def _stats(o) -> dict:
    r = o.double().norm(dim=1)
    return {"cv": float(r.std(unbiased=False) / r.mean()), "max_dev_from_1": float((r - 1).abs().max()),
            "min": float(r.min()), "max": float(r.max()), "mean_sq": float(r.pow(2).mean())}


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rows = []
    for orient in ("tall", "wide"):
        m, n = cfg[orient]
        for name in cfg["matrices"]:
            for seed in cfg["seeds"]:
                x = syn.GALLERY[name](m, n, seed=seed)
                for method, o in (("polar", matbal.polar(x)), ("muon_ns5", matbal.newton_schulz(x))):
                    rows.append({"orientation": orient, "m": m, "n": n, "matrix": name,
                                 "seed": seed, "method": method, **_stats(o)})
    tall = [r for r in rows if r["orientation"] == "tall" and r["method"] == "polar"]
    wide = [r for r in rows if r["orientation"] == "wide" and r["method"] == "polar"]
    wide_ns = [r for r in rows if r["orientation"] == "wide" and r["method"] == "muon_ns5"]
    wide_dev = max(r["max_dev_from_1"] for r in wide)
    tall_cv = min(r["cv"] for r in tall)
    by = {}
    for r in tall:
        by.setdefault(r["matrix"], []).append(r["cv"])
    uneven = [k for k, v in by.items() if min(v) >= 0.05]
    even = [k for k in by if k not in uneven]
    measured = (
        f"wide {cfg['wide'][0]}×{cfg['wide'][1]} exact polar: every row unit to {wide_dev:.0e}; "
        f"tall {cfg['tall'][0]}×{cfg['tall'][1]} exact polar row-norm CV: "
        + ", ".join(f"{k} {min(v):.2f}" + (f"–{max(v):.2f}" if max(v) - min(v) >= 0.005 else "")
                    for k, v in by.items())
        + f" (row norms² are leverage scores, mean n/m = {cfg['tall'][1] / cfg['tall'][0]:.2f}); Muon "
        f"NS5 makes wide rows non-unit too (max |‖o_i‖−1| {max(r['max_dev_from_1'] for r in wide_ns):.2f})"
    )
    if wide_dev < 1e-10 and not even:
        v, cond = "holds", None
    elif wide_dev < 1e-10 and uneven:
        v, cond = "holds under conditions", (
            f"tall row norms are clearly non-uniform (CV ≥ 0.05) only when rows are heterogeneous "
            f"({', '.join(uneven)}); for incoherent column spaces ({', '.join(even)}) they are "
            f"nearly uniform (CV ≤ {max(max(by[k]) for k in even):.2f})")
    else:
        v, cond = "fails", None
    claim = verdict("NM-1", measured, v, conditions=cond,
                    criterion="wide polar rows unit to 1e-10; tall polar row-norm CV ≥ 0.05 for all")
    summary = {"wide_polar_max_dev": wide_dev, "tall_polar_min_cv": tall_cv,
               "tall_polar_cv_by_matrix": {k: [min(v), max(v)] for k, v in by.items()}}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
