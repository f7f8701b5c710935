"""A chain of transforms: the composition ``t_k ∘ … ∘ t_1`` applied to a list of updates.

State of transform ``i`` lives in the parameter's state under keys ``"<i>.<key>"``.

>>> from matbal.optim.transforms import ema_momentum, orthogonalize, scale_by_shape
>>> muon_like = Chain(ema_momentum(0.95), orthogonalize("muon", steps=5), scale_by_shape("original"))
>>> len(muon_like)
3
"""
from __future__ import annotations

from typing import Iterable

import torch

from .transforms.base import StepContext, Transform

__all__ = ["Chain"]


class Chain:
    """An ordered, immutable sequence of :class:`Transform` objects."""

    def __init__(self, *transforms: Transform | Iterable[Transform]):
        flat: list[Transform] = []
        for t in transforms:
            if isinstance(t, Chain):
                flat.extend(t.transforms)
            elif isinstance(t, (list, tuple)):
                flat.extend(Chain(*t).transforms)
            elif isinstance(t, Transform):
                flat.append(t)
            else:
                raise TypeError(f"chain items must be Transform objects, got {type(t).__name__}")
        if not flat:
            raise ValueError("a chain needs at least one transform")
        self.transforms: tuple[Transform, ...] = tuple(flat)
        self._items_of: tuple | None = None  # the ``transforms`` that ``_items`` was made from

    def __len__(self) -> int:
        return len(self.transforms)

    def __iter__(self):
        return iter(self.transforms)

    def __repr__(self) -> str:
        return "Chain(" + ", ".join(map(repr, self.transforms)) + ")"

    def init(self, update: torch.Tensor, *, start: int = 0, stop: int | None = None) -> dict:
        """Namespaced initial state of transforms ``start..stop-1`` (default: all) for one
        parameter."""
        state = {}
        for i, t in self._range(start, stop):
            for k, v in t.init(update).items():
                state[f"{i}.{k}"] = v
        return state

    def _range(self, start: int, stop: int | None):
        stop = len(self.transforms) if stop is None else stop
        return [(i, self.transforms[i]) for i in range(start, stop)]

    def __call__(self, updates: list[torch.Tensor], states: list[dict], ctx: StepContext, *,
                 start: int = 0, stop: int | None = None):
        """Apply transforms ``start..stop-1`` (default: all; state keys keep the chain's
        indices, so a chain can run in pieces, e.g. on shards and then on full matrices)."""
        if self._items_of is not self.transforms:
            # (index, transform, state-key prefix), made once per ``transforms`` (a chain runs
            # once per parameter per step on the CPU) and again if ``transforms`` is reassigned
            self._items = tuple((i, t, f"{i}.") for i, t in enumerate(self.transforms))
            self._items_of = self.transforms
        items = self._items if start == 0 and stop is None else self._items[start:stop]
        for _, t, prefix in items:
            n = len(prefix)
            sub = [{k[n:]: v for k, v in st.items() if k.startswith(prefix)} for st in states]
            before = _versions(updates)
            ins, updates = updates, t.apply(list(updates), sub, ctx)
            if before is not None and _versions(ins) != before:
                _refuse_in_place(t, ins, before, ctx)
            if len(updates) != len(states):
                raise RuntimeError(f"transform {t!r} returned {len(updates)} updates for "
                                   f"{len(states)} parameters")
            for st, s in zip(states, sub):  # write back non-tensor state (ints)
                for k, v in s.items():
                    st[prefix + k] = v
        return updates


def _versions(updates) -> list[int] | None:
    """The autograd version counters of ``updates`` (bumped by every in-place op on a tensor or
    a view of it): one attribute read each, how the chain sees that a transform modified its
    input. None where a tensor keeps no counter (inference-mode tensors)."""
    try:
        return [u._version for u in updates]
    except RuntimeError:
        return None


def _refuse_in_place(t: Transform, ins, before: list[int], ctx: StepContext) -> None:
    """Raise naming ``t`` and the parameter whose input update ``t`` modified in place."""
    i = next(i for i, (u, v) in enumerate(zip(ins, before)) if u._version != v)
    names = getattr(ctx, "names", None)
    name = names[i] if names is not None and i < len(names) else f"param{i}"
    raise RuntimeError(
        f"transform {t!r} modified its input update in place (parameter {name}); updates are "
        "read-only: the first is p.grad, later ones may be a transform's state (plain momentum "
        "hands on its buffer). Return a new tensor instead (u.clamp(...), not u.clamp_(...))")
