"""Data-parallel matrix chains without repeated work: each rank runs the chain on its share.

Under data parallelism (DDP) every rank holds the same averaged gradients, so running a matrix
chain (momentum → balancing → Newton–Schulz …) on every rank repeats the most expensive part of
the step W times. :class:`DistributedChainOptimizer` follows Muon's distributed scheme (Keller
Jordan, github KellerJordan/Muon ``Muon`` with ``update_buffer``/``all_gather``):

1. the parameters of each ``matrix`` group are assigned to ranks once per step by a deterministic
   rule — ``partition="size"`` (default): largest first to the least-loaded rank (load = Σ numel,
   ties to the lower rank; same-shape matrices spread evenly), or ``"round_robin"``: ``i mod W``;
2. each rank runs the group's chain on the parameters it owns only and applies ``p ← p − lr·u``
   (so momentum and every other chain state of a matrix live only on its owner);
3. the updated parameters are exchanged with one ``all_gather`` per dtype (each rank's owned
   parameters flattened into a buffer padded to the largest share), after which all ranks hold
   identical parameters again.

Non-matrix groups (AdamW for biases, gains, embeddings, the head) run replicated on every rank:
their gradients are already averaged by DDP and their update is cheap. With one process (or no
initialized process group) the optimizer is exactly :class:`~matbal.optim.ChainOptimizer`.

Counters: ``matrices_computed`` (matrices this rank ran the chain on, cumulative) and
``owned_names()``; :meth:`gather_counts` collects the counters of every rank.

Checkpoints: ``state_dict()`` holds this rank's share of the matrix state (and the replicated
AdamW state); save one file per rank and resume with the same number of processes.

Example (inside ``torchrun --nproc_per_node=2``)::

    from torch.nn.parallel import DistributedDataParallel as DDP
    from matbal.optim import PRESETS
    from matbal.optim.distributed import distribute
    opt = distribute(PRESETS["muoneq-r"](model, lr=0.02))  # model: the unwrapped module
    ddp = DDP(model)
    ... loss.backward(); opt.step()
    opt.gather_counts()  # e.g. [4, 4] of 8 matrices: no rank orthogonalized every matrix
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
import torch.distributed as dist

from ..kernels._checks import check_choice
from .optimizer import ChainOptimizer

__all__ = ["DistributedChainOptimizer", "distribute", "partition"]


def partition(numels: list[int], world_size: int, *, method: str = "size") -> list[int]:
    """Owner rank of each of ``len(numels)`` parameters.

    >>> partition([100, 100, 10, 400], 2)
    [1, 1, 1, 0]
    >>> partition([1, 1, 1], 2, method="round_robin")
    [0, 1, 0]
    """
    check_choice(method, "method", ("size", "round_robin"))
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if method == "round_robin":
        return [i % world_size for i in range(len(numels))]
    owners = [0] * len(numels)
    load = [0] * world_size
    for i in sorted(range(len(numels)), key=lambda i: (-numels[i], i)):
        r = min(range(world_size), key=lambda r: (load[r], r))
        owners[i] = r
        load[r] += numels[i]
    return owners


class DistributedChainOptimizer(ChainOptimizer):
    """A :class:`ChainOptimizer` whose ``matrix`` groups are split across ranks (module docstring).

    Parameters
    ----------
    params, chain, lr, matrix, nonfinite : as :class:`ChainOptimizer`.
    process_group : the ``torch.distributed`` group (default: the world); ignored when
        ``torch.distributed`` is not initialized (then this is a plain ``ChainOptimizer``).
    partition : ``"size"`` or ``"round_robin"`` (see :func:`partition`).
    """

    def __init__(self, params, *, process_group=None, partition: str = "size", **kwargs):
        check_choice(partition, "partition", ("size", "round_robin"))
        super().__init__(params, **kwargs)
        self.process_group = process_group
        self.partition = partition
        if dist.is_available() and dist.is_initialized():
            self.rank = dist.get_rank(process_group)
            self.world_size = dist.get_world_size(process_group)
        else:
            self.rank, self.world_size = 0, 1
        self.matrices_computed = 0

    # --- ownership ---------------------------------------------------------------------------
    def owners(self, group: dict) -> list[int]:
        """Owner rank of each parameter of ``group`` (this rank for replicated, non-matrix groups)."""
        if not group["matrix"] or self.world_size == 1:
            return [self.rank] * len(group["params"])
        return partition([p.numel() for p in group["params"]], self.world_size,
                         method=self.partition)

    def owned_names(self) -> list[str]:
        """Names of the matrix parameters whose chain runs on this rank."""
        return [n for g in self.param_groups if g["matrix"]
                for n, r in zip(g["names"], self.owners(g)) if r == self.rank]

    def gather_counts(self) -> list[int]:
        """``matrices_computed`` of every rank (a collective: call it on all ranks)."""
        if self.world_size == 1:
            return [self.matrices_computed]
        t = torch.tensor([self.matrices_computed], dtype=torch.long, device=self._device())
        out = [torch.zeros_like(t) for _ in range(self.world_size)]
        dist.all_gather(out, t, group=self.process_group)
        return [int(x.item()) for x in out]

    def _device(self) -> torch.device:
        return self.param_groups[0]["params"][0].device

    # --- the step ----------------------------------------------------------------------------
    def _step_group(self, group: dict) -> None:
        if not group["matrix"]:
            super()._step_group(group)
            return
        if self.world_size == 1:
            self.matrices_computed += sum(p.grad is not None for p in group["params"])
            super()._step_group(group)
            return
        owners = self.owners(group)
        if self.nonfinite == "raise" and getattr(self, "_refused", None) is None:
            # called outside step() (which screened every group's gradients on every rank
            # already): raise on every rank alike (grads are replicated by DDP)
            for p, name, r in zip(group["params"], group["names"], owners):
                if r != self.rank and p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                    raise FloatingPointError(f"non-finite gradient (NaN/Inf) in parameter {name}")
        mine = [i for i, r in enumerate(owners) if r == self.rank]
        sub = {**group, "params": [group["params"][i] for i in mine],
               "names": [group["names"][i] for i in mine]}
        self.matrices_computed += sum(p.grad is not None for p in sub["params"])
        super()._step_group(sub)
        self._exchange(group["params"], owners)

    @torch.no_grad()
    def _exchange(self, params: list[torch.Tensor], owners: list[int]) -> None:
        """All-gather every rank's owned (updated) parameters, one collective per dtype."""
        by_dtype: dict[Any, list[int]] = defaultdict(list)
        for i, p in enumerate(params):
            by_dtype[p.dtype].append(i)
        for dtype, idx in by_dtype.items():
            per_rank = [[i for i in idx if owners[i] == r] for r in range(self.world_size)]
            sizes = [sum(params[i].numel() for i in ids) for ids in per_rank]
            width = max(sizes)
            if width == 0:
                continue
            device = params[idx[0]].device
            buf = torch.zeros(width, dtype=dtype, device=device)
            if per_rank[self.rank]:
                flat = torch.cat([params[i].detach().reshape(-1) for i in per_rank[self.rank]])
                buf[:flat.numel()] = flat
            out = [torch.empty_like(buf) for _ in range(self.world_size)]
            dist.all_gather(out, buf, group=self.process_group)
            for r, ids in enumerate(per_rank):
                if r == self.rank:
                    continue
                offset = 0
                for i in ids:
                    n = params[i].numel()
                    params[i].copy_(out[r][offset:offset + n].view_as(params[i]))
                    offset += n


