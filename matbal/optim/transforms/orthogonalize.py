"""Orthogonalize each matrix update: finite Newton–Schulz with any schedule, or the exact polar factor.

``U ↦ NS_k(U)`` (approximately ``polar(U) = U_s V_sᵀ`` from the SVD ``U = U_s Σ V_sᵀ``), with
same-shape matrices stacked into one batched call. ``nuclear_scale=True`` returns
``⟨U, O⟩·O`` instead, which is ``‖U‖_*·polar(U)`` for the exact polar factor (PolarGrad,
arXiv 2505.21799).

Dtype: ``dtype=None`` follows :func:`matbal.newton_schulz`'s policy (float32 on CPU, where bf16
matmuls are ~100× slower); pass ``dtype=torch.bfloat16`` to reproduce torch.optim.Muon exactly.
"""
from __future__ import annotations

import torch

from ...kernels._checks import check_positive
from ...kernels.orthogonalize import get_schedule, newton_schulz, polar
from ._batching import map_by_shape
from .base import StepContext, Transform

__all__ = ["Orthogonalize", "orthogonalize"]


class Orthogonalize(Transform):
    """Replace each update by its (approximate) orthogonal polar factor."""

    name = "orthogonalize"

    def __init__(
        self,
        schedule="muon",
        *,
        steps: int | None = None,
        normalize: str = "frobenius",
        eps: float = 1e-7,
        dtype: torch.dtype | None = None,
        exact: bool = False,
        nuclear_scale: bool = False,
        batch: bool = True,
    ):
        if not exact:
            get_schedule(schedule)  # validates the name / list early
        if steps is not None:
            check_positive(steps, "steps", integer=True)
        check_positive(eps, "eps", allow_zero=True)
        self.schedule, self.steps, self.normalize = schedule, steps, normalize
        self.eps, self.dtype, self.exact = eps, dtype, exact
        self.nuclear_scale, self.batch = nuclear_scale, batch

    def _ortho(self, x: torch.Tensor) -> torch.Tensor:
        if self.exact:
            return polar(x).to(x.dtype)
        return newton_schulz(
            x,
            schedule=self.schedule,
            steps=self.steps,
            normalize=self.normalize,
            eps=self.eps,
            dtype=self.dtype,
        )

    def apply(self, updates, states, ctx: StepContext):
        if not ctx.matrix:
            raise ValueError("orthogonalize needs matrix parameters (route others to AdamW)")
        out = map_by_shape(self._ortho, updates, batch=self.batch)
        if self.nuclear_scale:
            out = [o * (u.double() * o.double()).sum().to(o.dtype) for u, o in zip(updates, out)]
        return out


def orthogonalize(schedule="muon", **kwargs) -> Orthogonalize:
    """Orthogonalization transform (see :class:`Orthogonalize`).

    >>> t = orthogonalize("polar_express", steps=5)
    """
    return Orthogonalize(schedule, **kwargs)
