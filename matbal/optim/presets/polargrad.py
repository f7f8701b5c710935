"""PolarGrad: nuclear-norm-scaled polar factor of the momentum."""
from __future__ import annotations

from ..chain import Chain
from ..transforms import add_decayed_weights, ema_momentum, orthogonalize
from ._build import ADAMW_DOC, build

__all__ = ["polargrad"]


def polargrad(params, *, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0,
              exact: bool = True, schedule="polar_express", ns_steps=None, **adamw_opts):
    """PolarGrad (arXiv 2505.21799): ``M ← lerp(M, G, 1−β)``, ``W ← W(1 − lr·λ) − lr·‖M‖_*·polar(M)``
    with ``‖M‖_* = ⟨M, polar(M)⟩``.

    Momentum convention: **EMA**, no Nesterov. ``exact=True`` (default) takes the polar factor by
    float64 SVD; ``exact=False`` uses NS with ``schedule``/``ns_steps`` and ``⟨M, NS(M)⟩`` as the
    nuclear-norm estimate.
    """ + ADAMW_DOC
    chain = Chain(
        ema_momentum(momentum, nesterov=False),
        orthogonalize(schedule, steps=ns_steps, exact=exact, nuclear_scale=True),
        add_decayed_weights(weight_decay),
    )
    return build(params, chain, lr=lr, preset="polargrad", **adamw_opts)
