"""Spectral effects of equilibration on recorded transformer momenta (the issue's "κ / stable rank /
x_min before and after R, C, RC, RACS on recorded matrices").

Momenta (Muon's NS input) recorded in the Muon-trained run of ``matbal.lab.training.RECORDING``
(shared with REG-2 and RM-1: the default 2-layer char GPT, 400 steps), every ``every``-th recorded
step from ``from_step`` on, each layer; per matrix and balancing: κ, stable rank, x_min, the second
smallest normalized singular value (the momenta of layers after a bias-free LayerNorm keep a near-
null direction, see RM-1) and the Muon NS5 error measured and predicted
(:func:`matbal.analysis.equilibration_rows`).

    python experiments/recorded_equilibration.py [--quick]
"""
from __future__ import annotations

import statistics

from matbal import svdvals
from matbal.analysis import BALANCINGS, balance_label, equilibration_rows
from matbal.instruments.store import MatrixStore
from matbal.lab import experiment_cli, save_results
from matbal.lab.training import RECORDING, RECORDING_QUICK, layer_type, recorded_gpt

NAME = "recorded_equilibration"
CONFIG = {"recording": RECORDING, "stream": "muon", "kind": "momentum", "from_step": 50,
          "every": 50, "methods": list(BALANCINGS)}
QUICK = dict(CONFIG, recording=RECORDING_QUICK, from_step=4, every=4)


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    rec = recorded_gpt(cfg["recording"], cfg["stream"], results_dir=results_dir)
    with MatrixStore(rec["store"], mode="r") as store:
        recs = [r for r in store.query(run=cfg["stream"], kind=cfg["kind"])
                if r.step >= cfg["from_step"] and r.step % cfg["every"] == 0]
        mats = {f"{r.layer}@{r.step}": t.float() for r, t in zip(recs, store.get_many(recs))}
    rows = equilibration_rows(mats, methods=cfg["methods"])
    for row in rows:
        layer, step = row["matrix"].rsplit("@", 1)
        sv = svdvals(balance_label(mats[row["matrix"]], row["balancing"]))
        row.update(layer=layer, layer_type=layer_type(layer), step=int(step),
                   x_min2=float(sv[-2] / sv.square().sum().sqrt()))
    summary = {}
    for lt in sorted({r["layer_type"] for r in rows}):
        for b in cfg["methods"]:
            sel = [r for r in rows if r["layer_type"] == lt and r["balancing"] == b]
            summary[f"{lt}/{b}"] = {k: statistics.median(r[k] for r in sel)
                                    for k in ("condition_number", "stable_rank", "x_min", "x_min2",
                                              "ns_error")}
    return save_results(NAME, rows, cfg, summary=summary, results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
