"""Shared helpers for the benchmarks: interleaved timing, machine info and limits, tables, fits.

Timing policy (the CPUs are shared and noisy): peers are always timed *side by side in one run,
interleaved* (round-robin: A B C A B C ...), each repeated; we report the median (and the min) per
peer and ratios of medians. Never compare numbers from different runs.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
from typing import Callable, Iterable

import numpy as np
import torch

__all__ = [
    "parts_rows",
    "interleaved",
    "timeit",
    "machine_info",
    "machine_limits",
    "print_table",
    "loglog_fit",
    "ns_flops",
    "fmt",
]


# ----------------------------------------------------------------------------------------------
# parts

def parts_rows(parts: Iterable[tuple[str, Callable[[], list[dict]]]]) -> list[dict]:
    """Run each ``(name, table_fn)`` of a benchmark in order; its rows, each tagged ``part=name``."""
    rows = []
    for part, table in parts:
        for r in table():
            r["part"] = part
            rows.append(r)
    return rows


# ----------------------------------------------------------------------------------------------
# timing

def timeit(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1) -> dict:
    """Median/min wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    return interleaved({"_": fn}, repeats=repeats, warmup=warmup)["_"]


def interleaved(fns: dict[str, Callable[[], object]], *, repeats: int = 3, warmup: int = 1,
                sync: Callable[[], object] | None = None, settle: float = 0.0,
                settle_after: Iterable[str] | None = None) -> dict:
    """Time several peers round-robin (A B C A B C ...). Returns ``{name: {"median", "min",
    "times", "result"}}`` with ``result`` the return value of the last call. ``sync`` (e.g.
    ``torch.cuda.synchronize``) is called before the clock starts and before it stops, so
    asynchronous GPU work is counted in full.

    ``settle``: seconds slept off the clock — after each call of the peers named in
    ``settle_after``, or before every timed call when ``settle_after`` is None. It lets the
    worker threads a peer's BLAS left spinning go idle before the next peer starts: numpy's and
    scipy's OpenBLAS workers spin for ~0.1 s after a call, and on 2 cores they take a core from
    whatever runs next (a torch peer timed right after ``scipy.linalg.polar`` ran 1.9× slower,
    right after POT numpy 1.7×: BENCHMARKS.md §2, session 5). Prefer ``settle_after`` with the
    BLAS-using peers: a pause before every call also lets every peer start with colder caches."""
    sync = sync or (lambda: None)
    out = {k: {"times": [], "result": None} for k in fns}
    after = frozenset(settle_after or ())
    unknown = after - set(fns)
    if unknown:
        raise ValueError(f"settle_after names no peer: {sorted(unknown)}")
    for _ in range(warmup):
        for k, f in fns.items():
            out[k]["result"] = f()
            if settle and k in after:
                time.sleep(settle)
    for _ in range(repeats):
        for k, f in fns.items():
            if settle and settle_after is None:
                time.sleep(settle)
            sync()
            t0 = time.perf_counter()
            out[k]["result"] = f()
            sync()
            out[k]["times"].append(time.perf_counter() - t0)
            if settle and settle_after is not None and k in after:
                time.sleep(settle)
    for v in out.values():
        v["median"] = statistics.median(v["times"]) if v["times"] else float("nan")
        v["min"] = min(v["times"]) if v["times"] else float("nan")
    return out


# ----------------------------------------------------------------------------------------------
# machine

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cache() -> str:
    try:
        import subprocess

        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        return "; ".join(" ".join(l.split()) for l in out.splitlines() if "cache" in l.lower())
    except Exception:  # pragma: no cover
        return ""


def machine_info() -> dict:
    """CPU model, cores, caches, torch/numpy versions and threads, BLAS, load, date."""
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    try:
        import scipy

        scipy_v = scipy.__version__
    except ImportError:  # pragma: no cover
        scipy_v = None
    try:
        import ot

        pot_v = ot.__version__
    except ImportError:
        pot_v = None
    cfg = torch.__config__.show()
    blas = "MKL" if "Math Kernel Library" in cfg else ("OpenBLAS" if "OpenBLAS" in cfg else "?")
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "caches": _cache(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_blas": blas,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy": np.__version__,
        "scipy": scipy_v,
        "pot": pot_v,
        "cuda": torch.cuda.is_available(),
        "loadavg_at_start": load,
    }


