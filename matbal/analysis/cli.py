"""``matbal weights …``: analyze the matrices of a weights file from the shell.

::

    matbal weights analyze FILE --out DIR [--schedule NAME[:STEPS] ...] [--balance LABEL ...]
                                          [--include GLOB ...] [--exclude GLOB ...]

``FILE`` is a ``.safetensors`` file or a torch checkpoint (loaded with ``weights_only=True``, never
unpickled). Writes ``DIR/weights.csv`` (the rows of :func:`matbal.analyze_model`) and
``DIR/weights.png`` (:func:`matbal.analysis.model_figure`) and prints the table. Errors (no such
file, a file that is not a weights file, an unknown schedule or balancing) print one line
``matbal weights: error: …`` and exit with 1.

Wiring: ``add_weights_parser(subparsers)`` adds ``weights`` to ``matbal``'s parser.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_weights_parser", "parse_schedule"]


def parse_schedule(text: str):
    """``"muon"`` → ``"muon"`` (its default steps), ``"polar_express:8"`` → ``("polar_express", 8)``."""
    name, _, steps = text.partition(":")
    if not steps:
        return name
    try:
        return name, int(steps)
    except ValueError:
        raise ValueError(f"--schedule must be NAME or NAME:STEPS, got {text!r}") from None


def _analyze(args) -> int:
    from .model import analyze_model

    try:
        schedules = [parse_schedule(s) for s in (args.schedule or ["muon:5"])]
        res = analyze_model(args.file, schedules=schedules, balancings=args.balance,
                            include=args.include, exclude=args.exclude or ())
    except (FileNotFoundError, ValueError, TypeError, KeyError) as exc:
        print(f"matbal weights: error: {exc}", file=sys.stderr)
        return 1
    if not res.rows:
        print(f"matbal weights: error: {args.file} holds no matrix (ndim >= 2) tensor",
              file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = res.to_csv(out / "weights.csv")
    fig = res.figure()
    fig.savefig(out / "weights.png", dpi=120)
    print(res.table())
    print(f"\n{len({r['name'] for r in res.rows})} matrices ({len(res.skipped)} tensors skipped); "
          f"wrote {csv_path} and {out / 'weights.png'}")
    return 0


def add_weights_parser(sub) -> None:
    """Add the ``weights`` command group to ``matbal``'s subparsers."""
    weights = sub.add_parser("weights", help="analyze the matrices of a weights file (--help)",
                             description=__doc__.split("\n\n")[0])
    wsub = weights.add_subparsers(dest="weights_command", required=True)
    an = wsub.add_parser("analyze", help="per-matrix spectra, κ, x_min, NS error → CSV + PNG")
    an.add_argument("file", help=".safetensors file or torch checkpoint (weights_only)")
    an.add_argument("--out", required=True, help="output folder (weights.csv, weights.png)")
    an.add_argument("--schedule", action="append",
                    help="NS schedule NAME or NAME:STEPS whose error is predicted; repeatable "
                         "(default muon:5)")
    an.add_argument("--balance", nargs="+", default=["none"],
                    help="balancings to add: none R C RC RACS (default: none)")
    an.add_argument("--include", nargs="+", default=None, help="glob(s) over tensor names to keep")
    an.add_argument("--exclude", nargs="+", default=None, help="glob(s) over tensor names to drop")
    an.set_defaults(func=_analyze)
