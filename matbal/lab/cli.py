"""The command line every experiment and figure script shares.

An experiment module defines ``NAME`` and ``main(quick=False, results_dir=None) -> Results``
(optionally with a ``jobs`` keyword: ``--jobs N`` is passed to it, and ignored with a note when
``main`` has no such parameter) and ends with ``if __name__ == "__main__": experiment_cli(main)``;
a figure module defines
``build(out_dir=None, results_dir=None) -> list[Path]`` and ends with ``figure_cli(build)``.

``--quick`` runs the small configuration (≤ ~10 s, used by the tests) and writes to
``out/experiments_quick/`` unless ``--results-dir`` is given, so it never overwrites the committed
results.

The claim experiments pin float32 Newton–Schulz inside every optimizer preset
(``MATBAL_NS_DTYPE=float32`` unless the caller set that variable): their stored results were
measured so, and a claim about NS accuracy must not change with the CPU a referee re-runs it on
(``ns_dtype="auto"`` picks bf16 on CPUs with native bf16, see :mod:`matbal.kernels.dtype_policy`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

from .results import REPO_ROOT, Results

__all__ = ["experiment_cli", "figure_cli", "QUICK_RESULTS_DIR"]

QUICK_RESULTS_DIR = REPO_ROOT / "out" / "experiments_quick"


def experiment_cli(main: Callable[..., Results], argv: list[str] | None = None) -> Results:
    """Parse ``--quick`` / ``--results-dir``, run ``main``, print its summary and claim verdicts."""
    mod = sys.modules.get(getattr(main, "__module__", ""), None)
    ap = argparse.ArgumentParser(description=((mod.__doc__ if mod else "") or "").split("\n")[0] or None)
    ap.add_argument("--quick", action="store_true", help="small configuration (seconds; for tests)")
    ap.add_argument("--results-dir", default=None,
                    help="where to write <name>.csv/.json (default experiments/results; "
                         "--quick: out/experiments_quick)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: on a shared 2-core machine more "
                         "threads made these small matrices ~10x slower)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="worker processes for experiments whose main() takes jobs (they prefill "
                         "their run cache in parallel; results do not depend on it)")
    args = ap.parse_args(argv)
    import inspect
    import os

    import torch

    os.environ.setdefault("MATBAL_NS_DTYPE", "float32")
    torch.set_num_threads(max(1, args.threads))
    rdir = args.results_dir or (QUICK_RESULTS_DIR if args.quick else None)
    t0 = time.perf_counter()
    if args.jobs < 1:
        ap.error(f"--jobs must be ≥ 1, got {args.jobs}")
    kwargs = {"jobs": args.jobs} if "jobs" in inspect.signature(main).parameters else {}
    if args.jobs > 1 and not kwargs:
        print(f"note: {getattr(main, '__module__', 'this experiment')} runs in one process "
              f"(--jobs ignored)")
    res = main(quick=args.quick, results_dir=rdir, **kwargs)
    dt = time.perf_counter() - t0
    print(f"{res.name}: {len(res.rows)} rows in {dt:.1f} s -> "
          f"{Path(rdir) if rdir else 'experiments/results'}/{res.name}.{{csv,json}}")
    if res.summary:
        print(json.dumps(res.summary, indent=1, ensure_ascii=False)[:3000])
    for c in res.claims:
        print(f"[{c['id']}] {c['verdict']}: {c['measured']}")
    return res


def figure_cli(build: Callable[..., list[Path]], argv: list[str] | None = None) -> list[Path]:
    """Parse ``--out`` / ``--results-dir`` and build one figure from stored results."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="output directory (default paper_figs/out)")
    ap.add_argument("--results-dir", default=None, help="stored results (default experiments/results)")
    args = ap.parse_args(argv)
    paths = build(out_dir=args.out, results_dir=args.results_dir)
    for p in paths:
        print(p)
    return paths
