"""Balancing: matbal ``racs`` p=2 vs POT ``ot.sinkhorn`` (on X⊙X, uniform marginals), ``ruiz``,
``knight_ruiz`` and a hand-written float32 Sinkhorn loop: time and iterations to imbalance 1e-6;
bytes/s of one sweep vs measured memory bandwidth.

Common imbalance metric for the p=2 family (racs, KR, POT, hand loop): with ``P = X̂⊙X̂`` (for POT
its plan, rescaled), ``max(rel_dev(√rowsums P), rel_dev(√colsums P))`` = ``imbalance(X̂, p=2).residual``.
Ruiz equalizes max-norms (another fixed point): its own p=∞ residual is reported.
"""
from __future__ import annotations

import warnings

import torch

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C

RTOL = 1e-6
POT_NUMPY = "POT ot.sinkhorn numpy f64"  # the one peer whose BLAS (OpenBLAS via numpy) spins


def _relres(P: torch.Tensor) -> float:
    P = P.double()
    r, c = P.sum(1).sqrt(), P.sum(0).sqrt()
    return float(max((r / r.mean() - 1).abs().max(), (c / c.mean() - 1).abs().max()))


def hand_sinkhorn(x: torch.Tensor, rtol: float = RTOL, max_iter: int = 1000, prep=None):
    """Plain float32 Sinkhorn on K = X⊙X to rows n, columns m (the floor). Returns (u, v, K, sweeps).
    ``prep(x) -> (K, K·1, …)`` replaces the eager ``K = x*x; t = K·1`` (the fused prototype)."""
    m, n = x.shape
    if prep is None:
        K = x * x
        t = K @ x.new_ones(n)
    else:
        K, t = prep(x)[:2]
    for k in range(1, max_iter + 1):
        u = n / t
        v = m / (u @ K)
        t = K @ v
        s = (u * t).sqrt()                       # row 2-norms of the iterate (columns exact)
        if float((s / s.mean() - 1).abs().max()) <= rtol:
            break
    return u, v, K, k


def hand_plus_output(x: torch.Tensor) -> torch.Tensor:
    """The hand loop followed by the same two-pass output racs writes (``x·√u``, then ``·√v``, into
    K's storage): the eager floor for a call that returns the balanced matrix."""
    u, v, K, _ = hand_sinkhorn(x)
    torch.mul(x, u.sqrt()[:, None], out=K)
    return K.mul_(v.sqrt())


def _configs(quick: bool, configs):
    """The ``(threads, settle)`` tables of :func:`floor_table` / :func:`fused_table`."""
    if configs is not None:
        return configs
    return ((1, 0.0),) if quick else ((1, 0.0), (None, 0.2))


def _label(threads: int | None, settle: float) -> str:
    return f"{threads if threads else torch.get_num_threads()} thread(s) torch & BLAS, settle {settle:g} s after POT"


def pot_sinkhorn(K, a, b, stop):
    import ot

    return ot.sinkhorn(a, b, K, 1.0, method="sinkhorn", numItermax=10000, stopThr=stop, log=True, warn=False)


def pot_problem(x: torch.Tensor, numpy64: bool = False):
    """POT's form of Sinkhorn on ``K = X⊙X``: cost ``M = −log K`` (``exp(−M/reg) = K`` at reg = 1),
    uniform marginals ``a, b`` (so ``plan·mn`` is the balanced ``P``) and ``stopThr`` = 1e-6
    relative in POT's test ``‖colsums − b‖₂ < stopThr`` (checked every 10 iterations). torch
    float32 on ``x``'s device, or numpy float64. Returns ``(M, a, b, stop)``."""
    import numpy as np

    m, n = x.shape
    K = x * x
    if numpy64:
        b = np.full(n, 1.0 / n)
        return (-torch.log(K.double())).cpu().numpy(), np.full(m, 1.0 / m), b, RTOL * float(np.linalg.norm(b)) * 0.5
    b = torch.full((n,), 1.0 / n, device=x.device)
    return -torch.log(K), torch.full((m,), 1.0 / m, device=x.device), b, RTOL * float(b.norm()) * 0.5


