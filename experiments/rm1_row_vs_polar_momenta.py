"""RM-1: is row normalization R(M) a good stand-in for orthogonalization on transformer momenta?

Momenta recorded in the Muon-trained run of ``matbal.lab.training.RECORDING`` (shared with REG-2;
the default char GPT, 400 steps): the Nesterov momentum ``M`` that Muon orthogonalizes (and RMNP
row-normalizes), every 10 steps, all 8 hidden matrices. Per matrix, as in EQ-4: the spectral error
``‖s·R(M) − polar(M)‖₂`` with ``s = min(1, √(n/m))``, the cosines ``cos(R(M), polar(M))``,
``cos(R(M), NS5(M))``, ``cos(NS5(M), polar(M))``, row coherence of ``R(M)``, and the spectrum of
``M`` (x_min, the second-smallest ``σ_{r−1}/‖M‖_F``, stable rank). Baseline: Gaussian matrices of
the same shapes (EQ-4's √(min/max) rule). ``polar`` drops singular values below ``1e-6·σ₁``
(``matbal.polar(rtol=1e-6)``): the gradients of a pre-LayerNorm GPT are rank-deficient by
construction — ``c_proj`` outputs feed the residual stream, whose gradient is orthogonal to the
all-ones vector (every reader is a LayerNorm), so their left null vector is ``1/√m`` exactly; the
inputs of ``c_attn``/``c_fc`` are LayerNorm outputs ``γ ⊙ x̂`` with ``x̂ ⊥ 1``, so their right null
vector is ``∝ 1/γ`` at each step — and that direction carries no signal.

Width series (the claim is about wide layers: R(M) ≈ polar(M) needs nearly orthogonal rows, EQ-4,
as the rows of a wide random-like matrix are; RMNP, arXiv 2603.20527): the same analysis on the short Muon runs of
``matbal.lab.training.WIDTH_RECORDING`` at widths 64, 128, 256 (200 steps, one lr for all widths,
momenta and gradients every 10 steps; SC-1 reads the same runs), and the trend with width per
layer type: a line through the median cos(R, polar) against log width
(``matbal.lab.stats.fit_trend``, 95 % bootstrap over the recorded steps) and the width at which
it would reach ``min_cos`` (a straight-line extrapolation), and likewise for the error over
√(min/max).

Criterion (pre-registered): for a layer type, "R ≈ orthogonalization" if the median over recorded
steps ≥ ``from_step`` of cos(R(M), polar(M)) ≥ 0.9 and of ‖s·R(M) − polar(M)‖₂ ≤ 2·√(min/max)
(no worse than twice a Gaussian matrix's error, EQ-4). Applied to the 400-step recording and to
each width of the series: all layer types → that recording holds; some → holds under conditions;
none → fails. Overall: holds if every recording holds; fails if no layer type passes in any
recording; otherwise holds under conditions (naming where it passes).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

import matbal.synthetic as syn
from matbal.instruments.store import MatrixStore
from matbal.lab import experiment_cli, load_results, save_results, verdict
from matbal.lab.momenta import row_vs_polar, spectrum_summary
from matbal.lab.stats import fit_trend
from matbal.lab.training import (LAYER_TYPES, RECORDING, RECORDING_QUICK, WIDTH_RECORDING,
                                 WIDTH_RECORDING_QUICK, layer_type, recorded_gpt,
                                 recorded_gpt_at_width)

NAME = "rm1_row_vs_polar_momenta"
CONFIG = {"recording": RECORDING, "stream": "muon", "polar_rtol": 1e-6, "from_step": 20,
          "min_cos": 0.9, "max_err_ratio": 2.0, "gaussian_seeds": [0, 1, 2],
          "width_recording": WIDTH_RECORDING, "widths": [64, 128, 256], "width_from_step": 20,
          "resamples": 2000, "max_extrapolation": 16}
QUICK = dict(CONFIG, recording=RECORDING_QUICK, from_step=2, gaussian_seeds=[0],
             width_recording=WIDTH_RECORDING_QUICK, widths=[16, 32], width_from_step=3,
             resamples=200)


def _measure(store_path, run, cfg, **tags):
    """One row per recorded momentum of ``run`` (with the gradient of the same step)."""
    rows = []
    with MatrixStore(store_path, mode="r") as store:
        moms = store.query(run=run, kind="momentum")
        for r, mom in zip(moms, store.get_many(moms, verify=False)):
            (g,) = store.get_many(store.query(run=run, kind="grad", step=r.step,
                                              layer=r.layer), verify=False)
            m, n = mom.shape
            overlap = None
            if m <= n:  # c_proj: is the gradient's last left singular vector the all-ones one?
                u_min = torch.linalg.svd(g.double())[0][:, m - 1]
                overlap = float((u_min @ torch.ones(m, dtype=torch.float64)).abs() / math.sqrt(m))
            rows.append({**tags, "step": r.step, "layer": r.layer,
                         "layer_type": layer_type(r.layer),
                         "m": m, "n": n, "gaussian_rule": math.sqrt(min(m, n) / max(m, n)),
                         **row_vs_polar(mom, cfg["polar_rtol"]), **spectrum_summary(mom),
                         **{f"grad_{k}": v for k, v in spectrum_summary(g).items()},
                         "grad_left_null_overlap_ones": overlap})
    return rows


def _verdict_of(ok):
    good = [lt for lt, v in ok.items() if v]
    if len(good) == len(ok):
        return "holds", good
    return ("holds under conditions" if good else "fails"), good


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rec = recorded_gpt(cfg["recording"], cfg["stream"], results_dir=results_dir)
    w0 = cfg["recording"]["model"]["n_embd"]
    rows = _measure(rec["store"], cfg["stream"], cfg, series="main", width=w0)
    wruns = {}
    for w in cfg["widths"]:
        wr = recorded_gpt_at_width(cfg["width_recording"], w, results_dir=results_dir)
        wruns[w] = {k: wr[k] for k in ("final_val_loss", "lr", "reused")}
        rows += _measure(wr["store"], Path(wr["run_dir"]).name.rsplit("-s", 1)[0], cfg,
                         series="width", width=w)
    shapes = sorted({(r["m"], r["n"]) for r in rows})
    gauss = {}
    for m, n in shapes:
        vals = [row_vs_polar(syn.gaussian(m, n, seed=s, dtype=torch.float64), cfg["polar_rtol"])
                for s in cfg["gaussian_seeds"]]
        vals = [{**v, **spectrum_summary(syn.gaussian(m, n, seed=sd, dtype=torch.float64))}
                for v, sd in zip(vals, cfg["gaussian_seeds"])]
        gauss[(m, n)] = {k: float(np.median([v[k] for v in vals])) for k in vals[0]}
        rows.append({"series": "gaussian", "width": None, "step": None, "layer": "gaussian",
                     "layer_type": "gaussian", "m": m, "n": n,
                     "gaussian_rule": math.sqrt(min(m, n) / max(m, n)), **gauss[(m, n)]})

    late = [r for r in rows if r["series"] == "main" and r["step"] >= cfg["from_step"]]
    types, ok = _per_type(late, cfg, gauss)
    per_width = {}
    for w in cfg["widths"]:
        t, o = _per_type([r for r in rows if r["series"] == "width" and r["width"] == w
                          and r["step"] >= cfg["width_from_step"]], cfg, gauss)
        per_width[w] = {"per_type": t, "ok": o, "verdict": _verdict_of(o)[0]}
    trend = {}
    for lt in types:
        smp = {k: [[r[k] / (r["gaussian_rule"] if k == "error" else 1.0) for r in rows
                    if r["series"] == "width" and r["width"] == w and r["layer_type"] == lt
                    and r["step"] >= cfg["width_from_step"]] for w in cfg["widths"]]
               for k in ("cos_r_polar", "error")}
        kw = {"logy": False, "resamples": cfg["resamples"]}
        trend[lt] = {"cos_r_polar": fit_trend(cfg["widths"], smp["cos_r_polar"],
                                              level=cfg["min_cos"], direction="up", **kw),
                     "error_over_rule": fit_trend(cfg["widths"], smp["error"],
                                                  level=cfg["max_err_ratio"], direction="down",
                                                  **kw)}
    result, good = _verdict_of(ok)
    passes = ([f"the {w0}-wide 400-step recording: {', '.join(good)}"] if good else []) + \
        [f"width {w}: {', '.join(_verdict_of(v['ok'])[1])}" for w, v in per_width.items()
         if _verdict_of(v["ok"])[1]]
    if result == "holds" and all(v["verdict"] == "holds" for v in per_width.values()):
        conditions = None
    elif passes:
        result, conditions = "holds under conditions", "only for " + "; ".join(passes)
    else:
        result, conditions = "fails", None
    try:  # EQ-4's stored Gaussian medians (n = 256) for the same aspect ratios, if present
        eq4 = {round(r["aspect"], 6): r["error"] for r in
               load_results("eq4_row_vs_polar", results_dir=None).summary["aspect_medians"]}
    except FileNotFoundError:
        eq4 = {}

    def part(lt):
        t = types[lt]
        m, n = t["shape"]
        ref = eq4.get(round(m / n, 6))
        return (f"{lt} {m}×{n}: error {t['error']:.2f} [{t['error_p10']:.2f}, "
                f"{t['error_p90']:.2f}] vs Gaussian {t['gaussian_error']:.2f} (√(min/max) "
                f"{t['gaussian_rule']:.2f}{f', EQ-4 {ref:.2f}' if ref is not None else ''}), "
                f"cos(R, polar) {t['cos_r_polar']:.2f} [{t['cos_p10']:.2f}, {t['cos_p90']:.2f}] "
                f"vs Gaussian {t['gaussian_cos_r_polar']:.2f}, cos(NS5, polar) "
                f"{t['cos_ns5_polar']:.2f}, stable rank {t['stable_rank']:.1f}, mean |row cos| "
                f"{t['mean_abs_row_cos']:.2f}")

    def wpart(lt):
        f = trend[lt]["cos_r_polar"]
        c, (lo, hi) = f["crossing"], f["crossing_ci"]
        cap = cfg["max_extrapolation"] * cfg["widths"][-1]
        g = (lambda v: "never" if not math.isfinite(v) else f"> {cap:g}" if v > cap
             else f"{v:.3g}")
        meds = " → ".join(f"{per_width[w]['per_type'][lt]['cos_r_polar']:.2f}"
                          for w in cfg["widths"])
        errs = " → ".join(f"{per_width[w]['per_type'][lt]['error_over_rule']:.1f}"
                          for w in cfg["widths"])
        ln2 = math.log(2)
        return (f"{lt}: cos(R, polar) {meds}, {f['slope'] * ln2:+.3f} per width doubling "
                f"[{f['slope_ci'][0] * ln2:+.3f}, {f['slope_ci'][1] * ln2:+.3f}], reaches {cfg['min_cos']} "
                f"at width {g(c)} [{g(lo)}, {g(hi)}]; error/√(min/max) {errs}")

    rc, wrc = cfg["recording"], cfg["width_recording"]
    ov = [t["grad_left_null_overlap_ones"] for t in types.values()
          if t["grad_left_null_overlap_ones"] is not None]
    measured = (
        f"Muon-run momenta of the {rc['model']['n_layer']}-layer width-{rc['model']['n_embd']} "
        f"char GPT, steps {cfg['from_step']}–{rc['steps']} (median [10th, 90th pct]): "
        + "; ".join(part(lt) for lt in types)
        + ". x_min of the momenta (median): "
        + ", ".join(f"{lt} {types[lt]['x_min']:.0e} (σ_(r−1)/‖M‖_F {types[lt]['x_min2']:.0e})"
                    for lt in types)
        + " (single-step gradients all have one null direction at rounding level, x_min "
        + f"{min(t['grad_x_min'] for t in types.values()):.0e}–"
        + f"{max(t['grad_x_min'] for t in types.values()):.0e}, by construction of "
        f"pre-LayerNorm blocks"
        + (f" — for c_proj it is the left singular vector 1/√m, to 1 − {1 - min(ov):.0e} —"
           if ov else "")
        + " not a finding). Across widths "
        + ", ".join(map(str, cfg["widths"]))
        + f" ({wrc['steps']}-step Muon runs at lr {wrc['lr']:g}, steps ≥ "
        f"{cfg['width_from_step']}; verdict per width: "
        + ", ".join(f"{w} {v['verdict']}" for w, v in per_width.items()) + "): "
        + "; ".join(wpart(lt) for lt in trend)
        + " (widths beyond the last are straight-line extrapolations in ln(width))")
    claim = verdict("RM-1", measured, result, conditions=conditions,
                    criterion=f"per layer type, median over steps ≥ {cfg['from_step']} (400-step "
                              f"recording) or ≥ {cfg['width_from_step']} (width series): "
                              f"cos(R(M), polar(M)) ≥ {cfg['min_cos']} and ‖s·R(M) − polar(M)‖₂ ≤ "
                              f"{cfg['max_err_ratio']:g}·√(min/max) (EQ-4's Gaussian rule); holds "
                              f"if every layer type passes in the 400-step recording and at every "
                              f"width, fails if none passes anywhere")
    summary = {"per_type": types, "ok": ok, "eq4_gaussian_by_aspect": eq4,
               "per_width": per_width, "width_trend": trend, "width_runs": wruns,
               "run": {k: rec[k] for k in ("final_val_loss", "lr", "reused", "run_dir")}}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


def _per_type(late, cfg, gauss):
    """Medians per layer type over the rows ``late`` and the pre-registered rule's pass/fail."""
    types, ok = {}, {}
    for lt in LAYER_TYPES:
        rs = [r for r in late if r["layer_type"] == lt]
        if not rs:
            continue
        med = {k: float(np.median([r[k] for r in rs])) if rs[0][k] is not None else None
               for k in ("error", "cos_r_polar", "cos_r_ns5", "cos_ns5_polar", "gram_dev",
                         "mean_abs_row_cos", "x_min", "x_min2", "stable_rank", "grad_x_min",
                         "grad_x_min2", "grad_left_null_overlap_ones")}
        m, n = rs[0]["m"], rs[0]["n"]
        med.update({"shape": [m, n], "gaussian_rule": rs[0]["gaussian_rule"],
                    "gaussian_error": gauss[(m, n)]["error"],
                    "gaussian_cos_r_polar": gauss[(m, n)]["cos_r_polar"],
                    "gaussian_stable_rank": gauss[(m, n)]["stable_rank"],
                    "error_p10": float(np.percentile([r["error"] for r in rs], 10)),
                    "error_p90": float(np.percentile([r["error"] for r in rs], 90)),
                    "cos_p10": float(np.percentile([r["cos_r_polar"] for r in rs], 10)),
                    "cos_p90": float(np.percentile([r["cos_r_polar"] for r in rs], 90))})
        med["error_over_rule"] = med["error"] / med["gaussian_rule"]
        types[lt] = med
        ok[lt] = med["cos_r_polar"] >= cfg["min_cos"] and \
            med["error"] <= cfg["max_err_ratio"] * med["gaussian_rule"]
    return types, ok


if __name__ == "__main__":
    experiment_cli(main)
