"""``matbal`` command line: ``demo``, ``train``, ``compare``, ``plot``, ``store`` (each has
``--help``)."""
from __future__ import annotations

import argparse
import sys


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(out_dir=args.out, m=args.m, n=args.n, seed=args.seed, train_steps=args.train_steps,
             threads=args.threads)
    return 0


def _plot(args) -> int:
    from .train.plot import plot_main

    return plot_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="matbal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a tour: kernels on synthetic matrices, a short training run with probes and the store")
    demo.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    demo.add_argument("--m", type=int, default=256, help="rows of each matrix (default 256)")
    demo.add_argument("--n", type=int, default=512, help="columns of each matrix (default 512)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--train-steps", type=int, default=40,
                      help="steps of the training part of the tour (0 skips it; default 40)")
    demo.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    demo.set_defaults(func=_demo)
    plot = sub.add_parser("plot", help="loss curves and probe traces of a run directory → PNG")
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (matbal train's)")
    plot.add_argument("--out", default=None, metavar="PATH",
                      help="a .png path or a folder (<folder>/<run name>.png); default "
                           "RUN_DIR/plot.png")
    plot.add_argument("--layers", nargs="*", default=None, metavar="GLOB",
                      help="draw only the layers matching these fnmatch globs")
    plot.set_defaults(func=_plot)
    from .instruments.cli import add_store_parser

    add_store_parser(sub)
    from .analysis.cli import add_weights_parser

    add_weights_parser(sub)
    # these parse their own arguments (a flat typed config with --key value overrides)
    sub.add_parser("train", add_help=False, help="train a model (matbal train --help)")
    sub.add_parser("compare", add_help=False, help="compare optimizers / sweep lrs (--help)")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        from .train.cli import main as train_main

        return train_main(argv[1:])
    if argv[:1] == ["compare"]:
        from .train.cli import compare_main

        return compare_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