#: filled by bench_machine.main (or lazily by machine_limits): GFLOP/s and GB/s of this run
LIMITS: dict = {}


def measure_sgemm(n: int, *, dtype=torch.float32, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of an ``n³`` matmul in ``dtype``."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    c = torch.empty(n, n, dtype=dtype)
    torch.matmul(a, b, out=c)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def measure_bandwidth(nbytes: int = 256 << 20, repeats: int = 5) -> dict:
    """Best-of GB/s for read (sum), copy (``b ← a``: 2 arrays) and triad (``a ← b + s·c``: 3)
    on float32 arrays of ``nbytes`` each (≫ the 32 MiB L3 of our machines)."""
    n = nbytes // 4
    a = torch.rand(n)
    b = torch.rand(n)
    c = torch.rand(n)
    best = {"read": math.inf, "copy": math.inf, "triad": math.inf}
    a.sum()
    b.copy_(a)
    for _ in range(repeats):
        t0 = time.perf_counter()
        a.sum()
        best["read"] = min(best["read"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        b.copy_(a)
        best["copy"] = min(best["copy"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        torch.add(b, c, alpha=1.5, out=a)
        best["triad"] = min(best["triad"], time.perf_counter() - t0)
    return {
        "read": n * 4 / best["read"] / 1e9,
        "copy": 2 * n * 4 / best["copy"] / 1e9,
        "triad": 3 * n * 4 / best["triad"] / 1e9,
    }


def machine_limits(quick: bool = True) -> dict:
    """The limits measured in this process (measured now, quickly, if no bench filled them)."""
    if not LIMITS:
        LIMITS["sgemm_gflops"] = max(measure_sgemm(2048, repeats=5), measure_sgemm(1024, repeats=5))
        LIMITS["bf16_gflops"] = measure_sgemm(256, dtype=torch.bfloat16, repeats=2)
        bw = measure_bandwidth(128 << 20, repeats=3)
        LIMITS.update({f"bw_{k}_gbs": v for k, v in bw.items()})
        LIMITS["source"] = "lazy (bench_machine not run in this process)"
    return LIMITS


# ----------------------------------------------------------------------------------------------
# flops and fits

def ns_flops(m: int, n: int, steps: int, degree: int = 5, batch: int = 1) -> float:
    """Flops of ``steps`` NS steps on ``(batch, m, n)`` with the Gram on the short side
    (``r = min, c = max``): quintic ``2r²c + 2r³ + 2r²c``, cubic ``2r²c + 2r²c`` per step."""
    r, c = min(m, n), max(m, n)
    per = 4 * r * r * c + (2 * r**3 if degree >= 5 else 0)
    return float(per * steps * batch)


def loglog_fit(xs: Iterable[float], ys: Iterable[float]) -> tuple[float, float]:
    """Least-squares ``log y = e·log x + b``; returns ``(e, r²)``."""
    lx, ly = np.log(np.asarray(list(xs), float)), np.log(np.asarray(list(ys), float))
    e, b = np.polyfit(lx, ly, 1)
    pred = e * lx + b
    ss = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1 - float(((ly - pred) ** 2).sum()) / ss if ss > 0 else 1.0
    return float(e), r2


# ----------------------------------------------------------------------------------------------
# output

def fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1e5 or a < 1e-3:
            return f"{v:.3g}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)


def print_table(title: str, rows: list[dict], cols: list[str] | None = None) -> None:
    """Print ``rows`` (dicts) as a markdown table."""
    print(f"\n### {title}\n")
    if not rows:
        print("(no rows)")
        return
    if cols is None:
        cols = []
        for r in rows:
            for k in r:
                if k not in cols and not k.startswith("_"):
                    cols.append(k)
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |")
    print(flush=True)


def jsonable(obj):
    """Make rows JSON-serializable (tensors/numpy scalars → floats)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def dump(path: str, payload: dict) -> None:
    with open(path, "w") as f:
        json.dump(jsonable(payload), f, indent=1)
