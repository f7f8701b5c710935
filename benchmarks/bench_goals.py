"""The BENCHMARKS.md goals table from one fresh run: ``python -m benchmarks.bench_goals``.

Every row is a ratio between peers timed interleaved in one process (medians), 1 thread unless a
row says otherwise, so a loaded machine moves the seconds more than the ratios. The header names
the CPU (model, the flags that decide the fast paths: AVX2 / AVX512-BF16 / AMX), torch, threads,
UTC time and the load average before and after. Parts (``--part``): ``ns`` (Newton–Schulz vs the
matmul rate in float32 and bf16), ``muon`` (muon step vs torch.optim.Muon; pytorch_optimizer and
heavyball Muon when installed), ``adamw``, ``hand`` (REG / MuonEq-R vs hand-written steps),
``racs`` (small-call fixed cost and sweep bandwidth), ``probes`` (overhead at the defaults,
``--quick`` model). The JSON goes to ``out/bench/goals.json``.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os

import torch

import matbal
from benchmarks import _common as C

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def _git() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, cwd=os.path.dirname(__file__)).stdout.strip()
    except Exception:  # pragma: no cover
        return ""


def header() -> dict:
    """CPU model and the decisive flags, torch, threads, time, load average."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {"cpu": C._cpu_model(),
            "flags": [f for f in FLAGS if f in flags],
            "capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "git": _git(),
            "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "load_avg": os.getloadavg()}


def ns_rate(quick: bool, shapes=None) -> list[dict]:
    """NS5 (``matbal.newton_schulz``, Muon schedule) in float32 and bf16 against a plain matmul of
    the same operands (``X @ Xᵀ``, the NS iteration's first product) in the same dtype, interleaved:
    useful GFLOP/s of each and NS's share of the matmul rate."""
    rows = []
    for m, n in shapes or ([(512, 2048)] if quick else [(512, 2048), (1024, 4096)]):
        for dt in (torch.float32, torch.bfloat16):
            x = torch.randn(m, n, generator=torch.Generator().manual_seed(0)).to(dt)
            res = C.interleaved({"ns": lambda: matbal.newton_schulz(x, steps=5, dtype=dt),
                                 "mm": lambda: x @ x.mT}, repeats=3 if quick else 7, warmup=1)
            ns = C.ns_flops(m, n, 5) / res["ns"]["median"] / 1e9
            mm = 2 * m * m * n / res["mm"]["median"] / 1e9
            rows.append({"shape": f"{m}×{n}", "dtype": str(dt).split(".")[-1],
                         "ns_gflops": ns, "matmul_gflops": mm, "ns_over_matmul": ns / mm})
    C.print_table("NS5 vs the matmul rate (1 thread)", rows)
    return rows


def muon_peers(quick: bool) -> list[dict]:
    """The dtype-policy table (matbal muon auto / float32 vs torch.optim.Muon on a GPT stack) and
    which third-party Muon peers are installed (none are installed by this script)."""
    from benchmarks.bench_optim import dtype_policy_table

    rows = dtype_policy_table(quick)
    for mod in ("pytorch_optimizer", "heavyball"):
        rows.append({"model": "peer", "optimizer": f"{mod} Muon",
                     "installed": importlib.util.find_spec(mod) is not None})
    return rows


def probes(quick: bool) -> list[dict]:
    from benchmarks import bench_probes

    out = bench_probes.main(quick=True, device="cpu", threads=1)
    return [{k: out[k] for k in ("median_s", "predicted_overhead", "measured_overhead")}]


def _parts():
    from benchmarks import bench_balance, bench_optim

    return {"ns": ns_rate, "muon": muon_peers,
            "adamw": lambda q: bench_optim.adamw_table(q),
            "hand": lambda q: bench_optim.hand_table(q),
            "racs": lambda q: bench_balance.fixed_table(q),
            "probes": probes}


def main(quick: bool = True, parts=None, out: str | None = "out/bench/goals.json") -> dict:
    head = header()
    print("machine:", head)
    table = _parts()
    result = {"header": head, "parts": {}}
    for p in parts or table:
        result["parts"][p] = table[p](quick)
    result["load_avg_after"] = os.getloadavg()
    print("load average after:", result["load_avg_after"])
    if out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(C.jsonable(result), f, indent=1)
    return result


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", nargs="+", choices=sorted(_parts()), help="default: all")
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--out", default="out/bench/goals.json")
    a = ap.parse_args()
    main(quick=a.quick, parts=a.part, out=a.out)
