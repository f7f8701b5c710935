"""Run a batched matrix kernel over a list of matrices, stacking same-shape ones into one call
where that pays.

Whether stacking pays depends on the kernel and the device: one batched call saves the per-call
fixed cost (checks, dispatch, small reductions) of every matrix but one, and costs a copy of the
stack (``torch.stack``) plus, for a batched GEMM, whatever the BLAS loses on a batch. On the CPU
that trade is won at small widths and lost at large ones, and lost at every width by the one-shot
MuonEq scalings (memory-bound: the copy is as expensive as the work). :data:`STACK_UP_TO` holds
the measured crossover per kernel and device; ``batch="auto"`` (the transforms' default) reads it.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable

import torch

__all__ = ["map_by_shape", "STACK_UP_TO", "stack_pays", "stacks_any"]

#: Largest short side ``min(m, n)`` at which ``k`` same-shape matrices are stacked into one call,
#: per ``(kernel, device type)``; ``0``: never, ``math.inf``: always. Kernels: ``"ns"`` (Newton–
#: Schulz iterating in float32/float64, and the exact polar), ``"ns_bf16"`` (iterating in
#: bf16/fp16), ``"balance"`` (iterative balancing: racs, sinkhorn, ruiz, …), ``"scale"`` (the
#: one-shot MuonEq R/C/RC scalings). CPU rows: measured on GPT MLP shapes ``w×4w``, 4 matrices,
#: 1 thread, AMX Xeon (``python -m benchmarks.bench_optim --part batching``, BENCHMARKS.md
#: Session 6): stacked/loop time at w = 64, 128, 256, 512, 768 — NS bf16 0.42, 0.67, 0.93, 1.02,
#: 1.13; NS float32 0.91, 1.08, 1.06, 1.08, 1.08; racs 0.48, 0.66, 1.20, 1.01, 1.59; MuonEq-R
#: 1.04, 1.40, 1.42, 1.63, 3.26. Device types not listed stack always (CUDA is launch-bound:
#: batched NS 0.40× the loop at width 768 on an H100, BENCHMARKS.md §7).
STACK_UP_TO: dict[tuple[str, str], float] = {
    ("ns", "cpu"): 64,
    ("ns_bf16", "cpu"): 256,
    ("balance", "cpu"): 128,
    ("scale", "cpu"): 0,
}


def stack_pays(kernel: str, x: torch.Tensor) -> bool:
    """Whether matrices like ``x`` (``(..., m, n)``) are stacked for ``kernel`` (see
    :data:`STACK_UP_TO`; unlisted pairs: always).

    >>> stack_pays("scale", torch.zeros(8, 32)), stack_pays("ns_bf16", torch.zeros(64, 256))
    (False, True)
    """
    return min(x.shape[-2], x.shape[-1]) <= STACK_UP_TO.get((kernel, x.device.type), math.inf)


def _groups(mats: list[torch.Tensor], batch) -> list[tuple[list[int], bool]]:
    """The (shape, dtype, device) groups of ``mats`` as index lists, each with whether
    :func:`map_by_shape` stacks it (``batch``: as there)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, x in enumerate(mats):
        groups[(tuple(x.shape), x.dtype, x.device)].append(i)
    return [(idx, batch is not False and len(idx) > 1
             and (batch is True or bool(batch(mats[idx[0]])))) for idx in groups.values()]


def stacks_any(mats: list[torch.Tensor], batch) -> bool:
    """Whether :func:`map_by_shape` with this ``batch`` would stack any of ``mats``."""
    return batch is not False and any(st for _, st in _groups(mats, batch))


def map_by_shape(
    fn: Callable[[torch.Tensor], torch.Tensor], mats: list[torch.Tensor], *,
    batch: bool | Callable[[torch.Tensor], bool] = True, stack: bool = True,
) -> list[torch.Tensor]:
    """``[fn(x) for x in mats]``, computed as one ``fn`` call per distinct (shape, dtype, device)
    on a stacked ``(k, m, n)`` batch when ``batch`` is True, or is a predicate (e.g.
    ``lambda x: stack_pays("ns", x)``) that holds for that shape (the kernel must be
    batch-transparent). ``stack=False`` hands ``fn`` the list of same-shape matrices instead
    (k ≥ 2; it returns the ``(k, …)`` result), for kernels that stack more cheaply themselves
    (:func:`matbal.newton_schulz` normalizes a list straight into its working dtype)."""
    if batch is False or len(mats) == 1:  # nothing to stack (a one-matrix group never is)
        return [fn(x) for x in mats]
    out: list = [None] * len(mats)
    for idx, stacked in _groups(mats, batch):
        if not stacked:
            for i in idx:
                out[i] = fn(mats[i])
            continue
        same = [mats[i] for i in idx]
        res = fn(torch.stack(same) if stack else same)
        for j, i in enumerate(idx):
            out[i] = res[j]
    return out
