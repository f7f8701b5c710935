"""``matbal store …``: list, inspect, analyze, export, check and repair a matrix store.

::

    matbal store ls PATH [--run R]
    matbal store show PATH --id N
    matbal store show PATH --run R --step S --layer L --kind K
    matbal store analyze PATH [--run R] [--kind K ...] [--layer L] [--step S] --out DIR
                              [--threads N]
    matbal store export PATH --out FILE.safetensors|FILE.npz|DIR [--format safetensors|npz]
                             [--run R] [--kind K ...] [--layer L] [--step S]
    matbal store check PATH
    matbal store repair PATH [--force]

``--step`` takes ``S``, ``A:B`` (A ≤ step < B, either end open) or ``A:B:K`` (every K-th).
``--layer``/``--kind`` are globs. Errors (no store, empty store, unknown run, a query that matches
nothing, a malformed ``--step``, a damaged catalog) print one line ``matbal store: error: …``
and exit with 1.

Check reads every data file and tensor and compares them with the catalog and with their own
header checksums; it prints the problems and exits with 1 if there is any (0: all good). Repair
rebuilds a damaged or missing catalog from the self-describing data files (the old catalog is
renamed ``catalog.sqlite.damaged-<time>``, never deleted; no data file is touched), then checks
again: exit 0 when the repaired store checks clean, 1 otherwise (e.g. an unreadable data file
left out, listed). Repair refuses while a writer holds the store.

Export: one file with every selected record (keys ``run/step/layer/kind``), or, for a directory,
one file per run; an ``index.csv`` manifest (key, run, step, layer, kind, shape, dtype,
src_dtype, exported dtype) goes beside. npz cannot hold bfloat16/float8: those are widened to
float32 (exactly) and a note says so.

Wiring: ``add_store_parser(subparsers)`` adds ``store`` to ``matbal``'s parser; ``main(argv)``
runs the same commands standalone (``main(["ls", path])``).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

__all__ = ["add_store_parser", "build_parser", "main", "parse_step"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 1."""


def parse_step(text: str):
    """``"5"`` → 5, ``"10:"`` → slice(10, None), ``"0:100:10"`` → range(0, 100, 10)."""
    parts = text.split(":")
    try:
        vals = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise CLIError(f"--step must be S, A:B or A:B:K with integers, got {text!r}") from None
    if len(vals) == 1 and vals[0] is not None:
        return vals[0]
    if len(vals) == 2:
        return slice(vals[0], vals[1])
    if len(vals) == 3 and vals[1] is not None and vals[2] is not None:
        return range(vals[0] or 0, vals[1], vals[2])
    raise CLIError(f"--step must be S, A:B or A:B:K (K needs an end B), got {text!r}")


def _open(path: str):
    from .store import MatrixStore, StoreNotFoundError

    try:
        return MatrixStore(path, mode="r")
    except StoreNotFoundError:
        raise CLIError(f"no matrix store at {path!r} (no such directory, or no catalog.sqlite "
                       "in it)") from None


def _filters(args) -> dict:
    return dict(run=args.run, kinds=args.kind or None, layer=args.layer,
                step=None if args.step is None else parse_step(args.step))


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n} B"


# -- commands -----------------------------------------------------------------------------------
def _ls(args, out) -> None:
    with _open(args.path) as st:
        s = st.summary()
        if args.run is None:
            print(f"{s.path}: {s.records} records, {s.files} files, {_mib(s.file_bytes)} on disk"
                  + ("" if s.records else " (empty store)"), file=out)
            for r in s.runs:
                print(f"  {r.run}: {r.records} records, steps {r.first_step}..{r.last_step}, "
                      f"{r.layers} layers, kinds {','.join(r.kinds)}, {_mib(r.nbytes)}", file=out)
            if any(s.skipped.values()):
                print(f"  skipped puts: {s.skipped}", file=out)
            return
        recs = st.query(run=args.run, strict=True)
        table: dict[tuple[str, str], list[int]] = {}
        for rec in recs:
            t = table.setdefault((rec.layer, rec.kind), [0, 0, rec.step, rec.step])
            t[0] += 1
            t[1] += rec.nbytes
            t[2], t[3] = min(t[2], rec.step), max(t[3], rec.step)
        print(f"run {args.run}: {len(recs)} records, {_mib(sum(r.nbytes for r in recs))}",
              file=out)
        print(f"  {'layer':<40} {'kind':<10} {'records':>7} {'steps':>13} {'bytes':>12}", file=out)
        for (layer, kind), (n, b, lo, hi) in sorted(table.items()):
            print(f"  {layer:<40} {kind:<10} {n:>7} {f'{lo}..{hi}':>13} {_mib(b):>12}", file=out)


