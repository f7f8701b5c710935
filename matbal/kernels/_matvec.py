"""Matrix–vector products over a batch of matrices, in the layout that is fast on each device.

``matvec(a, v)``: ``a (..., m, n)``, ``v (..., n)`` → ``a v`` ``(..., m)``;
``vecmat(u, a)``: ``u (..., m)`` → ``uᵀa`` ``(..., n)``.

Why not ``a @ v[..., None]``: on the CPU torch's batched product with a single *column*
(``bmm`` of ``(B, m, n)`` by ``(B, n, 1)``) takes a slow path, 6–25× slower than a loop of
``torch.mv`` (1 thread, B = 4…16, 128×512 … 512×2048; ``BENCHMARKS.md`` §6),
while the product with a single *row* (``(B, 1, m)`` by ``(B, m, n)``) is as fast as the loop.
So on the CPU ``a v`` is computed as ``(vᵀ aᵀ)ᵀ``: the same sums, a row-vector product over the
transposed view (no copy). A single matrix uses ``torch.mv``; CUDA keeps the column form.

>>> import torch
>>> a = torch.arange(12.).reshape(2, 2, 3)
>>> matvec(a, torch.ones(2, 3))
tensor([[ 3., 12.],
        [21., 30.]])
>>> vecmat(torch.ones(2, 2), a)
tensor([[ 3.,  5.,  7.],
        [15., 17., 19.]])
"""
from __future__ import annotations

import torch

__all__ = ["matvec", "vecmat"]


def matvec(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``a v`` for ``a (..., m, n)``, ``v (..., n)`` → ``(..., m)`` (module docstring)."""
    if a.ndim == 2:
        return torch.mv(a, v)
    if a.device.type == "cpu":
        return torch.matmul(v.unsqueeze(-2), a.transpose(-2, -1)).squeeze(-2)
    return torch.matmul(a, v.unsqueeze(-1)).squeeze(-1)


def vecmat(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``uᵀ a`` for ``u (..., m)``, ``a (..., m, n)`` → ``(..., n)`` (module docstring)."""
    if a.ndim == 2:
        return torch.mv(a.t(), u)
    return torch.matmul(u.unsqueeze(-2), a).squeeze(-2)