def outcome(peer: str, out) -> tuple[int, float, int]:
    """``(iterations, final imbalance, passes over the matrix)`` of one peer's result, the imbalance
    measured the same way for every p=2 method (module docstring; ruiz: its own p=∞ residual)."""
    if peer.startswith("matbal ruiz"):
        return out.iterations, float(out.residual), out.matvecs
    if peer.startswith("matbal sinkhorn"):  # its matrix is P itself
        return out.iterations, _relres(out.matrix.double()), out.matvecs
    if peer.startswith("matbal"):
        return out.iterations, _relres(out.matrix.double() ** 2), out.matvecs
    if peer.startswith("hand"):
        u, v, K, it = out
        return it, _relres(u[:, None] * K * v[None, :]), 2 * it + 1
    plan, log = out
    it = int(log["niter"]) + 1
    return it, _relres(torch.as_tensor(plan)), 2 * it + 2 * len(log["err"])


def matrices(m, n):
    return {
        "gaussian": syn.gaussian(m, n, seed=0),
        "scale-mismatch (rows,cols 1e±2)": syn.scale_mismatch(m, n, row_range=(1e-2, 1e2), col_range=(1e-2, 1e2), seed=0),
        "heavy rows (10 rows ×100)": syn.heavy_rows(m, n, k=10, factor=100.0, seed=0),
    }


def convergence_table(quick: bool) -> list[dict]:
    """Every method to imbalance 1e-6 on three 1024×4096 matrices, interleaved. ``quick``: torch
    and the BLAS on one thread each (no thread pools to interfere, see :func:`floor_table`);
    otherwise all threads and a 0.2 s pause after each POT numpy call."""
    threads, settle = (1, 0.0) if quick else (None, 0.2)
    with _threads(threads):
        return _convergence_rows(quick, threads, settle)