def _spectrum_lines(t) -> list[str]:
    from ..kernels.metrics import spectrum_report, svdvals
    from ..kernels.orthogonalize import predict_singular_values
    from .store_analysis.analyze import _as_matrix

    x = _as_matrix(t)
    if x is None:
        return [f"  (shape {tuple(t.shape)}: not a matrix, no spectrum)"]
    d = spectrum_report(x).as_dict()
    pred = predict_singular_values(svdvals(x), schedule="muon", steps=5)
    d["ns_error_pred(muon, 5)"] = float((1 - pred).abs().max())
    keys = ("m", "n", "spectral_norm", "frobenius_norm", "stable_rank", "condition_number",
            "x_min", "effective_rank", "numerical_rank", "imbalance_residual", "row_cv",
            "col_cv", "zero_rows", "zero_cols", "ns_error_pred(muon, 5)")
    return [f"  {k:<24} {d[k]:.6g}" if isinstance(d[k], float) else f"  {k:<24} {d[k]}"
            for k in keys]


def _show(args, out) -> None:
    from .store_analysis.analyze import select_records

    with _open(args.path) as st:
        if args.id is not None:
            recs = [st.record(args.id)]
        else:
            missing = [f"--{k}" for k in ("run", "step", "layer", "kind")
                       if getattr(args, k) is None]
            if missing:
                raise CLIError(f"show needs --id N, or all of --run --step --layer --kind "
                               f"(missing {' '.join(missing)})")
            recs = select_records(st, run=args.run, kinds=args.kind, layer=args.layer,
                                  step=parse_step(args.step))
            if len(recs) > 1:
                lines = [f"  id {r.id}: run {r.run} step {r.step} {r.layer} {r.kind}"
                         for r in recs[:20]]
                raise CLIError(f"{len(recs)} records match; narrow the query or use --id:\n"
                               + "\n".join(lines))
        rec = recs[0]
        print(f"record {rec.id}: run {rec.run!r} step {rec.step} layer {rec.layer!r} "
              f"kind {rec.kind!r}", file=out)
        for k in ("shape", "dtype", "src_dtype", "nbytes", "checksum", "file", "key"):
            print(f"  {k:<24} {getattr(rec, k)}", file=out)
        print(f"  {'meta':<24} {json.dumps(rec.meta)}", file=out)
        if not args.no_spectrum:
            print("spectrum (float64 SVD):", file=out)
            for line in _spectrum_lines(st.get(rec)):
                print(line, file=out)


def _analyze(args, out) -> None:
    from .store_analysis import analyze_store, runs_of, summarize

    with _open(args.path) as st:
        res = analyze_store(st, **_filters(args), methods=args.methods, schedule=args.schedule,
                            steps=args.ns_steps, out=args.out, progress=not args.no_progress,
                            threads=args.threads)
    n = len({r["record_id"] for r in res.rows})
    runs = runs_of(res.rows)
    print(f"analyzed {n} matrices × {len(args.methods)} balancings → {len(res.rows)} rows"
          + (f" ({len(runs)} runs)" if len(runs) > 1 else ""), file=out)
    if len(runs) > 1:  # per-run groups: matrices and median x_min before/after each balancing
        for run in runs:
            sub = [r for r in res.rows if r["run"] == run]
            med = {s["balancing"]: s["median"] for s in summarize(sub, metrics=("x_min",))}
            print(f"  run {run}: {len({r['record_id'] for r in sub})} matrices, median x_min "
                  + ", ".join(f"{b} {v:.3g}" for b, v in med.items()), file=out)
    for k, p in res.files.items():
        print(f"  {k:<8} {p}", file=out)
    if res.skipped:
        print(f"  skipped {len(res.skipped)} records: {res.skipped[:5]}", file=out)


