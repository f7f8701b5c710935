"""Newton–Schulz: matbal vs torch.optim.Muon's NS (bf16), a hand-written float32 NS5 loop, SVD polar
(torch.linalg.svd, scipy.linalg.polar, matbal.polar); batched GPT stacks vs a loop; time to accuracy
per schedule; the flop-saving variants (SYRK, Gram form) of ``ns_variants``.

FLOP/s count ``2mnk`` per matmul with the Gram on the short side (``_common.ns_flops``) — for the
variants too (their *useful-work* rate), so rates compare like with like.
"""
from __future__ import annotations

import torch

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C
from benchmarks import ns_variants as V

MUON = (3.4445, -4.7750, 2.0315)


def _torch_muon_ns(x):
    from torch.optim._muon import _zeropower_via_newtonschulz

    return _zeropower_via_newtonschulz(x, MUON, 5, 1e-7)


def _svd_polar32(x):
    u, _, vh = torch.linalg.svd(x, full_matrices=False)
    return u @ vh


def _scipy_polar(xn):
    import scipy.linalg

    return scipy.linalg.polar(xn)[0]


def shapes_table(quick: bool, full: bool) -> list[dict]:
    shapes = [(256, 1024), (512, 2048)]
    if not quick:
        shapes += [(768, 3072), (1024, 4096), (2048, 8192)]
    if full:
        shapes.append((4096, 11008))
    peak = C.machine_limits(quick)["sgemm_gflops"]
    rows = []
    for m, n in shapes:
        x = syn.gaussian(m, n, seed=0)
        r = min(m, n)
        fl = C.ns_flops(m, n, 5)
        peers = {
            "matbal f32": (lambda: matbal.newton_schulz(x, steps=5), fl),
            "plain NS5 f32 loop": (lambda: V.plain_ns5(x), fl),
            "variant: Gram form f32": (lambda: V.gram_ns(x), fl),
        }
        if not (quick and r >= 1024):
            peers["variant: SYRK (scipy BLAS) f32"] = (lambda: V.syrk_ns(x), fl)
        if r <= (512 if quick else 1024):
            x64 = x.double()
            peers["matbal f64"] = (lambda: matbal.newton_schulz(x64, steps=5), fl)
        if r <= (512 if quick else 1024):
            xn = x.double().numpy()
            peers["polar: torch.linalg.svd f32"] = (lambda: _svd_polar32(x), None)
            peers["polar: matbal.polar (f64 SVD)"] = (lambda: matbal.polar(x), None)
            peers["polar: scipy.linalg.polar f64"] = (lambda: _scipy_polar(xn), None)
        reps = 3 if r <= 1024 else 1
        # scipy's OpenBLAS workers spin ~0.1 s after a call and slowed the next peer 1.9× here
        res = C.interleaved({k: v[0] for k, v in peers.items()}, repeats=reps, warmup=1 if r < 1024 else 0,
                            settle=0.2, settle_after=[k for k in peers if "scipy" in k])
        # slow bf16 peers: one measurement each (bf16 matmul ~1 GFLOP/s on this CPU)
        slow = {}
        if r <= 256 or (full and r <= 1024):
            slow["torch.optim.Muon NS (bf16)"] = (lambda: _torch_muon_ns(x), fl)
        if r <= 256:
            slow["matbal bf16 (dtype=bf16)"] = (lambda: matbal.newton_schulz(x, steps=5, dtype=torch.bfloat16), fl)
        if slow:
            res.update(C.interleaved({k: v[0] for k, v in slow.items()}, repeats=1, warmup=0))
            peers.update(slow)
        base = res["matbal f32"]["median"]
        for k, (f, flops) in peers.items():
            t = res[k]["median"]
            row = {"shape": f"{m}×{n}", "peer": k, "median_s": t, "min_s": res[k]["min"],
                   "n": len(res[k]["times"]), "x_matbal_f32": t / base}
            if flops:
                row["GFLOP/s"] = flops / t / 1e9
                row["%peak_f32"] = 100 * flops / t / 1e9 / peak
            rows.append(row)
    C.print_table("NS (Muon schedule, 5 steps) vs peers — time, useful GFLOP/s, ratio to matbal f32", rows,
                  ["shape", "peer", "median_s", "min_s", "n", "x_matbal_f32", "GFLOP/s", "%peak_f32"])
    return rows