def _convergence_rows(quick: bool, threads: int | None, settle: float) -> list[dict]:
    m, n = 1024, 4096
    rows = []
    label = _label(threads, settle)
    for mname, x in matrices(m, n).items():
        pot64, pot32 = pot_problem(x, numpy64=True), pot_problem(x)
        peers = {
            "matbal racs p=2": lambda: matbal.racs(x, p=2, rtol=RTOL),
            "hand-written f32 Sinkhorn": lambda: hand_sinkhorn(x),
            "matbal knight_ruiz p=2 (f64)": lambda: matbal.knight_ruiz(x, p=2, rtol=RTOL, warn=False),
            "matbal ruiz (p=∞ fixed point)": lambda: matbal.ruiz(x, rtol=RTOL, warn=False),
            POT_NUMPY: lambda: pot_sinkhorn(*pot64),
            "POT ot.sinkhorn torch f32": lambda: pot_sinkhorn(*pot32),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # 5+ repeats: a median of 3 is at the mercy of one page-fault storm (first touch of
            # a fresh 16 MiB tensor costs 5-10 ms on a busy VM, and it hits every peer at random)
            res = C.interleaved(peers, repeats=5 if quick else 7, warmup=1, settle=settle,
                                settle_after=[POT_NUMPY])
        base = res["matbal racs p=2"]["median"]
        for k, v in res.items():
            it, final, mv = outcome(k, v["result"])
            rows.append({"matrix": mname, "threads": label, "peer": k, "median_s": v["median"], "min_s": v["min"],
                         "iterations": it, "passes": mv, "final_imbalance": final,
                         "x_racs": v["median"] / base})
    C.print_table("Balancing 1024×4096 float32 to imbalance 1e-6 — goal: racs ≥ 10× faster than POT", rows)
    return rows


def sweep_table(quick: bool) -> list[dict]:
    lim = C.machine_limits(quick)
    shapes = [(1024, 4096)] + ([] if quick else [(4096, 8192)])
    rows = []
    for m, n in shapes:
        x = syn.gaussian(m, n, seed=1)
        K = x * x
        u, v = torch.rand(m), torch.rand(n)

        def sweep():                     # one Sinkhorn sweep = one pass with K, one with Kᵀ
            return u @ K, K @ v

        def racs1():
            return matbal.racs(x, steps=1)

        def racs11():
            return matbal.racs(x, steps=11)

        res = C.interleaved({"sweep": sweep, "racs steps=1": racs1, "racs steps=11": racs11},
                            repeats=7, warmup=2)
        nbytes = 2 * m * n * 4
        t_sweep = res["sweep"]["median"]
        t_racs = (res["racs steps=11"]["median"] - res["racs steps=1"]["median"]) / 10
        resident = m * n * 4 <= 16 << 20
        ref = lim["l3_read_gbs"] if resident and "l3_read_gbs" in lim else lim["bw_read_gbs"]
        for name, t in (("hand sweep (K@v, uᵀK)", t_sweep), ("racs, per extra sweep", t_racs),
                        ("racs steps=1 total (prep + 1 sweep + finish)", res["racs steps=1"]["median"])):
            gbs = nbytes / t / 1e9 if "total" not in name else float("nan")
            rows.append({"shape": f"{m}×{n} ({m * n * 4 >> 20} MiB)", "what": name, "median_s": t,
                         "GB/s": gbs, "ref_read_GB/s": ref,
                         "ref": "L3 read (matrix fits in 32 MiB L3)" if resident else "DRAM read",
                         "%_of_DRAM_read": 100 * gbs / lim["bw_read_gbs"] if gbs == gbs else float("nan"),
                         "%_of_ref": 100 * gbs / ref if gbs == gbs else float("nan")})
    C.print_table("One balancing sweep: achieved bytes/s vs measured bandwidth — goal ≥ 70%", rows)
    return rows


def floor_table(quick: bool, shape: tuple[int, int] = (1024, 4096),
                configs: tuple[tuple[int | None, float], ...] | None = None) -> list[dict]:
    """racs against the eager-torch floor: the hand loop alone, the hand loop plus the same
    two-pass output racs writes (``x·r`` then ``·c``), one output pass, and POT numpy f64 — the
    same Gaussian matrix, interleaved.

    ``configs``: ``(threads, settle)`` pairs, one table each. ``threads`` = n: torch *and* the
    BLAS under numpy/POT limited to n threads (threadpoolctl) for the table; None: as the process
    has them. ``settle``: seconds of sleep after each POT numpy call, off the clock
    (:func:`_common.interleaved`). Default: ``(1, 0)`` — one thread each, no thread pool to
    interfere — and, unless ``quick``, ``(None, 0.2)`` — all threads, the next peer starting
    after POT's BLAS workers stopped spinning. With all threads and no settle, OpenBLAS workers
    still spinning after POT's call take a core from the next torch peer, which then runs up to
    1.7× slower (BENCHMARKS.md §2, session 5)."""
    rows = []
    for threads, settle in _configs(quick, configs):
        with _threads(threads):
            rows += _floor_rows(quick, shape, threads, settle)
    return rows


class _threads:
    """Limit torch's and the BLAS libraries' threads to ``n`` inside the block (None: no change)."""

    def __init__(self, n: int | None):
        self.n, self.old, self.ctl = n, None, None

    def __enter__(self):
        if self.n is not None:
            from threadpoolctl import threadpool_limits

            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)
            self.ctl = threadpool_limits(limits=self.n, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self.n is not None:
            self.ctl.restore_original_limits()
            torch.set_num_threads(self.old)


def _floor_rows(quick: bool, shape: tuple[int, int], threads: int | None, settle: float) -> list[dict]:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    M, a, b, stop = pot_problem(x, numpy64=True)
    o, r = torch.empty_like(x), torch.rand(shape[0])

    # Round-robin order matters: the peer right after POT finds its memory handed back to the OS
    # and pays page faults on a fresh 16 MiB (5-10 ms here). That peer is the hand loop without
    # output (its number is pessimistic); racs and the hand loop + output are timed on equal terms.
    res = C.interleaved({
        POT_NUMPY: lambda: pot_sinkhorn(M, a, b, stop),
        "hand loop, no output (runs after POT)": lambda: hand_sinkhorn(x),
        "matbal racs p=2": lambda: matbal.racs(x).matrix,
        "hand loop + output (2 passes)": lambda: hand_plus_output(x),
        "one output pass x·r → out": lambda: torch.mul(x, r[:, None], out=o),
    }, repeats=5 if quick else 15, warmup=2, settle=settle, settle_after=[POT_NUMPY])
    pot = res[POT_NUMPY]["median"]
    label = _label(threads, settle)
    rows = [{"shape": f"{shape[0]}×{shape[1]}", "threads": label, "peer": k, "median_s": v["median"],
             "min_s": v["min"], "POT_over_this": pot / v["median"]} for k, v in res.items()]
    C.print_table(f"racs vs the eager floor (hand loop ± output) and POT numpy f64 — {label}", rows)
    return rows


def fused_table(quick: bool, shape: tuple[int, int] = (1024, 4096),
                configs: tuple[tuple[int | None, float], ...] | None = None) -> list[dict]:
    """What a compiled kernel would give: the hand loop with its preparation and its output
    fused into one pass each (:mod:`benchmarks.fused_sinkhorn`, built on first use, ~30 s)
    against racs, the eager hand loop + output, and POT numpy f64; interleaved, configs as in
    :func:`floor_table`. Not part of :func:`main` (it needs g++ and ninja): ``--part fused``."""
    from benchmarks import fused_sinkhorn as F

    if not F.available():
        print("fused: no g++/ninja on this machine, skipped")
        return []
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    M, a, b, stop = pot_problem(x, numpy64=True)

    fused, sweeps = F.fused_sinkhorn(x)  # builds the extension, off the clock
    ref = hand_plus_output(x)
    if sweeps != hand_sinkhorn(x)[3] or not torch.allclose(fused, ref, rtol=1e-4, atol=1e-6):
        raise AssertionError("fused Sinkhorn disagrees with the hand loop")
    rows = []
    for threads, settle in _configs(quick, configs):
        with _threads(threads):
            res = C.interleaved({
                POT_NUMPY: lambda: pot_sinkhorn(M, a, b, stop),
                "matbal racs p=2": lambda: matbal.racs(x).matrix,
                "hand loop + output (eager)": lambda: hand_plus_output(x),
                "hand loop, fused prep + fused output (C++)": lambda: F.fused_sinkhorn(x)[0],
            }, repeats=5 if quick else 15, warmup=2, settle=settle, settle_after=[POT_NUMPY])
            label = _label(threads, settle)
        pot = res[POT_NUMPY]["median"]
        rows += [{"shape": f"{shape[0]}×{shape[1]}", "threads": label, "peer": k, "median_s": v["median"],
                  "min_s": v["min"], "POT_over_this": pot / v["median"]} for k, v in res.items()]
    C.print_table("What fused (compiled) kernels would give: hand loop with one-pass prep and output", rows)
    return rows


# --- session 7: the fixed-cost calls the optimizers make (issue 15 item 4) ----------------------

def hand_fixed(x: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """The REG / SinkGD call written by hand: ``K = X⊙X``, ``steps`` sweeps ``u = n/(Kv)``,
    ``v = m/(Kᵀu)``, output ``diag(√u) X diag(√v)``; batches in the row-vector product layout
    (``matbal.kernels._matvec``: the column form is 6–25× slower on the CPU)."""
    K = x * x
    m, n = x.shape[-2:]
    v = torch.ones(x.shape[:-2] + (n,), dtype=x.dtype)
    mv = torch.mv if x.ndim == 2 else (lambda a, w: (w.unsqueeze(-2) @ a.mT).squeeze(-2))
    vm = (lambda w, a: torch.mv(a.t(), w)) if x.ndim == 2 else \
        (lambda w, a: (w.unsqueeze(-2) @ a).squeeze(-2))
    for _ in range(steps):
        u = n / mv(K, v)
        v = m / vm(u, K)
    return x * u.sqrt().unsqueeze(-1) * v.sqrt().unsqueeze(-2)


def fixed_table(quick: bool, small=None, large=None, steps: int = 5) -> list[dict]:
    """racs as the optimizers call it (p = 2, ``steps`` sweeps, only the matrix): small matrices
    against the hand-written loop (:func:`hand_fixed`; fixed cost, goal ≤ 1.3×; ``x_hand``: over
    the faster hand form, batched or one matrix at a time), and at large
    sizes the bytes/s of one sweep (hand ``K·v``, ``uᵀK`` pair vs racs's cost per extra sweep) on
    1 and 2 threads, plus the whole call. Peers interleaved; a batch of 8 also against a Python
    loop of the 2-D hand call."""
    from matbal.kernels.balancing import racs_matrix

    rows = []
    small = small or ([(64, 64), (256, 256), (8, 256, 256)] if quick else
                      [(64, 64), (128, 128), (256, 256), (256, 1024), (8, 256, 256)])
    with _threads(1):
        for shape in small:
            x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
            peers = {"hand loop": lambda: hand_fixed(x, steps),
                     "racs_matrix (lean path)": lambda: racs_matrix(x, p=2, steps=steps),
                     "racs(...).matrix (general path)":
                         lambda: matbal.racs(x, p=2, steps=steps).matrix}
            if len(shape) == 3:
                peers["hand loop, one matrix at a time"] = lambda: [hand_fixed(a, steps) for a in x]
                peers["racs_matrix, one matrix at a time"] = \
                    lambda: [racs_matrix(a, p=2, steps=steps) for a in x]
            ref = hand_fixed(x, steps).double()
            err = float(((racs_matrix(x, p=2, steps=steps).double() - ref).abs()
                         / ref.abs()).max())
            # one call per sample, many samples: on a loaded machine a block of calls is almost
            # always preempted (2 cores, load ~5: a 6 ms block of 20 calls at 64×64 measured
            # 2.4–3.4× the single-call median for both peers), a single call seldom
            res = C.interleaved(peers, repeats=40 if quick else 200, warmup=3)
            hand = min(v["median"] for k, v in res.items() if k.startswith("hand"))  # the best
            rows += [{"shape": "×".join(map(str, shape)), "threads": 1, "peer": k,
                      "median_us_per_call": 1e6 * v["median"], "x_hand": v["median"] / hand,
                      "lean_vs_hand_max_rel": err} for k, v in res.items()]
    C.print_table(f"racs p=2, {steps} sweeps, small calls (fixed cost; goal ≤ 1.3× the hand loop)",
                  rows)
    big_rows = []
    lim = C.machine_limits(quick)
    for m, n in large or ([(1024, 4096)] if quick else [(2048, 8192), (4096, 11008)]):
        x = torch.randn(m, n, generator=torch.Generator().manual_seed(1))
        K, u, v = x * x, torch.rand(m), torch.rand(n)
        for threads in ((1,) if quick else (1, 2)):
            with _threads(threads):
                res = C.interleaved({
                    "hand sweep (K@v, u@K)": lambda: (u @ K, K @ v),
                    "racs_matrix steps=1": lambda: racs_matrix(x, p=2, steps=1),
                    f"racs_matrix steps={steps + 1}": lambda: racs_matrix(x, p=2, steps=steps + 1),
                    f"hand loop steps={steps + 1} + output": lambda: hand_fixed(x, steps + 1),
                }, repeats=3 if quick else 7, warmup=1)
            nbytes = 2 * m * n * 4
            t_sweep = res["hand sweep (K@v, u@K)"]["median"]
            t_racs = (res[f"racs_matrix steps={steps + 1}"]["median"]
                      - res["racs_matrix steps=1"]["median"]) / steps
            t_call, t_hand = (res[f"racs_matrix steps={steps + 1}"]["median"],
                              res[f"hand loop steps={steps + 1} + output"]["median"])
            for what, t, gbs in (("hand sweep", t_sweep, nbytes / t_sweep / 1e9),
                                 ("racs_matrix, per extra sweep", t_racs, nbytes / t_racs / 1e9),
                                 (f"racs_matrix steps={steps + 1}, whole call", t_call, None),
                                 (f"hand loop steps={steps + 1} + output, whole call", t_hand,
                                  None)):
                big_rows.append({"shape": f"{m}×{n} ({m * n * 4 >> 20} MiB)", "threads": threads,
                                 "what": what, "median_s": t,
                                 "GB/s": gbs if gbs is not None else float("nan"),
                                 "%_of_DRAM_read": (100 * gbs / lim["bw_read_gbs"]
                                                    if gbs is not None else float("nan")),
                                 "x_hand": t / (t_sweep if gbs is not None else t_hand)})
    C.print_table("racs sweep bandwidth at large sizes vs the hand sweep (DRAM read measured "
                  f"{lim['bw_read_gbs']:.1f} GB/s)", big_rows)
    return rows + big_rows


def main(quick: bool = True, full: bool = False) -> list[dict]:
    return C.parts_rows([(part, lambda f=f: f(quick)) for part, f in (
        ("convergence", convergence_table), ("sweep", sweep_table), ("floor", floor_table))])


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["convergence", "sweep", "floor", "fused", "fixed"],
                    help="one part only (fused: not in the default run, builds a C++ prototype)")
    ap.add_argument("--full", action="store_true", help="default sizes instead of --quick's")
    args = ap.parse_args()
    if args.part:
        {"convergence": convergence_table, "sweep": sweep_table, "floor": floor_table,
         "fused": fused_table, "fixed": fixed_table}[args.part](not args.full)
    else:
        main(quick=not args.full)
