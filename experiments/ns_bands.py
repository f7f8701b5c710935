"""Data for the NS-band figure: the output band of every schedule as a function of x_min.

For each schedule at a fixed step count, the band [min, max] of P_k over normalized singular
values in [x_min, 1] (``matbal.output_band``; exact scalar analysis) for x_min from 1e-7 to 1, and
the transfer curve P_k(x) itself. Schedules: Muon, Polar Express, You (5 steps), quintic Padé at
5 steps (3 matmuls per step: 15), the classical cubic and the iterated CANS cubic fitted to
[1e-3, 1] at 8 steps (2 matmuls per step: 16) — about the same cost.
"""
from __future__ import annotations

import numpy as np

import matbal
from matbal.lab import experiment_cli, save_results

NAME = "ns_bands"
CONFIG = {"steps": {"muon": 5, "polar_express": 5, "you": 5, "quintic_pade": 5, "cubic": 8,
                    "cans": 8},
          "x_min": {"lo_exp": -6, "hi_exp": 0, "points": 49},
          "curve": {"lo_exp": -5, "hi_exp": 0, "points": 241},
          "schedules": ["muon", "polar_express", "you", "quintic_pade", "cubic", "cans"],
          "cans_interval": [1e-3, 1.0]}
QUICK = dict(CONFIG, x_min={"lo_exp": -4, "hi_exp": 0, "points": 5},
             curve={"lo_exp": -3, "hi_exp": 0, "points": 7})


def _schedule(name, cfg):
    if name == "cans":
        lo, hi = cfg["cans_interval"]
        return matbal.cans_schedule(lo, hi, cfg["steps"][name])
    return name


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    xs = np.logspace(cfg["x_min"]["lo_exp"], cfg["x_min"]["hi_exp"], cfg["x_min"]["points"])
    cs = np.logspace(cfg["curve"]["lo_exp"], cfg["curve"]["hi_exp"], cfg["curve"]["points"])
    rows = []
    for name in cfg["schedules"]:
        s, k = _schedule(name, cfg), cfg["steps"][name]
        for x in xs:
            lo, hi = matbal.output_band(s, k, float(x))
            rows.append({"kind": "band", "schedule": name, "steps": k, "x": float(x),
                         "band_min": lo, "band_max": hi, "value": None})
        P = matbal.compose(s, k)
        safety = matbal.get_schedule(s).scale
        for x, y in zip(cs, P(cs / safety)):
            rows.append({"kind": "curve", "schedule": name, "steps": k, "x": float(x),
                         "band_min": None, "band_max": None, "value": float(y)})
    summary = {"band_at_1e-3": {n: [r["band_min"], r["band_max"]] for n in cfg["schedules"]
                                for r in rows if r["kind"] == "band" and r["schedule"] == n
                                and abs(np.log10(r["x"]) + 3) < 1e-9}}
    return save_results(NAME, rows, cfg, summary=summary, results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
