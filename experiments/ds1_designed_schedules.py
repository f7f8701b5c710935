"""DS-1: a Newton–Schulz schedule designed for the measured x_min of recorded momenta reaches the
fixed Muon schedule's worst-case error in fewer steps — steps saved at equal worst-case error.

Design (Polar Express, arXiv 2505.16932, Thm. 4.1 + App. D; CANS, arXiv 2506.10935, for the idea of
designing the polynomial for the measured lower bound ℓ of the spectrum): for an interval
``[ℓ, 1]`` of normalized singular values, ``design_schedule(ℓ, steps=k)`` is the greedy minimax
quintic schedule, optimal over all k-step compositions; its worst-case error
``E_k(ℓ) = max_{x∈[ℓ,1]} |1 − P_k(x)|`` comes from the exact scalar predictor (``output_band``).

Measured x_min: momenta recorded from the Muon-trained char GPT (``matbal.lab.training.RECORDING``:
the Nesterov NS input, every 10 steps of 400, all 8 hidden matrices). ``x_min = σ_min/‖M‖_F`` is the
smallest singular value of Muon's NS input ``X₀ = M/‖M‖_F`` (arXiv 2603.28254). Per layer type ℓ =
its 5th percentile (``CONFIG["quantile"]``; the minimum is reported too), through the public helper
``matbal.schedule_for(matrices, quantile=0.05, steps=8, max_error=E_muon5(ℓ))``; plus the common
ℓ = 1e-3 and a researcher's ℓ = 1e-4.

(a) Worst case: for each ℓ, ``E_k(ℓ)`` for k = 1…8 against the fixed schedules on the same ``[ℓ, 1]``:
    Muon (Keller Jordan's (3.4445, −4.7750, 2.0315) × 5), the published Polar Express list (5 steps,
    as printed) and the shipped ``polar_express`` (5 steps, with the reference code's 1.01 safety and
    normalization). ``k*`` = fewest designed steps with ``E_k ≤ E_ref``; steps saved ``5 − k*``, at
    3 GEMMs per quintic step (``A = XXᵀ``, ``A²``, ``B·X``).
(b) Recorded matrices: every momentum of a layer type through Muon-5, the shipped PE-5 and the
    layer type's designed ``k*``-step schedule (and the ℓ = 1e-3 one), iterated in float32 and in
    bfloat16; per matrix ``orth_err = max_i |1 − σ_i(O)|`` and ``rel_fro = ‖O − polar(M)‖_F /
    ‖polar(M)‖_F`` with the exact polar factor in float64, beside the float64 prediction
    ``max |1 − P(σ_i/‖M‖_F)|`` (``predict_singular_values``): the gap is the iteration's rounding.

Reported beside the rule (not part of it): the bulk of the spectrum (``rel_fro``), the shipped
PE-5 on the same matrices, the rounding gap per dtype, the matrices below ℓ.

Caveat: equal worst-case error holds on ``[ℓ, 1]``; a matrix with ``x_min < ℓ`` (about 5 % of them
by construction of the 5th percentile) is outside the guarantee — reported per layer type.

Rule (pre-registered, CONFIG["rule"]): a cell is (layer type, NS dtype). It passes when (i) the
designed schedule reaches Muon-5's worst-case error on ``[ℓ_type, 1]`` in ≤ 4 steps (≥ 1 step, 3
GEMMs saved) and (ii) on that type's recorded matrices the median ``orth_err`` of the designed
schedule is ≤ Muon-5's median + 0.05 (TM-1's equivalence margin; it allows for the equiripple
design, whose error is spread over the interval where Muon-5's is concentrated near ℓ). Holds if
every cell passes; holds under conditions if some do (the conditions name the others); fails if
none. The comparisons with the Polar Express list and ℓ = 1e-3 / 1e-4 are reported, not judged.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch

import matbal
from matbal.instruments.store import MatrixStore
from matbal.kernels.orthogonalize import POLAR_EXPRESS_PUBLISHED, measured_x_min
from matbal.lab import experiment_cli, save_results, verdict
from matbal.lab.training import RECORDING, RECORDING_QUICK, layer_type, recorded_gpt

NAME = "ds1_designed_schedules"
GEMMS_PER_STEP = 3  # quintic step: A = XXᵀ, A·A, (bA + cA²)·X
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
CONFIG = {
    "recording": RECORDING, "stream": "muon", "kind": "momentum",
    "quantile": 0.05, "fixed_los": [1e-3, 1e-4], "design_steps": [1, 2, 3, 4, 5, 6, 7, 8],
    "references": {"muon": 5, "pe_published": 5, "polar_express": 5}, "verdict_reference": "muon",
    "dtypes": ["float32", "bfloat16"], "apply_fixed_lo": 1e-3, "polar_rtol": None,
    "rule": {"max_designed_steps": 4, "median_tolerance": 0.05},
    "rounding_gap": 0.01,
}
QUICK = dict(CONFIG, recording=RECORDING_QUICK, design_steps=[1, 2, 3, 4, 5, 6])


def reference_error(name: str, k: int, lo: float) -> float:
    """Worst-case error on ``[lo, 1]`` of a fixed schedule: a registry name, or ``pe_published``
    (the Polar Express list as printed: no safety, no normalization margin)."""
    sched = [tuple(c) for c in POLAR_EXPRESS_PUBLISHED] if name == "pe_published" else name
    return float(matbal.worst_case_error(sched, k, lo))


def _e(e: float) -> str:
    """An error for the text: ``1−δ`` when it is within 1e-2 of 1 (else 3 digits)."""
    return f"1−{1 - e:.2g}" if 0 < 1 - e < 1e-2 else f"{e:.3g}"


def fewest(curve: dict[int, float], target: float) -> int | None:
    """Fewest designed steps with worst-case error ≤ ``target`` (None: none of the designed k)."""
    ok = [k for k, e in sorted(curve.items()) if e <= target]
    return ok[0] if ok else None


def orth_errors(x: torch.Tensor, sched, steps: int, dtype: torch.dtype, q: torch.Tensor) -> dict:
    """``orth_err`` and ``rel_fro`` of ``newton_schulz(x, schedule, steps)`` iterated in ``dtype``;
    ``pred``: the float64 predictor's ``max |1 − P(σ/‖x‖_F)|`` (NS's eps included)."""
    o = matbal.newton_schulz(x.float(), schedule=sched, steps=steps, dtype=dtype).double()
    pred = matbal.predict_singular_values(matbal.svdvals(x.double()), schedule=sched, steps=steps)
    return {"orth_err": float((1 - matbal.svdvals(o)).abs().max()),
            "rel_fro": float(torch.linalg.norm(o - q) / torch.linalg.norm(q)),
            "pred_err": float((1 - pred).abs().max())}


def main(quick: bool = False, results_dir=None):
    from tqdm.auto import tqdm

    cfg = QUICK if quick else CONFIG
    t0 = time.perf_counter()
    load = [round(v, 2) for v in os.getloadavg()]
    rec = recorded_gpt(cfg["recording"], cfg["stream"], results_dir=results_dir)
    t_rec = time.perf_counter() - t0
    with MatrixStore(rec["store"], mode="r") as store:
        recs = store.query(run=cfg["stream"], kind=cfg["kind"])
        mats = [(r, t.double()) for r, t in zip(recs, store.get_many(recs))]
    types = sorted({layer_type(r.layer) for r, _ in mats})
    by_type = {ty: [x for r, x in mats if layer_type(r.layer) == ty] for ty in types}
    xmins = {ty: measured_x_min(v) for ty, v in by_type.items()}

    # (a) worst case: designed E_k(ℓ) vs the fixed schedules on [ℓ, 1]
    los = {ty: float(np.quantile(xmins[ty], cfg["quantile"], method="lower")) for ty in types}
    los.update({f"{lo:g}": float(lo) for lo in cfg["fixed_los"]})
    rows, fewest_steps, designed = [], {}, {}
    for label, lo in tqdm(los.items(), desc=f"{NAME}: design", disable=quick):
        curve = {k: matbal.design_schedule(lo, steps=k).worst_error for k in cfg["design_steps"]}
        refs = {n: reference_error(n, k, lo) for n, k in cfg["references"].items()}
        for k, e in curve.items():
            rows.append({"record": "design", "lo_label": label, "lo": lo, "steps": k,
                         "designed_error": e, **{f"{n}_error": reference_error(n, k, lo)
                                                 for n in cfg["references"]}})
        fewest_steps[label] = {}
        for n, k_ref in cfg["references"].items():
            k = fewest(curve, refs[n])
            fewest_steps[label][n] = {
                "reference_steps": k_ref, "reference_error": refs[n], "designed_steps": k,
                "designed_error": None if k is None else curve[k],
                "steps_saved": None if k is None else k_ref - k,
                "gemms_saved": None if k is None else GEMMS_PER_STEP * (k_ref - k)}
            rows.append({"record": "fewest", "lo_label": label, "lo": lo, "reference": n,
                         **fewest_steps[label][n]})
        ref = cfg["verdict_reference"]
        if fewest_steps[label][ref]["designed_steps"] is not None:
            # the public one-call helper: the same schedule, from the matrices themselves
            src = by_type[label] if label in by_type else [lo]
            q = cfg["quantile"] if label in by_type else 0.0
            designed[label] = matbal.schedule_for(src, quantile=q, steps=max(cfg["design_steps"]),
                                                  max_error=refs[ref])
            assert designed[label].default_steps == fewest_steps[label][ref]["designed_steps"]

    # (b) the schedules applied to every recorded matrix, in float32 and bf16
    fixed = f"{cfg['apply_fixed_lo']:g}"
    mat_rows = []
    for r, x in tqdm(mats, desc=f"{NAME}: apply", disable=quick):
        ty = layer_type(r.layer)
        if not bool(x.abs().max() > 0):
            continue
        q = matbal.polar(x, rtol=cfg["polar_rtol"])
        xm = float(matbal.x_min(x))
        scheds = {"muon5": ("muon", 5), "pe5": ("polar_express", 5)}
        if ty in designed:
            scheds["designed"] = (designed[ty], designed[ty].default_steps)
        if fixed in designed:
            scheds["designed_fixed"] = (designed[fixed], designed[fixed].default_steps)
        for dname in cfg["dtypes"]:
            row = {"record": "matrix", "layer_type": ty, "layer": r.layer, "step": r.step,
                   "m": x.shape[0], "n": x.shape[1], "dtype": dname, "x_min": xm,
                   "lo": los[ty], "below_lo": xm < los[ty],
                   "designed_steps": scheds.get("designed", (None, None))[1]}
            for sname, (s, k) in scheds.items():
                for key, v in orth_errors(x, s, k, DTYPES[dname], q).items():
                    row[f"{sname}_{key}"] = v
            mat_rows.append(row)
    rows += mat_rows

    # verdict
    rule = cfg["rule"]
    cells, failing = {}, []
    for ty in types:
        k = fewest_steps[ty][cfg["verdict_reference"]]["designed_steps"]
        for dname in cfg["dtypes"]:
            rs = [r for r in mat_rows if r["layer_type"] == ty and r["dtype"] == dname]
            med_m = float(np.median([r["muon5_orth_err"] for r in rs]))
            med_d = float(np.median([r["designed_orth_err"] for r in rs])) if k else float("nan")
            ok = (k is not None and k <= rule["max_designed_steps"]
                  and med_d <= med_m + rule["median_tolerance"])
            cells[f"{ty}/{dname}"] = {"designed_steps": k, "median_muon5": med_m,
                                      "median_designed": med_d, "passes": bool(ok)}
            # reported beside the rule, not part of it: the bulk (relative Frobenius distance to
            # the exact polar factor) and the shipped Polar Express, 5 steps
            for sname in ("muon5", "designed", "pe5"):
                vals = [r[f"{sname}_rel_fro"] for r in rs if f"{sname}_rel_fro" in r]
                cells[f"{ty}/{dname}"][f"median_rel_fro_{sname}"] = (
                    float(np.median(vals)) if vals else float("nan"))
            cells[f"{ty}/{dname}"]["median_pe5"] = float(np.median([r["pe5_orth_err"] for r in rs]))
            if not ok:
                failing.append(f"{ty} in {dname} (designed steps {k}, median error "
                               f"{med_d:.3f} vs Muon-5 {med_m:.3f})")
    n_ok = sum(c["passes"] for c in cells.values())
    result = "holds" if n_ok == len(cells) else ("holds under conditions" if n_ok else "fails")

    # rounding: measured − float64-predicted error, per dtype and schedule
    gap = cfg["rounding_gap"]
    rounding = {}
    for dname in cfg["dtypes"]:
        for sname in ("muon5", "designed"):
            d = [(r[f"{sname}_orth_err"] - r[f"{sname}_pred_err"], r) for r in mat_rows
                 if r["dtype"] == dname and f"{sname}_orth_err" in r]
            big = [r for g, r in d if abs(g) > gap]
            rounding[f"{sname}/{dname}"] = {
                "median_gap": float(np.median([g for g, _ in d])),
                "min_gap": float(min(g for g, _ in d)), "max_gap": float(max(g for g, _ in d)),
                "n_over_gap": len(big), "n": len(d),
                "where": sorted({r["layer_type"] for r in big}),
                "x_min_range_over_gap": ([min(r["x_min"] for r in big), max(r["x_min"] for r in big)]
                                         if big else None)}
    below = {ty: {"n_below_lo": sum(r["below_lo"] for r in mat_rows
                                    if r["layer_type"] == ty and r["dtype"] == "float32"),
                  "n": sum(r["layer_type"] == ty and r["dtype"] == "float32" for r in mat_rows),
                  "max_designed_err_below_lo_float32": max(
                      [r["designed_orth_err"] for r in mat_rows if r["layer_type"] == ty
                       and r["dtype"] == "float32" and r["below_lo"] and "designed_orth_err" in r],
                      default=None)}
             for ty in types}

    def saved(label, ref):
        f = fewest_steps[label][ref]
        if f["designed_steps"] is None:
            return (f"none of ≤ {max(cfg['design_steps'])} designed steps reaches "
                    f"{_e(f['reference_error'])}")
        return (f"{f['designed_steps']} steps ({_e(f['designed_error'])} ≤ "
                f"{_e(f['reference_error'])}; "
                f"saves {f['steps_saved']} step{'' if f['steps_saved'] == 1 else 's'} = "
                f"{f['gemms_saved']} GEMMs)")

    per_type = "; ".join(
        f"{ty} (ℓ = q{100 * cfg['quantile']:g} x_min = {los[ty]:.3g}, min {xmins[ty].min():.3g}): vs "
        f"Muon-5 {saved(ty, 'muon')}, vs published PE-5 {saved(ty, 'pe_published')}"
        for ty in types)
    fixed_txt = "; ".join(f"ℓ = {lab}: vs Muon-5 {saved(lab, 'muon')}, vs published PE-5 "
                          f"{saved(lab, 'pe_published')}, vs shipped PE-5 {saved(lab, 'polar_express')}"
                          for lab in (f"{lo:g}" for lo in cfg["fixed_los"]))
    med_txt = "; ".join(f"{c}: designed {v['median_designed']:.3f} vs Muon-5 {v['median_muon5']:.3f}"
                        for c, v in cells.items())
    rnd_txt = "; ".join(f"{k}: measured − predicted median {v['median_gap']:+.2g}, range "
                        f"[{v['min_gap']:+.2g}, {v['max_gap']:+.2g}], |gap| > {gap} on {v['n_over_gap']}/"
                        f"{v['n']}" + (f" ({', '.join(v['where'])}; x_min "
                                       f"{v['x_min_range_over_gap'][0]:.2g}–"
                                       f"{v['x_min_range_over_gap'][1]:.2g})" if v["where"] else "")
                        for k, v in rounding.items())
    ref_at_lo = [fewest_steps[ty][cfg["verdict_reference"]]["reference_error"] for ty in types]
    bulk_txt = "; ".join(
        f"{dname}: designed {np.median([c['median_rel_fro_designed'] for k_, c in cells.items() if k_.endswith('/' + dname)]):.3f}, "
        f"Muon-5 {np.median([c['median_rel_fro_muon5'] for k_, c in cells.items() if k_.endswith('/' + dname)]):.3f}, "
        f"PE-5 {np.median([c['median_rel_fro_pe5'] for k_, c in cells.items() if k_.endswith('/' + dname)]):.3f}"
        for dname in cfg["dtypes"])
    worst_bf = {dname: max((r["designed_orth_err"] for r in mat_rows
                            if r["dtype"] == dname and "designed_orth_err" in r), default=None)
                for dname in cfg["dtypes"]}
    worst_pred = max((r["designed_pred_err"] for r in mat_rows if "designed_pred_err" in r),
                     default=None)
    below_txt = ", ".join(f"{ty} {b['n_below_lo']}/{b['n']}" for ty, b in below.items())
    n_mat = len(mat_rows) // len(cfg["dtypes"])
    measured = (
        f"{n_mat} recorded Muon momenta (char GPT, width {cfg['recording']['model']['n_embd']}, "
        f"{cfg['recording']['steps']} steps). Fewest designed steps at equal worst-case error on "
        f"[ℓ, 1] — {per_type}. Fixed ℓ — {fixed_txt}. On the recorded matrices, median max|1−σ| "
        f"(designed k* steps vs Muon-5) — {med_txt}. Rounding vs the float64 predictor (measured − "
        f"predicted max|1−σ|; negative: rounding lifted the small σ) — {rnd_txt}. "
        f"Matrices below their type's ℓ (outside the guarantee): {below_txt}. Reported beside the rule: "
        f"at the measured ℓ Muon-5's worst-case error is {_e(min(ref_at_lo))} to "
        f"{_e(max(ref_at_lo))}"
        + (" (the smallest σ stay near 0 under either schedule: equal worst-case error there is "
           "equal failure on them, and the design's equiripple error ≈ 1 on [ℓ, 1] puts its band "
           "at ≈ [0, 2])" if min(ref_at_lo) > 0.9 else "")
        + f"; the bulk — median over layer types of the median ‖O − polar(M)‖_F/‖polar(M)‖_F — "
        f"{bulk_txt}; largest designed max|1−σ| "
        + ", ".join(f"{d} {v:.3g}" for d, v in worst_bf.items() if v is not None)
        + f" (float64 prediction ≤ {worst_pred:.3g})")
    conditions = ("not for " + "; ".join(failing)) if result == "holds under conditions" else None
    claim = verdict(
        "DS-1", measured, result, conditions=conditions,
        criterion=f"per (layer type, NS dtype): designed schedule for ℓ = q{100 * cfg['quantile']:g} "
                  f"of the type's x_min reaches Muon-5's worst-case error on [ℓ, 1] in ≤ "
                  f"{rule['max_designed_steps']} steps AND its median max|1−σ| on the type's "
                  f"recorded momenta ≤ Muon-5's + {rule['median_tolerance']}; all cells → holds, "
                  "some → holds under conditions, none → fails")
    summary = {"los": los, "x_min_min": {ty: float(v.min()) for ty, v in xmins.items()},
               "n_matrices": {ty: len(v) for ty, v in xmins.items()},
               "fewest_steps": fewest_steps, "cells": cells, "rounding": rounding,
               "below_lo": below, "designed_max_orth_err": worst_bf,
               "designed_coefficients": {k: [list(c) for c in s.coefficients]
                                         for k, s in designed.items()},
               "recording_s": round(t_rec, 1), "compute_s": round(time.perf_counter() - t0, 1),
               "measured_on": "CPU, 1 thread; NS iterated in float32 and bfloat16",
               "load_avg_at_start": load,
               "references": "Polar Express arXiv 2505.16932 (Thm. 4.1, App. D); CANS arXiv "
                             "2506.10935; x_min: MuonEq arXiv 2603.28254"}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
