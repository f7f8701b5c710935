"""SC-1: do the momenta of late layers fall into Newton–Schulz's failure regime as the model grows?

The claim (Magakyan, Parrilo & Ozdaglar, "Spectral Scaling Laws of Muon", arXiv 2606.04058,
abstract): after a short burn-in, the singular-value quantiles of Muon's momentum buffer stabilize
at values set by layer type and model size; these values follow power laws in model size ``M``
(77M–2.8B parameters) with layer-dependent exponents — about ``M^-0.25`` for layers up to mid-late
depth, so Muon's 5-step NS keeps orthonormalizing them, but up to ``M^-0.96`` for some late layers,
which "will fall into the NS failure regime at frontier scale" unless more NS steps or other
coefficients are used.

Here, at toy scale on one CPU: the char GPT of ``matbal.lab.training.WIDTH_RECORDING`` (2 blocks,
4 heads, block 64, batch 32) at widths 64, 128, 256, 512, 200 Muon steps each at one lr (EQ-5's
×2-sweep choice at width 64, kept at every width: Muon's step has spectral norm lr·√max(1, m/n),
width-independent at a fixed aspect ratio, the μP spectral condition of arXiv 2310.17813; an
assumption checked below); the Nesterov momentum ``M`` that Muon orthogonalizes is recorded every 10 steps for
all 8 hidden matrices (RM-1's width series reads the same runs). Per record, the spectrum of
``M`` normalized as NS sees it, ``x_i = σ_i/‖M‖_F`` (``matbal.lab.momenta.spectrum_quantiles``):

- ``x_eff = σ_{r−1}/‖M‖_F``: the smallest singular value after dropping **one** direction — every
  hidden matrix of a pre-LayerNorm block has one structural null direction (``c_proj``: the left
  vector ``1/√m``; ``c_attn``/``c_fc``: the right vector ``∝ 1/γ`` of the LayerNorm in front; see
  RM-1), which carries no signal and which NS and the ``rtol`` polar factor both map to 0. The raw
  ``x_min = σ_r/‖M‖_F`` is reported too;
- quantiles (10, 25, 50, 75, 90 %) of the kept ``x_i``, the fraction of kept directions below
  ``x₀.₅``, and the stable rank.

``x₀.₅``: the smallest normalized singular value that Muon's NS5 lifts to 0.5 (``P₅(x) = 0.5``;
``matbal.lift_threshold("muon", 5)``, ≈ 1.07e-3; EQ-2). Below it NS5 returns less than half of the
polar factor's unit singular value for that direction: the failure regime.

Fit (per matrix, steps ≥ ``from_step`` = the burn-in): ``log median_t x_eff = a + b·log width``
(``matbal.lab.stats.fit_trend``), 95 % percentile bootstrap over the recorded steps of each width,
and the width ``d*`` where the line reaches ``x₀.₅``. The exponent is also fitted against the
model's parameter count ``M`` (as the paper does); ``M`` grows about as width² here, so
``b_M ≈ b/2``. A Gaussian matrix of each shape (its raw ``σ_r/‖G‖_F``) gives the random-matrix
baseline of the same fit. lr sensitivity: the width-``lr_check.width`` run is repeated at ``lr/2``
and ``2·lr``. The recorded steps are not independent (Muon's momentum, β = 0.95, averages about 20
steps; records are 10 apart), so the bootstrap intervals are on the narrow side.

Criterion (pre-registered): a matrix "enters the failure regime" within the tested range when its
fit has ``R² ≥ 0.9`` and the upper end of the crossing width's CI is ≤ 512 (the widest run; a
crossing below 64 means it is there already); "by extrapolation" when that upper end is ≤ 16 × 512
(the extrapolation is a straight line in log–log beyond the data, stated as such); otherwise it
does not cross within 16× the widest width. The claim **holds** if at least one matrix of the last
block crosses (in range or by extrapolation) **and** the median exponent of the last block is
steeper (more negative) than that of the first block; **holds under conditions** if some matrix of
the last block crosses but the last block is not steeper (the crossing is not a late-layer
effect here); **fails** if no matrix of the last block crosses.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

import matbal
import matbal.synthetic as syn
from matbal.instruments.store import MatrixStore
from matbal.lab import experiment_cli, save_results, verdict
from matbal.lab.momenta import spectrum_quantiles
from matbal.lab.stats import fit_trend
from matbal.lab.training import (LAYER_TYPES, WIDTH_RECORDING, WIDTH_RECORDING_QUICK, layer_type,
                                 recorded_gpt_at_width)

NAME = "sc1_width_spectra"
CONFIG = {"recording": WIDTH_RECORDING, "widths": [64, 128, 256, 512], "from_step": 100,
          "drop": 1, "quantiles": [0.1, 0.25, 0.5, 0.75, 0.9], "ns": ["muon", 5], "level": 0.5,
          "lr_check": {"width": 256, "factors": [0.5, 2.0]}, "gaussian_seeds": [0, 1, 2],
          "min_r2": 0.9, "max_extrapolation": 16, "alpha": 0.05, "resamples": 2000,
          "paper": {"arxiv": "2606.04058", "exponent_mild": -0.25, "exponent_steep": -0.96,
                    "model_sizes": "77M–2.8B parameters"}}
QUICK = dict(CONFIG, recording=WIDTH_RECORDING_QUICK, widths=[16, 32, 64], from_step=6,
             lr_check={"width": 32, "factors": [0.5, 2.0]}, gaussian_seeds=[0], resamples=200)

_BLOCK = "transformer.h."


def _block(layer: str) -> int:
    return int(layer.split(_BLOCK, 1)[1].split(".", 1)[0])


def _measure(rec, cfg, width, lr, x05):
    """One row per recorded momentum of the run ``rec``."""
    run = Path(rec["run_dir"]).name.rsplit("-s", 1)[0]
    n_params = json.loads((Path(rec["run_dir"]) / "env.json").read_text())["n_params"]
    rows = []
    with MatrixStore(rec["store"], mode="r") as store:
        moms = store.query(run=run, kind="momentum")
        for r, mom in zip(moms, store.get_many(moms, verify=False)):
            prof = spectrum_quantiles(mom, cfg["quantiles"], drop=cfg["drop"], level=x05)
            sv = matbal.svdvals(mom.double())
            fro = float(torch.linalg.norm(sv))
            rows.append({"record": "momentum", "width": width, "lr": lr, "n_params": n_params,
                         "step": r.step, "layer": r.layer, "layer_type": layer_type(r.layer),
                         "block": _block(r.layer), "m": mom.shape[0], "n": mom.shape[1],
                         "x_min": float(sv[-1]) / fro if fro > 0 else 0.0,
                         **{k: v for k, v in prof.items() if k != "n_kept"},
                         "stable_rank": float((sv ** 2).sum() / sv[0] ** 2) if fro > 0 else 0.0})
    return rows


def _classify(fit, cfg, w_lo, w_hi):
    if fit["r2"] < cfg["min_r2"]:
        return "no clean power law"
    hi = fit["crossing_ci"][1]
    if hi < w_lo:
        return "below x0.5 already"
    if hi <= w_hi:
        return "crosses in range"
    if hi <= cfg["max_extrapolation"] * w_hi:
        return "crosses by extrapolation"
    return "no crossing within limit"


_CROSSES = ("below x0.5 already", "crosses in range", "crosses by extrapolation")


def main(quick: bool = False, results_dir=None):
    from tqdm.auto import tqdm

    cfg = QUICK if quick else CONFIG
    t0 = time.perf_counter()
    x05 = matbal.lift_threshold(cfg["ns"][0], cfg["ns"][1], cfg["level"])
    spec, widths, base_lr = cfg["recording"], cfg["widths"], cfg["recording"]["lr"]
    jobs = [(w, base_lr) for w in widths] + \
        [(cfg["lr_check"]["width"], f * base_lr) for f in cfg["lr_check"]["factors"]]
    rows, runs = [], {}
    with tqdm(total=len(jobs), desc=NAME, disable=quick) as bar:
        for w, lr in jobs:
            rec = recorded_gpt_at_width(spec, w, lr=lr, results_dir=results_dir)
            runs[f"w{w}-lr{lr:g}"] = {k: rec[k] for k in ("final_val_loss", "lr", "reused",
                                                         "wall_time_s")}
            rows += _measure(rec, cfg, w, lr, x05)
            bar.update()
    shapes = sorted({(r["width"], r["m"], r["n"]) for r in rows})
    for w, m, n in shapes:  # the random-matrix baseline: raw σ_r/‖G‖_F of Gaussian matrices
        for s in cfg["gaussian_seeds"]:
            g = syn.gaussian(m, n, seed=s, dtype=torch.float64)
            sv = matbal.svdvals(g)
            rows.append({"record": "gaussian", "width": w, "lr": None, "n_params": None,
                         "step": None, "layer": f"gaussian {m}x{n}", "layer_type": None,
                         "block": None, "m": m, "n": n,
                         "x_min": float(sv[-1] / torch.linalg.norm(sv)), "seed": s})

    base = [r for r in rows if r["record"] == "momentum" and r["lr"] == base_lr
            and r["step"] >= cfg["from_step"]]
    layers = sorted({r["layer"] for r in base}, key=lambda s: (_block(s), LAYER_TYPES.index(
        layer_type(s)) if layer_type(s) in LAYER_TYPES else 9, s))
    n_params = {w: next(r["n_params"] for r in base if r["width"] == w) for w in widths}
    fits = {}
    for layer in layers:
        samples = {k: [[r[k] for r in base if r["layer"] == layer and r["width"] == w]
                       for w in widths] for k in ("x_eff", "x_min", "q10", "q50", "stable_rank")}
        kw = {"alpha": cfg["alpha"], "resamples": cfg["resamples"]}
        f = fit_trend(widths, samples["x_eff"], level=x05, direction="down", **kw)
        fm = fit_trend([n_params[w] for w in widths], samples["x_eff"], **kw)
        shape = next((r["m"], r["n"]) for r in base if r["layer"] == layer and r["width"] == widths[-1])
        fits[layer] = {
            "layer_type": layer_type(layer), "block": _block(layer), "shape_at_widest": shape,
            "x_eff": f, "status": _classify(f, cfg, widths[0], widths[-1]),
            "slope_vs_params": fm["slope"], "slope_vs_params_ci": fm["slope_ci"],
            **{f"slope_{k}": fit_trend(widths, samples[k], **kw)["slope"]
               for k in ("x_min", "q10", "q50", "stable_rank")},
            "median_x_min_per_width": [float(np.median(s)) for s in samples["x_min"]],
            "median_q50_per_width": [float(np.median(s)) for s in samples["q50"]],
            "median_stable_rank_per_width": [float(np.median(s)) for s in samples["stable_rank"]],
            "median_frac_below_per_width": [
                float(np.median([r["frac_below"] for r in base if r["layer"] == layer
                                 and r["width"] == w])) for w in widths]}
    gauss = {}
    for lt in LAYER_TYPES:
        shp = [(w, m, n) for (w, m, n) in shapes
               if any(r["layer_type"] == lt and r["width"] == w and (r["m"], r["n"]) == (m, n)
                      for r in base)]
        if len(shp) >= 2:
            smp = [[r["x_min"] for r in rows if r["record"] == "gaussian" and r["width"] == w
                    and (r["m"], r["n"]) == (m, n)] for (w, m, n) in shp]
            gauss[lt] = fit_trend([w for w, _, _ in shp], smp, resamples=cfg["resamples"])["slope"]

    # lr sensitivity: median x_eff at lr·f over median x_eff at lr, same width, per matrix
    wc = cfg["lr_check"]["width"]
    sens = {}
    for layer in layers:
        med = {}
        for lr in [base_lr] + [f * base_lr for f in cfg["lr_check"]["factors"]]:
            v = [r["x_eff"] for r in rows if r["record"] == "momentum" and r["width"] == wc
                 and r["lr"] == lr and r["layer"] == layer and r["step"] >= cfg["from_step"]]
            med[f"{lr:g}"] = float(np.median(v))
        sens[layer] = {"median_x_eff": med,
                       "ratio": {f"{f:g}": med[f"{f * base_lr:g}"] / med[f"{base_lr:g}"]
                                 for f in cfg["lr_check"]["factors"]}}
    max_lr_factor = max(max(v, 1 / v) for s in sens.values() for v in s["ratio"].values())
    width_factor = [f["x_eff"]["medians"][0] / f["x_eff"]["medians"][-1] for f in fits.values()]

    last = max(f["block"] for f in fits.values())
    first = min(f["block"] for f in fits.values())
    late = {k: f for k, f in fits.items() if f["block"] == last}
    early = {k: f for k, f in fits.items() if f["block"] == first}
    late_cross = [k for k, f in late.items() if f["status"] in _CROSSES]
    slope_late = float(np.median([f["x_eff"]["slope"] for f in late.values()]))
    slope_early = float(np.median([f["x_eff"]["slope"] for f in early.values()]))
    steeper = slope_late < slope_early
    if late_cross and steeper:
        result, conditions = "holds", None
    elif late_cross:
        result = "holds under conditions"
        conditions = (f"the last block's crossing ({', '.join(layer_type(k) for k in late_cross)}) "
                      f"is not a late-layer effect here: its median exponent {slope_late:+.2f} is "
                      f"not steeper than the first block's {slope_early:+.2f}")
    else:
        result, conditions = "fails", None

    def fmt_cross(f):
        c, (lo, hi) = f["x_eff"]["crossing"], f["x_eff"]["crossing_ci"]
        g = (lambda v: "∞" if not math.isfinite(v) else f"{v:.3g}")
        return f"d* {g(c)} [{g(lo)}, {g(hi)}]"

    def part(k):
        f = fits[k]
        fx = f["x_eff"]
        return (f"h.{f['block']}.{f['layer_type']}: x_eff {fx['medians'][0]:.1e}→"
                f"{fx['medians'][-1]:.1e}, exponent {fx['slope']:+.2f} "
                f"[{fx['slope_ci'][0]:+.2f}, {fx['slope_ci'][1]:+.2f}] in width "
                f"({f['slope_vs_params']:+.2f} in M), R² {fx['r2']:.2f}, {fmt_cross(f)}: "
                f"{f['status']}; median σ/‖M‖_F exponent {f['slope_q50']:+.2f}, stable rank "
                f"{f['median_stable_rank_per_width'][0]:.1f}→"
                f"{f['median_stable_rank_per_width'][-1]:.1f}")

    rc = cfg["recording"]
    measured = (
        f"Muon momenta of the {rc['model']['n_layer']}-block char GPT at widths "
        f"{', '.join(map(str, widths))} (M = {n_params[widths[0]] / 1e6:.2f}M–"
        f"{n_params[widths[-1]] / 1e6:.2f}M parameters), {rc['steps']} steps at lr {base_lr:g}, "
        f"steps ≥ {cfg['from_step']}; x_eff = σ_(r−1)/‖M‖_F (one LayerNorm null direction "
        f"dropped), x₀.₅ = {x05:.3g} (Muon NS5): "
        + "; ".join(part(k) for k in layers)
        + f". Median exponent (in width) last block {slope_late:+.2f}, first block "
        f"{slope_early:+.2f} (paper, in M: ≈ −0.25 mild, down to −0.96 for some late layers; "
        f"here M ∝ width^≈2). Gaussian matrices of the same shapes, raw x_min: exponents "
        + ", ".join(f"{lt} {v:+.2f}" for lt, v in gauss.items())
        + f". lr sensitivity at width {wc} (lr ×{' and ×'.join(f'{f:g}' for f in cfg['lr_check']['factors'])}): "
        f"median x_eff changes by up to ×{max_lr_factor:.2f}, vs ×{min(width_factor):.2f}–"
        f"×{max(width_factor):.2f} from width {widths[0]} to {widths[-1]}. Crossings beyond "
        f"width {widths[-1]} are straight-line extrapolations in log–log.")
    claim = verdict("SC-1", measured, result, conditions=conditions,
                    criterion=f"per matrix: log–log fit of the median x_eff over steps ≥ "
                              f"{cfg['from_step']} vs width with R² ≥ {cfg['min_r2']}; it crosses "
                              f"x₀.₅ if the {100 * (1 - cfg['alpha']):g} % bootstrap CI of the "
                              f"crossing width ends ≤ {cfg['max_extrapolation']}× the widest "
                              f"width; holds: a last-block matrix crosses and the last block's "
                              f"median exponent is steeper than the first block's; holds under "
                              f"conditions: a last-block matrix crosses, not steeper; fails: none "
                              f"of the last block crosses")
    summary = {"x05": x05, "fits": fits, "gaussian_slopes": gauss, "lr_sensitivity": sens,
               "lr_sensitivity_max_factor": max_lr_factor, "n_params": n_params,
               "slope_late_median": slope_late, "slope_early_median": slope_early,
               "late_block_crossing": late_cross, "runs": runs,
               "compute_s": round(time.perf_counter() - t0, 1),
               "load_avg_at_end": [round(v, 2) for v in os.getloadavg()],
               "measured_on": "CPU, 1 thread, float32 NS"}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