def _export(args, out) -> None:
    import numpy as np

    from .store_analysis.analyze import select_records

    fmt = args.format
    dest = Path(args.out)
    single = dest.suffix.lower() in (".safetensors", ".npz")
    if single:
        inferred = "npz" if dest.suffix.lower() == ".npz" else "safetensors"
        if fmt is not None and fmt != inferred:
            raise CLIError(f"--format {fmt} does not match the file name {str(dest)!r}")
        fmt = inferred
    fmt = fmt or "safetensors"
    with _open(args.path) as st:
        recs = select_records(st, **_filters(args))
        groups: dict[Path, list] = {}
        for r in recs:
            f = dest if single else dest / f"{r.run}.{fmt}"
            groups.setdefault(f, []).append(r)
        index, widened = [], 0
        for f, rs in groups.items():
            f.parent.mkdir(parents=True, exist_ok=True)
            tensors = {}
            for r in rs:
                key = f"{r.run}/{r.step}/{r.layer}/{r.kind}"
                if fmt == "npz":
                    a = st.get(r, as_="numpy")  # bf16/float8 → float32 (exact)
                    widened += a.dtype.name != r.dtype
                    tensors[key] = a
                else:
                    tensors[key] = st.get(r).contiguous()
                index.append({"file": f.name, "key": key, "run": r.run, "step": r.step,
                              "layer": r.layer, "kind": r.kind, "shape": list(r.shape),
                              "stored_dtype": r.dtype, "src_dtype": r.src_dtype,
                              "exported_dtype": str(tensors[key].dtype).replace("torch.", ""),
                              "record_id": r.id})
            if fmt == "npz":
                np.savez(f, **tensors)
            else:
                from safetensors.torch import save_file

                save_file(tensors, str(f), metadata={"source": str(st.path),
                                                     "format": "matbal-store-export"})
    manifest = (dest.with_name(dest.stem + ".index.csv") if single else dest / "index.csv")
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(index[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(index)
    print(f"exported {len(index)} records to {len(groups)} {fmt} file(s) "
          f"({', '.join(str(p) for p in groups)}); manifest {manifest}", file=out)
    if widened:
        print(f"note: {widened} bfloat16/float8 record(s) widened to float32 for npz (exact; "
              "numpy has no such dtypes; see exported_dtype in the manifest)", file=out)


def _check(args, out) -> int:
    from .store import check_store

    rep = check_store(args.path)
    print(rep, file=out)
    return 0 if rep.ok else 1


def _repair(args, out) -> int:
    from .store import check_store, repair_store

    rep = repair_store(args.path, force=args.force)
    print(rep, file=out)
    if not rep.rebuilt:
        return 0
    after = check_store(args.path)
    print(f"after repair: {after}", file=out)
    return 0 if after.ok else 1


# -- parser -------------------------------------------------------------------------------------
def _add_filters(p, *, kind_many: bool = True) -> None:
    p.add_argument("--run", help="run name (exact)")
    p.add_argument("--step", help="S, A:B or A:B:K")
    p.add_argument("--layer", help="layer glob, e.g. 'blocks.*.mlp*'")
    if kind_many:
        p.add_argument("--kind", action="append", help="kind glob (repeatable)")
    else:
        p.add_argument("--kind", help="kind")


def _fill(sub) -> None:
    from ..analysis.equilibration import BALANCINGS

    ls = sub.add_parser("ls", help="runs, record counts and bytes")
    ls.add_argument("path")
    ls.add_argument("--run", help="per layer/kind counts of this run")
    ls.set_defaults(store_func=_ls)

    show = sub.add_parser("show", help="one record's metadata and spectrum summary")
    show.add_argument("path")
    show.add_argument("--id", type=int, help="record id")
    _add_filters(show, kind_many=False)
    show.add_argument("--no-spectrum", action="store_true", help="metadata only (no SVD)")
    show.set_defaults(store_func=_show)

    an = sub.add_parser("analyze", help="equilibration table + figures over recorded matrices")
    an.add_argument("path")
    _add_filters(an)
    an.add_argument("--out", required=True, help="output folder (CSV, PNG, PDF)")
    an.add_argument("--methods", nargs="+", default=list(BALANCINGS), choices=list(BALANCINGS))
    an.add_argument("--schedule", default="muon", help="NS schedule (default muon)")
    an.add_argument("--ns-steps", type=int, default=5, help="NS steps (default 5)")
    an.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads for the SVDs (default: torch's setting)")
    an.add_argument("--no-progress", action="store_true")
    an.set_defaults(store_func=_analyze)

    ex = sub.add_parser("export", help="copy records to one safetensors/npz file or a folder")
    ex.add_argument("path")
    ex.add_argument("--out", required=True, help="FILE.safetensors, FILE.npz or a folder")
    ex.add_argument("--format", choices=("safetensors", "npz"),
                    help="for a folder (default safetensors); a file's suffix decides otherwise")
    _add_filters(ex)
    ex.set_defaults(store_func=_export)

    ck = sub.add_parser("check", help="verify the catalog and every data file (exit 1: problems)")
    ck.add_argument("path")
    ck.set_defaults(store_func=_check)

    rp = sub.add_parser("repair", help="rebuild a damaged catalog from the data files")
    rp.add_argument("path")
    rp.add_argument("--force", action="store_true",
                    help="rebuild even when check finds no problem (renumbers record ids)")
    rp.set_defaults(store_func=_repair)


def _run(args, out=None, err=None) -> int:
    from .store import StoreError

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        code = args.store_func(args, out)
    except (CLIError, StoreError, ValueError, TypeError, FileNotFoundError) as e:
        print(f"matbal store: error: {e}", file=err)
        return 1
    return code or 0


def add_store_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``store`` (with ``ls``, ``show``, ``analyze``, ``export``, ``check``, ``repair``) to
    ``matbal``'s subparsers;
    sets ``func`` so ``args.func(args)`` runs it and returns the exit status."""
    p = subparsers.add_parser("store", help="list, inspect, analyze, export, check and repair a "
                                            "matrix store")
    _fill(p.add_subparsers(dest="store_command", required=True))
    p.set_defaults(func=_run)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser of ``main`` (``prog="matbal store"``)."""
    parser = argparse.ArgumentParser(prog="matbal store", description=__doc__.split("\n")[0])
    _fill(parser.add_subparsers(dest="store_command", required=True))
    return parser


def main(argv=None, *, out=None, err=None) -> int:
    """Run ``matbal store`` with ``argv`` (e.g. ``["ls", "runs/store"]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    return _run(args, out, err)


if __name__ == "__main__":
    sys.exit(main())
