"""Proposed kernel patches, measured here by monkeypatching (matbal/kernels is not edited):

1. ``balancing._engine.max_abs``: ``torch.aminmax(x.reshape(batch + (-1,)), dim=-1)`` reduces a
   flattened 4M-vector along one dim — on CPU a slow path (≈13 ms for 1024×4096 float32 vs ≈0.6 ms
   for ``amax/amin(dim=(-2, -1))``). Patch: ``hi = x.amax(dim=(-2, -1)); lo = x.amin(dim=(-2, -1))``.
2. ``newton_schulz`` Gram form for rectangular inputs (see ``ns_variants.gram_ns``; measured in
   bench_ns): iterate on the r×r Gram and apply the accumulated polynomial once.
"""
from __future__ import annotations

import torch

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C
from matbal.kernels.balancing import _engine

_ORIG = _engine.max_abs


def max_abs_patched(x: torch.Tensor, dtype: torch.dtype, name: str = "x") -> torch.Tensor:
    hi = x.amax(dim=(-2, -1))
    lo = x.amin(dim=(-2, -1))
    s = torch.maximum(hi.to(dtype), -lo.to(dtype))
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return s


def _with(fn, patched: bool):
    def run():
        _engine.max_abs = max_abs_patched if patched else _ORIG
        try:
            return fn()
        finally:
            _engine.max_abs = _ORIG
    return run


def main(quick: bool = True, full: bool = False) -> list[dict]:
    rows = []
    shapes = [(1024, 4096)] + ([] if quick else [(768, 3072), (4096, 8192)])
    for m, n in shapes:
        x = syn.gaussian(m, n, seed=0)
        xb = syn.gaussian(m, n, seed=0, batch=(4,)) if m * n <= 4 << 20 else None
        peers = {
            "max_abs: current (aminmax on flattened)": lambda: _ORIG(x, torch.float32),
            "max_abs: proposed (amax/amin dims)": lambda: max_abs_patched(x, torch.float32),
            "racs p=2 rtol 1e-6: current": _with(lambda: matbal.racs(x, p=2, rtol=1e-6), False),
            "racs p=2 rtol 1e-6: with proposed max_abs": _with(lambda: matbal.racs(x, p=2, rtol=1e-6), True),
        }
        if xb is not None:
            peers["racs batch 4: current"] = _with(lambda: matbal.racs(xb, p=2, rtol=1e-6), False)
            peers["racs batch 4: with proposed max_abs"] = _with(lambda: matbal.racs(xb, p=2, rtol=1e-6), True)
        res = C.interleaved(peers, repeats=7 if quick else 9, warmup=1)
        for a, b in (("max_abs: current (aminmax on flattened)", "max_abs: proposed (amax/amin dims)"),
                     ("racs p=2 rtol 1e-6: current", "racs p=2 rtol 1e-6: with proposed max_abs"),
                     ("racs batch 4: current", "racs batch 4: with proposed max_abs")):
            if a not in res:
                continue
            ok = bool(torch.equal(res[a]["result"], res[b]["result"])) if a.startswith("max_abs") else \
                bool(torch.equal(res[a]["result"].matrix, res[b]["result"].matrix))
            rows.append({"shape": f"{m}×{n}", "what": a.split(":")[0], "before_median_ms": 1e3 * res[a]["median"],
                         "after_median_ms": 1e3 * res[b]["median"], "before_min_ms": 1e3 * res[a]["min"],
                         "after_min_ms": 1e3 * res[b]["min"], "speedup_median": res[a]["median"] / res[b]["median"],
                         "identical_result": ok})
    C.print_table("Proposed patch: balancing._engine.max_abs (before/after, interleaved)", rows)
    return rows


if __name__ == "__main__":
    main(quick=True)
