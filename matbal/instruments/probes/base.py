"""Shared machinery of the instruments that ride on an optimizer: attach/detach, names, layer and
step selection, the optimizer's step hooks, and the training-loop callback protocol.

Two ways to observe, chosen by :meth:`Instrument.attach` from the optimizer's type:

- a matbal :class:`~matbal.optim.ChainOptimizer`: the instrument wraps the transforms of every
  matrix group's chain (see :mod:`.placement`; a ChainOptimizer without a matrix group, e.g. the
  ``adamw`` preset, has all its groups observed) and receives ``(kind, updates, ctx)`` for each
  observed kind during ``optimizer.step()``: every kind of :data:`ALL_KINDS` is available;
- any other ``torch.optim.Optimizer`` (``torch.optim.AdamW``, ``SGD``, a user's own): only its
  step hooks are used. ``"grad"`` is ``p.grad`` as the step begins (``register_step_pre_hook``),
  ``"update"`` the parameter change ``Δp = p_after − p_before`` of the step (a copy of the probed
  parameters is kept across the step, only on steps that are due), ``"param"`` the weights after
  the step. Their ``>= 2-D`` parameters are observed, viewed as ``(shape[0], -1)`` matrices.
  The chain-internal kinds ``"momentum"`` and ``"ns_input"`` do not exist there: asking for them
  is a ``ValueError`` naming the kind.

Names come from ``attach(optimizer, model=model)`` (``model.named_parameters()``) or
``names=`` (a ``{name: parameter}`` mapping or an iterable of ``(name, parameter)``), matched by
identity; else from the param groups (a ChainOptimizer's ``names``, torch's ``param_names`` when
the optimizer was built from ``named_parameters()``), else ``param<k>`` with a warning.

A ``register_step_post_hook`` finishes the step (write rows / commit a store batch); a
``register_step_pre_hook`` first drops whatever a previous step left pending because it raised.
Steps are the parameters' own optimizer step counts (``state[p]["step"]`` after the step: 1 on the
first step; equal to the training loop's ``step = t + 1`` and restored from checkpoints with the
optimizer state); for an optimizer that keeps no step count (``torch.optim.SGD``) the number of
``step()`` calls since attach. A parameter without a gradient when ``step()`` is called is not
observed on that step (so a ``closure`` that computes the gradients inside ``step()``, as LBFGS
uses, is not observed).
"""
from __future__ import annotations

import fnmatch
import functools
import warnings
from typing import Any, Iterable, Mapping

import torch

from ...optim.optimizer import ChainOptimizer
from ...optim.views import named_blocks
from .placement import KINDS, instrument, strip

__all__ = ["Instrument", "ALL_KINDS", "HOOK_KINDS", "check_kinds", "check_every", "is_due",
           "param_names"]

#: Every kind an instrument can observe: the chain kinds of :mod:`.placement` and ``"param"``
#: (the weights after the step).
ALL_KINDS = KINDS + ("param",)
#: The kinds any ``torch.optim.Optimizer`` offers (through its step hooks).
HOOK_KINDS = ("grad", "update", "param")


