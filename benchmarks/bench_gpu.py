"""GPU suite: the CPU benchmarks' questions asked on a CUDA device, read against that device's own
limits measured in the same run.

- limits: bf16 matmul 8192³ (and float32 with/without TF32), device memory bandwidth (copy, read);
- Newton–Schulz: matbal (bf16 input keeps bf16 on CUDA; float32 with TF32 off/on) vs
  torch.optim.Muon's NS, a hand-written bf16 loop (KellerJordan/Muon), the Gram form, SVD polar;
  TFLOP/s against the measured bf16 rate; accuracy against float64 NS;
- batched same-shape GPT stacks vs a per-matrix loop;
- time to spectral error 1e-2 (x_min ≥ 1e-3) per schedule, float32 (TF32 off);
- balancing: racs p=2 to imbalance 1e-6 vs a hand-written Sinkhorn loop and POT (torch backend on
  the GPU, when POT is installed); one sweep's bytes/s vs measured read bandwidth;
- optimizer steps on a GPT's matrices: every preset vs torch.optim.AdamW and torch.optim.Muon;
  where a Muon step's device time goes, op by op (``torch.profiler``), matbal vs torch.

``python benchmarks/run_all.py --only gpu`` (or ``python -m benchmarks.bench_gpu``). Without CUDA it
returns one row saying so. Timing: peers interleaved, ``torch.cuda.synchronize()`` around each
call (wall time of the whole call, launches included), medians.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings

import torch

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C
from benchmarks.bench_balance import RTOL, hand_sinkhorn, outcome, pot_problem, pot_sinkhorn
from benchmarks.bench_ns import MUON, gpt_shapes, tta_schedules, tta_matrix

LIMITS: dict = {}
#: shapes are divided by this (a dry run of every code path on a CPU sets it, with _dev and _sync
#: patched; see tests/test_benchmarks.py)
SHRINK = 1


def _s(*dims: int) -> tuple[int, ...]:
    return tuple(max(8, d // SHRINK) for d in dims)


def _dev() -> torch.device:
    return torch.device("cuda")


def _sync():
    torch.cuda.synchronize()


def _has_cuda() -> bool:
    return torch.cuda.is_available()


def timed(fns: dict, repeats: int = 5, warmup: int = 2) -> dict:
    return C.interleaved(fns, repeats=repeats, warmup=warmup, sync=_sync)


@contextlib.contextmanager
def tf32(on: bool):
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


# --------------------------------------------------------------------------------------- limits

def _matmul_rate(n: int, dtype, repeats: int = 10) -> float:
    """Mean TFLOP/s of ``repeats`` ``n³`` products after 3 warm-ups (random data)."""
    a = torch.randn(n, n, device=_dev()).to(dtype)
    b = torch.randn(n, n, device=_dev()).to(dtype)
    c = torch.empty(n, n, device=_dev(), dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b, out=c)
    _sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b, out=c)
    _sync()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12


def _bandwidth(nbytes: int = 1 << 30, repeats: int = 20) -> dict:
    """Mean GB/s of a float32 copy (bytes read + written) and of a sum (bytes read)."""
    n = nbytes // 4
    a = torch.rand(n, device=_dev())
    b = torch.empty_like(a)
    out = {}
    for name, f, nb in (("copy", lambda: b.copy_(a), 2 * nbytes), ("read", lambda: a.sum(), nbytes)):
        for _ in range(3):
            f()
        _sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            f()
        _sync()
        out[name] = nb * repeats / (time.perf_counter() - t0) / 1e9
    return out


def limits_table() -> list[dict]:
    p = torch.cuda.get_device_properties(0)
    big = _s(8192)[0]
    bf = _matmul_rate(big, torch.bfloat16)
    with tf32(False):
        f32 = _matmul_rate(big, torch.float32, repeats=3)
    with tf32(True):
        t32 = _matmul_rate(big, torch.float32, repeats=5)
    bw = _bandwidth((1 << 30) // SHRINK**2)
    LIMITS.update({"device": p.name, "sms": p.multi_processor_count, "memory_gib": p.total_memory / 2**30,
                   "bf16_tflops": bf, "f32_tflops": f32, "tf32_tflops": t32,
                   "bw_copy_gbs": bw["copy"], "bw_read_gbs": bw["read"],
                   "torch": torch.__version__, "cuda": torch.version.cuda})
    rows = [{"what": "device", "value": f"{p.name}, {p.multi_processor_count} SMs, "
             f"{p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}"},
            {"what": "bf16 matmul 8192³ (mean of 10)", "value": bf, "unit": "TFLOP/s"},
            {"what": "float32 matmul 8192³, TF32 off", "value": f32, "unit": "TFLOP/s"},
            {"what": "float32 matmul 8192³, TF32 on", "value": t32, "unit": "TFLOP/s"},
            {"what": "copy 1 GiB float32 (read + write bytes)", "value": bw["copy"], "unit": "GB/s"},
            {"what": "read 1 GiB float32 (sum)", "value": bw["read"], "unit": "GB/s"}]
    C.print_table("Device limits (this run)", rows)
    return rows


# --------------------------------------------------------------------------------- Newton–Schulz

def hand_ns5_bf16(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """KellerJordan/Muon ``zeropower_via_newtonschulz5``: bf16 throughout (2-D)."""
    a, b, c = MUON
    x = g.bfloat16()
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + eps)
    for _ in range(steps):
        A = x @ x.mT
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.mT if tall else x


def _torch_muon_ns(x):
    from torch.optim._muon import _zeropower_via_newtonschulz

    return _zeropower_via_newtonschulz(x, MUON, 5, 1e-7)


def _has_gram() -> bool:
    import inspect

    return "form" in inspect.signature(matbal.newton_schulz).parameters


def _svd_polar(x):
    u, _, vh = torch.linalg.svd(x, full_matrices=False)
    return u @ vh


def ns_table(quick: bool, full: bool) -> list[dict]:
    shapes = [(1024, 4096), (4096, 4096)] if quick else [(1024, 4096), (2048, 8192), (4096, 4096),
                                                        (4096, 11008), (8192, 8192)]
    if full:
        shapes.append((8192, 28672))
    peak = LIMITS["bf16_tflops"]
    rows = []
    for m, n in shapes:
        m, n = _s(m, n)
        x32 = syn.gaussian(m, n, seed=0).to(_dev())
        xb = x32.bfloat16()
        fl = C.ns_flops(m, n, 5)
        peers = {
            "matbal bf16": lambda: matbal.newton_schulz(xb, steps=5),
            "torch.optim.Muon NS (bf16)": lambda: _torch_muon_ns(xb),
            "hand-written bf16 loop": lambda: hand_ns5_bf16(xb),
        }
        if _has_gram():
            peers["matbal bf16, Gram form"] = lambda: matbal.newton_schulz(xb, steps=5, form="gram")
            peers["matbal f32 (TF32 on), Gram form"] = lambda: _with_tf32(
                lambda: matbal.newton_schulz(x32, steps=5, form="gram"))
        peers["matbal f32 (TF32 off)"] = lambda: matbal.newton_schulz(x32, steps=5)
        peers["matbal f32 (TF32 on)"] = lambda: _with_tf32(lambda: matbal.newton_schulz(x32, steps=5))
        if min(m, n) <= 2048 // SHRINK:
            peers["polar: torch.linalg.svd f32"] = lambda: _svd_polar(x32)
        with tf32(False):
            res = timed(peers, repeats=5 if min(m, n) < 8192 else 3, warmup=2)
            ref = matbal.newton_schulz(x32.double(), steps=5)
        base = res["matbal bf16"]["median"]
        for k, v in res.items():
            t = v["median"]
            err = _rel(v["result"], ref) if "polar" not in k else float("nan")
            rows.append({"shape": f"{m}×{n}", "peer": k, "median_ms": 1e3 * t,
                         "x_matbal_bf16": t / base,
                         "TFLOP/s": fl / t / 1e12 if "polar" not in k else float("nan"),
                         "%bf16_peak": 100 * fl / t / 1e12 / peak if "polar" not in k else float("nan"),
                         "rel_err_vs_f64_NS": err})
        del x32, xb, ref, res
        torch.cuda.empty_cache()
    C.print_table("NS5 on the GPU — time, useful TFLOP/s (Gram on the short side), % of the measured "
                  "bf16 8192³ rate, error vs float64 NS", rows)
    return rows


def _with_tf32(f):
    with tf32(True):
        return f()


def _rel(a, b) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def batched_table(quick: bool) -> list[dict]:
    out = []
    for width, layers in ([(768, 12)] if quick else [(768, 12), (2048, 24)]):
        shapes = gpt_shapes(*_s(width), layers)
        g = torch.Generator(device=_dev()).manual_seed(0)
        stacks = [torch.randn(k, m, n, device=_dev(), generator=g).bfloat16() for (m, n), k in shapes]
        mats = [s[j] for s in stacks for j in range(s.shape[0])]
        peers = {
            "matbal batched (one call per shape)": lambda: [matbal.newton_schulz(s, steps=5) for s in stacks],
            "matbal per-matrix loop": lambda: [matbal.newton_schulz(t, steps=5) for t in mats],
            "torch.optim.Muon NS per-matrix loop": lambda: [_torch_muon_ns(t) for t in mats],
            "hand-written bf16 per-matrix loop": lambda: [hand_ns5_bf16(t) for t in mats],
        }
        res = timed(peers, repeats=5, warmup=2)
        fl = sum(C.ns_flops(m, n, 5, batch=k) for (m, n), k in shapes)
        base = res["matbal batched (one call per shape)"]["median"]
        for k, v in res.items():
            out.append({"model": f"GPT width {width}, {layers} layers ({len(mats)} matrices), bf16",
                        "peer": k, "median_ms": 1e3 * v["median"], "x_batched": v["median"] / base,
                        "TFLOP/s": fl / v["median"] / 1e12,
                        "%bf16_peak": 100 * fl / v["median"] / 1e12 / LIMITS["bf16_tflops"]})
        del stacks, mats, res
        torch.cuda.empty_cache()
    C.print_table("Batched same-shape NS5 vs per-matrix loop on the GPU (goal ≥ 1.5×)", out)
    return out


def tta_table(quick: bool) -> list[dict]:
    m, n = (1024, 4096) if quick else (2048, 8192)
    m, n = _s(m, n)
    x = tta_matrix(m, n).to(_dev())
    scheds = tta_schedules()
    fns = {}
    for name, (s, k) in scheds.items():
        if k is not None:
            fns[name] = lambda s=s, k=k: matbal.newton_schulz(x, schedule=s, steps=k)
            if _has_gram():
                fns[name + " [Gram form]"] = lambda s=s, k=k: matbal.newton_schulz(x, schedule=s, steps=k,
                                                                                   form="gram")
    with tf32(False):
        res = timed(fns, repeats=3, warmup=1)
    rows = []
    pade = res["quintic_pade"]["median"]
    for name, v in res.items():
        s, k = scheds[name.replace(" [Gram form]", "")]
        err = float((matbal.svdvals(v["result"].double()) - 1).abs().max())
        rows.append({"schedule": name, "steps": k, "median_ms": 1e3 * v["median"],
                     "x_quintic_pade": v["median"] / pade,
                     "pred_worst_err": matbal.worst_case_error(s, k, 1e-3), "measured_err": err})
    C.print_table(f"Time to spectral error ≤ 1e-2 (x_min ≥ 1e-3), {m}×{n} float32, TF32 off, GPU "
                  "— goal: best ≤ 0.6× quintic Padé", rows)
    return rows


# ------------------------------------------------------------------------------------ balancing

def balance_table(quick: bool) -> list[dict]:
    try:
        import ot  # noqa: F401
        have_pot = True
    except ImportError:
        have_pot = False
    shapes = [(1024, 4096)] if quick else [(1024, 4096), (4096, 16384)]
    rows = []
    for m, n in shapes:
        m, n = _s(m, n)
        x = syn.gaussian(m, n, seed=0).to(_dev())
        peers = {"matbal racs p=2": lambda: matbal.racs(x, p=2, rtol=RTOL),
                 "hand-written f32 Sinkhorn": lambda: hand_sinkhorn(x),
                 "matbal sinkhorn_knopp on X⊙X": lambda: matbal.sinkhorn_knopp(x * x, rtol=2 * RTOL)}
        if have_pot:
            pot = pot_problem(x)
            peers["POT ot.sinkhorn torch f32 (GPU)"] = lambda: pot_sinkhorn(*pot)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = timed(peers, repeats=5, warmup=2)
        base = res["matbal racs p=2"]["median"]
        for k, v in res.items():
            it, fin, _ = outcome(k, v["result"])
            rows.append({"shape": f"{m}×{n}", "peer": k, "median_ms": 1e3 * v["median"], "iterations": it,
                         "final_imbalance": fin, "x_racs": v["median"] / base})
        # one sweep's bandwidth (2 reads of K) and racs' marginal sweep cost
        K = x * x
        u, vv = torch.rand(m, device=_dev()), torch.rand(n, device=_dev())
        sw = timed({"sweep": lambda: (u @ K, K @ vv), "racs1": lambda: matbal.racs(x, steps=1),
                    "racs11": lambda: matbal.racs(x, steps=11)}, repeats=7, warmup=2)
        nbytes = 2 * m * n * 4
        t_sweep = sw["sweep"]["median"]
        t_extra = (sw["racs11"]["median"] - sw["racs1"]["median"]) / 10
        for k, t in (("hand sweep (K@v, uᵀK)", t_sweep), ("racs, per extra sweep", t_extra)):
            rows.append({"shape": f"{m}×{n}", "peer": k, "median_ms": 1e3 * t,
                         "GB/s": nbytes / t / 1e9, "%_of_read_bw": 100 * nbytes / t / 1e9 / LIMITS["bw_read_gbs"]})
        rows.append({"shape": f"{m}×{n}", "peer": "racs steps=1 total", "median_ms": 1e3 * sw["racs1"]["median"]})
        del x, K
        torch.cuda.empty_cache()
    C.print_table("Balancing on the GPU: to imbalance 1e-6; one sweep vs measured read bandwidth", rows)
    return rows


# ----------------------------------------------------------------------------------- optimizers

def _param_maker(shapes):
    """``make()`` → a fresh list of GPU parameters (with gradients) of ``shapes``; the random
    matrices are drawn once (on the GPU) and cloned for every optimizer."""
    g = torch.Generator(device=_dev()).manual_seed(0)
    base = [(torch.randn(m, n, device=_dev(), generator=g) * 0.02, torch.randn(m, n, device=_dev(), generator=g))
            for (m, n), k in shapes for _ in range(k)]

    def make():
        ps = []
        for w, gr in base:
            p = torch.nn.Parameter(w.clone())
            p.grad = gr.clone()
            ps.append(p)
        return ps

    return make


def optim_table(quick: bool) -> list[dict]:
    from matbal.optim import PRESETS, muon

    rows = []
    for width, layers in ([(768, 4)] if quick else [(768, 12), (2048, 8)]):
        shapes = gpt_shapes(*_s(width), layers)
        # every optimizer steps the same parameter tensors (own state each): timing does not
        # depend on the values, and 16 private copies of a width-2048 model do not fit in 80 GB
        shared = _param_maker(shapes)()
        _params = lambda: shared  # noqa: E731
        opts = {name: ctor(_params(), lr=1e-3) for name, ctor in PRESETS.items() if name != "polargrad"}
        opts = {f"matbal {k}": v for k, v in opts.items()}
        opts["matbal muon (ns_dtype=None: float32 NS)"] = muon(_params(), lr=1e-3, ns_dtype=None)
        opts["matbal muon (ns_form='auto': Gram NS on wide shapes)"] = muon(_params(), lr=1e-3,
                                                                            ns_form="auto")
        opts["matbal muon, session-3 code (before)"] = muon(_params(), lr=1e-3)
        opts["torch.optim.Muon"] = torch.optim.Muon(_params(), lr=1e-3)
        opts["torch.optim.AdamW (foreach)"] = torch.optim.AdamW(_params(), lr=1e-3)
        opts["torch.optim.AdamW (fused)"] = torch.optim.AdamW(_params(), lr=1e-3, fused=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = timed({k: _as_session3(o.step) if "before" in k else o.step
                         for k, o in opts.items()}, repeats=5, warmup=2)
        tm, ta = res["torch.optim.Muon"]["median"], res["torch.optim.AdamW (foreach)"]["median"]
        nmat = sum(k for _, k in shapes)
        for k, v in res.items():
            rows.append({"model": f"GPT w{width} L{layers} ({nmat} matrices), float32 params", "optimizer": k,
                         "median_ms": 1e3 * v["median"], "x_torch_muon": v["median"] / tm,
                         "x_torch_adamw": v["median"] / ta})
        del opts, res
        torch.cuda.empty_cache()
    C.print_table("Optimizer step on the GPU (goal: matbal muon ≤ 1.1× torch.optim.Muon)", rows)
    return rows


def _as_session3(step):
    """``step`` run with session 3's code patched back in — the side-by-side peer of session 4's
    changes to the Muon step: float64 NS norm for bf16 work, same-shape updates stacked in
    their own dtype before NS, ``scale_by_shape`` copying at factor 1, weight decay as a
    transform (``u + λp``) instead of the shell's ``p(1 − lr·λ)``. Not patched back: the NS
    scales computed on the host (session 4; same bits, fewer small kernels), so this peer is
    slightly faster than session 3's code was."""
    import importlib

    from matbal.optim import optimizer as opt_mod
    from matbal.optim.transforms import scaling as sc_mod

    ns_mod = importlib.import_module("matbal.kernels.orthogonalize.newton_schulz")

    def copying_apply(self, updates, states, ctx):
        f = sc_mod.SHAPE_RULES[self.rule]
        return [u * f(u.shape[-2], u.shape[-1]) for u in updates]

    patches = [(ns_mod, "_fro_half_work", lambda x: None), (ns_mod, "LIST_MIN_BYTES", math.inf),
               (opt_mod, "_split_trailing_decay", lambda chain: (chain, 0.0)),
               (sc_mod.ScaleByShape, "apply", copying_apply)]

    def run():
        kept = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
        for obj, name, new in patches:
            setattr(obj, name, new)
        try:
            return step()
        finally:
            for obj, name, old in kept:
                setattr(obj, name, old)

    return run


