"""FSDP2 vs DDP vs a naive all-gather: communication per step (bytes by collective) and step time.

Two gloo processes on the CPU (``--world``), a GPT (``--n-layer``/``--n-embd``), one preset.
Three ways to run the same optimizer on several processes:

- ``fsdp``: ``fully_shard`` per block + root, :class:`matbal.optim.fsdp.FSDPChainOptimizer`
  (momentum on the local shard; each matrix assembled on one owner by ``all_to_all``);
- ``ddp``: ``DistributedDataParallel`` + :class:`~matbal.optim.distributed.
  DistributedChainOptimizer` (gradients all-reduced; each rank runs the chain on the matrices it
  owns; updated matrices all-gathered);
- ``naive``: ``fully_shard`` as in ``fsdp``, but every rank all-gathers every matrix's momentum
  and runs every matrix's chain, keeping its own rows (Moonlight's Distributed Muon,
  arXiv 2502.16982, on FSDP2).

Optimizer bytes per step that rank 0 sends to other ranks: ``fsdp`` measured (the optimizer's
``comm_bytes``); ``ddp`` (W−1)·(its all-gather buffer); ``naive`` (W−1)·4·(its matrix entries:
every rank all-gathers every matrix). Collectives inside ``opt.step`` are counted by op with
``CommDebugMode`` (``torch``: torch.optim.Muon on the DTensors). The forward/backward
communication (FSDP2 all-gather/reduce-scatter, DDP all-reduce) is the same per parallelism and
is given by formula in BENCHMARKS.md. Time: median of ``--steps`` full steps (forward, backward,
optimizer) after 2 warm-up steps, and of the optimizer step alone; the modes' steps interleave.

    OMP_NUM_THREADS=1 python -m benchmarks.bench_fsdp --preset muon
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import statistics
import time
from collections import defaultdict

import torch
import torch.distributed as dist
import torch.nn.functional as F

# torch.distributed functions counted from Python (name → position of this rank's input tensor)
COUNTED = {"all_reduce": 0, "all_gather": 1, "all_to_all_single": 1, "broadcast": 0}


def _count_collectives(tally):
    for name, pos in COUNTED.items():
        fn = getattr(dist, name)

        def wrapped(*args, _fn=fn, _name=name, _pos=pos, **kw):
            t = args[_pos]
            tally[_name] += t.numel() * t.element_size()
            return _fn(*args, **kw)
        setattr(dist, name, wrapped)


def _naive_optimizer(opt):
    """FSDPChainOptimizer whose matrix part runs on every rank on all-gathered full matrices."""
    from torch.distributed.tensor import DTensor

    from matbal.optim.fsdp import FSDPChainOptimizer

    class Naive(FSDPChainOptimizer):
        def owners(self, group):
            return [self.rank] * len(group["params"])  # every rank "owns" every matrix

        def _matrix_part(self, group, head, params, names, lays, owners, starts, steps,
                         updates, matrix):
            full = [DTensor.from_local(u, p.device_mesh, p.placements, run_check=False,
                                       shape=p.shape, stride=p.stride()).full_tensor()
                    for u, p in zip(updates, params)]
            self.matrices_computed += len(full)
            ctx = type(self)._ctx(params, steps, names, group, matrix)
            outs = head([f.reshape(f.shape[0], -1) for f in full],
                        [self.state[p] for p in params], ctx, start=starts[0])
            return [lay.block(o.reshape(lay.shape), self.rank) for o, lay in zip(outs, lays)]

    from matbal.optim import fsdp as mod
    Naive._ctx = staticmethod(mod._ctx)
    return mod._rebuild(opt, Naive)


def _local_numel(p):
    return p.to_local().numel() if hasattr(p, "to_local") else p.numel()


class _TorchMuonAdamW:
    """torch.optim.Muon on the hidden matrices (matbal's routing), torch.optim.AdamW on the rest."""

    def __init__(self, model):
        from matbal.optim import label_params
        labels = label_params(model)
        named = dict(model.named_parameters())
        mats = [named[n] for n, lab in labels.items() if lab == "matrix"]
        rest = [named[n] for n, lab in labels.items() if lab != "matrix"]
        self.opts = [torch.optim.Muon(mats, lr=0.01), torch.optim.AdamW(rest, lr=0.01)]
        self.param_groups = [{"params": mats, "matrix": True}, {"params": rest}]

    def zero_grad(self):
        for o in self.opts:
            o.zero_grad()

    def step(self):
        for o in self.opts:
            o.step()


def worker(rank, port, args, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=args.world)
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.debug import CommDebugMode
    from torch.nn.parallel import DistributedDataParallel as DDP

    from matbal.optim import PRESETS
    from matbal.optim.distributed import distribute
    from matbal.optim.fsdp import shard
    from matbal.train.models import GPT
    tally = defaultdict(int)
    _count_collectives(tally)
    torch.manual_seed(0)
    init = GPT(vocab_size=64, block_size=args.block, n_layer=args.n_layer, n_head=4,
               n_embd=args.n_embd)
    g = torch.Generator().manual_seed(rank)
    data = torch.randint(0, 64, (args.batch // args.world, args.block + 1), generator=g)
    runs = {}
    for mode in args.modes.split(","):
        model = copy.deepcopy(init)
        if mode == "ddp":
            opt = distribute(PRESETS[args.preset](model, lr=0.01))
            net = DDP(model)
        else:
            for block in model.transformer.h:
                fully_shard(block)
            fully_shard(model)
            if mode == "torch":
                opt = _TorchMuonAdamW(model)
            else:
                opt = PRESETS[args.preset](model, lr=0.01)
                opt = shard(opt) if mode == "fsdp" else _naive_optimizer(opt)
            net = model
        runs[mode] = {"net": net, "opt": opt, "step_t": [], "opt_t": [],
                      "local_matrix": sum(_local_numel(p) for g in opt.param_groups
                                          if g.get("matrix") for p in g["params"])}
    for i in range(args.steps + 2):  # interleaved: A B C D A B C D … (the machine is shared)
        for mode, r in runs.items():
            net, opt = r["net"], r["opt"]
            tally.clear()
            dist.barrier()
            t0 = time.perf_counter()
            logits = net(data[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), data[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            t1 = time.perf_counter()
            before = dict(tally)
            with CommDebugMode() as comm:
                opt.step()
            t2 = time.perf_counter()
            if i >= 2:
                r["step_t"].append(t2 - t0)
                r["opt_t"].append(t2 - t1)
                r["per_step"] = {k: v - before.get(k, 0) for k, v in tally.items()
                                 if v - before.get(k, 0)}
                r["dtensor_ops"] = {str(k): v for k, v in comm.get_comm_counts().items()}
    W, n = args.world, args.steps + 2
    results = {}
    for mode, r in runs.items():
        opt = r["opt"]
        sent = {"fsdp": getattr(opt, "comm_bytes", {}).get("all_to_all", 0) / n,
                "ddp": (W - 1) * r["per_step"].get("all_gather", 0),
                "naive": (W - 1) * 4 * r["local_matrix"]}.get(mode)
        results[mode] = {"step_s": statistics.median(r["step_t"]),
                         "opt_step_s": statistics.median(r["opt_t"]),
                         "optimizer_bytes_sent": sent,
                         "python_collectives_input_bytes": r["per_step"],
                         "dtensor_collective_counts": r["dtensor_ops"],
                         "matrix_chains_per_step": getattr(opt, "matrices_computed", 0) / n}
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"args": vars(args), "rank0": results}, f, indent=1)
    dist.barrier()
    dist.destroy_process_group()


def torch_muon_worker(rank, port, world, out):
    """What ``torch.optim.Muon`` computes on FSDP2 DTensor parameters, against the same optimizer
    on the unsharded model (global batch); matbal's FSDP muon with bf16 NS (``ns_dtype=bfloat16``:
    torch.optim.Muon's arithmetic) is the bf16-rounding floor. ``relative error`` =
    ``‖W_sharded − W_ref‖_F / ‖W_ref − W_0‖_F`` after 3 steps, worst matrix. ``per-shard`` = the
    step-1 update of each rank's rows against torch's NS applied to that rank's gradient rows
    alone; ``whole`` = against the rows of torch's NS of the whole (single-process) gradient."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from torch.distributed.fsdp import fully_shard
    from torch.optim._muon import _zeropower_via_newtonschulz

    from matbal.optim import PRESETS
    from matbal.optim.fsdp import shard
    torch.manual_seed(0)
    init = torch.nn.Sequential(torch.nn.Linear(64, 96, bias=False), torch.nn.Tanh(),
                               torch.nn.Linear(96, 48, bias=False), torch.nn.Tanh(),
                               torch.nn.Linear(48, 48, bias=False))
    # 256 samples: full-rank gradients (NS maps tiny singular values with slope ≈ 3.4⁵, so a
    # rank-deficient gradient turns bf16 rounding into O(1) differences and hides the answer)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(1))
    half = 256 // world

    def run(sharded, make, steps=3):
        m = copy.deepcopy(init)
        if sharded:
            for i in (0, 2, 4):
                fully_shard(m[i])
            fully_shard(m)
        opt = make(m)
        grads1 = None
        for _ in range(steps):
            opt.zero_grad()
            xb = x[half * rank:half * (rank + 1)] if sharded else x
            m(xb).pow(2).mean().backward()
            if grads1 is None:
                grads1 = [(p.grad.to_local() if sharded else p.grad).clone()
                          for p in m.parameters()]
            opt.step()
        ws = [(p.full_tensor() if sharded else p).detach().clone() for p in m.parameters()]
        return ws, grads1

    torch_muon = lambda m: torch.optim.Muon(m.parameters(), lr=0.02)  # noqa: E731
    matbal_bf16 = lambda m: shard(PRESETS["muon"](  # noqa: E731
        {"matrix": list(m.parameters())}, lr=0.02, ns_dtype=torch.bfloat16, eps=0.0))
    w0 = [p.detach().clone() for p in init.parameters()]
    ref, _ = run(False, torch_muon)

    def rel(ws):
        return max(float((a - b).norm() / (b - c).norm()) for a, b, c in zip(ws, ref, w0))
    t_dt, _ = run(True, torch_muon)
    m_dt, _ = run(True, matbal_bf16)
    # step 1 with lr 1 and no weight decay: W0 − W1 = scale·NS(U), U ∝ the gradient
    torch_1 = lambda m: torch.optim.Muon(m.parameters(), lr=1.0, weight_decay=0.0)  # noqa: E731
    matbal_1 = lambda m: shard(PRESETS["muon"](  # noqa: E731
        {"matrix": list(m.parameters())}, lr=1.0, weight_decay=0.0, ns_dtype=torch.bfloat16,
        eps=0.0))
    one, g1 = run(True, torch_1, steps=1)
    _, g1_full = run(False, torch_1, steps=1)
    one_matbal, _ = run(True, matbal_1, steps=1)
    lay = lambda w: w.shape[0] // world if w.shape[0] % world == 0 else None  # noqa: E731
    per_shard, whole, whole_matbal = [], [], []
    for w1, w, g, gf, wm in zip(one, w0, g1, g1_full, one_matbal):
        rows = lay(w)
        blk = slice(rank * rows, (rank + 1) * rows)
        upd = w[blk] - w1[blk]
        ns = _zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7).float()
        scale = max(1, g.shape[0] / g.shape[1]) ** 0.5
        glob = max(1, w.shape[0] / w.shape[1]) ** 0.5
        per_shard.append(min(float((upd - s * ns).norm() / upd.norm()) for s in (scale, glob)))
        nsf = _zeropower_via_newtonschulz(gf, (3.4445, -4.7750, 2.0315), 5, 1e-7).float()
        whole.append(float((upd - glob * nsf[blk]).norm() / upd.norm()))
        upd_m = w[blk] - wm[blk]
        whole_matbal.append(float((upd_m - glob * nsf[blk]).norm() / upd_m.norm()))
    res = {"torch_muon_on_dtensor_rel_err": rel(t_dt), "matbal_fsdp_bf16_rel_err": rel(m_dt),
           "torch_dtensor_vs_per_shard_ns_step1": max(per_shard),
           "torch_dtensor_vs_whole_matrix_ns_step1": max(whole),
           "matbal_fsdp_bf16_vs_whole_matrix_ns_step1": max(whole_matbal)}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(res, f, indent=1)
    dist.barrier()
    dist.destroy_process_group()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="muon")
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--modes", default="fsdp,ddp,naive,torch")
    ap.add_argument("--out", default="bench_fsdp.json")
    ap.add_argument("--torch-muon", action="store_true",
                    help="instead: what torch.optim.Muon computes on DTensor parameters")
    args = ap.parse_args(argv)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if args.torch_muon:
        torch.multiprocessing.spawn(torch_muon_worker, args=(port, args.world, args.out),
                                    nprocs=args.world)
        print(json.dumps(json.load(open(args.out)), indent=1))
        return
    torch.multiprocessing.spawn(worker, args=(port, args, args.out), nprocs=args.world)
    res = json.load(open(args.out))["rank0"]
    print(f"{'mode':6} {'step ms':>8} {'opt ms':>7} {'chains':>6} {'opt MB sent':>11}  "
          "DTensor collectives in opt.step (counts)")
    for mode, r in res.items():
        mb = "-" if r["optimizer_bytes_sent"] is None else f"{r['optimizer_bytes_sent'] / 1e6:.2f}"
        print(f"{mode:6} {1e3 * r['step_s']:8.1f} {1e3 * r['opt_step_s']:7.1f} "
              f"{r['matrix_chains_per_step']:6.1f} {mb:>11}  "
              f"{json.dumps(r['dtensor_collective_counts'])}")


if __name__ == "__main__":
    main()
