"""NM-1: row norms of orthogonalized updates — non-uniform for tall matrices, unit for wide exact polar.

NorMuon's observation is about what Muon actually applies: the rows (neurons) of the *NS output*
on *trained momenta*. So two sources, each orthogonalized both ways — O = polar(X) (float64) and
O = Muon NS5(X) (float32) — with the coefficient of variation (std/mean) of the row norms of O and,
for wide exact polar, the largest |‖o_i‖ − 1|:
(A) synthetic tall (m > n) and wide (m < n) matrices of several kinds (``GALLERY``); for tall X the
    squared row norms of polar(X) are the leverage scores of X's column space (they sum to n),
    equal only if that space is "incoherent" — NS5 adds the unequal lift of small directions;
(B) momenta recorded in the Muon-trained run of ``matbal.lab.training.RECORDING`` (the NS input;
    shared with REG-2, RM-1 and ``recorded_equilibration``), every ``every``-th recorded step from
    ``from_step`` on, every layer (weight rows = output neurons), medians per layer type.

Rule, fixed before the run: non-uniform := row-norm CV ≥ 0.05. "holds" if wide exact polar rows
are unit to 1e-10 and the NS5 output is non-uniform for every tall synthetic matrix and every tall
recorded layer type; "holds under conditions" if wide polar is unit and the NS5 output is
non-uniform for some of them (the conditions name where, and where exact polar is uniform);
"fails" otherwise.
"""
from __future__ import annotations

import statistics

import matbal
import matbal.synthetic as syn
from matbal.instruments.store import MatrixStore
from matbal.lab import experiment_cli, save_results, verdict
from matbal.lab.training import RECORDING, RECORDING_QUICK, layer_type, recorded_gpt

NAME = "nm1_row_norms"
CONFIG = {"tall": [1024, 256], "wide": [256, 1024], "seeds": [0, 1, 2],
          "matrices": ["gaussian", "heavy_rows", "heavy_cols", "power_law", "low_rank", "heavy_tailed"],
          "recording": RECORDING, "stream": "muon", "from_step": 50, "every": 50, "cv_min": 0.05}
QUICK = dict(CONFIG, tall=[128, 32], wide=[32, 128], seeds=[0], matrices=["gaussian", "heavy_rows"],
             recording=RECORDING_QUICK, from_step=4, every=4)


def _orient(m, n):
    return "tall" if m > n else "wide" if m < n else "square"


def _recorded(cfg, results_dir):
    """Recorded momenta ``{(layer, step): X}`` of the Muon run."""
    rec = recorded_gpt(cfg["recording"], cfg["stream"], results_dir=results_dir)
    with MatrixStore(rec["store"], mode="r") as store:
        recs = [r for r in store.query(run=cfg["stream"], kind="momentum")
                if r.step >= cfg["from_step"] and r.step % cfg["every"] == 0]
        return {(r.layer, r.step): t.float() for r, t in zip(recs, store.get_many(recs))}


def _stats(o) -> dict:
    r = o.double().norm(dim=1)
    return {"cv": float(r.std(unbiased=False) / r.mean()), "max_dev_from_1": float((r - 1).abs().max()),
            "min": float(r.min()), "max": float(r.max()), "mean_sq": float(r.pow(2).mean())}


