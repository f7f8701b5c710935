"""Muon as a chain, with torch.optim.Muon's defaults and conventions."""
from __future__ import annotations

from ..chain import Chain
from ..transforms import add_decayed_weights, ema_momentum, orthogonalize, scale_by_shape
from ._build import ADAMW_DOC, build

__all__ = ["muon"]


def muon(params, *, lr: float = 1e-3, momentum: float = 0.95, nesterov: bool = True,
         weight_decay: float = 0.1, schedule="muon", ns_steps: int = 5, ns_dtype="auto",
         ns_form: str = "standard",
         eps: float = 1e-7, shape_rule="original", **adamw_opts):
    """Muon (Keller Jordan 2024; ``torch.optim.Muon``; github KellerJordan/Muon).

    Momentum convention: **EMA** ``B ← lerp(B, G, 1−μ)``, Nesterov ``U = lerp(G, B, μ)``.
    Then ``O = NS_k(U)`` (schedule ``"muon"``: (3.4445, −4.7750, 2.0315) × 5, Frobenius
    normalization), shape scale ``√max(1, m/n)`` (``"original"``) or ``0.2·√max(m, n)``
    (``"match_rms_adamw"``, Moonlight arXiv 2502.16982) or any ``shape_rule(m, n) -> float``
    (:func:`~matbal.optim.transforms.scale_by_shape`), and ``W ← W(1 − lr·λ) − lr·scale·O``.

    NS dtype (``ns_dtype="auto"``): bf16 on CUDA, like torch.optim.Muon; float32 on CPU (torch
    always uses bf16, ~100× slower on CPUs without bf16 matmul); ``ns_dtype=torch.bfloat16``
    reproduces torch.optim.Muon on any device to bf16 rounding (tested), ``ns_dtype=None`` keeps
    the parameters' dtype everywhere. ``ns_form="gram"``/``"auto"``: Gram-form NS
    (:func:`matbal.newton_schulz`), faster on wide/tall matrices. ``eps``: NS divides by ``‖U‖_F + eps``
    (KellerJordan/Muon) where torch.optim.Muon divides by ``max(‖U‖_F, eps)`` — a relative
    difference of ``eps/‖U‖_F`` in the NS input scale; with ``eps=0`` the two are identical for
    nonzero ``U`` (tested in float64 to 1e-12), and a zero ``U`` still gives a zero update.
    """ + ADAMW_DOC
    chain = Chain(
        ema_momentum(momentum, nesterov=nesterov),
        orthogonalize(schedule, steps=ns_steps, dtype=ns_dtype, form=ns_form, eps=eps),
        scale_by_shape(shape_rule),
        add_decayed_weights(weight_decay),
    )
    return build(params, chain, lr=lr, preset="muon", **adamw_opts)
