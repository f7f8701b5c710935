"""Build every paper figure from the stored results (experiments/results/), PDF + PNG.

    python paper_figs/build_all.py [--out DIR] [--results-dir DIR] [--only fig_ns_bands ...]

No experiment is run here: each figure reads stored results only (``matbal.lab.load_results``).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURES = ["fig_ns_bands", "fig_equilibration_gallery", "fig_eq1_row_mismatch", "fig_eq2_xmin",
           "fig_eq4_row_vs_polar", "fig_mu2_update_rms", "fig_pe2_steps", "fig_sinkhorn_rate",
           "fig_balance_limits", "fig_eq5_loss_curves", "fig_reg2_adamw_cosine",
           "fig_reg3_finetune", "fig_rm1_row_vs_polar",
           "fig_recorded_equilibration", "fig_minilm_weights", "fig_reg3_minilm",
           "fig_minilm_recorded", "fig_ns_need", "fig_ds1_designed_schedules",
           "fig_sc1_width_spectra", "fig_nslr1_ns_error_lr"]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"paper_figs_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="output directory (default paper_figs/out)")
    ap.add_argument("--results-dir", default=None, help="stored results (default experiments/results)")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args(argv)
    for name in args.only or FIGURES:
        for p in load(name).build(out_dir=args.out, results_dir=args.results_dir):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