def accuracy_table(quick: bool) -> list[dict]:
    """Relative Frobenius distance of each float32 implementation to matbal's float64 NS (same
    schedule, same matrix: prescribed geometric spectrum κ = 1e3)."""
    m, n = (512, 2048) if quick else (1024, 4096)
    x = syn.prescribed_spectrum(m, n, syn.geometric_spectrum(m, kappa=1e3), seed=0)
    ref = matbal.newton_schulz(x.double(), steps=5)
    rows = []
    for name, f in [("matbal f32", lambda: matbal.newton_schulz(x, steps=5)),
                    ("plain NS5 f32 loop", lambda: V.plain_ns5(x)),
                    ("variant: Gram form f32", lambda: V.gram_ns(x)),
                    ("variant: SYRK f32", lambda: V.syrk_ns(x))]:
        o = f().double()
        rows.append({"shape": f"{m}×{n}", "impl": name,
                     "rel_fro_err_vs_f64_NS": float((o - ref).norm() / ref.norm())})
    C.print_table("NS accuracy vs float64 NS (κ=1e3 geometric spectrum)", rows)
    return rows


def gpt_shapes(width: int, layers: int):
    w = width
    return [((w, 3 * w), layers), ((w, w), layers), ((w, 4 * w), layers), ((4 * w, w), layers)]


def batched_widths(quick: bool, full: bool) -> list[tuple[int, int]]:
    """(width, layers) of the GPT stacks timed: from ``matbal.train``'s default width 64 (where
    per-call overhead dominates) up to widths where each matrix alone saturates the GEMM."""
    if full:
        return [(64, 2), (256, 4), (768, 12)]
    return [(64, 2), (128, 4), (384, 4)] if quick else [(64, 2), (256, 4), (768, 2)]


def batched_table(quick: bool, full: bool) -> list[dict]:
    rows = []
    for width, layers in batched_widths(quick, full):
        rows += _batched_rows(width, layers, quick)
    C.print_table("Batched same-shape stacks vs per-matrix loop (NS5, float32)", rows)
    return rows


def _ns5_gemms_only(x: torch.Tensor) -> torch.Tensor:
    """The GEMMs of 5 Muon NS steps on a normalized wide stack and nothing else (no checks, no
    normalization, no casts): ``A = XXᵀ``, ``B = bA + cA²``, ``X = aX + BX``. The time of a batched
    NS can not go below this, so ``loop time / this`` bounds what batching can gain over the loop
    (``loop_over_this`` of this row)."""
    a, b, c = MUON
    for _ in range(5):
        A = torch.bmm(x, x.mT)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)
        x = torch.baddbmm(x, B, x, beta=a)
    return x


def _batched_rows(width: int, layers: int, quick: bool) -> list[dict]:
    shapes = gpt_shapes(width, layers)
    stacks = [syn.gaussian(m, n, seed=i, batch=(k,)) for i, ((m, n), k) in enumerate(shapes)]
    mats = [s[j] for s in stacks for j in range(s.shape[0])]

    def batched():
        return [matbal.newton_schulz(s, steps=5) for s in stacks]

    def loop():
        return [matbal.newton_schulz(t, steps=5) for t in mats]

    def plain():
        return [V.plain_ns5(t) for t in mats]

    def gram_loop():
        return [V.gram_ns(t) for t in mats]

    wide = [(s if s.shape[-2] <= s.shape[-1] else s.mT).contiguous() for s in stacks]
    wide = [w / w.norm(dim=(-2, -1), keepdim=True) for w in wide]

    def gemm_floor():
        return [_ns5_gemms_only(w) for w in wide]

    res = C.interleaved({"matbal batched (one call per shape)": batched, "matbal per-matrix loop": loop,
                         "plain NS5 per-matrix loop": plain, "variant: Gram form loop": gram_loop,
                         "GEMM calls of batched NS5 only (ceiling)": gemm_floor},
                        repeats=3 if width >= 384 else 7, warmup=1)
    fl = sum(C.ns_flops(m, n, 5, batch=k) for (m, n), k in shapes)
    peak = C.machine_limits(quick)["sgemm_gflops"]
    base = res["matbal batched (one call per shape)"]["median"]
    loop_t = res["matbal per-matrix loop"]["median"]
    rows = []
    for k, v in res.items():
        rows.append({"model": f"GPT width {width}, {layers} layers ({len(mats)} matrices)", "peer": k,
                     "median_s": v["median"], "x_batched": v["median"] / base,
                     "loop_over_this": loop_t / v["median"],
                     "GFLOP/s": fl / v["median"] / 1e9, "%peak_f32": 100 * fl / v["median"] / 1e9 / peak})
    return rows


