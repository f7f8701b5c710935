"""Matrix views: how a stored parameter maps to the matrix (or matrices) a chain sees, and back.

A chain acts on matrices ``(m, n)`` with rows = outputs. Parameters are not always stored that way:

| storage                                  | view                    | the chain sees          |
|------------------------------------------|-------------------------|-------------------------|
| ``nn.Linear`` ``(out, in)``              | ``MatrixView()``        | ``(out, in)``           |
| conv ``(out, in, k₁, …)``                | ``MatrixView()``        | ``(out, in·k₁·…)``      |
| HF ``Conv1D`` ``(in, out)``              | ``transpose=True``      | ``(out, in)``           |
| fused QKV ``(3d, d)``                    | ``blocks=3``            | a batch ``(3, d, d)``   |
| HF GPT-2 ``c_attn`` ``(d, 3d)``          | both                    | a batch ``(3, d, d)``   |

``view.matrix(t)`` maps a stored tensor (gradient) to the chain's matrix (a view of ``t`` where
torch allows it, never a modified ``t``); ``view.storage(u, shape)`` maps a chain output back to the
stored layout, so ``view.storage(view.matrix(t), t.shape)`` equals ``t`` exactly. A batch of
``blocks`` matrices is orthogonalized/balanced/scaled per block (the transforms act on
``(..., m, n)``).

Views are data: ``view.spec`` is a short string (``"matrix"``, ``"transpose"``, ``"split3"``,
``"transpose+split3"``) stored in the optimizer's param groups, and :func:`parse_view` reads it back.

>>> import torch
>>> w = torch.arange(12.).reshape(2, 6)           # HF Conv1D: (in=2, out=6), fused q, k, v
>>> v = parse_view("transpose+split3")
>>> v.matrix(w).shape, v.matrix_shape(w.shape)
(torch.Size([3, 2, 2]), (3, 2, 2))
>>> torch.equal(v.storage(v.matrix(w), w.shape), w)
True
>>> v.describe(w.shape)
'3×(2, 2) Conv1D transposed, qkv split'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..kernels._checks import matrix_view

__all__ = ["MatrixView", "parse_view", "named_blocks", "MATRIX", "QKV_BLOCK_NAMES"]


@dataclass(frozen=True)
class MatrixView:
    """Storage ↔ matrix map (see module docstring).

    Parameters
    ----------
    transpose : the stored 2-D tensor is ``(in, out)`` (HF ``Conv1D``); the matrix is its transpose.
    blocks : split the matrix's rows into this many equal matrices (fused QKV: 3).
    """

    transpose: bool = False
    blocks: int = 1

    def __post_init__(self):
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 1:
            raise ValueError(f"blocks must be an int >= 1, got {self.blocks!r}")

    @property
    def spec(self) -> str:
        parts = (["transpose"] if self.transpose else []) + (
            [f"split{self.blocks}"] if self.blocks > 1 else [])
        return "+".join(parts) or "matrix"

    def check(self, shape, name: str = "parameter") -> None:
        """Raise ``ValueError`` (naming ``name``) if a tensor of ``shape`` has no such view."""
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"{name} has shape {shape}: a matrix view needs >= 2-D parameters "
                             "(route it to AdamW)")
        if self.transpose and len(shape) != 2:
            raise ValueError(f"{name} has shape {shape}: a transposed view needs a 2-D parameter")
        rows = shape[1] if self.transpose else shape[0]
        if rows % self.blocks:
            raise ValueError(f"{name} has {rows} output rows, not divisible into {self.blocks} "
                             "blocks")

    def matrix_shape(self, shape) -> tuple[int, ...]:
        """Shape the chain sees for a stored ``shape``: ``(m, n)`` or ``(blocks, m/blocks, n)``."""
        shape = tuple(shape)
        m, n = (shape[1], shape[0]) if self.transpose else (shape[0], math.prod(shape[1:]))
        return (m, n) if self.blocks == 1 else (self.blocks, m // self.blocks, n)

    def matrix(self, t: torch.Tensor) -> torch.Tensor:
        """The chain's matrix for the stored tensor ``t`` (``t`` itself is not modified)."""
        x = t.mT if self.transpose else matrix_view(t)
        return x if self.blocks == 1 else x.unflatten(0, (self.blocks, -1))

    def storage(self, u: torch.Tensor, shape) -> torch.Tensor:
        """The chain's output ``u`` in the stored layout ``shape`` (inverse of :meth:`matrix`)."""
        if self.blocks > 1:
            u = u.flatten(0, 1)
        return u.mT.reshape(shape) if self.transpose else u.reshape(shape)

    def describe(self, shape) -> str:
        """Human-readable view, e.g. ``"(384, 1152) conv flattened"``, ``"3×(64, 64) qkv split"``."""
        shape = tuple(shape)
        ms = self.matrix_shape(shape)
        text = f"{ms[0]}×{ms[1:]}" if self.blocks > 1 else str(ms)
        notes = []
        if self.transpose:
            notes.append("Conv1D transposed")
        elif len(shape) > 2:
            notes.append("conv flattened")
        if self.blocks == 3:
            notes.append("qkv split")
        elif self.blocks > 1:
            notes.append(f"split {self.blocks}")
        return " ".join([text, ", ".join(notes)]).strip()


MATRIX = MatrixView()


def parse_view(spec: str | MatrixView | None) -> MatrixView:
    """A :class:`MatrixView` from its ``spec`` string (``None`` → the plain view).

    >>> parse_view("split3")
    MatrixView(transpose=False, blocks=3)
    """
    if spec is None:
        return MATRIX
    if isinstance(spec, MatrixView):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"view must be a str spec or MatrixView, got {type(spec).__name__}")
    transpose, blocks = False, 1
    for part in spec.split("+"):
        if part == "matrix":
            continue
        if part == "transpose":
            transpose = True
        elif part.startswith("split") and part[5:].isdigit() and int(part[5:]) >= 1:
            blocks = int(part[5:])
        else:
            raise ValueError(f"unknown matrix view {spec!r} (expected 'matrix', 'transpose', "
                             "'split<k>' or 'transpose+split<k>')")
    return MatrixView(transpose=transpose, blocks=blocks)


QKV_BLOCK_NAMES = ("q", "k", "v")


def named_blocks(name: str, u: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """The matrices of a chain update ``u`` with names: ``[(name, u)]`` for a matrix, and
    ``name[q]``, ``name[k]``, ``name[v]`` (``name[i]`` for other block counts) for a batch
    ``(blocks, m, n)`` — how instruments report a split fused QKV.

    >>> [n for n, _ in named_blocks("attn.in_proj_weight", torch.zeros(3, 4, 4))]
    ['attn.in_proj_weight[q]', 'attn.in_proj_weight[k]', 'attn.in_proj_weight[v]']
    """
    if u.ndim <= 2:
        return [(name, u)]
    flat = u.reshape(-1, *u.shape[-2:])
    tags = QKV_BLOCK_NAMES if len(flat) == 3 else [str(i) for i in range(len(flat))]
    return [(f"{name}[{tag}]", b) for tag, b in zip(tags, flat)]
