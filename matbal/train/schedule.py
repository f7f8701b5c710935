"""Learning-rate schedules as multipliers ``f(t)`` for ``torch.optim.lr_scheduler.LambdaLR``.

Every param group's lr becomes ``lr_g(t) = lr_g · f(t)`` at step ``t = 0, 1, …, S−1`` (so the matrix
and AdamW groups of a preset keep their ratio). With warmup ``w`` and floor ``r = min_lr_ratio``:

- warmup (all schedules): ``f(t) = (t + 1)/w`` for ``t < w``;
- ``cosine``: ``f(t) = r + (1 − r)·½(1 + cos(π·(t − w)/(S − w)))``;
- ``wsd`` (warmup–stable–decay; Hu et al., MiniCPM, arXiv 2404.06395): ``f = 1`` until the last
  ``d = ⌈decay_frac·S⌉`` steps, then linear from 1 to ``r``: ``f(t) = 1 − (1 − r)·(t − (S − d) + 1)/d``;
- ``constant``: ``f(t) = 1`` after warmup.

>>> f = lr_multiplier("cosine", steps=100, warmup_steps=10, min_lr_ratio=0.1)
>>> round(f(0), 3), round(f(9), 3), round(f(10), 3), round(f(99), 3)
(0.1, 1.0, 1.0, 0.1)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["lr_multiplier", "make_scheduler"]


@dataclass(frozen=True)
class _Schedule:
    kind: str
    steps: int
    warmup_steps: int
    min_lr_ratio: float
    decay_frac: float

    def __call__(self, t: int) -> float:
        S, w, r = self.steps, self.warmup_steps, self.min_lr_ratio
        if t < w:
            return (t + 1) / w
        if self.kind == "constant":
            return 1.0
        if self.kind == "cosine":
            span = max(S - w - 1, 1)
            frac = min((t - w) / span, 1.0)
            return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * frac))
        if self.kind == "wsd":
            d = max(math.ceil(self.decay_frac * S), 1) if self.decay_frac > 0 else 0
            start = S - d
            if d == 0 or t < start:
                return 1.0
            return 1 - (1 - r) * min((t - start + 1) / d, 1.0)
        raise ValueError(f"schedule must be 'cosine', 'wsd' or 'constant', got {self.kind!r}")


def lr_multiplier(kind: str, *, steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.1,
                  decay_frac: float = 0.2) -> _Schedule:
    """The multiplier ``f(t)`` (a picklable callable) of the named schedule."""
    f = _Schedule(kind, steps, warmup_steps, min_lr_ratio, decay_frac)
    f(0)  # validates kind
    return f


def make_scheduler(optimizer: torch.optim.Optimizer, cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR(optimizer, f)`` for a :class:`~matbal.train.config.TrainConfig`."""
    f = lr_multiplier(cfg.schedule, steps=cfg.steps, warmup_steps=cfg.warmup(),
                      min_lr_ratio=cfg.min_lr_ratio, decay_frac=cfg.decay_frac)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)
