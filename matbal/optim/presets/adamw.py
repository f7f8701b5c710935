"""AdamW as a chain; matches ``torch.optim.AdamW`` step for step (tested in float64)."""
from __future__ import annotations

from torch import nn

from ..chain import Chain
from ..optimizer import ChainOptimizer
from ..transforms import add_decayed_weights, scale_by_adam

__all__ = ["adamw"]


def adamw(params, *, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2, nonfinite: str = "raise", head=None) -> ChainOptimizer:
    """AdamW (Loshchilov & Hutter, arXiv 1711.05101) with torch.optim.AdamW's defaults.

    Chain: ``scale_by_adam(betas, eps) → add_decayed_weights(weight_decay)``; the shell applies
    ``p ← p − lr·u``, i.e. ``p ← p(1 − lr·λ) − lr·m̂/(√v̂ + ε)``. Momentum convention: EMA
    (``m ← β₁m + (1−β₁)g``). All parameters (an ``nn.Module``'s or an iterable) go to this chain;
    ``head`` is accepted for a uniform preset signature and has no effect.

    >>> import torch
    >>> opt = adamw(torch.nn.Linear(3, 2), lr=1e-3)
    """
    if isinstance(params, nn.Module):
        params = list(params.parameters())
    chain = Chain(scale_by_adam(betas, eps=eps), add_decayed_weights(weight_decay))
    opt = ChainOptimizer(params, chain=chain, lr=lr, nonfinite=nonfinite)
    opt.preset = "adamw"
    return opt
