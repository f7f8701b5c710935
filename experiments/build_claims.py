"""Rewrite CLAIMS.md from the stored results (experiments/results/*.json); runs no experiment.

    python experiments/build_claims.py [--results-dir DIR] [--out PATH]
"""
from __future__ import annotations

import argparse

from matbal.lab import write_claims_md

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    print(write_claims_md(args.out, results_dir=args.results_dir))
