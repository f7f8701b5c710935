"""Probe taps: identity transforms that hand the intermediate updates to a callback.

``tap(fn, label="momentum")`` placed anywhere in a chain calls ``fn(label, updates, ctx)`` with the
list of updates at that point (read-only by contract: the tap passes the same tensors on, so a
callback must not modify them) and returns them unchanged. Instruments build on this.

>>> seen = []
>>> t = tap(lambda label, us, ctx: seen.append((label, len(us))), label="grad")
"""
from __future__ import annotations

from typing import Callable

from .base import StepContext, Transform

__all__ = ["Tap", "tap"]


class Tap(Transform):
    """Identity transform calling ``callback(label, updates, ctx)``."""

    name = "tap"

    def __init__(self, callback: Callable, *, label: str = "tap"):
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback, self.label = callback, str(label)

    def apply(self, updates, states, ctx: StepContext):
        self.callback(self.label, updates, ctx)
        return updates


def tap(callback: Callable, *, label: str = "tap") -> Tap:
    """Probe tap (see :class:`Tap`)."""
    return Tap(callback, label=label)
