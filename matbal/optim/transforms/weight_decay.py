"""Decoupled weight decay as a transform: ``u ↦ u + λ·w``.

With the shell's ``p ← p − lr·u`` this is ``p ← p(1 − lr·λ) − lr·u``: the decay uses the group's
unscaled learning rate, as torch.optim.AdamW and torch.optim.Muon do (Loshchilov & Hutter,
arXiv 1711.05101). Put it after any scaling so the scaling does not touch the decay term. At the
end of a chain the shell applies it directly as ``p ← p(1 − lr·λ) − lr·u`` (the same update,
torch's order of operations, one pass over the parameters fewer: ``ChainOptimizer``).
"""
from __future__ import annotations

from ...kernels._checks import check_positive
from .base import StepContext, Transform

__all__ = ["AddDecayedWeights", "add_decayed_weights"]


class AddDecayedWeights(Transform):
    """``u ↦ u + weight_decay·w`` (``w`` seen through the update's matrix view)."""

    name = "add_decayed_weights"

    def per_parameter(self, updates) -> bool:  # each update on its own
        return True

    def __init__(self, weight_decay: float = 0.0):
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        self.weight_decay = float(weight_decay)

    def apply(self, updates, states, ctx: StepContext):
        if self.weight_decay == 0:
            return updates
        return [u.add(ctx.param_matrix(i, u), alpha=self.weight_decay)
                for i, u in enumerate(updates)]


def add_decayed_weights(weight_decay: float = 0.0) -> AddDecayedWeights:
    """Decoupled weight decay transform (see :class:`AddDecayedWeights`)."""
    return AddDecayedWeights(weight_decay)
