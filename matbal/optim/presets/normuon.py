"""NorMuon: Muon plus a neuron-wise (row) second moment, official-code and paper variants."""
from __future__ import annotations

from ...kernels._checks import check_choice
from ..chain import Chain
from ..transforms import (add_decayed_weights, ema_momentum, normuon_normalize, orthogonalize,
                          scale_by_shape)
from ._build import ADAMW_DOC, build

__all__ = ["normuon"]


def normuon(params, *, variant: str = "official", lr: float = 0.02, momentum: float = 0.95,
            beta2: float = 0.95, weight_decay: float = 0.0, schedule="muon", ns_steps: int = 5,
            ns_dtype="auto", ns_form: str = "standard", **adamw_opts):
    """NorMuon (arXiv 2510.05491; official code github zichongli5/NorMuon ``normuon_update``).

    Momentum convention: **EMA** with Nesterov (as Muon). After NS5:
    ``v ← β₂v + (1−β₂)·mean_j(O²)`` per row, ``Ô = O/(√v + 1e-10)``, then

    - ``variant="official"``: rescale to ``‖O‖_F`` and multiply by ``√max(1, m/n)``
      (defaults lr 0.02, λ 0, β₂ 0.95 from the official ``SingleDeviceNorMuon``);
    - ``variant="paper"``: rescale to RMS 0.2 (AdamW-matched), no further shape scaling.
    """ + ADAMW_DOC
    check_choice(variant, "variant", ("official", "paper"))
    if variant == "official":
        post = [normuon_normalize(beta2, rescale="frobenius"), scale_by_shape("sqrt(max(1,m/n))")]
    else:
        post = [normuon_normalize(beta2, rescale="rms", target=0.2)]
    chain = Chain(
        ema_momentum(momentum, nesterov=True),
        orthogonalize(schedule, steps=ns_steps, dtype=ns_dtype, form=ns_form),
        *post,
        add_decayed_weights(weight_decay),
    )
    return build(params, chain, lr=lr, preset=f"normuon-{variant}", **adamw_opts)
