"""Newton–Schulz variants tried for flop savings (benchmark-only code; not part of matbal).

- ``plain_ns5``: the hand-written float32 loop of KellerJordan/Muon (``mm``/``addmm``), the floor.
- ``syrk_ns``: the same iteration with the two symmetric products done by BLAS SYRK (half the flops
  of GEMM): ``A = XXᵀ`` (``r²c`` instead of ``2r²c``) and ``A² = AAᵀ`` (``r³`` instead of ``2r³``).
  torch exposes no SYRK; this uses scipy's BLAS (``scipy.linalg.blas.ssyrk``) on zero-copy numpy views.
- ``gram_ns``: the "Gram" form for rectangular ``r×c`` (``r < c``) matrices: form ``A₀ = XXᵀ`` once,
  run the whole iteration on ``r×r`` matrices (``P_k = a I + bA_k + cA_k²``, ``Q ← P_k Q``,
  ``A_{k+1} = P_k A_k P_k``) and apply ``Q`` once at the end: ``X_k = Q X``. Flops for k quintic
  steps: ``4r²c + (8k − 6) r³`` instead of ``k(4r²c + 2r³)``: fewer when ``c ≫ r``. Rounding: A₀
  squares the condition number (float32), so small singular values lose accuracy. Kept as the
  prototype; the supported version is ``matbal.newton_schulz(x, form="gram", restart_every=3)``
  (any schedule, batching, every ``normalize``, restarts), wrapped here as ``gram_lib``.

``python -m benchmarks.ns_variants`` times standard vs Gram form (library) interleaved, one thread,
and reports the error against float64 standard NS on a κ = 1e3 geometric-spectrum input.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import matbal

MUON = (3.4445, -4.7750, 2.0315)


def _prep(x: torch.Tensor, eps: float = 1e-7, safety: float = 1.0):
    tall = x.shape[-2] > x.shape[-1]
    y = x.mT if tall else x
    y = y.to(torch.float32)
    y = y / (safety * torch.linalg.vector_norm(y, dtype=torch.float64).float() + eps)
    return y.contiguous(), tall


def plain_ns5(x: torch.Tensor, coeffs=None, steps: int = 5, eps: float = 1e-7, safety: float = 1.0) -> torch.Tensor:
    """KellerJordan/Muon ``zeropower_via_newtonschulz5`` in float32 (2-D)."""
    coeffs = coeffs or [MUON] * steps
    y, tall = _prep(x, eps, safety)
    for a, b, c in coeffs:
        A = y @ y.T
        B = torch.addmm(A, A, A, beta=b, alpha=c)
        y = torch.addmm(y, B, y, beta=a)
    return y.T if tall else y


def _sym_from_upper(f: np.ndarray) -> np.ndarray:
    """A Fortran-ordered r×r with its upper triangle valid → full symmetric (in place)."""
    il = np.tril_indices(f.shape[0], -1)
    f[il] = f.T[il]
    return f


def syrk_ns(x: torch.Tensor, coeffs=None, steps: int = 5, eps: float = 1e-7, safety: float = 1.0) -> torch.Tensor:
    """Quintic NS with SYRK for ``XXᵀ`` and ``A²`` (scipy BLAS), GEMM (torch) for ``BX``."""
    from scipy.linalg import blas

    coeffs = coeffs or [MUON] * steps
    y, tall = _prep(x, eps, safety)
    for a, b, c in coeffs:
        A = _sym_from_upper(blas.ssyrk(1.0, y.numpy().T, trans=1))      # y yᵀ, upper, F-order
        A2 = blas.ssyrk(1.0, A, trans=0)                                 # A Aᵀ = A²
        B = _sym_from_upper(A2 * c + A * b)
        Bt = torch.from_numpy(np.ascontiguousarray(B))
        y = torch.addmm(y, Bt, y, beta=a)
    return y.T if tall else y


def _fill_sym_torch(a: torch.Tensor) -> torch.Tensor:
    return torch.triu(a) + torch.triu(a, 1).mT


def gram_ns(x: torch.Tensor, coeffs=None, steps: int = 5, eps: float = 1e-7, safety: float = 1.0) -> torch.Tensor:
    """Quintic NS in Gram form (see module docstring)."""
    coeffs = coeffs or [MUON] * steps
    y, tall = _prep(x, eps, safety)
    A = y @ y.T
    Q = None
    last = len(coeffs) - 1
    for k, co in enumerate(coeffs):
        P = torch.addmm(A, A, A, beta=co[1], alpha=co[2]) if len(co) == 3 else A * co[1]
        P.diagonal().add_(co[0])
        Q = P if Q is None else P @ Q
        if k < last:
            A = (P @ A) @ P
            A = 0.5 * (A + A.T)
    y = Q @ y
    return y.T if tall else y


def gram_lib(x: torch.Tensor, schedule="muon", steps: int = 5, restart_every: int | None = 3) -> torch.Tensor:
    """The library's Gram form (``matbal.newton_schulz(form="gram")``)."""
    return matbal.newton_schulz(x, schedule=schedule, steps=steps, form="gram", restart_every=restart_every)


