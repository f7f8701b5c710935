"""Adam's scaling: the direction of torch.optim.AdamW, without the weight decay and the learning rate.

``m ← lerp(m, g, 1−β₁)``, ``v ← β₂v + (1−β₂)g²``, ``u = (m/(1−β₁ᵗ)) / (√v/√(1−β₂ᵗ) + ε)`` —
the operations of ``torch.optim.adam._single_tensor_adam`` in the same order, so that
``chain(scale_by_adam, add_decayed_weights)`` reproduces ``torch.optim.AdamW`` to float64 rounding.

The optimizer shell runs a group whose chain is exactly ``scale_by_adam → add_decayed_weights``
with torch's fused AdamW kernel instead (:func:`fused_adamw_`: the same update and state, one pass
over the parameters; ``ChainOptimizer(fused=False)`` runs the chain).

Reference: Kingma & Ba 2015 (arXiv 1412.6980); Loshchilov & Hutter 2019 (arXiv 1711.05101).
"""
from __future__ import annotations

import torch

from ...kernels._checks import check_positive
from .base import StepContext, Transform

__all__ = ["ScaleByAdam", "scale_by_adam", "fused_adamw_"]


class ScaleByAdam(Transform):
    """Adam direction with bias correction; state ``exp_avg``, ``exp_avg_sq``."""

    name = "scale_by_adam"

    def per_parameter(self, updates) -> bool:  # each update on its own
        return True

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), *, eps: float = 1e-8):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0.0 <= b < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1), got {b!r}")
        check_positive(eps, "eps", allow_zero=True)
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)

    def init(self, update):
        z = lambda: torch.zeros_like(update, memory_format=torch.preserve_format)  # noqa: E731
        return {"exp_avg": z(), "exp_avg_sq": z()}

    def apply(self, updates, states, ctx: StepContext):
        b1, b2 = self.betas
        ms = [st["exp_avg"] for st in states]
        vs = [st["exp_avg_sq"] for st in states]
        # foreach kernels: the same elementwise operations as torch.optim.adam's single-tensor
        # loop (so float64 results equal torch.optim.AdamW's), with one dispatch per list
        torch._foreach_lerp_(ms, updates, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, updates, updates, value=1 - b2)
        out: list = [None] * len(updates)
        for t in sorted(set(ctx.steps)):  # parameters of a group usually share one step count
            idx = [i for i, s in enumerate(ctx.steps) if s == t]
            bc1 = 1 - b1**t
            bc2_sqrt = (1 - b2**t) ** 0.5
            denom = torch._foreach_sqrt([vs[i] for i in idx])
            torch._foreach_div_(denom, bc2_sqrt)
            torch._foreach_add_(denom, self.eps)
            res = torch._foreach_div([ms[i] for i in idx], denom)
            torch._foreach_div_(res, bc1)
            for i, r in zip(idx, res):
                out[i] = r
        return out


def scale_by_adam(betas: tuple[float, float] = (0.9, 0.999), *, eps: float = 1e-8) -> ScaleByAdam:
    """Adam's bias-corrected direction (see :class:`ScaleByAdam`)."""
    return ScaleByAdam(betas, eps=eps)


def _plain(t: torch.Tensor) -> bool:
    """A plain dense tensor (or ``nn.Parameter``), not a subclass such as a DTensor shard."""
    return type(t) in (torch.Tensor, torch.nn.Parameter) and t.layout == torch.strided \
        and t.is_contiguous()


def fused_adamw_(params: list[torch.Tensor], grads: list[torch.Tensor],
                 exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor], steps: list[int],
                 *, lr: float, betas: tuple[float, float], eps: float,
                 weight_decay: float) -> bool:
    """One AdamW step in place with torch's fused kernel (``torch._fused_adamw_``):
    ``p ← p(1 − lr·λ) − lr·(m/(1−β₁ᵗ))/(√v/√(1−β₂ᵗ) + ε)`` after ``m ← lerp(m, g, 1−β₁)``,
    ``v ← β₂v + (1−β₂)g²``, ``t = steps[i]`` (already incremented); the state tensors are updated
    in place. Returns False, changing nothing, when the kernel does not apply: a tensor that is a
    subclass (DTensor), sparse or not contiguous, dtypes or devices that differ per parameter, a
    device without torch's fused kernel. float32/float64 (float64 on the CPU too) give the chain's
    update to rounding (tested against torch.optim.AdamW in float64); bf16/fp16 parameters get the
    kernel's own arithmetic, not bit-equal to the chain's.

    >>> p, g = torch.zeros(3), torch.ones(3)
    >>> m, v = torch.zeros(3), torch.zeros(3)
    >>> fused_adamw_([p], [g], [m], [v], [1], lr=0.1, betas=(0.9, 0.999), eps=1e-8,
    ...              weight_decay=0.0)
    True
    >>> p
    tensor([-0.1000, -0.1000, -0.1000])
    """
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    fused_devices = _get_fused_kernels_supported_devices()
    for ts in zip(params, grads, exp_avgs, exp_avg_sqs):
        p = ts[0]
        if not (all(map(_plain, ts)) and p.is_floating_point()
                and p.device.type in fused_devices
                and all(t.dtype == p.dtype and t.device == p.device and t.shape == p.shape
                        for t in ts[1:])):
            return False
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault((p.device, p.dtype), []).append(i)
    for (device, _), idx in groups.items():
        # one step tensor per distinct step (read only), made once (not once per parameter)
        counts = {s: torch.tensor(float(s), device=device) for s in {steps[i] for i in idx}}
        state_steps = [counts[steps[i]] for i in idx]
        torch._fused_adamw_([params[i] for i in idx], [grads[i] for i in idx],
                            [exp_avgs[i] for i in idx], [exp_avg_sqs[i] for i in idx], [],
                            state_steps, lr=lr, beta1=betas[0], beta2=betas[1],
                            weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)
    return True
