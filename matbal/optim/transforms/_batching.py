"""Run a batched matrix kernel over a list of matrices, stacking same-shape ones into one call."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

__all__ = ["map_by_shape"]


def map_by_shape(
    fn: Callable[[torch.Tensor], torch.Tensor], mats: list[torch.Tensor], *, batch: bool = True,
    stack: bool = True,
) -> list[torch.Tensor]:
    """``[fn(x) for x in mats]``, computed as one ``fn`` call per distinct (shape, dtype, device)
    on a stacked ``(k, m, n)`` batch when ``batch`` (the kernel must be batch-transparent).
    ``stack=False`` hands ``fn`` the list of same-shape matrices instead (k ≥ 2; it returns the
    ``(k, …)`` result), for kernels that stack more cheaply themselves
    (:func:`matbal.newton_schulz` normalizes a list straight into its working dtype)."""
    if not batch:
        return [fn(x) for x in mats]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, x in enumerate(mats):
        groups[(tuple(x.shape), x.dtype, x.device)].append(i)
    out: list = [None] * len(mats)
    for idx in groups.values():
        if len(idx) == 1:
            out[idx[0]] = fn(mats[idx[0]])
            continue
        same = [mats[i] for i in idx]
        res = fn(torch.stack(same) if stack else same)
        for j, i in enumerate(idx):
            out[i] = res[j]
    return out