def distribute(optimizer: ChainOptimizer, *, process_group=None,
               partition: str = "size") -> DistributedChainOptimizer:
    """A :class:`DistributedChainOptimizer` with ``optimizer``'s param groups (before any step).

    >>> import torch
    >>> from matbal.optim import PRESETS
    >>> opt = distribute(PRESETS["muon"](torch.nn.Sequential(torch.nn.Linear(4, 4),
    ...                                                       torch.nn.Linear(4, 2))))
    >>> opt.world_size  # no process group initialized: a plain ChainOptimizer
    1
    """
    return _rebuild(optimizer, DistributedChainOptimizer, process_group=process_group,
                    partition=partition)


def _rebuild(optimizer: ChainOptimizer, cls: type, **kwargs) -> ChainOptimizer:
    """``cls(optimizer's param groups, nonfinite=…, **kwargs)`` for an optimizer that has not
    stepped (shared by :func:`distribute` and :func:`matbal.optim.fsdp.shard`)."""
    if not isinstance(optimizer, ChainOptimizer):
        raise TypeError(f"optimizer must be a ChainOptimizer, got {type(optimizer).__name__}")
    if any(len(s) for s in optimizer.state.values()):
        raise ValueError(f"{cls.__name__} needs an optimizer that has not stepped yet (its "
                         "state would be replicated, not partitioned)")
    groups = [{k: v for k, v in g.items() if k != "initial_lr"} for g in optimizer.param_groups]
    new = cls(groups, nonfinite=optimizer.nonfinite, **kwargs)
    new.preset = getattr(optimizer, "preset", None)
    return new
