"""CA-1: is the CANS closed-form cubic really the optimal odd cubic on [ℓ, u]?

For several intervals: the closed form ``matbal.cans_cubic(ℓ, u)`` (p* = 2/(1 + f_e(ℓ))·f_e,
e² = (ℓ² + ℓu + u²)/3), its worst-case error E* = max_[ℓ,u] |1 − p*| (``worst_case_error``), the
equioscillation check (|1 − p*| = E* at ℓ, e and u with alternating signs), and a numerical
minimax: Nelder–Mead over (a, b) on the same objective from several starts (closed form ±5 %,
classical (1.5, −0.5)). Also the iterated CANS schedule's band on [1e-3, 1] after 1 … 8 steps.
Criterion: no numerical optimum beats E* by more than 1e-7 (relative); equioscillation to 1e-9.
"""
from __future__ import annotations

import math

import scipy.optimize

import matbal
from matbal.lab import experiment_cli, save_results, verdict

NAME = "ca1_cans_cubic"
CONFIG = {"intervals": [[1e-3, 1.0], [1e-2, 1.0], [0.1, 1.0], [0.5, 1.0], [0.8, 1.2], [0.9, 1.1]],
          "starts": [[1.05, 1.0], [0.95, 1.0], [1.0, 1.05], [1.0, 0.95]], "classical": [1.5, -0.5],
          "iterated": {"lo": 1e-3, "hi": 1.0, "steps": [1, 2, 3, 4, 5, 6, 7, 8]}}
QUICK = dict(CONFIG, intervals=[[0.1, 1.0]], starts=[[1.05, 1.0]],
             iterated={"lo": 1e-3, "hi": 1.0, "steps": [3]})


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rows = []
    worst_gap, worst_osc = -math.inf, 0.0
    for lo, hi in cfg["intervals"]:
        s = matbal.cans_cubic(lo, hi)
        a, b = s.coefficients[0]
        e_star = matbal.worst_case_error(s, 1, lo, hi)

        def obj(ab):
            return matbal.worst_case_error([tuple(ab)], 1, lo, hi)

        p = matbal.compose(s, 1)
        e_mid = math.sqrt((lo * lo + lo * hi + hi * hi) / 3)
        errs = [1 - p(lo), 1 - p(e_mid), 1 - p(hi)]  # +E*, −E*, +E* expected
        osc = max(abs(errs[0] - e_star), abs(errs[1] + e_star), abs(errs[2] - e_star))
        starts = [[a * f0, b * f1] for f0, f1 in cfg["starts"]] + [cfg["classical"]]
        best = math.inf
        for x0 in starts:
            res = scipy.optimize.minimize(obj, x0, method="Nelder-Mead",
                                          options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 400})
            best = min(best, float(res.fun))
        gap = (e_star - best) / e_star
        worst_gap, worst_osc = max(worst_gap, gap), max(worst_osc, osc)
        rows.append({"kind": "interval", "lo": lo, "hi": hi, "a": a, "b": b, "closed_form_error": e_star,
                     "numerical_best_error": best, "relative_gain_of_numerical": gap,
                     "equioscillation_dev": osc, "steps": 1})
    it = cfg["iterated"]
    for k in it["steps"]:
        sched = matbal.cans_schedule(it["lo"], it["hi"], k)
        bmin, bmax = matbal.output_band(sched, k, it["lo"], it["hi"])
        rows.append({"kind": "iterated", "lo": it["lo"], "hi": it["hi"], "steps": k,
                     "closed_form_error": max(1 - bmin, bmax - 1)})
    ok = worst_gap <= 1e-7 and worst_osc <= 1e-9
    iv = [r for r in rows if r["kind"] == "interval"]
    last = [r for r in rows if r["kind"] == "iterated"][-1]
    measured = (
        f"{len(iv)} intervals: closed-form error "
        + ", ".join(f"[{r['lo']:g}, {r['hi']:g}] {r['closed_form_error']:.4g}" for r in iv)
        + f"; Nelder–Mead from {len(cfg['starts']) + 1} starts never beats it (best relative gain "
        f"{worst_gap:+.1e}); error equioscillates at ℓ, e, u to {worst_osc:.0e}; iterated CANS on "
        f"[{it['lo']:g}, {it['hi']:g}]: {last['steps']} steps → error {last['closed_form_error']:.2g}"
    )
    claim = verdict("CA-1", measured, "holds" if ok else "fails",
                    criterion="numerical minimax no better than closed form by > 1e-7 relative; "
                              "equioscillation to 1e-9")
    summary = {"worst_relative_gain_of_numerical": worst_gap, "worst_equioscillation_dev": worst_osc}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
