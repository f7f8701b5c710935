"""SinkGD: stateless gradient descent on the Sinkhorn-balanced gradient."""
from __future__ import annotations

from ..chain import Chain
from ..transforms import add_decayed_weights, balance
from ._build import ADAMW_DOC, build

__all__ = ["sinkgd"]


def sinkgd(params, *, lr: float = 1e-3, iterations: int = 5, weight_decay: float = 0.0,
           **adamw_opts):
    """SinkGD (arXiv 2502.06742): ``L`` times ``Y = √n·Q(X)⁻¹X``, ``X ← √m·Y·R(Y)⁻¹``
    (Q, R: row and column ℓ₂ norms), then ``W ← W(1 − lr·λ) − lr·X``.

    Momentum convention: none (stateless). This is ``racs(p=2, steps=L)`` exactly (tested).
    """ + ADAMW_DOC
    chain = Chain(balance("racs", p=2, steps=iterations), add_decayed_weights(weight_decay))
    return build(params, chain, lr=lr, preset="sinkgd", **adamw_opts)
