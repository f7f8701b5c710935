"""Momentum transforms, with the convention named in the function (it changes the update's scale).

The plain (non-Nesterov) output is the momentum buffer itself, read-only like every update a
transform receives (the next step changes it in place).

- **EMA** (torch.optim.Muon, KellerJordan/Muon): ``B ← μB + (1−μ)G`` (``lerp``); Nesterov
  ``U = (1−μ)G + μB`` (``G.lerp(B, μ)``); plain ``U = B``.
- **sum** (MuonEq official code, classic SGD momentum): ``B ← μB + G``; Nesterov ``U = G + μB``;
  plain ``U = B``. Its steady-state scale is ``1/(1−μ)`` times the EMA's (20× at μ = 0.95), which
  is the scale any later ``eps`` acts on.

References: Muon (Keller Jordan 2024); torch.optim.Muon; MuonEq arXiv 2603.28254.
"""
from __future__ import annotations

import torch

from ...kernels._checks import check_choice
from .base import StepContext, Transform

__all__ = ["EMAMomentum", "SumMomentum", "ema_momentum", "sum_momentum"]


def _check_mu(mu: float, name: str) -> None:
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not 0.0 <= mu < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {mu!r}")


class _Momentum(Transform):
    """Shared book-keeping: a buffer per parameter, Nesterov or plain output."""

    def per_parameter(self, updates) -> bool:  # each update on its own
        return True

    def __init__(self, momentum: float = 0.95, *, nesterov: bool = True):
        _check_mu(momentum, "momentum")
        check_choice(nesterov, "nesterov", (True, False))
        self.momentum, self.nesterov = float(momentum), nesterov

    def init(self, update):
        return {"buf": torch.zeros_like(update, memory_format=torch.preserve_format)}

    def apply(self, updates, states, ctx: StepContext):
        out = []
        for g, st in zip(updates, states):
            self._accumulate(st["buf"], g)
            # plain momentum hands on the buffer itself, not a copy: no transform modifies its
            # input and the shell only reads the final update, so a clone would be a pass over
            # every matrix per step for nothing (REG's ~12 ms at GPT d = 512, issue 15)
            out.append(self._nesterov(g, st["buf"]) if self.nesterov else st["buf"])
        return out


class EMAMomentum(_Momentum):
    """``B ← lerp(B, G, 1−μ)``; output ``lerp(G, B, μ)`` if ``nesterov`` else ``B``."""

    name = "ema_momentum"

    def _accumulate(self, buf, g):
        buf.lerp_(g, 1 - self.momentum)

    def _nesterov(self, g, buf):
        return g.lerp(buf, self.momentum)


class SumMomentum(_Momentum):
    """``B ← μB + G``; output ``G + μB`` if ``nesterov`` else ``B``."""

    name = "sum_momentum"

    def _accumulate(self, buf, g):
        buf.mul_(self.momentum).add_(g)

    def _nesterov(self, g, buf):
        return g.add(buf, alpha=self.momentum)


def ema_momentum(momentum: float = 0.95, *, nesterov: bool = True) -> EMAMomentum:
    """EMA momentum (torch.optim.Muon convention). See :class:`EMAMomentum`."""
    return EMAMomentum(momentum, nesterov=nesterov)


def sum_momentum(momentum: float = 0.95, *, nesterov: bool = True) -> SumMomentum:
    """Sum-form momentum (MuonEq official code convention). See :class:`SumMomentum`."""
    return SumMomentum(momentum, nesterov=nesterov)
