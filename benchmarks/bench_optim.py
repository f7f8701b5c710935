"""Optimizer steps: every ``matbal.optim.PRESETS`` entry vs ``torch.optim.AdamW`` on the matrix
shapes of a small GPT (full: width 768, 12 layers; default: width 512, 2 layers; quick: width 128, 2 layers), side by side; and
matbal ``muon`` vs ``torch.optim.Muon`` (bf16 NS) on one 1024×4096 matrix (quick: 256×1024),
torch's step measured once (minutes).

Session 6 parts (``python -m benchmarks.bench_optim --part adamw batching hand forms``):
``adamw`` (matbal's AdamW group vs torch.optim.AdamW foreach and fused), ``batching`` (stacked
vs one-at-a-time per transform and width: the data of
:data:`matbal.optim.transforms._batching.STACK_UP_TO`), ``hand`` (REG and MuonEq-R presets vs
hand-written steps), ``forms`` (standard NS5 vs the Gram form vs an SVD polar inside muon, at
aspect ≥ 2, with accuracy)."""
from __future__ import annotations

import time
import warnings

import torch

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C
from benchmarks.bench_ns import gpt_shapes
from matbal.optim import PRESETS


def _params(shapes, seed=0):
    ps = []
    for i, ((m, n), k) in enumerate(shapes):
        for j in range(k):
            p = torch.nn.Parameter(syn.gaussian(m, n, seed=100 * i + j) * 0.02)
            p.grad = syn.gaussian(m, n, seed=10_000 + 100 * i + j)
            ps.append(p)
    return ps


