"""Command lines: ``matbal train`` (:func:`main`) and ``matbal compare`` (:func:`compare_main`).

``matbal train --model gpt --optimizer muoneq-r --steps 500`` — every :class:`TrainConfig` field
is an option (``matbal train --help`` lists them). Under ``torchrun`` the same command trains
data-parallel, or with ``--parallel fsdp`` on an FSDP2-sharded model (see
:mod:`matbal.train.distributed`)::

    python -m matbal.train --model cnn --optimizer muon --steps 200
    torchrun --standalone --nproc_per_node=2 -m matbal.train --model gpt --optimizer muon
    torchrun --standalone --nproc_per_node=2 -m matbal.train --model gpt --parallel fsdp

Errors in the options exit with status 2 and a message naming the option — also those found
while the run is set up (:class:`~matbal.train.config.OptionError`: an optimizer keyword the
preset refuses, an ``--out-dir`` that cannot be created, a ``--resume`` checkpoint that is
missing or does not fit). ``--batch_size`` is accepted for ``--batch-size`` (every option).
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main", "compare_main", "build_train_parser", "build_compare_parser"]


def build_train_parser(prog: str = "matbal train") -> argparse.ArgumentParser:
    from .config import ConfigParser, build_config_parser

    p = ConfigParser(
        prog=prog, description="Train a small model (GPT on stdlib source, MLP/CNN on digits) "
        "with a matbal optimizer. Run it under torchrun for several processes.")
    return build_config_parser(p)


def main(argv=None) -> int:
    """``matbal train``: parse options, train, print the summary (rank 0). Returns 0."""
    from .config import OptionError, TrainConfig
    from .distributed import teardown

    parser = build_train_parser()
    ns = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        cfg = TrainConfig(**vars(ns))
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    from .loop import train

    try:
        res = train(cfg)
    except OptionError as e:  # found while setting the run up: still a bad option
        teardown(synchronize=False)
        parser.error(f"argument {e.flag}: {e}")
    except BaseException:
        teardown(synchronize=False)
        raise
    teardown()
    if res.run_dir is not None and _is_main():
        print(json.dumps({"run_dir": str(res.run_dir), "final_val_loss": res.final_val_loss,
                          "best_val_loss": res.best_val_loss,
                          "mean_step_time_s": res.mean_step_time_s,
                          "tokens_per_s": res.tokens_per_s,
                          "matrices_per_rank": res.matrices_per_rank}))
    return 0


def _is_main() -> bool:
    import os
    return os.environ.get("RANK", "0") == "0"


def build_compare_parser(prog: str = "matbal compare") -> argparse.ArgumentParser:
    from .config import ConfigParser, build_config_parser

    p = ConfigParser(
        prog=prog, description="Train several optimizers over several seeds and tabulate/plot "
        "the validation loss; or sweep learning rates (--sweep). Any train option "
        "(--model, --steps, --n-embd …) applies to every run.")
    g = p.add_argument_group("compare")
    g.add_argument("--optimizers", default="adamw,muon,muoneq-r,muoneq-rc,reg",
                   help="comma-separated preset names (default: %(default)s)")
    g.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per optimizer (default 3)")
    g.add_argument("--sweep", default=None, metavar="LR1,LR2,...",
                   help="sweep these learning rates instead of comparing; writes sweep.csv, "
                        "sweep.md and best_lrs.json to the results folder")
    g.add_argument("--lrs", default=None, metavar="PATH",
                   help="best_lrs.json to read the learning rates from (default: the packaged "
                        "matbal/train/best_lrs.json)")
    g.add_argument("--results", default=None, metavar="DIR",
                   help="results folder (default: out/<compare|sweep>-<model>-<time>)")
    return build_config_parser(p)


def compare_main(argv=None) -> int:
    """``matbal compare``: compare optimizers (or ``--sweep`` learning rates)."""
    from .config import TrainConfig

    parser = build_compare_parser()
    ns = vars(parser.parse_args(sys.argv[1:] if argv is None else list(argv)))
    opts = {k: ns.pop(k) for k in ("optimizers", "seeds", "sweep", "lrs", "results")}
    try:
        base = TrainConfig(**ns)
        optimizers = [o.strip() for o in opts["optimizers"].split(",") if o.strip()]
        for o in optimizers:
            TrainConfig(**{**ns, "optimizer": o})  # validates the name
        if opts["seeds"] <= 0:
            raise ValueError(f"seeds must be a positive integer, got {opts['seeds']}")
        lrs = None
        if opts["sweep"]:
            lrs = [float(x) for x in opts["sweep"].split(",") if x.strip()]
            bad = [x for x in lrs if not x > 0]
            if bad or not lrs:
                raise ValueError(f"sweep must be a comma-separated list of positive lrs, got "
                                 f"{opts['sweep']!r}")
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    from .compare import run_compare, run_sweep

    argv_text = "matbal compare " + " ".join(sys.argv[1:] if argv is None else list(argv))
    if lrs is not None:
        out = run_sweep(base, optimizers, lrs, seeds=opts["seeds"], results=opts["results"],
                        command=argv_text)
    else:
        out = run_compare(base, optimizers, seeds=opts["seeds"], lrs_path=opts["lrs"],
                          results=opts["results"], command=argv_text)
    print(out)
    return 0
