"""``Probes``: spectral metrics of every matrix layer's gradient, momentum, NS input and update,
written as tidy rows while an optimizer runs.

Per matrix parameter (name matching ``layers``), per observed kind (see
:mod:`.placement`: ``grad``, ``momentum``, ``ns_input``, ``update``; and ``param``, the weights;
on a non-matbal optimizer ``grad``, ``update`` = the parameter change and ``param``, see
:mod:`.base`):

- every ``every`` steps (and step 1): the cheap metrics of :mod:`.metrics` (Frobenius norm, RMS,
  row/column imbalance, guaranteed brackets of ``‖X‖_2`` and stable rank) and, for ``update``,
  ``cos_adamw``: the cosine to the AdamW direction of a shadow Adam state fed the same gradients
  (REG-2; the shadow is updated on *every* step, costs two float32 buffers per probed matrix, is
  not checkpointed and restarts with its own bias correction after a resume);
- every ``exact_every`` steps (and step 1): one float64 SVD → ``stable_rank``,
  ``condition_number``, ``x_min``, ``effective_rank``, ``spectral_norm``; for ``ns_input`` also
  ``ns_error`` (NS run with the chain's own settings) and ``ns_error_pred`` (exact prediction
  from the spectrum). A chain without an ``orthogonalize`` step (REG) gets the NS numbers of a
  hypothetical Muon NS5 (``ns_default``).

The taps only queue the tensors that are due (the chain's own tensors: no copies; the chain never
modifies them in place); when the step ends, every queued tensor is measured at once — same-shape
matrices of all layers and kinds stacked into batched calls (on the CPU the cheap metrics in
stacks of ≤ ``CPU_CHEAP_BATCH_BYTES``; their mat-vecs use the row form of
:mod:`matbal.kernels._matvec`), a tensor seen under two kinds (Muon: ``momentum`` is
``ns_input``) measured once — and the rows ``{run, step, layer, kind, metric, value}`` (sorted by
layer, then kind) go to the sink in one ``write``.

Overhead (``benchmarks/bench_probes.py``, all matrix layers, all four kinds, CPU, 1 thread): on a
GPT-shaped model (d = 256, 4 blocks, 2048 tokens/step) a cheap probe step costs ≈ 21 % of a
training step (2.15× less than measuring one matrix at a time: on the CPU same-shape matrices
go in stacks of ≤ ``CPU_CHEAP_BATCH_BYTES``, which stay in cache across the power iteration) and
an exact one ≈ 210 %, so the defaults ``every=10, exact_every=100`` cost ≈ 4–5 %; the taps alone
(the shadow Adam update runs every step) are within timing noise. On tiny models (d = 128, 512
tokens/step) per-op overheads dominate: 9–11 % predicted at the defaults (+4 % and +14.5 %
measured in two runs), use ``every=25, exact_every=250`` there. Memory: two float32 buffers per
probed matrix (shadow Adam) and, on due steps, the queued momentum/update tensors until the step
ends.

Example
-------
>>> import torch
>>> from matbal.optim import muon
>>> from matbal.instruments.probes import Probes, MemorySink
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 2))
>>> opt = muon(net)
>>> probes = Probes(MemorySink(), every=1, exact_every=2).attach(opt)
>>> for _ in range(2):
...     net(torch.randn(4, 8)).square().sum().backward(); opt.step(); opt.zero_grad()
>>> sorted({r["metric"] for r in probes.sink.rows if r["kind"] == "ns_input"})[:3]
['col_cv', 'condition_number', 'effective_rank']
>>> probes.close()
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ...optim.transforms import Orthogonalize
from .base import ALL_KINDS, Instrument, check_every, is_due
from .metrics import AdamShadow, NSSpec, cheap_metrics, cosine, exact_metrics, ns_metrics
from .placement import base_transform
from .sinks import MemorySink, Sink

__all__ = ["Probes", "DEFAULT_EVERY", "DEFAULT_EXACT_EVERY"]

#: Default cadences, chosen with benchmarks/bench_probes.py to keep probes ≤ 10 % of a step.
DEFAULT_EVERY = 10
DEFAULT_EXACT_EVERY = 100
CPU_CHEAP_BATCH_BYTES = 4 << 20  # CPU: cheap metrics in batches of ≤ 4 MiB (≥ 1 matrix)


class Probes(Instrument):
    """Per-layer spectral probes on any ``torch.optim.Optimizer`` (module docstring; all kinds on
    a :class:`~matbal.optim.ChainOptimizer`, ``grad``/``update``/``param`` on others).

    Parameters
    ----------
    sink : Sink, optional
        Where rows go (:class:`CSVSink`, :class:`JSONLSink`, :class:`MemorySink`; default a new
        ``MemorySink``). ``close()`` closes it.
    kinds : str or tuple of str, optional
        Subset of ``("grad", "momentum", "ns_input", "update", "param")``; default ``None``:
        every kind of ``("grad", "momentum", "ns_input", "update")`` the optimizer offers (on a
        non-matbal optimizer ``("grad", "update")``; see :mod:`.base`). ``"param"``: the weights
        after the step.
    every, exact_every : int
        Cadence of cheap and exact metrics (step 1 is always probed); ``exact_every=None``: never.
    layers : str or list of str, optional
        fnmatch globs over parameter names (``"blocks.*.mlp.*"``); ``None``: every matrix (on a
        non-matbal optimizer: every ``>= 2-D`` parameter). Names come from ``attach(opt,
        model=model)``.
    run : str
        The ``run`` column of the rows.
    power_iters, upper_iters : int
        Estimator iterations of the cheap brackets (``quick_stats``). The default
        ``power_iters=10, upper_iters=0`` keeps every cheap metric O(mn) per iteration: the tight
        side is ``spectral_norm_lower`` (power iteration, typically −1…−3 % at 10 iterations)
        and hence ``stable_rank_upper`` (≈ +2…+5 %); the other side is the loose
        Frobenius/Hölder bound. ``upper_iters=4`` makes both sides tight (Schatten-32, +2…+4 %)
        at the cost of an ``r×r`` Gram and 3 ``r³`` products per matrix (about one NS step).
    adam_cosine : bool
        Record ``cos_adamw`` for the ``update`` kind (keeps the shadow Adam state). On a
        non-matbal optimizer the update is the parameter change ``Δp``; the cosine is taken with
        the descent direction ``−Δp`` (so plain AdamW without weight decay gives 1).
    adam_betas, adam_eps : AdamW's defaults ``(0.9, 0.999)``, ``1e-8``.
    ns_default : NSSpec
        NS settings assumed for ``ns_input`` of chains without an ``orthogonalize`` step.
    all_groups : bool
        On a ChainOptimizer with matrix groups, also observe the >= 2-D parameters of its other
        groups (embeddings, head), as ``(shape[0], -1)`` matrices. Not needed for one without a
        matrix group (the ``adamw`` preset) nor for other optimizers: those are observed whole.
    """

    def __init__(self, sink: Sink | None = None, *, kinds=None, every: int = DEFAULT_EVERY,
                 exact_every: int | None = DEFAULT_EXACT_EVERY, layers=None, run: str = "run",
                 power_iters: int = 10, upper_iters: int = 0, adam_cosine: bool = True,
                 adam_betas: tuple[float, float] = (0.9, 0.999), adam_eps: float = 1e-8,
                 ns_default: NSSpec = NSSpec(hypothetical=True), all_groups: bool = False):
        super().__init__(kinds=kinds, layers=layers, run=run, all_groups=all_groups)
        if sink is None:
            sink = MemorySink()
        if not callable(getattr(sink, "write", None)):
            raise TypeError(f"sink must have a write(rows) method, got {type(sink).__name__}")
        self.sink = sink
        self.every = check_every(every, "every")
        self.exact_every = check_every(exact_every, "exact_every", allow_none=True)
        for name, v in (("power_iters", power_iters), ("upper_iters", upper_iters)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        self.power_iters, self.upper_iters = power_iters, upper_iters
        self.adam = AdamShadow(adam_betas, adam_eps) if adam_cosine and (
            self.kinds is None or "update" in self.kinds) else None
        self.ns_default = ns_default
        self._ns: dict[int, NSSpec | None] = {}
        self._pending: list[tuple] = []

    def __repr__(self) -> str:
        return (f"Probes(kinds={self.kinds}, every={self.every}, exact_every={self.exact_every}, "
                f"layers={self.layers}, sink={self.sink!r})")

    def _tap_kinds(self):
        return tuple(set(self.kinds) | ({"grad"} if self.adam is not None else set()))

    def _prepare_group(self, gi, group, chain):
        orth = [base_transform(t) for t in chain or () if isinstance(base_transform(t),
                                                                       Orthogonalize)]
        self._ns[gi] = NSSpec.from_transform(orth[0]) if orth else self.ns_default

    def _wants(self, kind, step):
        return is_due(step, self.every) or is_due(step, self.exact_every)

    def _needs_grad_every_step(self):
        return self.adam is not None

    # -- measuring ---------------------------------------------------------------------------
    def _observe(self, gi: int, kind: str, items) -> None:
        if kind == "grad" and self.adam is not None:
            self.adam.update_many([it[0] for it in items], [it[2] for it in items])
        if kind not in self.kinds:
            return
        for name, t, u, _ in items:
            cheap, exact = is_due(t, self.every), is_due(t, self.exact_every)
            if not (cheap or exact):
                continue
            cos = None
            if cheap and kind == "update" and self.adam is not None:
                a = self.adam.direction(name)
                cos = None if a is None else cosine(u if self._chain else -u, a)
            ns = self._ns.get(gi) if kind == "ns_input" else None
            self._pending.append((t, name, kind, u, cheap, exact, ns, cos))

    def _measure(self, jobs: list[tuple[torch.Tensor, str, NSSpec | None]]) -> list[dict]:
        """Metrics per job ``(tensor, "cheap"|"exact"|"ns", ns)``: each distinct job computed once,
        same-shape tensors stacked into one batched call."""
        out: list[dict | None] = [None] * len(jobs)
        uniq: dict[tuple, list[int]] = {}
        for i, (x, mode, ns) in enumerate(jobs):
            uniq.setdefault((id(x), mode, id(ns)), []).append(i)
        groups: dict[tuple, list[list[int]]] = {}
        for key, idx in uniq.items():
            x = jobs[idx[0]][0]
            groups.setdefault((tuple(x.shape), x.dtype, x.device, key[1], key[2]), []).append(idx)
        chunks = []
        for (shape, dtype, device, mode, _), members in groups.items():
            ns = jobs[members[0][0]][2]
            size = len(members)
            if mode == "cheap" and device.type == "cpu":
                # the power iteration passes over its batch 2·power_iters times: a batch that
                # stays in cache is 1.2-2x faster than a larger one or a loop (BENCHMARKS §6)
                nbytes = math.prod(shape) * torch.finfo(dtype).bits // 8
                size = max(1, CPU_CHEAP_BATCH_BYTES // nbytes)
            chunks += [(mode, ns, members[i:i + size]) for i in range(0, len(members), size)]
        for mode, ns, members in chunks:
            batch = torch.stack([jobs[idx[0]][0].detach() for idx in members])
            if mode == "cheap":
                vals = cheap_metrics(batch, power_iters=self.power_iters,
                                     upper_iters=self.upper_iters)
            elif mode == "exact":
                vals = exact_metrics(batch)
            else:
                vals = ns_metrics(batch, ns)
            names = list(vals)
            table = torch.stack([v.to(device=batch.device, dtype=torch.float64)
                                 for v in vals.values()]).cpu().tolist()
            for j, idx in enumerate(members):
                d = {name: table[k][j] for k, name in enumerate(names)}
                for i in idx:
                    out[i] = d
        return out  # type: ignore[return-value]

    def _row(self, step, layer, kind, metric, value) -> dict[str, Any]:
        return {"run": self.run, "step": int(step), "layer": layer, "kind": kind,
                "metric": metric, "value": float(value)}

    # -- step boundaries -----------------------------------------------------------------------
    def _end_step(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        jobs, owners = [], []
        for k, (t, name, kind, u, cheap, exact, ns, cos) in enumerate(pending):
            if cheap:
                jobs.append((u, "cheap", None))
                owners.append(k)
            if exact:
                jobs.append((u, "exact", None))
                owners.append(k)
                if ns is not None:
                    jobs.append((u, "ns", ns))
                    owners.append(k)
        per_item: list[dict] = [{} for _ in pending]
        for k, d in zip(owners, self._measure(jobs)):
            per_item[k].update(d)
        coss = [c for *_, c in pending if c is not None]
        cos_values = iter(torch.stack([c.to(coss[0].device) for c in coss]).tolist() if coss else [])
        pending = [(*p[:-1], None if p[-1] is None else next(cos_values)) for p in pending]
        order = {k: i for i, k in enumerate(ALL_KINDS)}
        rows = []
        for k in sorted(range(len(pending)), key=lambda k: (pending[k][0], pending[k][1],
                                                             order[pending[k][2]])):
            t, name, kind, _, _, _, _, cos = pending[k]
            rows.extend(self._row(t, name, kind, m, v) for m, v in per_item[k].items())
            if cos is not None:
                rows.append(self._row(t, name, kind, "cos_adamw", cos))
        self.sink.write(rows)

    def _drop_pending(self) -> None:
        self._pending = []

    def close(self) -> None:
        """Detach, write anything pending and close the sink."""
        self._end_step()
        super().close()
        self.sink.close()