def _op_times(prof, device: bool) -> dict[str, tuple[float, int]]:
    """``{op name: (self time in s, calls)}`` from a finished ``torch.profiler`` run: device
    (CUDA kernel) time attributed to the aten op that launched it, or CPU time in the dry run."""
    out = {}
    for ev in prof.key_averages():
        t = (getattr(ev, "self_device_time_total", None) or getattr(ev, "self_cuda_time_total", 0)
             if device else ev.self_cpu_time_total)
        if t and ev.key.startswith("aten::"):
            out[ev.key] = (t * 1e-6, ev.count)
    return out


def profile_table(quick: bool) -> list[dict]:
    """Where one Muon step's device time goes, op by op: matbal ``muon`` (the preset) vs
    ``torch.optim.Muon`` on a GPT's matrices (float32 parameters; quick: width 768, 4 layers;
    default: width 2048, 8 layers), 3 profiled steps after 2 warm-ups, ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile

    from matbal.optim import muon

    device = _dev().type == "cuda"
    width, layers = (768, 4) if quick else (2048, 8)
    shapes = gpt_shapes(*_s(width), layers)
    make = _param_maker(shapes)
    mine = muon(make(), lr=1e-3)
    opts = {"matbal muon": mine, "matbal muon, session-3 code (before)": mine,
            "torch.optim.Muon": torch.optim.Muon(make(), lr=1e-3)}
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device else [])
    steps, per = 3, {}
    for name, o in opts.items():
        step = _as_session3(o.step) if "before" in name else o.step
        for _ in range(2):
            step()
        _sync()
        with profile(activities=acts) as prof:
            for _ in range(steps):
                step()
            _sync()
        per[name] = _op_times(prof, device)
    ops = sorted(set().union(*per.values()), key=lambda k: -per["matbal muon"].get(k, (0, 0))[0])
    model = f"GPT w{width} L{layers} ({sum(k for _, k in shapes)} matrices)"
    rows = []
    for op in ops + ["total"]:
        row = {"model": model, "op": op}
        for name, times in per.items():
            t, n = (sum(v[0] for v in times.values()), 0) if op == "total" else times.get(op, (0.0, 0))
            row[f"{name} ms/step"] = 1e3 * t / steps
            row[f"{name} calls/step"] = n / steps
        rows.append(row)
    rows = [r for r in rows if r["op"] == "total" or max(
        r[f"{k} ms/step"] for k in per) >= 0.01 * max(rows[-1][f"{k} ms/step"] for k in per)]
    C.print_table(f"Muon step, {'CUDA' if device else 'CPU (dry run)'} time per op ({model})", rows)
    return rows


def scaling_table(quick: bool) -> list[dict]:
    """Exponents of NS (bf16, 5 Muon steps) and racs (p=2, 5 sweeps) in m, n and batch on the GPU."""
    from benchmarks.bench_scaling import _series

    def rnd(*shape):
        g = torch.Generator(device=_dev()).manual_seed(0)
        return torch.randn(*shape, device=_dev(), generator=g)

    ns = lambda x: matbal.newton_schulz(x, steps=5)  # noqa: E731
    rc = lambda x: matbal.racs(x, p=2, steps=5)  # noqa: E731
    n0 = _s(8192)[0]
    ms = [_s(m)[0] for m in ((1024, 2048, 4096) if quick else (1024, 2048, 4096, 8192))]
    bs = [1, 2, 4] if quick else [1, 2, 4, 8]
    m1, n1 = _s(2048, 8192)
    rows = [
        _series("newton_schulz bf16", f"m (n={n0})", ms, lambda m: rnd(m, n0).bfloat16(), ns,
                "→2 (4m²n dominates; launch-bound at small m)", 3, sync=_sync),
        _series("newton_schulz bf16", f"batch ({m1}×{n1})", bs, lambda b: rnd(b, m1, n1).bfloat16(), ns, "≈1", 3,
                sync=_sync),
        _series("racs f32", "m (n=4m)", ms, lambda m: rnd(m, 4 * m), rc, "→2 (∝ mn: bandwidth)", 3, sync=_sync),
        _series("racs f32", f"batch ({m1}×{n1})", bs, lambda b: rnd(b, m1, n1), rc, "≈1", 3, sync=_sync),
    ]
    C.print_table("Scaling exponents on the GPU (least squares on log-log of median time)", rows)
    return rows


PARTS = ("limits", "optim", "profile", "ns", "batched", "time_to_accuracy", "balance", "scaling")


def main(quick: bool = True, full: bool = False, parts=None) -> list[dict]:
    """Run ``parts`` (default all of :data:`PARTS`; ``limits`` always runs first)."""
    if not _has_cuda():
        print("no CUDA device: bench_gpu skipped")
        return [{"part": "skipped", "reason": "no CUDA device"}]
    rows = []
    for part, f in (("limits", limits_table), ("optim", lambda: optim_table(quick)),
                    ("profile", lambda: profile_table(quick)),
                    ("ns", lambda: ns_table(quick, full)),
                    ("batched", lambda: batched_table(quick)), ("time_to_accuracy", lambda: tta_table(quick)),
                    ("balance", lambda: balance_table(quick)), ("scaling", lambda: scaling_table(quick))):
        if parts and part != "limits" and part not in parts:
            continue
        t0 = time.perf_counter()
        try:
            got = f()
        except Exception as e:  # one failing part must not lose the others (device time is scarce)
            import traceback

            traceback.print_exc()
            got = [{"error": f"{type(e).__name__}: {e}"}]
        print(f"[bench_gpu {part}: {time.perf_counter() - t0:.1f} s]", flush=True)
        for r in got:
            r["part"] = part
            rows.append(r)
    rows.append({"part": "limits_dict", **LIMITS})
    return rows


if __name__ == "__main__":
    import argparse
    import os

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--parts", nargs="+", choices=PARTS)
    ap.add_argument("--out", help="write the rows as JSON to this file")
    a = ap.parse_args()
    got = main(a.quick, a.full, a.parts)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        C.dump(a.out, {"benchmark": "gpu", "machine": C.machine_info(), "rows": got})