def main(quick: bool = False, results_dir=None):
    cfg = QUICK if quick else CONFIG
    cv_min = cfg["cv_min"]
    rows = []
    for orient in ("tall", "wide"):
        m, n = cfg[orient]
        for name in cfg["matrices"]:
            for seed in cfg["seeds"]:
                x = syn.GALLERY[name](m, n, seed=seed)
                for method, o in (("polar", matbal.polar(x)), ("muon_ns5", matbal.newton_schulz(x))):
                    rows.append({"source": "synthetic", "orientation": orient, "m": m, "n": n,
                                 "matrix": name, "seed": seed, "step": None, "method": method,
                                 **_stats(o)})
    for (layer, step), x in _recorded(cfg, results_dir).items():
        m, n = x.shape
        for method, o in (("polar", matbal.polar(x)), ("muon_ns5", matbal.newton_schulz(x))):
            rows.append({"source": "recorded", "orientation": _orient(m, n), "m": m, "n": n,
                         "matrix": layer_type(layer), "seed": None, "step": step,
                         "method": method, **_stats(o)})

    def _cv(source, orient, method):
        by = {}
        for r in rows:
            if (r["source"], r["orientation"], r["method"]) == (source, orient, method):
                by.setdefault(r["matrix"], []).append(r["cv"])
        return {k: statistics.median(v) for k, v in by.items()}

    wide = [r for r in rows if r["source"] == "synthetic" and r["orientation"] == "wide"
            and r["method"] == "polar"]
    wide_ns = [r for r in rows if r["source"] == "synthetic" and r["orientation"] == "wide"
               and r["method"] == "muon_ns5"]
    wide_dev = max(r["max_dev_from_1"] for r in wide)
    syn_pol, syn_ns = _cv("synthetic", "tall", "polar"), _cv("synthetic", "tall", "muon_ns5")
    rec_pol, rec_ns = _cv("recorded", "tall", "polar"), _cv("recorded", "tall", "muon_ns5")
    rec_ns_all = {o: _cv("recorded", o, "muon_ns5") for o in ("tall", "square", "wide")}
    ns_cases = {**{f"synthetic {k}": v for k, v in syn_ns.items()},
                **{f"recorded {k}": v for k, v in rec_ns.items()}}
    uneven = [k for k, v in ns_cases.items() if v >= cv_min]
    even = [k for k in ns_cases if k not in uneven]
    shapes = sorted({(r["matrix"], r["m"], r["n"]) for r in rows if r["source"] == "recorded"})
    n_rec = len({(r["matrix"], r["step"], r["m"]) for r in rows if r["source"] == "recorded"})

    def _pairs(pol, ns):
        return ", ".join(f"{k} {ns[k]:.2f} (polar {pol[k]:.2f})" for k in ns)

    measured = (
        f"row-norm CV, Muon NS5 output (exact polar in brackets), median over seeds/steps — "
        f"synthetic tall {cfg['tall'][0]}×{cfg['tall'][1]}: {_pairs(syn_pol, syn_ns)}; recorded "
        f"momenta of the Muon GPT run ({n_rec} matrices, "
        + ", ".join(f"{t} {m}×{n}" for t, m, n in shapes)
        + f"), tall: {_pairs(rec_pol, rec_ns) or 'none'}"
        + "".join(f"; {o}: " + ", ".join(f"{k} {v:.2f}" for k, v in d.items())
                  for o, d in rec_ns_all.items() if o != "tall" and d)
        + f"; wide {cfg['wide'][0]}×{cfg['wide'][1]} exact polar: every row unit to {wide_dev:.0e}, "
        f"NS5 rows not (max |‖o_i‖−1| {max(r['max_dev_from_1'] for r in wide_ns):.2f})"
    )
    if wide_dev < 1e-10 and ns_cases and not even:
        v, cond = "holds", None
    elif wide_dev < 1e-10 and uneven:
        pol_even = [k for k, val in {**{f"synthetic {k}": x for k, x in syn_pol.items()},
                                     **{f"recorded {k}": x for k, x in rec_pol.items()}}.items()
                    if val < cv_min]
        from_ns = [k for k in uneven if k in pol_even]  # NS5 uneven where exact polar is not
        v, cond = "holds under conditions", (
            f"NS5 outputs of tall matrices have non-uniform row norms (CV ≥ {cv_min:g}) for "
            f"{', '.join(uneven)}; nearly uniform for {', '.join(even)}; the exact polar factor "
            f"is nearly uniform (CV < {cv_min:g}) for {', '.join(pol_even) or 'none'}"
            + (f" — for {', '.join(from_ns)} the non-uniformity comes from NS5 itself (unequal "
               "lift of small singular directions), not from the column-space leverage"
               if from_ns else ""))
    else:
        v, cond = "fails", None
    claim = verdict("NM-1", measured, v, conditions=cond,
                    criterion=f"wide polar rows unit to 1e-10; NS5-output row-norm CV ≥ {cv_min:g} "
                              "for every tall synthetic matrix and tall recorded layer type "
                              "(holds), for some (holds under conditions), else fails")
    summary = {"wide_polar_max_dev": wide_dev, "tall_polar_cv_synthetic": syn_pol,
               "tall_ns5_cv_synthetic": syn_ns, "tall_polar_cv_recorded": rec_pol,
               "tall_ns5_cv_recorded": rec_ns,
               "ns5_cv_recorded_by_orientation": rec_ns_all}
    return save_results(NAME, rows, cfg, summary=summary, claims=[claim], results_dir=results_dir)


if __name__ == "__main__":
    experiment_cli(main)
