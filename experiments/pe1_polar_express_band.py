"""PE-1: Polar Express is minimax-optimal per step count; 5/6 steps map [1e-3, 1] into
[0.84, 1.12] / [0.993, 1.001].

Optimality is tested against the exact greedy minimax design (``matbal.design_schedule``: Remez in
50 digits, arXiv 2505.16932 Thm. 4.1 — the greedy composition is optimal over all compositions),
not against random perturbations alone (those cannot find the coordinated move that a minimax
improvement needs).

(a) Bands of ``polar_express`` (published list + the reference code's 1.01 safety and 1.01
    normalization) at 5 and 6 steps, and the worst error of every quintic schedule in matbal.
(b) Construction: ``design_schedule(1e-3, steps=8, cushion=0.02407…)`` against the published list
    (relative difference of the first 6 steps), i.e. the list is the paper's cushioned greedy design.
(c) Optimum: ``design_schedule(1e-3, steps=k)`` (no cushion, safety or margin); its worst error on
    [1e-3, 1] from the predictor (``output_band``), every step certified by sympy equioscillation.
(d) Perturbation probes (relative sizes 1e-4 … 1e-2, all coefficients) around the optimum and
    around the published list (no safety).

Rule, fixed before the run (k ∈ {5, 6}; E_opt, E_pub, E_pe = worst error on [1e-3, 1] of the
optimum, the published list without safety, the shipped ``polar_express``):
- base := the PE bands are within 0.005 of the published ones, PE has the smallest worst error of
  the registry schedules at both k, the paper's settings reproduce the published steps 1–6 to
  1e-12, every step of the optimum equioscillates (m + 1 = 4 alternating points, spread ≤ 1e-12),
  and no perturbation of the optimum beats E_opt by > 1e-9;
- "holds" if base and E_pub ≤ E_opt·(1 + 1e-6) at both k (the published list *is* minimax-optimal);
- "holds under conditions" if base and E_pub > E_opt·(1 + 1e-6) at some k (optimal only as the
  cushioned, safety-margined greedy design; the measured gap is reported);
- "fails" if base is violated.
"""
from __future__ import annotations

import numpy as np

import matbal
from matbal.kernels.orthogonalize import POLAR_EXPRESS_PUBLISHED, equioscillation
from matbal.kernels.orthogonalize.design import POLAR_EXPRESS_CUSHION
from matbal.lab import experiment_cli, save_results, verdict

NAME = "pe1_polar_express_band"
CONFIG = {"lo": 1e-3, "steps": [5, 6], "published": {"5": [0.84, 1.12], "6": [0.993, 1.001]},
          "schedules": ["polar_express", "muon", "you", "you6", "quintic_pade"],
          "cushion": POLAR_EXPRESS_CUSHION, "construction_steps": 8,
          "perturbations": 120, "perturbation_sizes": [1e-4, 1e-3, 1e-2], "seed": 0,
          "optimal_rtol": 1e-6, "improve_tol": 1e-9, "spread_tol": 1e-12, "reproduce_rtol": 1e-12}
QUICK = dict(CONFIG, perturbations=6, perturbation_sizes=[1e-3])


def _row(kind, schedule, k, size=0.0, band=(None, None), err=None, step=None, note=""):
    """One CSV row; ``worst_error`` holds the relative difference (construction) or the
    equioscillation spread (equioscillation) for those kinds, ``step`` their step index."""
    return {"kind": kind, "schedule": schedule, "steps": k, "step": step, "size": size,
            "band_min": band[0], "band_max": band[1], "worst_error": err, "note": note}