def gpt_table(quick: bool, full: bool) -> list[dict]:
    width, layers = (128, 2) if quick else ((768, 12) if full else (512, 2))
    shapes = gpt_shapes(width, layers)
    opts = {}
    for name, ctor in PRESETS.items():
        opts[f"matbal {name}"] = ctor(_params(shapes), lr=1e-3)
    opts["torch.optim.AdamW"] = torch.optim.AdamW(_params(shapes), lr=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = C.interleaved({k: o.step for k, o in opts.items()}, repeats=3, warmup=1)
    base = res["matbal muon"]["median"]
    adam = res["torch.optim.AdamW"]["median"]
    nmat = sum(k for _, k in shapes)
    rows = [{"model": f"GPT w{width} L{layers} ({nmat} matrices)", "optimizer": k, "median_s": v["median"],
             "min_s": v["min"], "x_matbal_muon": v["median"] / base, "x_torch_adamw": v["median"] / adam}
            for k, v in res.items()]
    C.print_table("Optimizer step time on GPT matrix shapes (float32 params, CPU)", rows)
    return rows


def muon_vs_torch(quick: bool) -> list[dict]:
    m, n = (256, 1024) if quick else (1024, 4096)
    from matbal.optim import muon

    def mk():
        p = torch.nn.Parameter(syn.gaussian(m, n, seed=1) * 0.02)
        p.grad = syn.gaussian(m, n, seed=2)
        return p

    ours = muon([mk()], lr=1e-3, ns_dtype=torch.float32)
    tp = mk()
    theirs = torch.optim.Muon([tp], lr=1e-3)
    r = C.interleaved({"matbal muon (float32 NS)": ours.step}, repeats=5, warmup=1)
    t0 = time.perf_counter()
    theirs.step()                      # measured once: bf16 NS at ~1 GFLOP/s
    t_torch = time.perf_counter() - t0
    r2 = C.interleaved({"matbal muon (float32 NS)": ours.step}, repeats=3, warmup=0)
    times = r["matbal muon (float32 NS)"]["times"] + r2["matbal muon (float32 NS)"]["times"]
    import statistics

    t_ours = statistics.median(times)
    rows = [{"matrix": f"{m}×{n}" + (" (quick mode; goal is stated for ≥1024×4096)" if quick else ""),
             "torch.optim.Muon step_s (bf16 NS, n=1)": t_torch,
             "matbal muon step_s (median, n=%d)" % len(times): t_ours,
             "speedup": t_torch / t_ours, "goal": "≥ 50× (CPU)", "met": t_torch / t_ours >= 50,
             "GPU (≤1.1× torch)": "CUDA runs: bench_gpu optim part (BENCHMARKS §7)"}]
    C.print_table("matbal muon vs torch.optim.Muon: one step on one matrix", rows)
    return rows


def _group_params(opt) -> list[torch.Tensor]:
    return [p for g in opt.param_groups for p in g["params"]]


def _third_party_muons(shapes) -> dict:
    """pytorch_optimizer's and heavyball's Muon on the same shapes, when installed (this script
    installs nothing: ``pip install --no-deps pytorch_optimizer heavyball``)."""
    import importlib.util

    out = {}
    if importlib.util.find_spec("pytorch_optimizer") is not None:
        import pytorch_optimizer

        out["pytorch_optimizer Muon"] = pytorch_optimizer.Muon(
            [{"params": _params(shapes), "use_muon": True}], lr=1e-3)
    if importlib.util.find_spec("heavyball") is not None:
        import heavyball

        ps = _params(shapes)
        grads = [p.grad for p in ps]
        opt = heavyball.Muon(ps, lr=1e-3)

        class _RegradStep:  # heavyball drops p.grad after its step: hand the same gradients back
            param_groups = opt.param_groups

            @staticmethod
            def step():
                for p, g in zip(ps, grads):
                    p.grad = g
                opt.step()

        out["heavyball Muon"] = _RegradStep
    return out


def dtype_policy_table(quick: bool) -> list[dict]:
    """The measured NS dtype policy (``ns_dtype="auto"``) against float32 NS and torch.optim.Muon
    (stock bf16 NS) on a GPT stack, side by side; plus the accuracy each dtype costs against float64
    NS5 on one matrix. The policy's decision and the bf16/float32 matmul rates are printed first."""
    from matbal.kernels.dtype_policy import dtype_policy_report
    from matbal.optim import muon

    rep = dtype_policy_report("cpu")
    r32, r16 = C.measure_sgemm(1024), C.measure_sgemm(1024, dtype=torch.bfloat16)
    print(f"ns_dtype='auto' on this CPU: {rep['choice']} ({rep['reason']}); "
          f"1024² matmul: float32 {r32:.0f}, bf16 {r16:.0f} GFLOP/s")
    width, layers = (256, 2) if quick else (512, 4)
    shapes = gpt_shapes(width, layers)
    peers = {"matbal muon (ns_dtype='auto')": muon(_params(shapes), lr=1e-3),
             "matbal muon (float32 NS)": muon(_params(shapes), lr=1e-3, ns_dtype=torch.float32),
             "torch.optim.Muon (bf16 NS)": torch.optim.Muon(_params(shapes), lr=1e-3)}
    peers.update(_third_party_muons(shapes))
    before = {k: [p.detach().clone() for p in _group_params(o)] for k, o in peers.items()}
    res = C.interleaved({k: o.step for k, o in peers.items()}, repeats=3 if quick else 5, warmup=1)
    for k, o in peers.items():  # a peer that did not move its weights measured nothing
        moved = any(not torch.equal(a, p) for a, p in zip(before[k], _group_params(o)))
        if not moved:
            raise RuntimeError(f"{k}: step() left every parameter unchanged")
    ref = res["torch.optim.Muon (bf16 NS)"]["median"]
    nmat = sum(k for _, k in shapes)
    rows = [{"model": f"GPT w{width} L{layers} ({nmat} matrices)", "optimizer": k,
             "median_s": v["median"], "min_s": v["min"], "x_torch_muon": v["median"] / ref,
             "auto_choice": rep["choice"]} for k, v in res.items()]
    x = syn.gaussian(512, 2048, seed=3).double()
    exact = matbal.newton_schulz(x, schedule="muon", steps=5, dtype=torch.float64)
    for dt in (torch.float32, torch.bfloat16):
        out = matbal.newton_schulz(x.float(), schedule="muon", steps=5, dtype=dt).double()
        rows.append({"model": "NS5 accuracy, 512×2048 Gaussian", "optimizer": f"NS5 in {dt}",
                     "rel_frobenius_vs_float64_ns5": float((out - exact).norm() / exact.norm())})
    C.print_table("NS dtype policy: muon step vs torch.optim.Muon, and its accuracy cost", rows)
    return rows


# --- session 6: AdamW, batching, hand-written steps, forms ---------------------------------------

def _adamw_params(width: int, layers: int, vocab: int, seed: int = 0):
    """The AdamW group of a GPT: token and position embeddings, head, norm gains and biases."""
    w = width
    shapes = [(vocab, w), (1024, w), (vocab, w)] + [(w,)] * (4 * layers + 2) \
        + [(3 * w,), (w,), (4 * w,), (w,)] * layers
    g = torch.Generator().manual_seed(seed)
    ps = []
    for s in shapes:
        p = torch.nn.Parameter(torch.randn(*s, generator=g) * 0.02)
        p.grad = torch.randn(*s, generator=g)
        ps.append(p)
    return ps


def adamw_table(quick: bool, sizes=None) -> list[dict]:
    """matbal's AdamW group (torch's fused kernel behind the all-groups non-finite screen) vs
    torch.optim.AdamW foreach and fused, and the general chain (``fused=False``); the screen alone
    shows what the all-or-nothing guarantee costs."""
    from matbal.optim import adamw
    from matbal.optim.optimizer import _nonfinite

    rows = []
    for width, layers, vocab in sizes or ([(128, 2, 4096)] if quick else
                                          [(256, 4, 8192), (768, 12, 32768)]):
        mk = lambda: _adamw_params(width, layers, vocab)  # noqa: E731
        general = adamw(mk(), lr=1e-3)
        general.fused = False
        screened = mk()
        hp = mk()
        hm, hv = [torch.zeros_like(p) for p in hp], [torch.zeros_like(p) for p in hp]
        hs = [torch.zeros(())]
        hg = [p.grad for p in hp]

        def hand():  # torch's fused kernel on prebuilt lists: no screen, no state dicts
            hs[0] += 1
            torch._fused_adamw_(hp, hg, hm, hv, [], hs * len(hp), lr=1e-3, beta1=0.9,
                                beta2=0.999, weight_decay=0.01, eps=1e-8, amsgrad=False,
                                maximize=False)
        peers = {"matbal adamw (fused kernel)": adamw(mk(), lr=1e-3).step,
                 "matbal adamw (fused kernel, nonfinite='unchecked')":
                     adamw(mk(), lr=1e-3, nonfinite="unchecked").step,
                 "matbal adamw (general chain)": general.step,
                 "torch.optim.AdamW foreach": torch.optim.AdamW(mk(), lr=1e-3, foreach=True).step,
                 "torch.optim.AdamW fused": torch.optim.AdamW(mk(), lr=1e-3, fused=True).step,
                 "hand-written (torch._fused_adamw_ on lists)": hand,
                 "non-finite screen alone": lambda: _nonfinite([p.grad for p in screened])}
        res = C.interleaved(peers, repeats=5 if quick else 15, warmup=2)
        fused = res["torch.optim.AdamW fused"]["median"]
        numel = sum(p.numel() for p in screened)
        rows += [{"params": f"GPT w{width} L{layers} V{vocab} AdamW group ({numel / 1e6:.1f} M)",
                  "peer": k, "median_s": v["median"], "min_s": v["min"],
                  "x_torch_fused": v["median"] / fused} for k, v in res.items()]
    C.print_table("AdamW group step (float32, CPU): matbal vs torch.optim.AdamW", rows)
    return rows


def _force_batch(opt, value):
    for g in opt.param_groups:
        for t in g["chain"].transforms:
            if hasattr(t, "batch"):
                t.batch = value
    return opt


def batching_table(quick: bool, widths=None, k: int = 4) -> list[dict]:
    """Per transform and width: ``k`` same-shape matrices (GPT MLP shape ``w×4w``) stacked into
    one batched call vs one call each; ``stacked_over_loop`` < 1 means stacking pays."""
    from matbal.optim.transforms import StepContext
    from matbal.optim.transforms import balance, orthogonalize

    kinds = {"orthogonalize (ns_dtype auto)": lambda b: orthogonalize("muon", dtype="auto",
                                                                      batch=b),
             "orthogonalize (float32)": lambda b: orthogonalize("muon", dtype=torch.float32,
                                                                batch=b),
             "balance racs p=2, 5 sweeps": lambda b: balance("racs", p=2, steps=5, batch=b),
             "balance muoneq_rows": lambda b: balance("muoneq_rows", batch=b)}
    rows = []
    for w in widths or ((64, 128, 256) if quick else (64, 128, 256, 512, 768)):
        mats = [syn.gaussian(w, 4 * w, seed=i) for i in range(k)]
        ctx = StepContext(params=mats, steps=[1] * k, names=[f"m{i}" for i in range(k)],
                          group={"lr": 1.0}, matrix=True)
        peers = {}
        for name, mk in kinds.items():
            for b in (True, False):
                t = mk(b)
                peers[(name, b)] = (lambda t=t: t.apply(mats, [{}] * k, ctx))
        res = C.interleaved({f"{n} | {'stacked' if b else 'loop'}": f
                             for (n, b), f in peers.items()}, repeats=3 if quick else 7, warmup=1)
        for name in kinds:
            st, lo = res[f"{name} | stacked"]["median"], res[f"{name} | loop"]["median"]
            rows.append({"shape": f"{k}×{w}×{4 * w}", "transform": name, "stacked_s": st,
                         "loop_s": lo, "stacked_over_loop": st / lo})
    C.print_table("Stacking same-shape matrices: stacked / one-at-a-time (CPU, 1 call each)", rows)
    return rows


def hand_reg_step(params, bufs, *, lr=1e-3, beta=0.9, sweeps=5, target=0.2, wd=0.1):
    """REG written by hand (the preset's math, no checks): ``M ← lerp(M, G, 1−β)``, ``K = M⊙M``,
    ``sweeps`` alternating Sinkhorn sweeps on K (rows to n, columns to m), ``U = diag(√a) M
    diag(√b)``, ``U ← target·U/RMS(U)``, ``W ← W(1 − lr·λ) − lr·U``."""
    for p, m in zip(params, bufs):
        m.lerp_(p.grad, 1 - beta)
        k = m * m
        rows_, cols = k.shape
        b = torch.ones(cols, dtype=k.dtype)
        for _ in range(sweeps):
            a = cols / (k @ b)
            b = rows_ / (a @ k)
        u = m * a.sqrt()[:, None] * b.sqrt()[None, :]
        u *= target / u.square().mean().sqrt()
        p.mul_(1 - lr * wd).add_(u, alpha=-lr)


def hand_ns5(g: torch.Tensor, dtype, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Muon's NS5 as in torch.optim.Muon / KellerJordan's code, in ``dtype``."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.to(dtype)
    t = x.shape[-2] > x.shape[-1]
    if t:
        x = x.mT
    x = x / (x.norm() + eps)
    for _ in range(steps):
        s = x @ x.mT
        x = a * x + (b * s + c * s @ s) @ x
    return (x.mT if t else x).to(g.dtype)


def hand_muoneq_r_step(params, bufs, *, dtype, lr=1e-3, mu=0.95, wd=0.1, eps=1e-8):
    """MuonEq-R written by hand (the preset's math): ``B ← μB + G``, ``U = G + μB``,
    ``U ← (rowsum(U⊙U)+ε)^{-1/2} U``, NS5 in ``dtype``, ``W ← W(1 − lr·λ) − lr·0.2√max(m,n)·O``."""
    for p, buf in zip(params, bufs):
        buf.mul_(mu).add_(p.grad)
        u = p.grad.add(buf, alpha=mu)
        u = u * (u.square().sum(-1, keepdim=True) + eps).rsqrt()
        o = hand_ns5(u, dtype)
        p.mul_(1 - lr * wd).add_(o, alpha=-lr * 0.2 * max(p.shape) ** 0.5)


def hand_table(quick: bool, sizes=None) -> list[dict]:
    """REG and MuonEq-R presets (default batching policy, forced stacking, forced loop) vs
    the hand-written steps above, on a GPT's matrix shapes."""
    from matbal.kernels.dtype_policy import auto_ns_dtype
    from matbal.optim import muoneq, reg

    dt = auto_ns_dtype(torch.device("cpu")) or torch.float32
    rows = []
    for width, layers in sizes or ([(128, 2)] if quick else [(256, 4), (512, 4)]):
        shapes = gpt_shapes(width, layers)
        hp, hq = _params(shapes), _params(shapes)
        hbufs, qbufs = [torch.zeros_like(p) for p in hp], [torch.zeros_like(p) for p in hq]
        peers = {
            "matbal reg (policy)": reg(_params(shapes)).step,
            "matbal reg (policy, nonfinite='unchecked')": reg(_params(shapes),
                                                              nonfinite="unchecked").step,
            "matbal reg (stacked)": _force_batch(reg(_params(shapes)), True).step,
            "matbal reg (loop)": _force_batch(reg(_params(shapes)), False).step,
            "hand-written REG": lambda: hand_reg_step(hp, hbufs),
            "matbal muoneq-r (policy)": muoneq(_params(shapes)).step,
            "matbal muoneq-r (stacked)": _force_batch(muoneq(_params(shapes)), True).step,
            "matbal muoneq-r (loop)": _force_batch(muoneq(_params(shapes)), False).step,
            f"hand-written MuonEq-R ({str(dt).split('.')[-1]} NS)":
                lambda: hand_muoneq_r_step(hq, qbufs, dtype=dt)}
        with torch.no_grad():
            res = C.interleaved(peers, repeats=3 if quick else 7, warmup=1)
        hr = res["hand-written REG"]["median"]
        hm = [v for k, v in res.items() if k.startswith("hand-written MuonEq")][0]["median"]
        nmat = sum(k for _, k in shapes)
        rows += [{"model": f"GPT w{width} L{layers} ({nmat} matrices)", "optimizer": k,
                  "median_s": v["median"], "min_s": v["min"],
                  "x_hand": v["median"] / (hr if "reg" in k.lower() else hm)}
                 for k, v in res.items()]
    C.print_table("REG and MuonEq-R steps vs hand-written steps (float32 params, CPU)", rows)
    return rows


def _svd_polar_muon(params, lr=1e-3):
    """muon's chain with NS replaced by the polar factor from a float32 thin SVD of each matrix
    (``torch.linalg.svd``: LAPACK works on the tall side)."""
    from matbal.optim import Chain, ChainOptimizer, muon
    from matbal.optim.transforms import Orthogonalize

    class SVDPolar(Orthogonalize):
        def _ortho(self, x):
            x = torch.stack(x) if isinstance(x, list) else x
            u, _, vh = torch.linalg.svd(x.float(), full_matrices=False)
            return (u @ vh).to(x.dtype)

    ref = muon(params, lr=lr)
    ts = [SVDPolar() if isinstance(t, Orthogonalize) else t
          for t in ref.param_groups[0]["chain"].transforms]
    return ChainOptimizer(params, chain=Chain(*ts), lr=lr, matrix=True)


def forms_table(quick: bool, shapes=None) -> list[dict]:
    """At aspect ≥ 2: the muon step (4 same-shape matrices) with NS5 in the standard form and in
    the Gram form, in bf16 and float32, and with a float32 SVD polar; plus each one's distance
    (relative Frobenius) to float64 NS5 and to the exact polar factor, on a momentum-like matrix
    (Gaussian singular vectors, geometric spectrum κ = 1e3)."""
    import matbal
    from matbal.optim import muon

    rows = []
    for m, n in shapes or ([(256, 512), (256, 1024)] if quick else
                           [(512, 1024), (512, 2048), (1024, 2048), (1024, 4096), (4096, 1024)]):
        peers = {}
        for dt in (torch.bfloat16, torch.float32):
            for form in ("standard", "gram"):
                peers[f"{form}, {str(dt).split('.')[-1]}"] = muon(
                    _params([((m, n), 4)]), lr=1e-3, ns_dtype=dt, ns_form=form).step
        peers["svd polar, float32"] = _svd_polar_muon(_params([((m, n), 4)])).step
        res = C.interleaved(peers, repeats=3 if quick else 5, warmup=1)
        x = syn.gaussian(m, n, seed=5).double()
        us, _, vh = torch.linalg.svd(x, full_matrices=False)
        x = us @ torch.diag(torch.logspace(0, -3, min(m, n), dtype=torch.float64)) @ vh
        exact = us @ vh
        ns_exact = matbal.newton_schulz(x, schedule="muon", steps=5, dtype=torch.float64)
        std32 = res["standard, float32"]["median"]
        for k, v in res.items():
            form, dt = k.split(", ")
            if form == "svd polar":
                u2, _, v2 = torch.linalg.svd(x.float(), full_matrices=False)
                o = (u2 @ v2).double()
            else:
                o = matbal.newton_schulz(x.float(), schedule="muon", steps=5,
                                         dtype=getattr(torch, dt), form=form).double()
            rows.append({"shape": f"4×{m}×{n}", "form": k, "median_s": v["median"],
                         "x_standard_f32": v["median"] / std32,
                         "x_standard_same_dtype": v["median"] / res[f"standard, {dt}"]["median"],
                         "err_vs_f64_ns5": float((o - ns_exact).norm() / ns_exact.norm()),
                         "err_vs_polar": float((o - exact).norm() / exact.norm())})
    C.print_table("NS forms inside muon at aspect ≥ 2 (CPU): time and accuracy", rows)
    return rows


PARTS = {"gpt": lambda q, f: gpt_table(q, f),
         "dtype_policy": lambda q, f: dtype_policy_table(q),
         "muon_vs_torch": lambda q, f: muon_vs_torch(q),
         "adamw": lambda q, f: adamw_table(q),
         "batching": lambda q, f: batching_table(q),
         "hand": lambda q, f: hand_table(q),
         "forms": lambda q, f: forms_table(q)}


def main(quick: bool = True, full: bool = False, parts=None) -> list[dict]:
    return C.parts_rows([(p, (lambda p=p: PARTS[p](quick, full))) for p in (parts or PARTS)])


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", nargs="+", choices=sorted(PARTS), help="parts to run (default: all)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args()
    main(quick=a.quick, full=a.full, parts=a.part)
