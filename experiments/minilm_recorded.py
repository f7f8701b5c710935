"""Momenta at real width: all-MiniLM-L6-v2 fine-tuned by Muon, its recorded momenta through the
width-64 studies (recorded equilibration / EQ-6, NM-1, RM-1) — does the answer change with width?

One fine-tuning run (:mod:`matbal.train.finetune_real`, the REG-3 task) with Muon; a
:class:`~matbal.instruments.probes.Recorder` on the optimizer stores the Nesterov momentum ``M`` that
Muon orthogonalizes (and the gradient) of all 36 hidden matrices — 384×384 (query, key, value,
attention output), 1536×384 (FFN in), 384×1536 (FFN out) — at ``steps``. Per momentum:

- **equilibration** (the width-64 "recorded equilibration" study and EQ-6's question): x_min, stable
  rank and the measured Muon NS5 error before and after R, C, RC, RACS
  (:func:`matbal.analysis.equilibration_rows`);
- **NM-1**: the row-norm spread (CV, rows = the longer side) of Muon's NS5 output and of the exact
  polar factor (:func:`matbal.lab.momenta.row_norm_spread`);
- **RM-1**: ``cos(R(M), polar(M))``, ``cos(NS5(M), polar(M))`` and the spectral error
  ``‖s·R(M) − polar(M)‖₂`` (:func:`matbal.lab.momenta.row_vs_polar`).

A finding (no claim of a paper is settled here); the summary sets the MiniLM medians beside the
width-64 results stored by ``recorded_equilibration``, ``nm1_row_norms`` and
``rm1_row_vs_polar_momenta``.
"""
from __future__ import annotations

import numpy as np

import matbal
from matbal.analysis import equilibration_rows
from matbal.instruments import MatrixStore
from matbal.instruments.probes import Recorder
from matbal.lab import experiment_cli, list_results, load_results, save_results
from matbal.lab.momenta import row_norm_spread, row_vs_polar, spectrum_summary
from matbal.lab.training import runs_root
from matbal.train.finetune_real import FinetuneConfig, bert_layer_type, finetune

NAME = "minilm_recorded"
QUESTION = ("Momenta at real width: on all-MiniLM-L6-v2's recorded Muon momenta (384–1536 wide), do "
            "the width-64 answers of recorded equilibration / EQ-6, NM-1 and RM-1 still hold?")
CONFIG = {"finetune": {"optimizer": "muon", "lr": 8e-4, "adamw_lr": 1.6e-4, "steps": 100,
                       "batch_size": 16, "max_len": 32, "warmup_steps": 10,
                       "precision": "bf16-autocast", "per_class": 80, "n_prose": 128,
                       "tiny": False, "seed": 0},
          "steps": [50, 100], "balancings": ["none", "R", "C", "RC", "RACS"], "polar_rtol": 1e-6}
QUICK = dict(CONFIG, finetune=dict(CONFIG["finetune"], steps=4, batch_size=8, max_len=16,
                                   per_class=10, n_prose=8, tiny=True, warmup_steps=1),
             steps=[2, 4], balancings=["none", "R"])


def _record(cfg, results_dir):
    store_dir = runs_root(NAME, results_dir) / "store"
    if store_dir.exists():
        import shutil
        shutil.rmtree(store_dir)
    rec = Recorder(store_dir, run="muon", kinds=("momentum", "grad"), steps=cfg["steps"],
                   layers="bert.encoder.layer.*")
    res = finetune(FinetuneConfig(**cfg["finetune"], threads=1), progress=False, instruments=[rec])
    with MatrixStore(store_dir, mode="r") as store:
        recs = store.query(run="muon", kind="momentum")
        mats = {(r.layer, r.step): t.float() for r, t in zip(recs, store.get_many(recs))}
    return res, mats


