"""Shared machinery of the instruments that ride on an optimizer: attach/detach, layer and step
selection, the optimizer's step hooks, and the training-loop callback protocol.

An instrument wraps the transforms of every matrix group's chain (see :mod:`.placement`), receives
``(kind, updates, ctx)`` for each observed kind during ``optimizer.step()``, and finishes the step
in a ``register_step_post_hook`` (write rows / commit a store batch). A ``register_step_pre_hook``
drops whatever a previous step left pending because it raised. Steps are the parameters' own
optimizer step counts ``ctx.steps`` (1 on the first step; equal to the training loop's
``step = t + 1`` and restored from checkpoints with the optimizer state).
"""
from __future__ import annotations

import fnmatch
import functools
import warnings
from typing import Any

from ...optim.optimizer import ChainOptimizer
from ...optim.views import named_blocks
from .placement import KINDS, instrument, strip

__all__ = ["Instrument", "check_kinds", "check_every", "is_due"]


def check_kinds(kinds: Any, name: str = "kinds") -> tuple[str, ...]:
    """Validate a kind or a collection of kinds (from :data:`KINDS`)."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"{name} must be a non-empty subset of {list(KINDS)}, got {list(kinds)}")
    return kinds


def check_every(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, "
                         f"got {value!r}")
    return value


def is_due(step: int, every: int | None) -> bool:
    """Step ``t`` is due for a cadence ``k``: ``t == 1`` (the first step) or ``t % k == 0``."""
    return every is not None and (step == 1 or step % every == 0)


class Instrument:
    """Base class of :class:`~.Probes` and :class:`~.Recorder` (attach/detach and callbacks)."""

    def __init__(self, *, kinds, layers, run: str, all_groups: bool = False):
        self.kinds = check_kinds(kinds)
        self.all_groups = bool(all_groups)
        if layers is None:
            self.layers = None
        elif isinstance(layers, str):
            self.layers = (layers,)
        else:
            self.layers = tuple(layers)
            if not self.layers or not all(isinstance(p, str) for p in self.layers):
                raise ValueError(f"layers must be a glob str or a non-empty list of them, "
                                 f"got {layers!r}")
        if not isinstance(run, str) or not run:
            raise ValueError(f"run must be a non-empty str, got {run!r}")
        self.run = run
        self.optimizer: ChainOptimizer | None = None
        #: group label → {kind: (transform index, "pre"|"post")} where each kind is observed.
        self.placements: dict[str, dict[str, tuple[int, str]]] = {}
        self._hooks: list = []
        self._layer_cache: dict[str, bool] = {}

    # -- what to observe (subclasses) ----------------------------------------------------------
    def _tap_kinds(self) -> tuple[str, ...]:
        return self.kinds

    def _prepare_group(self, gi: int, group: dict, chain) -> None:
        """Called at attach for each matrix group with its (uninstrumented) chain."""

    def _observe(self, gi: int, kind: str, items: list[tuple[str, int, Any, Any]]) -> None:
        """``items``: ``(name, step, update, param)`` of the selected layers."""
        raise NotImplementedError

    def _end_step(self) -> None:
        """Finish the step (write rows, commit a batch)."""

    def _drop_pending(self) -> None:
        """Forget what a step that raised left pending."""

    # -- attach / detach ---------------------------------------------------------------------
    def layer_selected(self, name: str) -> bool:
        """Whether the parameter ``name`` matches ``layers`` (fnmatch globs; ``None``: all)."""
        ok = self._layer_cache.get(name)
        if ok is None:
            ok = self.layers is None or any(fnmatch.fnmatchcase(name, p) for p in self.layers)
            self._layer_cache[name] = ok
        return ok

    def attach(self, optimizer: ChainOptimizer):
        """Install taps in every matrix group's chain of ``optimizer`` and its step hooks (with
        ``all_groups=True`` also in the other groups, observing their >= 2-D parameters as
        ``(shape[0], -1)`` matrices).

        Works before the first step or mid-run (taps wrap transforms: state keys and chain reprs
        do not change). Returns ``self``. Raises if already attached or if no group is a matrix
        group; warns about requested kinds no chain has."""
        if self.optimizer is not None:
            raise RuntimeError(f"{type(self).__name__} is already attached; detach() first")
        if not isinstance(optimizer, ChainOptimizer):
            raise TypeError(f"optimizer must be a matbal ChainOptimizer, got "
                            f"{type(optimizer).__name__}")
        groups = [(i, g) for i, g in enumerate(optimizer.param_groups)
                  if g["matrix"] or self.all_groups]
        if not groups:
            raise ValueError("optimizer has no matrix param group (matrix=True) to observe; "
                             "pass all_groups=True to observe >= 2-D parameters of other groups "
                             "(e.g. an all-AdamW baseline)")
        found: set[str] = set()
        for gi, g in groups:
            self._prepare_group(gi, g, g["chain"])
            chain, points = instrument(g["chain"], self._tap_kinds(),
                                       functools.partial(self._tap, gi), owner=self)
            g["chain"] = chain
            self.placements[str(g.get("label") or f"group{gi}")] = points
            found |= set(points)
        missing = [k for k in self.kinds if k not in found]
        if missing:
            warnings.warn(f"no matrix chain has a step for kinds {missing} (see "
                          "matbal.instruments.probes.placement); they are not observed",
                          stacklevel=2)
        self.optimizer = optimizer
        self._hooks = [optimizer.register_step_pre_hook(lambda *a: self._drop_pending()),
                       optimizer.register_step_post_hook(lambda *a: self._end_step())]
        return self

    def detach(self) -> None:
        """Remove this instrument's taps and hooks (other instruments' stay). Idempotent."""
        if self.optimizer is None:
            return
        for g in self.optimizer.param_groups:
            g["chain"] = strip(g["chain"], self)
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self.optimizer = None

    def _tap(self, gi: int, kind: str, updates, ctx) -> None:
        items = [(bn, t, b, p)
                 for name, t, u, p in zip(ctx.names, ctx.steps, updates, ctx.params)
                 if self.layer_selected(name) and (ctx.matrix or u.ndim >= 2)
                 for bn, b in named_blocks(name, u if ctx.matrix else u.reshape(u.shape[0], -1))]
        if items:
            self._observe(gi, kind, items)

    # -- training-loop callback protocol (matbal.train: on_step_end(step, model, opt, metrics)) --
    def on_train_begin(self, model, optimizer) -> None:
        """Attach to ``optimizer`` (if not attached yet)."""
        if self.optimizer is None:
            self.attach(optimizer)

    def on_step_end(self, step: int, model, optimizer, metrics: dict) -> None:
        """Attach on the first call if the loop has no ``on_train_begin`` (step ``step`` and the
        ones before it are then not observed; a warning says so)."""
        if self.optimizer is None:
            warnings.warn(f"{type(self).__name__} attached at step {step}: steps <= {step} were "
                          "not observed (call attach(optimizer) before training)", stacklevel=2)
            self.attach(optimizer)

    def on_train_end(self, result=None) -> None:
        """``close()``."""
        self.close()

    def close(self) -> None:
        """Detach (subclasses also close their sink/store)."""
        self.detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

