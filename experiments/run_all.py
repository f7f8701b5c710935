"""Run every experiment (full configuration unless --quick), then rewrite CLAIMS.md.

    python experiments/run_all.py            # all: ~5 min of kernel experiments + ~20 min of
                                             # training (EQ-5, REG-2, REG-3, RM-1) on 1 CPU thread
                                             # + ~16 min for SC-1's width runs (64–512)
    python experiments/run_all.py --only eq1_row_mismatch sk1_sinkhorn_rate
    python experiments/run_all.py --jobs 2   # EQ-5 trains its runs on 2 processes
    python experiments/run_all.py --quick    # seconds; results to out/experiments_quick/
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Every experiment script, in the order of the claim table, then our own questions.
EXPERIMENTS = [
    "eq1_row_mismatch", "eq2_xmin_governs", "eq3_invariance", "eq4_row_vs_polar",
    "eq5_muoneq_gpt", "eq6_intrinsic_low_rank", "mu1_muon_band", "mu2_update_rms",
    "nm1_row_norms", "pe1_polar_express_band", "pe2_steps_to_accuracy", "ca1_cans_cubic",
    "sk1_sinkhorn_rate", "sk2_sinkhorn_stall", "reg1_racs_kappa", "reg2_adamw_cosine",
    "reg3_finetune_shift", "rm1_row_vs_polar_momenta", "ns_bands", "balance_limits",
    "recorded_equilibration", "minilm_weights", "reg3_minilm_finetune", "minilm_recorded",
    "tm1_turbo_muon", "ns_need_gpt", "ds1_designed_schedules", "sc1_width_spectra",
    "nslr1_ns_error_lr",
]
#: The ones that train models (their runs are cached under out/runs/; see matbal.lab.training).
TRAINING = ["eq5_muoneq_gpt", "reg2_adamw_cosine", "reg3_finetune_shift",
            "rm1_row_vs_polar_momenta", "recorded_equilibration", "nm1_row_norms",
            "reg3_minilm_finetune", "minilm_recorded", "tm1_turbo_muon", "ns_need_gpt",
            "ds1_designed_schedules", "sc1_width_spectra",
            "nslr1_ns_error_lr"]


def load(name: str):
    """Import ``experiments/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", default=None, help="experiment names")
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes for experiments that prefill their runs in parallel (EQ-5)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be ≥ 1, got {args.jobs}")
    import inspect
    import os

    import torch

    # the claim experiments' NS inside optimizer presets is float32 (see matbal.lab.cli)
    os.environ.setdefault("MATBAL_NS_DTYPE", "float32")

    from matbal.lab import QUICK_RESULTS_DIR, write_claims_md

    torch.set_num_threads(max(1, args.threads))
    rdir = args.results_dir or (QUICK_RESULTS_DIR if args.quick else None)
    names = args.only or EXPERIMENTS
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        ap.error(f"unknown experiments {unknown}; choose from {EXPERIMENTS}")
    for name in names:
        t0 = time.perf_counter()
        main_fn = load(name).main
        kw = {"jobs": args.jobs} if "jobs" in inspect.signature(main_fn).parameters else {}
        res = main_fn(quick=args.quick, results_dir=rdir, **kw)
        verdicts = ", ".join(f"{c['id']}: {c['verdict']}" for c in res.claims) or "(figure data)"
        print(f"{name:26s} {time.perf_counter() - t0:6.1f} s  {verdicts}", flush=True)
    if not args.quick and rdir is None:
        print(f"wrote {write_claims_md()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
