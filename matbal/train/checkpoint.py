"""Checkpoints: plain tensors and containers, written atomically, read with ``weights_only=True``.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts — no pickled code:

``{"format": 1, "step": int, "world_size": int, "rank": int, "config": dict,
"model": state_dict | None, "optimizer": state_dict, "scheduler": state_dict,
"data": {"generator": uint8 tensor, "batches": int}, "rng": {"torch": uint8 tensor,
"cuda": uint8 tensor | None}, "best_val_loss": float | None, "matrices_computed": int}``

Rank 0 writes ``checkpoint.pt`` (with the model); rank ``r > 0`` of a distributed run writes
``checkpoint.rank<r>.pt`` (its optimizer shard and RNG state, ``model: None``), because a
:class:`~matbal.optim.distributed.DistributedChainOptimizer` keeps the momentum of a matrix only on
the rank that owns it. Resuming therefore needs the same number of processes (checked).
Each file is written to a temporary name and moved into place with ``os.replace``, so a crash
leaves either the previous checkpoint or the new one, never a torn file.

>>> import torch, tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "c.pt")
>>> save_checkpoint({"step": 3, "w": torch.ones(2)}, p)
>>> load_checkpoint(p)["step"]
3
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_path", "rng_state", "set_rng_state",
           "FORMAT"]

FORMAT = 1


def checkpoint_path(run_dir: str | os.PathLike, rank: int = 0) -> Path:
    name = "checkpoint.pt" if rank == 0 else f"checkpoint.rank{rank}.pt"
    return Path(run_dir) / name


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: only tensors and plain containers are accepted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state(device: torch.device) -> dict[str, Any]:
    """Global RNG states as tensors (torch CPU generator; the CUDA generator of ``device``)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