def _perturb(rows, rng, base, label, k, lo, cfg):
    base = np.array(base, dtype=np.float64)
    n = cfg["perturbations"] // len(cfg["perturbation_sizes"])
    errs = []
    for size in cfg["perturbation_sizes"]:
        for _ in range(n):
            co = base * (1 + size * rng.standard_normal(base.shape))
            with np.errstate(over="ignore", invalid="ignore"):  # a bad draw may diverge: inf
                e = matbal.worst_case_error([tuple(c) for c in co], k, lo)
            errs.append(e)
            rows.append(_row("perturbed", label, k, size, err=e))
    return errs


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    lo, ks = cfg["lo"], cfg["steps"]
    rng = np.random.default_rng(cfg["seed"])
    rows = []
    # (a) registry schedules
    for k in ks:
        for name in cfg["schedules"]:
            sched = matbal.get_schedule(name)
            if not sched.extends and k > len(sched.coefficients):
                continue
            b = matbal.output_band(name, k, lo)
            rows.append(_row("schedule", name, k, band=b, err=max(1 - b[0], b[1] - 1)))
    # (b) the paper's construction
    built = matbal.design_schedule(lo, steps=cfg["construction_steps"], cushion=cfg["cushion"])
    rel = [float(np.max(np.abs(np.array(c) / np.array(p) - 1)))
           for c, p in zip(built.coefficients, POLAR_EXPRESS_PUBLISHED)]
    for t, r in enumerate(rel):
        rows.append(_row("construction", "design(cushion)", cfg["construction_steps"], err=r,
                         step=t + 1, note="relative difference to published step"))
    # (c) optimum and (d) perturbations
    e_opt, e_pub, better_opt, better_pub, n_pert, eq_ok = {}, {}, {}, {}, 0, True
    for k in ks:
        opt = matbal.design_schedule(lo, steps=k)
        e_opt[k] = opt.worst_error
        rows.append(_row("optimum", "design_schedule", k, band=opt.band, err=opt.worst_error))
        for t, (c, (l, u)) in enumerate(zip(opt.coefficients, opt.intervals)):
            eq = equioscillation(c, l, u)
            eq_ok &= eq.alternates and len(eq.points) == 4 and eq.spread <= cfg["spread_tol"]
            rows.append(_row("equioscillation", "design_schedule", k, err=eq.spread, step=t + 1,
                             note=f"step {t + 1}: level {eq.level:.6g}, "
                             f"{len(eq.points)} points, alternates={eq.alternates}"))
        pub = [tuple(c) for c in POLAR_EXPRESS_PUBLISHED[:k]]
        pb = matbal.output_band(pub, k, lo)
        e_pub[k] = max(1 - pb[0], pb[1] - 1)
        rows.append(_row("published", "pe_published", k, band=pb, err=e_pub[k]))
        errs_o = _perturb(rows, rng, opt.coefficients, "optimum", k, lo, cfg)
        errs_p = _perturb(rows, rng, pub, "pe_published", k, lo, cfg)
        better_opt[k] = sum(e < e_opt[k] - cfg["improve_tol"] for e in errs_o)
        better_pub[k] = sum(e < e_pub[k] - cfg["improve_tol"] for e in errs_p)
        n_pert = len(errs_o)

    sched = {(r["schedule"], r["steps"]): r for r in rows if r["kind"] == "schedule"}
    pe = {k: sched[("polar_express", k)] for k in ks}
    pubb = cfg["published"]
    bands_ok = all(abs(pe[k][f] - v) < 5e-3 for k in ks
                   for f, v in zip(("band_min", "band_max"), pubb[str(k)]))
    best_ok = all(min((r for (s, kk), r in sched.items() if kk == k),
                      key=lambda r: r["worst_error"])["schedule"] == "polar_express" for k in ks)
    built_ok = max(rel[:6]) <= cfg["reproduce_rtol"]
    opt_ok = eq_ok and all(v == 0 for v in better_opt.values())
    base = bands_ok and best_ok and built_ok and opt_ok
    optimal = all(e_pub[k] <= e_opt[k] * (1 + cfg["optimal_rtol"]) for k in ks)
    result = "fails" if not base else "holds" if optimal else "holds under conditions"

    others = ", ".join(f"{s} {r['worst_error']:.3g}" for (s, kk), r in sched.items()
                       if kk == 5 and s != "polar_express")
    nums = "; ".join(f"{k} steps: optimum {e_opt[k]:.4g}, published list {e_pub[k]:.4g} "
                     f"(+{100 * (e_pub[k] / e_opt[k] - 1):.0f}%), shipped PE with 1.01 safety "
                     f"{pe[k]['worst_error']:.4g}" for k in ks)
    measured = (
        f"bands on [1e-3, 1]: 5 steps [{pe[ks[0]]['band_min']:.4f}, {pe[ks[0]]['band_max']:.4f}], "
        f"6 steps [{pe[ks[-1]]['band_min']:.4f}, {pe[ks[-1]]['band_max']:.4f}]; worst error at 5 "
        f"steps PE {pe[ks[0]]['worst_error']:.3g} vs {others}; the published list is the greedy "
        f"design with cushion {cfg['cushion']:.4g} (steps 1–6 reproduced to {max(rel[:6]):.1e}); "
        f"exact greedy minimax (design_schedule, equioscillation certified) — {nums}; random "
        f"perturbations better than the optimum: {sum(better_opt.values())} of "
        f"{n_pert * len(ks)}, than the published list: {sum(better_pub.values())} of "
        f"{n_pert * len(ks)} (relative {min(cfg['perturbation_sizes']):g}–"
        f"{max(cfg['perturbation_sizes']):g})"
    )
    conditions = None
    if result == "holds under conditions":
        gaps = ", ".join(f"{e_pub[k]:.4g} vs optimum {e_opt[k]:.4g} at {k} steps" for k in ks
                         if e_pub[k] > e_opt[k] * (1 + cfg["optimal_rtol"]))
        conditions = (
            "minimax optimality (the greedy theorem) belongs to the exact greedy Remez design, "
            "which matbal.design_schedule computes; the published list is that design with a "
            f"cushion ({cfg['cushion']:.4g}), shipped with the 1.01 safety and normalization, and "
            f"is not minimax-optimal on [1e-3, 1]: worst error {gaps} (shipped with safety: "
            + " / ".join(f"{pe[k]['worst_error']:.4g}" for k in ks) + "); the bands hold")
    claim = verdict(
        "PE-1", measured, result, conditions=conditions,
        criterion="base: PE bands within 0.005 of published, PE best registry schedule at 5/6 "
                  "steps, paper settings reproduce published steps 1–6 to 1e-12, optimum "
                  "equioscillates (4 points, spread ≤ 1e-12) and no perturbation beats it by "
                  "> 1e-9; holds iff also E_pub ≤ E_opt(1+1e-6) at 5 and 6 steps, holds under "
                  "conditions if not; fails if base is violated")
    summary = {"band5": [pe[ks[0]]["band_min"], pe[ks[0]]["band_max"]],
               "band6": [pe[ks[-1]]["band_min"], pe[ks[-1]]["band_max"]],
               "optimum_worst_error": e_opt, "published_worst_error": e_pub,
               "shipped_worst_error": {k: pe[k]["worst_error"] for k in ks},
               "construction_max_rel_diff_steps_1_6": max(rel[:6]),
               "perturbations_better_than_optimum": better_opt,
               "perturbations_better_than_published": better_pub,
               "perturbations_per_k": n_pert}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
