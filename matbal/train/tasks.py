"""A task = data + batching + validation set + model for one config (GPT on characters, digits).

``make_task(cfg, rank, world_size)`` returns a :class:`Task`: a train batcher (this rank's rows of
each global batch), a fixed list of validation batches (the same for every seed and optimizer, so
runs compare on the same data), the model, and how many "tokens" one global batch holds
(``B·T`` characters for GPT, ``B`` images for the digits models).

Fine-tuning on a shifted text (REG-3): :class:`TaskConfig` is a :class:`TrainConfig` with two more
fields that :func:`make_task` honours (a plain ``TrainConfig`` behaves as before):

- ``data``: the GPT's corpus, a name in :data:`matbal.train.data.CORPORA` — ``"stdlib"`` (default,
  the stdlib source in its own vocabulary), ``"code"`` (the same source) or ``"docs"`` (pydoc's
  documentation topics), the last two in one shared vocabulary;
- ``init_from``: a checkpoint (``checkpoint.pt`` of a run) or a saved ``state_dict`` whose model
  weights replace the fresh initialization (optimizer state, step and schedule start anew).

>>> from matbal.train import train
>>> pre = train(TaskConfig(data="code", optimizer="adamw", steps=300, quiet=True))  # doctest: +SKIP
>>> ft = train(TaskConfig(data="docs", optimizer="reg", steps=200, quiet=True,
...                       init_from=str(pre.run_dir / "checkpoint.pt")))             # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .config import TrainConfig
from .data import CORPORA, ArrayBatcher, TokenBatcher, char_corpus, load_digits_split
from .models import build_model

__all__ = ["Task", "make_task", "VAL_SEED", "TaskConfig", "load_model_weights"]

VAL_SEED = 1234  # validation windows do not depend on the training seed


@dataclass
class Task:
    batcher: Any
    val_batches: list[tuple[torch.Tensor, torch.Tensor]]
    model: nn.Module
    tokens_per_batch: int
    info: dict[str, Any]


@dataclass
class TaskConfig(TrainConfig):
    """:class:`TrainConfig` plus the corpus (``data``) and initial weights (``init_from``); see
    the module docstring. Validated like every field (errors name the field and the value)."""

    data: str = "stdlib"
    init_from: str = ""

    def validate(self) -> "TaskConfig":
        super().validate()
        if self.data not in CORPORA:
            raise ValueError(f"data must be one of {list(CORPORA)}, got {self.data!r}")
        if self.data != "stdlib" and self.model != "gpt":
            raise ValueError(f"data={self.data!r} is a character corpus; it needs model='gpt', "
                             f"got {self.model!r}")
        if self.init_from and not Path(self.init_from).is_file():
            raise ValueError(f"init_from must be an existing checkpoint file, got "
                             f"{self.init_from!r}")
        return self


def load_model_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a run's ``checkpoint.pt`` (its ``"model"`` entry) or a plain ``state_dict`` file into
    ``model`` (strict: names and shapes must match)."""
    obj = load_checkpoint(path)
    sd = obj["model"] if isinstance(obj, dict) and "model" in obj and "format" in obj else obj
    if sd is None:
        raise ValueError(f"{path} holds no model weights (a rank > 0 checkpoint?)")
    model.load_state_dict(sd)
    return model


def make_task(cfg, *, rank: int = 0, world_size: int = 1) -> Task:
    """Build data and model; the model's initialization uses the current torch RNG state
    (then replaced by ``cfg.init_from``'s weights when the config has that field set)."""
    seed = cfg.seed
    init_from = getattr(cfg, "init_from", "")
    if cfg.model == "gpt":
        corpus = char_corpus(getattr(cfg, "data", "stdlib"), val_frac=cfg.val_frac)
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
        if init_from:
            load_model_weights(model, init_from)
        info = {"data": corpus.source, "vocab_size": corpus.vocab_size,
                "train_tokens": corpus.train.numel(), "val_tokens": corpus.val.numel()}
        if init_from:
            info["init_from"] = str(init_from)
        return Task(batcher, val, model, cfg.batch_size * cfg.block_size, info)
    d = load_digits_split(val_frac=cfg.val_frac)
    batcher = ArrayBatcher(d.x_train, d.y_train, batch_size=cfg.batch_size, seed=seed, rank=rank,
                           world_size=world_size)
    val = [(d.x_val[i:i + cfg.batch_size], d.y_val[i:i + cfg.batch_size])
           for i in range(0, d.x_val.shape[0], cfg.batch_size)]
    model = build_model(cfg)
    if init_from:
        load_model_weights(model, init_from)
    return Task(batcher, val, model, cfg.batch_size,
                {"data": "sklearn digits (8x8, 10 classes)", "train_images": d.x_train.shape[0],
                 "val_images": d.x_val.shape[0]})
