"""REG-2: is REG's update direction closer to AdamW's than Muon's is, on real transformer gradients?

Recorded runs (``matbal.lab.training.RECORDING``, shared with RM-1): the default char GPT trained
400 steps by AdamW and, separately, by Muon; the gradient of every hidden matrix is stored at every
step. Offline, each gradient stream is replayed through the matrix chains of the presets without
weight decay (``matbal.lab.training.replay``): AdamW ``m̂/(√v̂+ε)``, REG (EMA β = 0.9, RACS p = 2,
5 sweeps, RMS 0.2), Muon (EMA 0.95 + Nesterov, NS5), MuonEq-R, RMNP (R, no NS), and two controls
that split REG from Muon: the raw β = 0.9 momentum, and NS5 of that same momentum. Every
direction comes from the same gradients; the number is cos(direction, AdamW direction) per layer
and step. The probes' built-in ``cos_adamw`` of the Muon run's own update is compared with the
replayed Muon cosine (they must agree).

Criterion (pre-registered): over steps ≥ ``from_step``, for every hidden matrix of every stream,
median cos(REG, AdamW) > median cos(Muon, AdamW) and the per-step difference is positive on
≥ 90 % of the measured steps → holds; true on some layer types / streams only → holds under
conditions; nowhere → fails.
"""
from __future__ import annotations

import numpy as np

from matbal.instruments.probes import read_rows
from matbal.lab import experiment_cli, save_results, verdict
from matbal.lab.training import (LAYER_TYPES, RECORDING, RECORDING_QUICK, cosine, layer_type,
                                 recorded_gpt, replay)
from matbal.optim import Chain
from matbal.optim.transforms import ema_momentum, orthogonalize

NAME = "reg2_adamw_cosine"
CONFIG = {"recording": RECORDING, "streams": ["adamw", "muon"],
          "directions": ["reg", "muon", "muoneq-r", "rmnp", "momentum_0.9", "ns5_momentum_0.9"],
          "every": 5, "from_step": 20, "frac_steps": 0.9}
QUICK = dict(CONFIG, recording=RECORDING_QUICK, every=2, from_step=2)


def _chains(directions):
    controls = {"momentum_0.9": Chain(ema_momentum(0.9, nesterov=False)),
                "ns5_momentum_0.9": Chain(ema_momentum(0.9, nesterov=False),
                                          orthogonalize("muon", steps=5))}
    return {"adamw": "adamw", **{d: controls.get(d, d) for d in directions}}


