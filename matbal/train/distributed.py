"""Several processes: set up ``torch.distributed`` from torchrun's environment, and helpers.

One machine, N processes (CPU: gloo; GPUs: nccl, one GPU per process)::

    torchrun --standalone --nproc_per_node=N -m matbal.train --model gpt --optimizer muoneq-r

Several machines (not testable here): start the *same* command on every node, with a rendezvous
point reachable by all of them (the c10d store runs inside the first process that reaches it)::

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST0:29500 --rdzv_id=myrun \\
             -m matbal.train --model gpt --optimizer muoneq-r --batch-size 256

``--batch-size`` is the *global* batch (divided over the ``nnodes·nproc_per_node`` processes).
The run directory (``--out-dir``) must be on a filesystem all nodes share: rank 0 writes the
metrics and the model checkpoint, every rank writes its own optimizer shard
(``checkpoint.rank<r>.pt``); resuming needs the same total number of processes.

What runs where, ``--parallel ddp`` (default): the model is wrapped in
``DistributedDataParallel`` (gradients averaged with all-reduce); the optimizer is a
:class:`matbal.optim.distributed.DistributedChainOptimizer`, so each rank runs the matrix chain
(momentum, balancing, Newton–Schulz) on its share of the matrices and the updated matrices are
all-gathered. ``--parallel fsdp``: every GPT block, then the root, is wrapped with FSDP2's
``fully_shard`` (:func:`wrap_fsdp`; parameters, gradients and element-wise optimizer state are
sharded by rows), and the optimizer is a :class:`matbal.optim.fsdp.FSDPChainOptimizer` (each
matrix assembled on its owner for the matrix part of the chain). Checkpoints then hold the full
model (gathered, written by rank 0) and one optimizer shard per rank, as with DDP; probes and the
recorder observe whole matrices on their owner, each rank writing its own ``probes.rank<r>.jsonl``
and ``store.rank<r>`` in the run directory (as with DDP).
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup", "teardown", "select_device", "all_reduce_sum", "barrier",
           "broadcast_str", "wrap_fsdp", "full_state_dict", "load_full_state_dict"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def select_device(choice: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` → ``cuda:<local_rank>`` when CUDA is available, else ``cpu``."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device_choice: str = "auto") -> tuple[DistInfo, torch.device]:
    """Read ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` (set by torchrun); with ``WORLD_SIZE > 1`` start
    the default process group (nccl on CUDA, gloo on CPU) unless it is already started."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    info = DistInfo(rank=rank, local_rank=local, world_size=world)
    device = select_device(device_choice, local)
    if info.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def teardown(synchronize: bool = True) -> None:
    """Close the default process group (a no-op when none is started).

    ``synchronize=True`` (a run that ended normally) first waits at a barrier, so no process tears
    its connections down while a peer is still inside a collective, and collects garbage so the
    group's last Python references (a DDP reducer in a reference cycle) go before the group does —
    not during interpreter shutdown, where gloo's worker threads can abort the process. After an
    error pass ``False``: the peers may never reach the barrier."""
    if dist.is_available() and dist.is_initialized():
        if synchronize:
            dist.barrier()
            gc.collect()
        dist.destroy_process_group()


def broadcast_str(text: str, info: DistInfo, device: torch.device | None = None) -> str:
    """Rank 0's ``text`` on every rank (UTF-8 bytes in a tensor; no pickle, unlike
    ``broadcast_object_list``). A no-op for one process."""
    if not info.distributed:
        return text
    device = device or torch.device("cpu")
    data = torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8) if text else \
        torch.zeros(0, dtype=torch.uint8)
    size = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    dist.broadcast(size, src=0)
    buf = data.to(device) if info.is_main else torch.empty(int(size), dtype=torch.uint8,
                                                             device=device)
    dist.broadcast(buf, src=0)
    return bytes(buf.cpu().tolist()).decode()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over processes (in place; a no-op for one process)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def wrap_fsdp(model: torch.nn.Module) -> torch.nn.Module:
    """FSDP2 ``fully_shard`` on every block of a GPT (``model.transformer.h``), then on the root
    (other models: the root only) — torchtitan's layout. Returns ``model`` (wrapped in place)."""
    from torch.distributed.fsdp import fully_shard
    blocks = getattr(getattr(model, "transformer", None), "h", None)
    for block in blocks or ():
        fully_shard(block)
    fully_shard(model)
    return model


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with every DTensor gathered to a full tensor (a collective: call it on
    all ranks)."""
    from torch.distributed.tensor import DTensor
    return {k: v.full_tensor() if isinstance(v, DTensor) else v
            for k, v in model.state_dict().items()}


def load_full_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load full tensors (as :func:`full_state_dict` writes them) into a sharded model: each rank
    keeps its block (``torch.distributed.checkpoint.state_dict.set_model_state_dict``)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
