"""A task = data + batching + validation set + model for one config (GPT on characters, digits).

``make_task(cfg, rank, world_size)`` returns a :class:`Task`: a train batcher (this rank's rows of
each global batch), a fixed list of validation batches (the same for every seed and optimizer, so
runs compare on the same data), the model, and how many "tokens" one global batch holds
(``B·T`` characters for GPT, ``B`` images for the digits models).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .data import ArrayBatcher, TokenBatcher, load_digits_split, stdlib_corpus
from .models import build_model

__all__ = ["Task", "make_task", "VAL_SEED"]

VAL_SEED = 1234  # validation windows do not depend on the training seed


@dataclass
class Task:
    batcher: Any
    val_batches: list[tuple[torch.Tensor, torch.Tensor]]
    model: nn.Module
    tokens_per_batch: int
    info: dict[str, Any]


def make_task(cfg, *, rank: int = 0, world_size: int = 1) -> Task:
    """Build data and model; the model's initialization uses the current torch RNG state."""
    seed = cfg.seed
    if cfg.model == "gpt":
        corpus = stdlib_corpus(val_frac=cfg.val_frac)
        batcher = TokenBatcher(corpus.train, batch_size=cfg.batch_size, block_size=cfg.block_size,
                               seed=seed, rank=rank, world_size=world_size)
        g = torch.Generator().manual_seed(VAL_SEED)
        offs = torch.arange(cfg.block_size + 1)
        hi = corpus.val.numel() - cfg.block_size - 1
        val = []
        for _ in range(cfg.eval_batches):
            starts = torch.randint(0, hi, (cfg.batch_size,), generator=g)
            win = corpus.val[starts[:, None] + offs].long()
            val.append((win[:, :-1], win[:, 1:]))
        model = build_model(cfg, vocab_size=corpus.vocab_size)
        return Task(batcher, val, model, cfg.batch_size * cfg.block_size,
                    {"data": corpus.source, "vocab_size": corpus.vocab_size,
                     "train_tokens": corpus.train.numel(), "val_tokens": corpus.val.numel()})
    d = load_digits_split(val_frac=cfg.val_frac)
    batcher = ArrayBatcher(d.x_train, d.y_train, batch_size=cfg.batch_size, seed=seed, rank=rank,
                           world_size=world_size)
    val = [(d.x_val[i:i + cfg.batch_size], d.y_val[i:i + cfg.batch_size])
           for i in range(0, d.x_val.shape[0], cfg.batch_size)]
    model = build_model(cfg)
    return Task(batcher, val, model, cfg.batch_size,
                {"data": "sklearn digits (8x8, 10 classes)", "train_images": d.x_train.shape[0],
                 "val_images": d.x_val.shape[0]})