def _q(a, p):
    return float(np.percentile(np.asarray(a, dtype=float), p))


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rows, runs, probe_gap = [], {}, []
    for stream in cfg["streams"]:
        rec = recorded_gpt(cfg["recording"], stream, results_dir=results_dir)
        runs[stream] = {k: rec[k] for k in ("final_val_loss", "lr", "reused", "run_dir")}
        for step, grads, dirs in replay(rec["store"], stream, _chains(cfg["directions"]),
                                        every=cfg["every"]):
            for layer in grads:
                a = dirs["adamw"][layer]
                for d in cfg["directions"]:
                    rows.append({"stream": stream, "step": step, "layer": layer,
                                 "layer_type": layer_type(layer), "direction": d,
                                 "cos_adamw": cosine(dirs[d][layer], a)})
        if stream != "adamw":  # the probes' own cos_adamw of this run's update, same steps
            probe = {(r["step"], r["layer"]): r["value"] for r in
                     read_rows(f"{rec['run_dir']}/probes.jsonl") if r["metric"] == "cos_adamw"}
            mine = {(r["step"], r["layer"]): r["cos_adamw"] for r in rows
                    if r["stream"] == stream and r["direction"] == stream}
            probe_gap += [abs(probe[k] - v) for k, v in mine.items() if k in probe]

    # statistics per stream × layer and per stream × layer type
    late = [r for r in rows if r["step"] >= cfg["from_step"]]
    by = {}
    for r in late:
        by.setdefault((r["stream"], r["layer"], r["direction"]), {})[r["step"]] = r["cos_adamw"]
    layers = sorted({r["layer"] for r in rows})
    per_layer, ok_layers = [], {}
    for stream in cfg["streams"]:
        for layer in layers:
            reg, muon = by[(stream, layer, "reg")], by[(stream, layer, "muon")]
            diffs = [reg[t] - muon[t] for t in reg]
            med = {d: float(np.median(list(by[(stream, layer, d)].values())))
                   for d in cfg["directions"]}
            frac = float(np.mean(np.array(diffs) > 0))
            ok = med["reg"] > med["muon"] and frac >= cfg["frac_steps"]
            ok_layers[(stream, layer)] = ok
            per_layer.append({"stream": stream, "layer": layer, "median": med,
                              "frac_steps_reg_above_muon": frac, "ok": ok})
    types = {}
    for stream in cfg["streams"]:
        for lt in LAYER_TYPES:
            vals = {d: [v for (s, la, dd), ser in by.items() if s == stream and dd == d
                        and layer_type(la) == lt for v in ser.values()] for d in cfg["directions"]}
            if not vals["reg"]:
                continue
            types[f"{stream}/{lt}"] = {d: {"median": _q(v, 50), "p10": _q(v, 10), "p90": _q(v, 90)}
                                       for d, v in vals.items()}
    n_ok, n_all = sum(ok_layers.values()), len(ok_layers)
    if n_ok == n_all:
        result, conditions = "holds", None
    elif n_ok:
        bad = sorted({f"{s}/{layer_type(la)}" for (s, la), ok in ok_layers.items() if not ok})
        result = "holds under conditions"
        conditions = f"{n_ok} of {n_all} stream × layer cases; not in {', '.join(bad)}"
    else:
        result, conditions = "fails", None

    def fmt(stream):
        parts = []
        for lt in LAYER_TYPES:
            t = types.get(f"{stream}/{lt}")
            if t:
                parts.append(f"{lt} {t['reg']['median']:.2f} [{t['reg']['p10']:.2f}, "
                             f"{t['reg']['p90']:.2f}] vs {t['muon']['median']:.2f} "
                             f"[{t['muon']['p10']:.2f}, {t['muon']['p90']:.2f}]")
        return "; ".join(parts)

    def ctrl(stream, d):
        return "/".join(f"{types[f'{stream}/{lt}'][d]['median']:.2f}" for lt in LAYER_TYPES
                        if f"{stream}/{lt}" in types)

    gains = {lt: types[f"adamw/{lt}"]["reg"]["median"]
             - types[f"adamw/{lt}"]["momentum_0.9"]["median"]
             for lt in LAYER_TYPES if f"adamw/{lt}" in types}

    rec_cfg = cfg["recording"]
    measured = (
        f"{rec_cfg['model']['n_layer']}-layer width-{rec_cfg['model']['n_embd']} char GPT, "
        f"gradients of every step {cfg['from_step']}–{rec_cfg['steps']} replayed through each "
        f"preset's chain; cos to the AdamW direction, median [10th, 90th percentile] over "
        f"steps and the layers of a type, REG vs Muon. AdamW-trained stream: {fmt('adamw')}. "
        + (f"Muon-trained stream: {fmt('muon')}. " if "muon" in cfg["streams"] else "")
        + f"REG above Muon in {n_ok}/{n_all} stream × layer cases (per-step difference > 0 on "
        f"≥ {cfg['frac_steps']:.0%} of steps). Controls on the AdamW stream (median per layer "
        f"type, {'/'.join(LAYER_TYPES)}): β = 0.9 momentum alone {ctrl('adamw', 'momentum_0.9')}, "
        f"NS5 of that momentum {ctrl('adamw', 'ns5_momentum_0.9')}, MuonEq-R "
        f"{ctrl('adamw', 'muoneq-r')}, RMNP {ctrl('adamw', 'rmnp')}; REG − raw momentum "
        + "/".join(f"{g:+.2f}" for g in gains.values())
        + (f"; probes' built-in cos_adamw = replay to {max(probe_gap):.0e}" if probe_gap else "")
        + ". REG here is this project's reconstruction of the operator (EMA β = 0.9, RACS p = 2, "
          "5 sweeps, RMS 0.2; the paper's code is not public); one recorded run per stream (seed 0)"
    )
    claim = verdict("REG-2", measured, result, conditions=conditions,
                    criterion=f"steps ≥ {cfg['from_step']}: for every hidden matrix of every "
                              f"stream, median cos(REG, AdamW) > median cos(Muon, AdamW) and the "
                              f"per-step difference > 0 on ≥ {cfg['frac_steps']:.0%} of steps")
    summary = {"per_layer": per_layer, "per_type": types, "runs": runs,
               "probe_vs_replay_max_abs": max(probe_gap) if probe_gap else None,
               "n_ok": n_ok, "n_cases": n_all}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
