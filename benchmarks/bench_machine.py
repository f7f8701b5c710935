"""Machine limits measured in the same run: float32/float64/bf16 matmul rates, memory bandwidth.

These are the ceilings the other benchmarks are read against (``_common.LIMITS``).
"""
from __future__ import annotations

import torch

from benchmarks import _common as C


def main(quick: bool = True, full: bool = False) -> list[dict]:
    rows = []
    n32 = 2048 if quick else 4096
    f32 = C.measure_sgemm(n32, repeats=8 if quick else 4)
    rows.append({"what": f"sgemm float32 {n32}³ (best of N)", "value": f32, "unit": "GFLOP/s"})
    f32b = C.measure_sgemm(1024, repeats=10)
    rows.append({"what": "sgemm float32 1024³", "value": f32b, "unit": "GFLOP/s"})
    f64 = C.measure_sgemm(1024 if quick else 2048, dtype=torch.float64, repeats=3)
    rows.append({"what": f"dgemm float64 {1024 if quick else 2048}³", "value": f64, "unit": "GFLOP/s"})
    nb = 256 if quick else 512
    bf = C.measure_sgemm(nb, dtype=torch.bfloat16, repeats=2)
    rows.append({"what": f"bf16 matmul {nb}³", "value": bf, "unit": "GFLOP/s"})
    bw = C.measure_bandwidth((128 if quick else 256) << 20, repeats=5)
    for k, v in bw.items():
        rows.append({"what": f"memory bandwidth, {k} ({(128 if quick else 256)} MiB float32 arrays)",
                     "value": v, "unit": "GB/s"})
    # cache-resident pass (16 MiB, inside the 32 MiB L3): what a 1024×4096 float32 sweep can see
    l3 = C.measure_bandwidth(16 << 20, repeats=10)
    rows.append({"what": "read bandwidth, 16 MiB array (L3-resident)", "value": l3["read"], "unit": "GB/s"})
    C.LIMITS.clear()
    C.LIMITS.update({
        "sgemm_gflops": max(f32, f32b), "dgemm_gflops": f64, "bf16_gflops": bf,
        "bw_read_gbs": bw["read"], "bw_copy_gbs": bw["copy"], "bw_triad_gbs": bw["triad"],
        "l3_read_gbs": l3["read"], "source": "bench_machine",
    })
    rows.append({"what": "ratio float32 / bf16 matmul rate", "value": max(f32, f32b) / bf, "unit": "×"})
    C.print_table("Machine limits (this run)", rows)
    return rows


if __name__ == "__main__":
    main(quick=True)
