"""Matrix chains on FSDP2-sharded parameters (DTensors) with the math of the unsharded matrix.

``torch.distributed.fsdp.fully_shard`` (FSDP2, the engine of torchtitan) turns each parameter
into a ``DTensor`` of which every rank holds one block (``Shard(0)``: a block of rows; torch.chunk
sizes, so the last ranks may hold fewer rows or none). Newton–Schulz of a row block is not a row
block of Newton–Schulz, and R/C/RACS balancing of a shard is not the shard's part of the balanced
matrix, so a chain must see whole matrices. :class:`FSDPChainOptimizer` splits every chain
(``ChainOptimizer``'s shell already applies a trailing weight decay itself) into

1. an **element-wise prefix** (transforms in :data:`ELEMENTWISE`: EMA/sum momentum, Adam, weight
   decay) that runs on each rank's local shard, with its state (momentum, Adam moments) sharded
   like the parameter — no communication, no replicated state;
2. the **matrix part** (everything from the first other transform on: balancing, NS,
   normalizations, shape scaling, probe taps) that runs on the *owner* rank of each matrix, on
   the full matrix: one ``all_to_all_single`` sends every shard of the prefix's output to the
   matrix's owner, the owner runs the rest of the chain (its state — NorMuon's row moment, … —
   lives on the owner only), and a second ``all_to_all_single`` returns to each rank its block of
   the update;
3. ``p_local ← p_local(1 − lr·λ) − lr·u_local`` on every rank.

Owners are balanced by the cost of the matrix part, ``m·n·min(m, n)`` (NS/balancing on an
``m×n`` matrix), largest first to the least-loaded rank (:func:`matbal.optim.distributed.
partition`): no rank runs every matrix's chain. A chain that is element-wise throughout (AdamW)
never communicates. This is the scheme of Dion's FSDP2 Muon (Ahn et al., arXiv 2504.05295; code
github microsoft/dion ``dion/muon.py``: momentum on the local shard, all-to-all to whole matrices,
orthogonalize, all-to-all back) generalized to any matbal chain and with cost-balanced owners;
Moonlight's Distributed Muon (arXiv 2502.16982, ZeRO-1) instead all-gathers every matrix on every
rank and runs NS redundantly — the "naive" baseline of BENCHMARKS.md.

Parameters that are *not* sharded — plain tensors (``fully_shard(..., ignored_params=…)``) or
``Replicate()`` DTensors — are replicated: their gradients must already agree on all ranks (as
under DDP; FSDP2 leaves ignored parameters' gradients alone, so all-reduce them yourself). Their
whole chain runs on the owner, which sends the full update to the other ranks (the
:class:`~matbal.optim.distributed.DistributedChainOptimizer` scheme); a chain that is element-wise
throughout runs on every rank.

Probes and the recorder (:mod:`matbal.instruments.probes`) wrap transforms, so a wrapped transform
and everything after it belong to the matrix part: they observe whole matrices on the owner (a
probe on the gradient moves the momentum there too; attach instruments before the first step).

Requirements: call ``fully_shard`` before building the optimizer; every DTensor parameter lives on
one 1-D device mesh (HSDP/TP meshes: not supported, a clear error); every rank steps the same
parameters. Non-finite gradients are detected on all ranks alike (one small all-reduce).

Checkpoints (the way FSDP2 users save, ``torch.distributed.checkpoint``): :meth:`FSDPChainOptimizer.
sharded_state_dict` holds only tensors keyed by parameter name — sharded state as DTensors,
owner state on its owner only, step counts as int64 — so DCP writes each block once and loads
without pickle; :meth:`FSDPChainOptimizer.load_sharded_state_dict` restores it. Owner state is
found by name, so a checkpoint also resumes under another number of processes (DCP reshards the
DTensors; tested 2 → 1)::

    import torch.distributed.checkpoint as dcp
    dcp.save({"model": model.state_dict(), "optim": opt.sharded_state_dict()}, checkpoint_id=d)
    # resume: fresh model (fully_shard) and optimizer, then
    sd = {"model": model.state_dict(), "optim": opt.sharded_state_dict()}  # the template
    dcp.load(sd, checkpoint_id=d)
    model.load_state_dict(sd["model"]); opt.load_sharded_state_dict(sd["optim"])

Example (inside ``torchrun --nproc_per_node=2``)::

    from torch.distributed.fsdp import fully_shard
    from matbal.optim import PRESETS
    from matbal.optim.fsdp import shard
    for block in model.blocks: fully_shard(block)
    fully_shard(model)
    opt = shard(PRESETS["muoneq-r"](model, lr=0.02))
    ... loss.backward(); opt.step()
    opt.gather_counts()  # e.g. [4, 4]: each matrix's NS ran on one rank
"""
from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.distributed as dist