def _median(rows, key, **where):
    vals = [r[key] for r in rows if all(r.get(k) == v for k, v in where.items())
            and r.get(key) is not None]
    return float(np.median(vals)) if vals else None


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    ft, mats = _record(cfg, results_dir)
    rows = []
    eq = equilibration_rows({f"{layer}@{step}": m for (layer, step), m in mats.items()},
                            methods=cfg["balancings"])
    for r in eq:
        layer, step = r["matrix"].rsplit("@", 1)
        rows.append({"record": "equilibration", "layer": layer, "type": bert_layer_type(layer),
                     "step": int(step), **{k: v for k, v in r.items() if k != "matrix"}})
    for (layer, step), m in mats.items():
        o = matbal.newton_schulz(m, schedule="muon", steps=5, dtype=m.dtype)
        q = matbal.polar(m.double(), rtol=cfg["polar_rtol"])
        ns, pol = row_norm_spread(o), row_norm_spread(q)
        rows.append({"record": "momentum", "layer": layer, "type": bert_layer_type(layer),
                     "step": step, "m": m.shape[0], "n": m.shape[1],
                     **row_vs_polar(m, cfg["polar_rtol"]), **spectrum_summary(m),
                     "ns5_row_cv": ns["cv"], "polar_row_cv": pol["cv"]})
    types = list(dict.fromkeys(r["type"] for r in rows if r["record"] == "momentum"))
    per_type = {}
    for t in types:
        per_type[t] = {k: _median(rows, k, record="momentum", type=t)
                       for k in ("x_min", "stable_rank", "cos_r_polar", "cos_ns5_polar", "error",
                                 "ns5_row_cv", "polar_row_cv")}
        for b in cfg["balancings"]:
            per_type[t][f"ns_error_{b}"] = _median(rows, "ns_error", record="equilibration",
                                                   type=t, balancing=b)
            per_type[t][f"x_min_{b}"] = _median(rows, "x_min", record="equilibration", type=t,
                                                balancing=b)
    width64 = {}
    stored = set(list_results())
    if results_dir is None:  # the committed width-64 results (a quick run has none beside it)
        if "rm1_row_vs_polar_momenta" in stored:
            pt = load_results("rm1_row_vs_polar_momenta").summary["per_type"]
            width64["rm1_per_type"] = {t: {k: v.get(k) for k in ("cos_r_polar", "x_min",
                                                                  "stable_rank")}
                                       for t, v in pt.items()}
        if "nm1_row_norms" in stored:
            s = load_results("nm1_row_norms").summary
            width64["nm1"] = {k: s.get(k) for k in ("tall_ns5_cv_recorded", "tall_polar_cv_recorded")}
        if "recorded_equilibration" in stored:
            s = load_results("recorded_equilibration").summary
            width64["recorded_equilibration_ns_error"] = {
                k: v.get("ns_error") for k, v in s.items() if isinstance(v, dict)}
    helps = {b: sum(1 for t in types if per_type[t][f"ns_error_{b}"] < per_type[t]["ns_error_none"])
             for b in cfg["balancings"][1:]}
    finding = (
        f"Muon fine-tuning of all-MiniLM-L6-v2 ({cfg['finetune']['steps']} steps, lr "
        f"{cfg['finetune']['lr']:g}; val acc {ft['val_acc']:.3f}), {len(mats)} momenta at steps "
        f"{cfg['steps']}. Median per layer type — x_min: " + ", ".join(
            f"{t} {per_type[t]['x_min']:.1e}" for t in types)
        + "; stable rank: " + ", ".join(f"{t} {per_type[t]['stable_rank']:.1f}" for t in types)
        + "; NS5 error none→R/RC/RACS: " + ", ".join(
            f"{t} {per_type[t]['ns_error_none']:.3f}→" + "/".join(
                f"{per_type[t][f'ns_error_{b}']:.3f}" for b in cfg["balancings"][1:]
                if b in ("R", "RC", "RACS")) for t in types)
        + f" (balancing lowers the median NS5 error for {helps} of {len(types)} types)"
        + "; RM-1 cos(R(M), polar(M)): " + ", ".join(
            f"{t} {per_type[t]['cos_r_polar']:.2f}" for t in types)
        + "; NM-1 row-norm CV of NS5 output vs polar: " + ", ".join(
            f"{t} {per_type[t]['ns5_row_cv']:.3f}/{per_type[t]['polar_row_cv']:.3f}" for t in types)
        + ". Width-64 values for comparison are in the summary (width64).")
    summary = {"question": QUESTION, "finding": finding, "per_type": per_type,
               "balancing_lowers_median_ns_error": helps, "finetune": {
                   k: ft[k] for k in ("val_acc", "test_acc", "retention_spearman", "wall_s")},
               "width64": width64}
    return save_results(NAME, rows, cfg, summary=summary, results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