def gram_flops(m: int, n: int, steps: int, restart_every: int | None = None) -> float:
    """Quintic Gram-form flops ``4s·r²c + (8k − 6s)·r³``, ``s = ⌈k/R⌉`` segments (1 without restart)."""
    r, c = min(m, n), max(m, n)
    s = 1 if restart_every is None else math.ceil(steps / restart_every)
    return float(4 * s * r * r * c + (8 * steps - 6 * s) * r**3)


def syrk_flops(m: int, n: int, steps: int) -> float:
    r, c = min(m, n), max(m, n)
    return float(steps * (3 * r * r * c + r**3))


def _compare(shapes, schedules, repeats: int, kappa: float | None = 1e3) -> list[dict]:
    """Standard vs Gram (restart 3, and none) interleaved; errors vs float64 standard NS on a
    geometric spectrum with condition number ``kappa`` (``None``: a Gaussian matrix)."""
    from benchmarks import _common as C
    from matbal.synthetic import gaussian, geometric_spectrum, prescribed_spectrum

    rows = []
    for shape in shapes:
        *batch, m, n = shape
        if kappa is None:
            x64 = gaussian(m, n, seed=0, batch=tuple(batch), dtype=torch.float64)
        else:
            x64 = prescribed_spectrum(m, n, geometric_spectrum(min(m, n), kappa=kappa), seed=0,
                                      batch=tuple(batch), dtype=torch.float64)
        x = x64.float()
        for sched, k in schedules:
            ref = matbal.newton_schulz(x64, schedule=sched, steps=k)
            peers = {
                "standard": lambda: matbal.newton_schulz(x, schedule=sched, steps=k),
                "gram R=3": lambda: gram_lib(x, sched, k, 3),
                "gram no restart": lambda: gram_lib(x, sched, k, None),
            }
            res = C.interleaved(peers, repeats=repeats, warmup=1)
            base = res["standard"]["median"]
            for name, r in res.items():
                out = r["result"].double()
                row = {"shape": "x".join(map(str, shape)), "schedule": f"{sched}-{k}", "form": name,
                       "median_ms": 1e3 * r["median"], "speedup": base / r["median"],
                       "rel_err": float((out - ref).norm() / ref.norm())}
                if sched == "polar_express":
                    s_out, s_ref = torch.linalg.svdvals(out), torch.linalg.svdvals(ref)
                    row["max_abs_sigma_minus_1"] = float((s_out - 1).abs().max())
                    row["ref_max_abs_sigma_minus_1"] = float((s_ref - 1).abs().max())
                    row["max_abs_sigma_minus_ref"] = float((s_out - s_ref).abs().max())
                rows.append(row)
                print(row, flush=True)
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="only 256x1024 and 512x512")
    ap.add_argument("--kappa", type=float, default=1e3, help="condition number of the input; 0: Gaussian")
    args = ap.parse_args()
    torch.set_num_threads(1)
    shapes = [(256, 1024), (512, 512)] if args.quick else \
        [(256, 1024), (512, 2048), (1024, 4096), (1024, 1024), (8, 512, 2048)]
    _compare(shapes, [("muon", 5), ("polar_express", 6)], args.repeats, args.kappa or None)
