"""Orthogonalize each matrix update: finite Newton–Schulz with any schedule, or the exact polar factor.

``U ↦ NS_k(U)`` (approximately ``polar(U) = U_s V_sᵀ`` from the SVD ``U = U_s Σ V_sᵀ``), with
same-shape matrices stacked into one batched call. ``nuclear_scale=True`` returns
``⟨U, O⟩·O`` instead, which is ``‖U‖_*·polar(U)`` for the exact polar factor (PolarGrad,
arXiv 2505.21799).

``form="gram"`` / ``"auto"`` (with ``restart_every``) selects :func:`matbal.newton_schulz`'s Gram
form: the same polynomial map computed on ``r×r`` Gram matrices, faster for wide/tall updates
(aspect ≥ 2), slower on squares; ``"auto"`` picks it per shape.

Dtype: ``dtype=None`` follows :func:`matbal.newton_schulz`'s policy (keep float32/float64);
``dtype="auto"`` (the presets' default) asks :func:`matbal.kernels.dtype_policy.auto_ns_dtype`:
bf16 on CUDA — as torch.optim.Muon and KellerJordan/Muon do, 6–13× faster than float32 on an H100
(BENCHMARKS.md §7) — and on CPUs with native bf16 (AVX512-BF16/AMX) where a one-time
micro-benchmark confirms it is faster; float32 on other CPUs (emulated bf16 is ~100× slower). The
decision shows in the transform's ``repr``; ``MATBAL_NS_DTYPE=float32|bfloat16`` overrides it for
the process. bf16 NS5 is ~1e-2 from float64 NS5 (every peer's level), float32 ~1e-6: pin
``dtype=torch.float32`` where accuracy is the point; pass ``dtype=torch.bfloat16`` to reproduce
torch.optim.Muon on any device.

Batching: ``batch="auto"`` (default) stacks same-shape updates into one batched call where that
was measured to pay (:data:`~matbal.optim.transforms._batching.STACK_UP_TO`: on the CPU up to
width 256 when NS iterates in bf16, 64 in float32; always on CUDA); ``True``/``False`` force it.
"""
from __future__ import annotations

import torch

from ...kernels._checks import check_choice, check_positive
from ...kernels.dtype_policy import auto_ns_dtype
from ...kernels.orthogonalize import get_schedule, newton_schulz, polar
from ...kernels.orthogonalize.newton_schulz import FORMS
from ._batching import map_by_shape, stack_pays, stacks_any
from .base import StepContext, Transform

__all__ = ["Orthogonalize", "orthogonalize", "ns_dtype_for"]


def ns_dtype_for(dtype, device: torch.device) -> torch.dtype | None:
    """The ``dtype`` handed to :func:`~matbal.newton_schulz` for an update on ``device``:
    ``"auto"`` → :func:`~matbal.kernels.dtype_policy.auto_ns_dtype` (bf16 on CUDA and on CPUs where
    it is measured faster, else ``None``: the kernel's policy); a dtype or ``None`` is returned as
    given.

    >>> ns_dtype_for("auto", torch.device("cuda")), ns_dtype_for(torch.float32, torch.device("cpu"))
    (torch.bfloat16, torch.float32)
    """
    if isinstance(dtype, str):
        check_choice(dtype, "dtype", ("auto",))
        return auto_ns_dtype(device)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be None, 'auto' or a floating torch.dtype, got {dtype!r}")
    return dtype


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
        dtype: torch.dtype | str | None = None,
        exact: bool = False,
        nuclear_scale: bool = False,
        batch: bool | str = "auto",
        form: str = "standard",
        restart_every: int | None = 3,
    ):
        if not exact:
            get_schedule(schedule)  # validates the name / list early
        if steps is not None:
            check_positive(steps, "steps", integer=True)
        check_positive(eps, "eps", allow_zero=True)
        check_choice(form, "form", FORMS)
        ns_dtype_for(dtype, torch.device("cpu"))  # validates
        if restart_every is not None:
            check_positive(restart_every, "restart_every", integer=True)
        if not (isinstance(batch, bool) or (isinstance(batch, str) and batch == "auto")):
            raise ValueError(f"batch must be True, False or 'auto', got {batch!r}")
        self.schedule, self.steps, self.normalize = schedule, steps, normalize
        self.eps, self.dtype, self.exact = eps, dtype, exact
        self.nuclear_scale, self.batch = nuclear_scale, batch
        self.form, self.restart_every = form, restart_every

    def __repr__(self) -> str:
        base = super().__repr__()
        if self.dtype != "auto" or self.exact:
            return base
        chosen = ns_dtype_for("auto", torch.device("cpu"))
        return base[:-1] + f", auto_dtype_on_cpu={str(chosen or torch.float32).split('.')[-1]!r})"

    def _ortho(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """NS (or polar) of one matrix, or of a list of same-shape ones (stacked result)."""
        if isinstance(x, list) and x[0].ndim > 2:  # batches (fused QKV blocks): stack them
            x = torch.stack(x)
        if self.exact:
            x = torch.stack(x) if isinstance(x, list) else x
            return polar(x).to(x.dtype)
        return newton_schulz(
            x,
            schedule=self.schedule,
            steps=self.steps,
            normalize=self.normalize,
            eps=self.eps,
            dtype=ns_dtype_for(self.dtype, (x[0] if isinstance(x, list) else x).device),
            form=self.form,
            restart_every=self.restart_every,
        )

    def _stack_pays(self, x: torch.Tensor) -> bool:
        """``batch="auto"``: the measured table, for the dtype NS iterates in on ``x``'s device
        (the exact polar: kernel ``"polar"``, not in the table: always stacked)."""
        if self.exact:
            return stack_pays("polar", x)
        work = ns_dtype_for(self.dtype, x.device) or x.dtype
        low = work in (torch.bfloat16, torch.float16) and not (
            self.dtype is None and x.device.type == "cpu")  # the kernel upcasts those on CPU
        return stack_pays("ns_bf16" if low else "ns", x)

    def _batch_rule(self):
        return self._stack_pays if self.batch == "auto" else self.batch

    def per_parameter(self, updates) -> bool:
        """True unless some of ``updates`` would be stacked."""
        return not stacks_any(updates, self._batch_rule())

    def apply(self, updates, states, ctx: StepContext):
        if not ctx.matrix:
            raise ValueError("orthogonalize needs matrix parameters (route others to AdamW)")
        batch = self._batch_rule()
        out = map_by_shape(self._ortho, updates, batch=batch, stack=False)
        if self.nuclear_scale:
            out = [o * (u.double() * o.double()).sum(dim=(-2, -1), keepdim=True).to(o.dtype)
                   for u, o in zip(updates, out)]
        return out


def orthogonalize(schedule="muon", **kwargs) -> Orthogonalize:
    """Orthogonalization transform (see :class:`Orthogonalize`).

    >>> t = orthogonalize("polar_express", steps=5)
    """
    return Orthogonalize(schedule, **kwargs)
