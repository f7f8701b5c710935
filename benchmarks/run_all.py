"""Run every benchmark: ``python benchmarks/run_all.py [--quick] [--full] [--only NAME ...] [--out DIR]``.

Each ``benchmarks/bench_*.py`` has ``main(quick)`` (optionally ``full=``) that prints its tables and
returns rows (dicts). Results go to ``DIR/<name>.json`` (default ``out/bench/``) together with the
machine description and the limits measured in this run (``bench_machine`` runs first, so every
other benchmark is read against ceilings measured under the same load).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)

from benchmarks import _common as C  # noqa: E402

#: run order: machine limits first; bench_probes (owned by the probes engineer) when present
ORDER = ["machine", "ns", "balance", "metrics", "optim", "scaling", "probes", "gpu"]


def available() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    found = {f[len("bench_"):-3] for f in os.listdir(here) if f.startswith("bench_") and f.endswith(".py")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def run_one(name: str, quick: bool, full: bool):
    mod = importlib.import_module(f"benchmarks.bench_{name}")
    kw = {"quick": quick}
    if "full" in inspect.signature(mod.main).parameters:
        kw["full"] = full
    return mod.main(**kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a couple of minutes)")
    ap.add_argument("--full", action="store_true", help="largest sizes, incl. torch Muon bf16 NS at 1024×4096")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"subset of {available()}")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "bench"))
    args = ap.parse_args(argv)
    names = available()
    if args.only:
        unknown = [n.removeprefix("bench_") for n in args.only if n.removeprefix("bench_") not in names]
        if unknown:
            ap.error(f"unknown benchmark(s) {unknown}; available: {names}")
        wanted = [n.removeprefix("bench_") for n in args.only]
        names = [n for n in names if n in wanted]
    os.makedirs(args.out, exist_ok=True)
    info = C.machine_info()
    mode = "full" if args.full else ("quick" if args.quick else "default")
    print(f"# matbal benchmarks ({mode}) — {info['date']}")
    print(f"# {info['cpu']}, {info['cores']} cores; torch {info['torch']} ({info['torch_blas']}, "
          f"{info['torch_threads']} threads, {info['cpu_capability']}); load avg {info['loadavg_at_start']}")
    status, t_all = {}, time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        print(f"\n## {name}", flush=True)
        try:
            rows = run_one(name, args.quick, args.full)
            err = None
        except Exception as e:  # keep going; record the failure
            traceback.print_exc()
            rows, err = [], f"{type(e).__name__}: {e}"
        dt = time.perf_counter() - t0
        status[name] = {"seconds": dt, "error": err}
        C.dump(os.path.join(args.out, f"{name}.json"), {
            "benchmark": name, "mode": mode, "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
            "machine": info, "limits": dict(C.LIMITS), "seconds": dt, "error": err,
            "rows": rows if isinstance(rows, list) else [rows] if rows is not None else []})
        print(f"[{name}: {dt:.1f} s{'' if err is None else ', FAILED: ' + err}]", flush=True)
    total = time.perf_counter() - t_all
    try:
        info["loadavg_at_end"] = os.getloadavg()
    except OSError:
        pass
    C.dump(os.path.join(args.out, "summary.json"), {"mode": mode, "machine": info, "limits": dict(C.LIMITS),
                                                     "benchmarks": status, "total_seconds": total})
    print(f"\n# total {total:.1f} s; results in {args.out}")
    return 1 if any(s["error"] for s in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
