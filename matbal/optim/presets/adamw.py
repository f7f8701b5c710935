"""AdamW as a chain; matches ``torch.optim.AdamW`` step for step (tested in float64)."""
from __future__ import annotations

from ..optimizer import ChainOptimizer
from ._build import build

__all__ = ["adamw"]


def adamw(params, *, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2, nonfinite: str = "raise", head=None, split_qkv=False,
          include=None, exclude=None, label_fn=None, rules=()) -> ChainOptimizer:
    """AdamW (Loshchilov & Hutter, arXiv 1711.05101) with torch.optim.AdamW's defaults.

    Chain: ``scale_by_adam(betas, eps) → add_decayed_weights(weight_decay)``; the shell applies
    ``p ← p − lr·u``, i.e. ``p ← p(1 − lr·λ) − lr·m̂/(√v̂ + ε)``. Momentum convention: EMA
    (``m ← β₁m + (1−β₁)g``). Every parameter goes to this chain, whatever way it is given (an
    ``nn.Module``, ``named_parameters()``, a list of tensors, param-group dicts with optional
    ``lr``/``weight_decay``/``betas``/``eps`` and flags, which are ignored); names are kept
    (``routing_table(opt)`` lists them). ``head`` and the other routing options are accepted for a
    uniform preset signature and have no effect.

    >>> import torch
    >>> opt = adamw(torch.nn.Linear(3, 2), lr=1e-3)
    >>> opt.param_groups[0]["names"]
    ['weight', 'bias']
    """
    return build(params, None, lr=lr, adamw_betas=betas, adamw_eps=eps,
                 adamw_weight_decay=weight_decay, nonfinite=nonfinite, preset="adamw")