from .chain import Chain
from .distributed import DistributedChainOptimizer, _rebuild, partition
from .optimizer import ChainOptimizer, _init_state, _nonfinite, _split_trailing_decay
from .views import MATRIX
from .transforms.adam import ScaleByAdam
from .transforms.momentum import EMAMomentum, SumMomentum
from .transforms.weight_decay import AddDecayedWeights

__all__ = ["FSDPChainOptimizer", "shard", "ELEMENTWISE", "elementwise_prefix", "matrix_cost"]

#: Transform types whose output entry (i, j) depends only on entry (i, j) of their input and of
#: their own state: they run on local shards. Anything else runs on full matrices (a user's own
#: element-wise transform is still exact there, only not communication-free).
ELEMENTWISE: tuple[type, ...] = (EMAMomentum, SumMomentum, ScaleByAdam, AddDecayedWeights)


def elementwise_prefix(chain: Chain) -> int:
    """Number of leading transforms of ``chain`` that are in :data:`ELEMENTWISE`.

    >>> from matbal.optim.transforms import ema_momentum, orthogonalize, scale_by_shape
    >>> elementwise_prefix(Chain(ema_momentum(0.95), orthogonalize("muon"), scale_by_shape()))
    1
    """
    k = 0
    while k < len(chain) and isinstance(chain.transforms[k], ELEMENTWISE):
        k += 1
    return k


def matrix_cost(shape, matrix: bool) -> int:
    """Cost of a chain's matrix part on a parameter of global ``shape``: ``m·n·min(m, n)`` for the
    flattened ``m×n`` matrix (NS / balancing), ``numel`` for a non-matrix parameter.

    >>> matrix_cost((64, 256), True), matrix_cost((64, 4, 3, 3), True), matrix_cost((7,), False)
    (1048576, 82944, 7)
    """
    numel = math.prod(int(s) for s in shape)
    if not matrix or len(shape) < 2:
        return numel
    m = int(shape[0])
    n = numel // max(m, 1)
    return m * n * min(m, n)


def _is_dtensor(t) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without DTensor
        return False
    return isinstance(t, DTensor)


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if _is_dtensor(t) else t