def check_kinds(kinds: Any, name: str = "kinds") -> tuple[str, ...]:
    """Validate a kind or a collection of kinds (from :data:`ALL_KINDS`)."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds:
        raise ValueError(f"{name} must be a non-empty subset of {list(ALL_KINDS)}, got "
                         f"{list(kinds)}")
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


def param_names(model=None, names=None) -> dict[int, str]:
    """``id(parameter) → name`` from ``model.named_parameters()`` or ``names`` (a mapping
    ``{name: parameter}`` or an iterable of ``(name, parameter)`` pairs); ``{}`` for neither.

    >>> net = torch.nn.Linear(2, 3)
    >>> sorted(param_names(net).values())
    ['bias', 'weight']
    """
    if model is not None and names is not None:
        raise ValueError("pass model= or names=, not both")
    if model is not None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        pairs: Iterable = model.named_parameters()
    elif names is None:
        return {}
    else:
        pairs = names.items() if isinstance(names, Mapping) else names
    out: dict[int, str] = {}
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
                and isinstance(pair[1], torch.Tensor)):
            raise TypeError(f"names must map str names to parameters, got an entry {pair!r:.80}")
        out.setdefault(id(pair[1]), pair[0])
    return out


class Instrument:
    """Base class of :class:`~.Probes` and :class:`~.Recorder` (attach/detach and callbacks).

    ``kinds=None`` means every kind of :data:`KINDS` the optimizer offers (the chain kinds on a
    ChainOptimizer, ``("grad", "update")`` on any other optimizer)."""

    def __init__(self, *, kinds, layers, run: str, all_groups: bool = False):
        self.requested_kinds = None if kinds is None else check_kinds(kinds)
        self.kinds = self.requested_kinds
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
        self.optimizer: torch.optim.Optimizer | None = None
        #: group label → {kind: (transform index, "pre"|"post")} where each kind is observed
        #: (ChainOptimizer only).
        self.placements: dict[str, dict[str, tuple[int, str]]] = {}
        self._hooks: list = []
        self._layer_cache: dict[str, bool] = {}
        self._names: dict[int, str] = {}
        self._watched: list[tuple[int, str, torch.Tensor]] = []  # (group, name, param)
        self._chain = False
        self._steps_now: dict[int, int] = {}
        self._before: dict[int, torch.Tensor] = {}
        self._calls = 0

    # -- what to observe (subclasses) ----------------------------------------------------------
    def _tap_kinds(self) -> tuple[str, ...]:
        return self.kinds

    def _prepare_group(self, gi: int, group: dict, chain) -> None:
        """Called at attach for each observed group (``chain``: its uninstrumented chain, or
        ``None`` on a foreign optimizer)."""

    def _observe(self, gi: int, kind: str, items: list[tuple[str, int, Any, Any]]) -> None:
        """``items``: ``(name, step, update, param)`` of the selected layers."""
        raise NotImplementedError

    def _wants(self, kind: str, step: int) -> bool:
        """Whether ``kind`` is measured/recorded at ``step`` (decides what the step hooks copy)."""
        return True

    def _needs_grad_every_step(self) -> bool:
        """Whether ``_observe`` must see the gradient on every step (the Probes' Adam shadow)."""
        return False

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

    def attach(self, optimizer: torch.optim.Optimizer, *, model=None, names=None):
        """Attach to ``optimizer`` (module docstring: a ChainOptimizer's chains are tapped, any
        other optimizer is observed through its step hooks). ``model``/``names`` name the
        parameters (see :func:`param_names`).

        On a ChainOptimizer the matrix groups are observed (with ``all_groups=True``, or when it
        has no matrix group, also the ``>= 2-D`` parameters of the other groups, as
        ``(shape[0], -1)`` matrices); works before the first step or mid-run (taps wrap
        transforms: state keys and chain reprs do not change). Returns ``self``. Raises if
        already attached, if ``optimizer`` is not a ``torch.optim.Optimizer`` or if a requested
        kind is chain-internal and the optimizer is not a ChainOptimizer; warns about requested
        kinds no chain has."""
        if self.optimizer is not None:
            raise RuntimeError(f"{type(self).__name__} is already attached; detach() first")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self._names = param_names(model, names)
        self._chain = isinstance(optimizer, ChainOptimizer)
        if self._chain:
            self._attach_chain(optimizer)
        else:
            self._attach_foreign(optimizer)
        self.optimizer = optimizer
        self._calls = 0
        self._hooks = [optimizer.register_step_pre_hook(lambda *a: self._pre_step()),
                       optimizer.register_step_post_hook(lambda *a: self._post_step())]
        return self

    def _name(self, p, group: dict, i: int) -> str | None:
        name = self._names.get(id(p))
        if name is None:
            given = group.get("names") or group.get("param_names")
            name = given[i] if given is not None and i < len(given) else None
        return name

    def _watch(self, groups: list[tuple[int, dict]], *, matrix_only_ndim: bool) -> None:
        """``self._watched``: the selected parameters of ``groups`` (``>= 2-D`` ones where the
        group is not a matrix group)."""
        self._watched, unnamed, k = [], 0, 0
        for gi, g in groups:
            for i, p in enumerate(g["params"]):
                name = self._name(p, g, i)
                if name is None:
                    name, unnamed = f"param{k}", unnamed + 1
                k += 1
                if (p.ndim >= 2 or (matrix_only_ndim and g.get("matrix"))) and \
                        self.layer_selected(name):
                    self._watched.append((gi, name, p))
        if unnamed:
            warnings.warn(f"{unnamed} parameters have no name (named param<k>): pass "
                          "attach(optimizer, model=model) or names=dict(model.named_parameters())",
                          stacklevel=3)

    def _attach_chain(self, optimizer: ChainOptimizer) -> None:
        if self.requested_kinds is None:
            self.kinds = KINDS
        any_matrix = any(g["matrix"] for g in optimizer.param_groups)
        groups = [(i, g) for i, g in enumerate(optimizer.param_groups)
                  if g["matrix"] or self.all_groups or not any_matrix]
        self._watch(groups, matrix_only_ndim=True)
        chain_kinds = [k for k in self._tap_kinds() if k in KINDS]
        found: set[str] = set()
        for gi, g in groups:
            self._prepare_group(gi, g, g["chain"])
            if not chain_kinds:
                continue
            chain, points = instrument(g["chain"], chain_kinds,
                                       functools.partial(self._tap, gi, g), owner=self)
            g["chain"] = chain
            self.placements[str(g.get("label") or f"group{gi}")] = points
            found |= set(points)
        missing = [k for k in self.kinds if k in KINDS and k not in found]
        if missing and self.requested_kinds is not None:
            warnings.warn(f"no observed chain has a step for kinds {missing} (see "
                          "matbal.instruments.probes.placement); they are not observed",
                          stacklevel=3)

    def _attach_foreign(self, optimizer: torch.optim.Optimizer) -> None:
        if self.requested_kinds is None:
            self.kinds = ("grad", "update")
        bad = [k for k in self.kinds if k not in HOOK_KINDS]
        if bad:
            raise ValueError(
                f"kind {bad[0]!r} is observed inside a matbal chain; {type(optimizer).__name__} "
                f"is not a matbal ChainOptimizer and offers only kinds {list(HOOK_KINDS)} (its "
                "step hooks): drop it from kinds or use a matbal preset")
        groups = list(enumerate(optimizer.param_groups))
        self._watch(groups, matrix_only_ndim=False)
        for gi, g in groups:
            self._prepare_group(gi, g, None)

    def detach(self) -> None:
        """Remove this instrument's taps and hooks (other instruments' stay). Idempotent."""
        if self.optimizer is None:
            return
        if self._chain:
            for g in self.optimizer.param_groups:
                g["chain"] = strip(g["chain"], self)
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self._before = {}
        self.optimizer = None

    def _tap(self, gi: int, group: dict, kind: str, updates, ctx) -> None:
        items = []
        for name, t, u, p in zip(ctx.names, ctx.steps, updates, ctx.params):
            name = self._names.get(id(p), name)
            if self.layer_selected(name) and (ctx.matrix or u.ndim >= 2):
                m = u if ctx.matrix else u.reshape(u.shape[0], -1)
                items += [(bn, t, b, p) for bn, b in named_blocks(name, m)]  # qkv split: name[q]…
        if items:
            self._observe(gi, kind, items)

    # -- step hooks ------------------------------------------------------------------------
    def _step_of(self, p) -> int:
        """The step ``p`` is about to take (its count after this ``step()``)."""
        st = self.optimizer.state.get(p) if self.optimizer is not None else None
        s = st.get("step") if st else None
        return int(s) + 1 if s is not None else (self._calls if not self._chain else 1)

    def _pre_step(self) -> None:
        self._drop_pending()
        self._calls += 1
        self._before, self._steps_now = {}, {}
        foreign = not self._chain
        if not foreign and "param" not in self.kinds:
            return  # the chain's taps see everything else
        tap_grad = foreign and "grad" in self._tap_kinds()
        every = tap_grad and self._needs_grad_every_step()
        grads: dict[int, list] = {}
        for gi, name, p in self._watched:
            if p.grad is None:
                continue
            t = self._step_of(p)
            self._steps_now[id(p)] = t
            if not foreign:
                continue
            if tap_grad:
                keep = "grad" in self.kinds and self._wants("grad", t)
                if keep or every:
                    g = p.grad.detach().reshape(p.shape[0], -1)
                    grads.setdefault(gi, []).append((name, t, g.clone() if keep else g, p))
            if "update" in self.kinds and self._wants("update", t):
                self._before[id(p)] = p.detach().clone()
        for gi, items in grads.items():
            self._observe(gi, "grad", items)

    def _post_step(self) -> None:
        out: dict[tuple[int, str], list] = {}
        for gi, name, p in self._watched if self._steps_now else ():
            t = self._steps_now.get(id(p))
            if t is None:
                continue
            before = self._before.pop(id(p), None)
            if before is not None:
                u = (p.detach() - before).reshape(p.shape[0], -1)
                out.setdefault((gi, "update"), []).append((name, t, u, p))
            if "param" in self.kinds and self._wants("param", t):
                out.setdefault((gi, "param"), []).append(
                    (name, t, p.detach().reshape(p.shape[0], -1), p))
        for (gi, kind), items in out.items():
            self._observe(gi, kind, items)
        self._before, self._steps_now = {}, {}
        self._end_step()

    # -- training-loop callback protocol (matbal.train: on_step_end(step, model, opt, metrics)) --
    def on_train_begin(self, model, optimizer) -> None:
        """Attach to ``optimizer`` with ``model``'s parameter names (if not attached yet)."""
        if self.optimizer is None:
            self.attach(optimizer, model=model if isinstance(model, torch.nn.Module) else None)

    def on_step_end(self, step: int, model, optimizer, metrics: dict) -> None:
        """Attach on the first call if the loop has no ``on_train_begin`` (step ``step`` and the
        ones before it are then not observed; a warning says so)."""
        if self.optimizer is None:
            warnings.warn(f"{type(self).__name__} attached at step {step}: steps <= {step} were "
                          "not observed (call attach(optimizer) before training)", stacklevel=2)
            self.attach(optimizer, model=model if isinstance(model, torch.nn.Module) else None)

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

