"""Scaling: how NS (float32, 5 Muon steps) and racs (p=2, 5 sweeps) cost grows with m, n and batch
size; exponents fitted by least squares on log-log (expected: NS ~m² at fixed n (m ≤ n), ~n at fixed
m, ~batch; racs ~mn, ~batch)."""
from __future__ import annotations

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C


def _series(label, param, values, make, fn, expected, reps, sync=None):
    """One scaling series: ``fn(make(v))`` timed side by side for every ``v``, slopes fitted."""
    xs = {v: make(v) for v in values}
    res = C.interleaved({str(v): (lambda v=v: fn(xs[v])) for v in values}, repeats=reps, warmup=1, sync=sync)
    ts = [res[str(v)]["median"] for v in values]
    tm = [res[str(v)]["min"] for v in values]
    e, r2 = C.loglog_fit(values, ts)
    e2, r22 = C.loglog_fit(values, tm)
    return {"kernel": label, "vary": param, "values": ",".join(map(str, values)),
            "medians_s": ",".join(f"{t:.3g}" for t in ts), "exp_median": e, "r2_median": r2,
            "exp_min": e2, "r2_min": r22, "expected": expected}


def main(quick: bool = True, full: bool = False) -> list[dict]:
    reps = 3
    ns = lambda x: matbal.newton_schulz(x, steps=5)
    rc = lambda x: matbal.racs(x, p=2, steps=5)
    ms = [128, 256, 512] if quick else [256, 512, 1024, 2048]
    nsz = [1024, 2048, 4096] if quick else [2048, 4096, 8192, 16384]
    bs = [1, 2, 4] if quick else [1, 2, 4, 8]
    rows = [
        _series("newton_schulz", "m (n=4096)" if quick else "m (n=8192)", ms,
                lambda m: syn.gaussian(m, 4096 if quick else 8192, seed=0), ns, "≈2 (4m²n dominates)", reps),
        _series("newton_schulz", "n (m=512)", nsz, lambda n: syn.gaussian(512, n, seed=0), ns, "≈1", reps),
        _series("newton_schulz", "batch (512×2048)", bs, lambda b: syn.gaussian(512, 2048, seed=0, batch=(b,)), ns, "≈1", reps),
        _series("racs", "m (n=4m)", [512, 1024, 2048] if quick else [512, 1024, 2048, 4096],
                lambda m: syn.gaussian(m, 4 * m, seed=0), rc, "≈2 (∝ mn)", reps),
        _series("racs", "batch (1024×4096)", bs, lambda b: syn.gaussian(1024, 4096, seed=0, batch=(b,)), rc, "≈1", reps),
    ]
    C.print_table("Scaling exponents (least squares on log-log of median time)", rows)
    return rows


if __name__ == "__main__":
    main(quick=True)