def tta_schedules(target: float = 1e-2, lo: float = 1e-3) -> dict:
    """``{name: (schedule, steps)}``: the steps each schedule needs to worst-case spectral error
    ``target`` on normalized σ ∈ [lo, 1] (``steps_to_accuracy``; None = never within 100); CANS:
    the smallest k with ``worst_case_error(cans_schedule(lo, 1, k), k, lo) ≤ target``."""
    scheds = {}
    for name in ("muon", "you", "polar_express", "quintic_pade", "cubic"):
        scheds[name] = (name, matbal.steps_to_accuracy(name, target, lo))
    for k in range(1, 40):
        s = matbal.cans_schedule(lo, 1.0, k)
        if matbal.worst_case_error(s, k, lo) <= target:
            scheds["cans_schedule(1e-3,1,k)"] = (s, k)
            break
    return scheds


def tta_matrix(m: int, n: int) -> torch.Tensor:
    """float32 ``m×n`` whose Frobenius-normalized singular values lie in [≈2e-3, ≈0.95]."""
    r = min(m, n)
    sig = torch.cat([torch.ones(1), torch.logspace(-2, -2.7, r - 1)])
    return syn.prescribed_spectrum(m, n, sig, seed=0)


def tta_table(quick: bool) -> list[dict]:
    """Steps to worst-case spectral error ≤ 1e-2 for normalized σ ∈ [1e-3, 1] (``steps_to_accuracy``)
    × measured time of that many steps, each schedule timed side by side."""
    target, lo = 1e-2, 1e-3
    m, n = (512, 2048) if quick else (1024, 4096)
    scheds = tta_schedules(target, lo)
    x = tta_matrix(m, n)
    fns = {}
    for name, (s, k) in scheds.items():
        if k is None:
            continue
        fns[name] = (lambda s=s, k=k: matbal.newton_schulz(x, schedule=s, steps=k))
        sch = matbal.get_schedule(s) if not isinstance(s, str) else matbal.get_schedule(s)
        if sch.degree == 5:
            co = sch.steps(k)
            fns[name + " [Gram form]"] = (lambda co=co, sf=sch.scale: V.gram_ns(x, co, safety=sf))
    res = C.interleaved(fns, repeats=3, warmup=1)
    svd = matbal.svdvals
    rows = []
    pade = res["quintic_pade"]["median"]
    for name, (s, k) in scheds.items():
        for nm in (name, name + " [Gram form]"):
            if nm not in res:
                if nm == name:
                    rows.append({"schedule": name, "steps": "never (≤100)"})
                continue
            out = res[nm]["result"]
            err = float((svd(out.double()) - 1).abs().max())
            rows.append({"schedule": nm, "steps": k, "median_s": res[nm]["median"],
                         "s_per_step": res[nm]["median"] / k,
                         "x_quintic_pade": res[nm]["median"] / pade,
                         "pred_worst_err": matbal.worst_case_error(s, k, lo),
                         "measured_err": err})
    C.print_table(f"Time to spectral error ≤ 1e-2 (x_min ≥ 1e-3), {m}×{n} float32 — goal: best ≤ 0.6× quintic Padé", rows)
    return rows


def main(quick: bool = True, full: bool = False) -> list[dict]:
    return C.parts_rows([("shapes", lambda: shapes_table(quick, full)),
                         ("accuracy", lambda: accuracy_table(quick)),
                         ("batched", lambda: batched_table(quick, full)),
                         ("time_to_accuracy", lambda: tta_table(quick))])


if __name__ == "__main__":
    main(quick=True)