class _Layout:
    """Where the blocks of one parameter live: ``dim`` (sharded tensor dim, or None when every
    rank holds all of it), ``starts``/``sizes`` per rank along ``dim``, global ``shape``."""

    def __init__(self, p: torch.Tensor, name: str, world_size: int, rank: int):
        self.shape = tuple(p.shape)
        self.dim = None
        if _is_dtensor(p):
            from torch.distributed.tensor import Replicate, Shard
            if p.device_mesh.ndim != 1:
                raise NotImplementedError(
                    f"parameter {name}: a {p.device_mesh.ndim}-D device mesh (HSDP/TP) is not "
                    "supported; FSDPChainOptimizer needs a 1-D mesh")
            (pl,) = p.placements
            if isinstance(pl, Shard):
                self.dim = pl.dim
            elif not isinstance(pl, Replicate):
                raise NotImplementedError(f"parameter {name}: placement {pl} is not supported")
        if self.dim is not None:
            size = self.shape[self.dim]
            chunk = -(-size // world_size)  # torch.chunk sizes, as DTensor/FSDP2 shard
            self.starts = [min(r * chunk, size) for r in range(world_size)]
            self.sizes = [min(size, s + chunk) - s for s in self.starts]
            local = tuple(_local(p).shape)
            if local[self.dim] != self.sizes[rank]:
                raise RuntimeError(f"parameter {name}: local shard {local} does not follow "
                                   f"torch.chunk sharding of {self.shape}")

    @property
    def sharded(self) -> bool:
        return self.dim is not None

    def block_numel(self, r: int) -> int:
        """Entries rank ``r`` holds (all of them for a replicated parameter)."""
        return math.prod(self.sizes[r] if d == self.dim else s for d, s in enumerate(self.shape))

    def block(self, full: torch.Tensor, r: int) -> torch.Tensor:
        """Rank ``r``'s block of the full tensor (global shape)."""
        if not self.sharded:
            return full
        return full.narrow(self.dim, self.starts[r], self.sizes[r])


class FSDPChainOptimizer(DistributedChainOptimizer):
    """A :class:`ChainOptimizer` for FSDP2-sharded (DTensor) parameters (module docstring).

    Parameters
    ----------
    params, chain, lr, matrix, nonfinite : as :class:`ChainOptimizer`.
    process_group : used only when no parameter is a DTensor (default: the world); with DTensor
        parameters the group of their device mesh is used.
    partition : ``"size"`` (default: cost-balanced owners) or ``"round_robin"``.

    Counters (this rank, cumulative): ``matrices_computed`` (matrices whose matrix part ran
    here), ``comm_bytes`` (``{"all_to_all": bytes sent to other ranks, "all_reduce": …}``).
    """

    def __init__(self, params, *, process_group=None, partition: str = "size", **kwargs):
        super().__init__(params, process_group=process_group, partition=partition, **kwargs)
        meshes = [p.device_mesh for g in self.param_groups for p in g["params"]
                  if _is_dtensor(p)]
        if any(m != meshes[0] for m in meshes):  # fully_shard makes an equal mesh per call
            raise ValueError("all DTensor parameters must live on one device mesh (the same "
                             "ranks and device type)")
        if meshes and dist.is_initialized():
            mesh = meshes[0]
            if mesh.ndim != 1:
                raise NotImplementedError(f"a {mesh.ndim}-D device mesh (HSDP/TP) is not "
                                          "supported; FSDPChainOptimizer needs a 1-D mesh")
            self.process_group = mesh.get_group()
            self.rank = dist.get_rank(self.process_group)
            self.world_size = dist.get_world_size(self.process_group)
        self.comm_bytes: dict[str, int] = defaultdict(int)
        self._layouts: dict[int, _Layout] = {}
        self._prefix: dict[int, int] = {}  # id(group) → element-wise prefix length in use
        for i, g in enumerate(self.param_groups):
            head, _ = _split_trailing_decay(g["chain"])
            if head is None:
                continue
            k = elementwise_prefix(head)
            if any(type(t) is AddDecayedWeights and t.weight_decay
                   for t in head.transforms[k:]):
                raise ValueError(f"param group {i}: add_decayed_weights between matrix "
                                 "transforms needs the full parameter; put weight decay first "
                                 "or last in the chain")

    # --- layout and ownership ----------------------------------------------------------------
    def _layout(self, p: torch.Tensor, name: str) -> _Layout:
        lay = self._layouts.get(id(p))
        if lay is None:
            lay = self._layouts[id(p)] = _Layout(p, name, self.world_size, self.rank)
        return lay

    def owners(self, group: dict) -> list[int]:
        """Owner rank of each parameter of ``group`` (cost-balanced; see module docstring)."""
        if self.world_size == 1:
            return [0] * len(group["params"])
        costs = [matrix_cost(p.shape, bool(group["matrix"])) for p in group["params"]]
        return partition(costs, self.world_size, method=self.partition)

    def owned_names(self) -> list[str]:
        """Names of the parameters whose chain's matrix part runs on this rank."""
        out = []
        for g in self.param_groups:
            head, _ = _split_trailing_decay(g["chain"])
            if head is not None and elementwise_prefix(head) < len(head):
                out += [n for n, r in zip(g["names"], self.owners(g)) if r == self.rank]
        return out

    # --- the step ----------------------------------------------------------------------------
    def _step_group(self, group: dict) -> None:
        names_all, params_all, lays_all, owners_all, starts_all, n_head = self._plan(group)
        live = [i for i, p in enumerate(params_all) if p.grad is not None]
        if not live:
            return
        grads = [_local(params_all[i].grad) for i in live]
        for i in live:
            if params_all[i].grad.is_sparse:
                raise RuntimeError(f"parameter {names_all[i]}: sparse gradients are not supported")
        bad = set() if self.nonfinite == "unchecked" else self._agree_nonfinite(grads)
        keep = []
        for j, i in enumerate(live):
            if j in bad:
                if self.nonfinite == "raise":
                    raise FloatingPointError(
                        f"non-finite gradient (NaN/Inf) in parameter {names_all[i]}; pass "
                        "nonfinite='skip' to skip such steps")
                st = self.state[params_all[i]]
                st["skipped"] = st.get("skipped", 0) + 1
            else:
                keep.append(j)
        if not keep:
            return
        idx = [live[j] for j in keep]
        params, names = [params_all[i] for i in idx], [names_all[i] for i in idx]
        lays, owners = [lays_all[i] for i in idx], [owners_all[i] for i in idx]
        starts = [starts_all[i] for i in idx]
        grads = [grads[j] for j in keep]
        locs = [_local(p) for p in params]
        matrix = bool(group["matrix"])
        head, decay = _split_trailing_decay(group["chain"])
        k = max(starts)  # the element-wise prefix (replicated parameters start at 0)
        steps = []
        for p, lay, r, s in zip(params, lays, owners, starts):
            st = self._init_state(p, group, lay, r, s, n_head)
            st["step"] += 1
            steps.append(st["step"])
        lr = float(group["lr"])
        if not matrix and self._fused_adamw(head, decay, lr, locs, grads,
                                            [self.state[p] for p in params], steps):
            return  # plain AdamW on the local shards: torch's fused kernel
        updates = list(grads)
        pre = [i for i, s in enumerate(starts) if s > 0]
        if pre:
            ctx = _ctx([locs[i] for i in pre], [steps[i] for i in pre], [names[i] for i in pre],
                       group, matrix)
            outs = head([grads[i] for i in pre], [self.state[params[i]] for i in pre], ctx,
                        stop=k)
            for i, u in zip(pre, outs):
                updates[i] = u
        if k < n_head:
            updates = self._matrix_part(group, head, params, names, lays, owners, starts,
                                        steps, updates, matrix)
        if decay:
            torch._foreach_mul_(locs, 1.0 - lr * decay)
        torch._foreach_add_(locs, [u.reshape(x.shape).to(x.dtype) for x, u in zip(locs, updates)],
                            alpha=-lr)

    def _matrix_part(self, group, head, params, names, lays, owners, starts, steps, updates,
                     matrix):
        """Assemble full tensors on their owners, run ``head[start:]`` there, return this rank's
        block of every update."""
        W, me = self.world_size, self.rank
        n = len(params)
        # 1. shards → owners (a replicated parameter needs no sending: its owner has it all)
        send = [[i for i in range(n) if owners[i] == r and (lays[i].sharded or r == me)]
                for r in range(W)]
        recv = [[i for i in range(n) if owners[i] == me and (lays[i].sharded or s == me)]
                for s in range(W)]
        pieces = self._all_to_all(
            [[updates[i].reshape(-1) for i in send[r]] for r in range(W)],
            [[lays[i].block_numel(s) for i in recv[s]] for s in range(W)], updates)
        mine = [i for i in range(n) if owners[i] == me]
        full = {i: torch.empty(lays[i].shape, dtype=updates[i].dtype, device=updates[i].device)
                for i in mine}
        for s in range(W):
            for i, piece in zip(recv[s], pieces[s]):
                block = lays[i].block(full[i], s)
                block.copy_(piece.view(block.shape))
        if matrix:
            full = {i: f.reshape(f.shape[0], -1) for i, f in full.items()}
        self.matrices_computed += len(mine)
        # 2. the matrix part on whole matrices, batched by the chain (same start in one call)
        for s in sorted({starts[i] for i in mine}):
            ids = [i for i in mine if starts[i] == s]
            ctx = _ctx([params[i] for i in ids], [steps[i] for i in ids],
                       [names[i] for i in ids], group, matrix)
            outs = head([full[i] for i in ids], [self.state[params[i]] for i in ids], ctx,
                        start=s)
            for i, u in zip(ids, outs):
                full[i] = u.reshape(lays[i].shape)
        # 3. owners → every rank's block
        back_send = [[lays[i].block(full[i], r).reshape(-1) for i in mine
                      if lays[i].sharded or r != me] for r in range(W)]
        back_recv_ids = [[i for i in range(n) if owners[i] == s and (lays[i].sharded or s != me)]
                         for s in range(W)]
        pieces = self._all_to_all(back_send, [[lays[i].block_numel(me) for i in back_recv_ids[s]]
                                              for s in range(W)], updates)
        out = list(updates)
        for s in range(W):
            for i, piece in zip(back_recv_ids[s], pieces[s]):
                out[i] = piece
        for i in mine:  # the owner's own block / full replicated update
            if not lays[i].sharded:
                out[i] = full[i]
        return out

    def _all_to_all(self, send: list[list[torch.Tensor]], recv_numels: list[list[int]],
                    like: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Send ``send[r]`` (flat tensors) to rank ``r``; return the flat pieces from each rank,
        of sizes ``recv_numels[s]``: one ``all_to_all_single`` in the updates' common dtype."""
        W, me = self.world_size, self.rank
        ref = like[0]
        dtype = ref.dtype  # the same on every rank: the updates' common dtype
        for u in like:
            dtype = torch.promote_types(dtype, u.dtype)
        if W == 1:
            return [[t.to(dtype) for t in send[0]]]
        in_splits = [sum(t.numel() for t in ts) for ts in send]
        out_splits = [sum(ns) for ns in recv_numels]
        flat_in = torch.cat([t.to(dtype) for ts in send for t in ts]) if sum(in_splits) else \
            torch.zeros(0, dtype=dtype, device=ref.device)
        flat_out = torch.empty(sum(out_splits), dtype=dtype, device=ref.device)
        dist.all_to_all_single(flat_out, flat_in, out_splits, in_splits,
                               group=self.process_group)
        esize = flat_in.element_size()
        self.comm_bytes["all_to_all"] += esize * (sum(in_splits) - in_splits[me])
        chunks = list(flat_out.split(out_splits))
        return [list(chunks[s].split(recv_numels[s])) for s in range(W)]

    def _init_state(self, p, group, lay: _Layout, owner: int, start: int, n_head: int) -> dict:
        """``self.state[p]``, created on first use: step 0, the element-wise prefix's state on the
        local block (``start`` transforms), the rest of the chain's state on the owner only."""
        st = self.state[p]
        if "step" not in st:
            st["step"] = 0
            loc = _local(p).detach()
            st.update(group["chain"].init(torch.zeros_like(loc), stop=start))
            if owner == self.rank and start < n_head:
                full = torch.zeros(lay.shape, dtype=loc.dtype, device=loc.device)
                st.update(group["chain"].init(full.reshape(lay.shape[0], -1)
                                              if group["matrix"] else full, start=start))
        return st

    def _expected_state(self, group: dict, p: torch.Tensor) -> dict:
        """What :meth:`_init_state` keeps for ``p`` on this rank (checked by ``load_state_dict``):
        the element-wise prefix's state on the local block, the rest only on the owner."""
        _, params, lays, owners, starts, n_head = self._plan(group)
        i = next(j for j, q in enumerate(params) if q is p)
        loc = _local(p).detach()
        st = _init_state(group["chain"], loc, None, stop=starts[i])
        if owners[i] == self.rank and starts[i] < n_head:
            full = torch.empty(lays[i].shape, dtype=loc.dtype, device="meta")
            st.update(_init_state(group["chain"], full, MATRIX if group["matrix"] else None,
                                  start=starts[i]))
        return st

    def _plan(self, group: dict):
        """``(names, params, layouts, owners, starts, head length)`` of every parameter."""
        head, _ = _split_trailing_decay(group["chain"])
        n_head = 0 if head is None else len(head)
        k = 0 if head is None else elementwise_prefix(head)
        if self._prefix.setdefault(id(group), k) != k:
            # e.g. a probe attached mid-run wrapped the momentum: its sharded state would be
            # read as a whole matrix on the owner
            raise RuntimeError(f"the chain's element-wise prefix changed from "
                               f"{self._prefix[id(group)]} to {k} transforms after state was "
                               "created; attach instruments before the first step")
        lays = [self._layout(p, n) for p, n in zip(group["params"], group["names"])]
        # replicated parameters whose chain has a matrix part run all of it on their owner
        starts = [0 if (not lay.sharded and k < n_head) else k for lay in lays]
        return group["names"], group["params"], lays, self.owners(group), starts, n_head

    # --- checkpoints (torch.distributed.checkpoint) --------------------------------------------
    def sharded_state_dict(self) -> dict[str, torch.Tensor]:
        """The optimizer state as a flat dict of tensors for ``torch.distributed.checkpoint``.

        Keys ``"state.<param name>.<key>"`` and ``"lr.<group index>"``. Element-wise state of a
        sharded parameter is a DTensor with the parameter's placement (DCP stores each block
        once and can reshard it); the matrix part's state appears only on its owner; ints
        (``step``, ``skipped``) are 0-d int64 tensors, so loading needs no pickle. State not
        created yet is created (zeros, step 0) so the dict can serve as the template
        ``dcp.load`` fills; it equals a fresh optimizer's state.
        """
        from torch.distributed.tensor import DTensor
        out: dict[str, torch.Tensor] = {}
        for gi, group in enumerate(self.param_groups):
            out[f"lr.{gi}"] = torch.tensor(float(group["lr"]), dtype=torch.float64)
            names, params, lays, owners, starts, n_head = self._plan(group)
            for name, p, lay, r, s in zip(names, params, lays, owners, starts):
                st = self._init_state(p, group, lay, r, s, n_head)
                for key, v in st.items():
                    full_key = f"state.{name}.{key}"
                    if not isinstance(v, torch.Tensor):
                        out[full_key] = torch.tensor(int(v), dtype=torch.int64)
                    elif lay.sharded and _index(key) < s:
                        out[full_key] = DTensor.from_local(
                            v, p.device_mesh, p.placements, run_check=False,
                            shape=p.shape, stride=p.stride())
                    else:
                        out[full_key] = v
        return out

    def load_sharded_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`sharded_state_dict` (after ``dcp.load`` filled it); the same param
        groups as the saving run (any world size). Missing or unexpected keys raise
        ``KeyError``."""
        mine = self.sharded_state_dict()
        missing, extra = set(mine) - set(state_dict), set(state_dict) - set(mine)
        if missing or extra:
            raise KeyError(f"state_dict does not match this optimizer: missing "
                           f"{sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
        with torch.no_grad():
            for gi, group in enumerate(self.param_groups):
                group["lr"] = float(state_dict[f"lr.{gi}"])
                for name, p in zip(group["names"], group["params"]):
                    st = self.state[p]
                    for key, v in list(st.items()):
                        new = state_dict[f"state.{name}.{key}"]
                        if not isinstance(v, torch.Tensor):
                            st[key] = int(new)
                        else:
                            v.copy_(_local(new))

    def _find_nonfinite(self, grads: list[torch.Tensor]) -> set[int]:
        """The shell's all-groups screen before any update, on local shards, agreed by all ranks."""
        return self._agree_nonfinite([_local(g) for g in grads])

    def _agree_nonfinite(self, grads: list[torch.Tensor]) -> set[int]:
        """Indices of non-finite gradients on *any* rank (so every rank raises or skips alike)."""
        bad = _nonfinite(grads)
        if self.world_size == 1:
            return bad
        flags = torch.zeros(len(grads), dtype=torch.int32, device=grads[0].device)
        for i in bad:
            flags[i] = 1
        dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=self.process_group)
        self.comm_bytes["all_reduce"] += flags.numel() * flags.element_size()
        return {i for i, f in enumerate(flags.tolist()) if f}


def _index(key: str) -> int:
    """Transform index of a namespaced state key ``"<i>.<name>"`` (``step`` etc.: -1)."""
    head = key.split(".", 1)[0]
    return int(head) if head.isdigit() else -1


def _ctx(params, steps, names, group, matrix):
    from .transforms.base import StepContext
    return StepContext(params=params, steps=steps, names=names, group=group, matrix=matrix)


def shard(optimizer: ChainOptimizer, *, process_group=None,
          partition: str = "size") -> FSDPChainOptimizer:
    """An :class:`FSDPChainOptimizer` with ``optimizer``'s param groups (before any step). Build
    ``optimizer`` on the model *after* ``fully_shard`` (routing reads DTensors' global shapes).

    >>> import torch
    >>> from matbal.optim import PRESETS
    >>> opt = shard(PRESETS["muon"](torch.nn.Sequential(torch.nn.Linear(4, 4),
    ...                                                  torch.nn.Linear(4, 2))))
    >>> opt.world_size  # no process group initialized: runs like a plain ChainOptimizer
    1
    """
    return _rebuild(optimizer, FSDPChainOptimizer, process_group=process_group,
                    partition=partition)
