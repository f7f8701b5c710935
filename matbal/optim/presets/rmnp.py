"""RMNP: row-normalized momentum, no Newton–Schulz."""
from __future__ import annotations

from ..chain import Chain
from ..transforms import add_decayed_weights, balance, ema_momentum, scale_by_shape
from ._build import ADAMW_DOC, build

__all__ = ["rmnp"]


def rmnp(params, *, lr: float = 5e-3, momentum: float = 0.95, nesterov: bool = True,
         weight_decay: float = 0.1, **adamw_opts):
    """RMNP (arXiv 2603.20527; reference code ``RMNP_Grouped`` in github MaeChd/muon-eq).

    Momentum convention: **EMA** ``B ← lerp(B, G, 1−μ)``, Nesterov ``U = lerp(G, B, μ)``. Then rows
    to unit ℓ₂ norm (``matbal.normalize_rows``: R without NS, "zeroth-order whitening"), scale
    ``√max(1, m/n)``, ``W ← W(1 − lr·λ) − lr·scale·R(U)``; defaults lr 5e-3, λ 0.1, μ 0.95.
    """ + ADAMW_DOC
    chain = Chain(
        ema_momentum(momentum, nesterov=nesterov),
        balance("rows"),
        scale_by_shape("sqrt(max(1,m/n))"),
        add_decayed_weights(weight_decay),
    )
    return build(params, chain, lr=lr, preset="rmnp", **adamw_opts)
