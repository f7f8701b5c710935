"""``Recorder``: put chosen kinds of chosen layers at chosen steps into a :class:`MatrixStore`.

The tensors are the matrix views the chain sees (``(out, in·k·k)``; kinds as in
:mod:`.placement`, plus ``"param"``: the weights after the step). Any ``torch.optim.Optimizer``
works: on a non-matbal optimizer the kinds are ``"grad"``, ``"update"`` (the parameter change
``Δp`` of the step) and ``"param"``, observed through its step hooks (:mod:`.base`).
During ``optimizer.step()`` each selected tensor is queued in a ``store.batch(run, step)``
(copied to CPU at once, so later in-place updates do not leak in); the step's batch is committed
when the step ends — one data file and one transaction, so a step is stored whole or not at all. The store's own caps (``max_bytes``/``max_count``), per-layer
subsampling (``layer_every``), ``storage_dtype`` (e.g. bf16) and ``if_exists`` apply unchanged;
pass them as ``store_options`` when the Recorder opens the store from a path.

Each record's ``meta``: ``{"param_shape": [...], "group": <group label>}`` plus ``meta``.

>>> import tempfile, torch
>>> from matbal.optim import muon
>>> from matbal.instruments import MatrixStore
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 2))
>>> opt, path = muon(net), tempfile.mkdtemp()
>>> with Recorder(path, run="demo", kinds=("grad", "momentum"), every=2).attach(opt):
...     for _ in range(4):
...         net(torch.randn(4, 8)).sum().backward(); opt.step(); opt.zero_grad()
>>> with MatrixStore(path, mode="r") as s:
...     sorted({(r.step, r.kind) for r in s.query(run="demo")})
[(1, 'grad'), (1, 'momentum'), (2, 'grad'), (2, 'momentum'), (4, 'grad'), (4, 'momentum')]
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from ..store import MatrixStore, StepBatch
from .base import Instrument, check_every, is_due

__all__ = ["Recorder"]


class Recorder(Instrument):
    """Record matrices into a :class:`~matbal.instruments.MatrixStore` (module docstring).

    Parameters
    ----------
    store : MatrixStore or path
        An open writable store (left open by ``close()``), or a path opened with
        ``MatrixStore(path, **store_options)`` (closed by ``close()``).
    run : str
        Run name of the records.
    kinds : str or tuple
        Kinds to record (default ``("grad",)``; ``"param"`` records the weights after the step).
    every : int
        Record at step 1 and every ``every`` steps; ignored when ``steps`` is given.
    steps : iterable of int, optional
        Exactly these steps.
    layers : glob or list of globs over parameter names, optional.
    meta : dict, optional
        JSON-serializable extras stored with every record.
    all_groups : bool
        Also record >= 2-D parameters of a ChainOptimizer's non-matrix groups (as
        ``(shape[0], -1)`` matrices); an optimizer without matrix groups is recorded whole.
    """

    def __init__(self, store, *, run: str = "run", kinds=("grad",), every: int = 100,
                 steps: Iterable[int] | None = None, layers=None,
                 meta: Mapping[str, Any] | None = None, all_groups: bool = False,
                 **store_options):
        super().__init__(kinds=kinds, layers=layers, run=run, all_groups=all_groups)
        if isinstance(store, MatrixStore):
            if store_options:
                raise ValueError(f"store_options {sorted(store_options)} apply only when store "
                                 "is a path (the given MatrixStore is already configured)")
            self.store, self._owns_store = store, False
        elif isinstance(store, (str, os.PathLike)):
            self.store, self._owns_store = MatrixStore(store, **store_options), True
        else:
            raise TypeError(f"store must be a MatrixStore or a path, got {type(store).__name__}")
        self.every = check_every(every, "every")
        self.steps = None if steps is None else frozenset(int(s) for s in steps)
        self.meta = dict(meta or {})
        self._group_label: dict[int, str] = {}
        self._batches: dict[int, StepBatch] = {}

    def __repr__(self) -> str:
        return f"Recorder({self.store!r}, run={self.run!r}, kinds={self.kinds}, every={self.every})"

    def _due(self, step: int) -> bool:
        return step in self.steps if self.steps is not None else is_due(step, self.every)

    def _wants(self, kind, step):
        return kind in self.kinds and self._due(step)

    def _prepare_group(self, gi, group, chain):
        self._group_label[gi] = str(group.get("label") or f"group{gi}")

    def _observe(self, gi, kind, items) -> None:
        for name, t, u, p in items:
            if not self._due(t):
                continue
            b = self._batches.get(t)
            if b is None:
                b = self._batches[t] = self.store.batch(self.run, t)
            b.put(name, kind, u, meta={**self.meta, "param_shape": list(p.shape),
                                      "group": self._group_label[gi]})

    def _end_step(self) -> None:
        batches, self._batches = self._batches, {}
        for b in batches.values():
            b.__exit__(None, None, None)  # store.batch's clean exit: one put_many per step

    def _drop_pending(self) -> None:
        self._batches = {}

    def close(self) -> None:
        """Commit anything pending, detach, and close the store if this Recorder opened it."""
        self._end_step()
        super().close()
        if self._owns_store:
            self.store.close()
