"""MuonEq (R, C, RC, RC→R phase switch) as a chain, with the official code's defaults."""
from __future__ import annotations

from ...kernels._checks import check_choice
from ..chain import Chain
from ..transforms import (add_decayed_weights, balance, orthogonalize, scale_by_shape,
                          sum_momentum)
from ._build import ADAMW_DOC, build

__all__ = ["muoneq"]

_METHODS = {"R": "muoneq_rows", "C": "muoneq_cols", "RC": "muoneq_rc"}


def muoneq(params, *, variant: str = "R", phase: int | None = None, lr: float = 1e-3,
           momentum: float = 0.95, nesterov: bool = True, weight_decay: float = 0.1,
           exponent: float = -0.5, eps: float = 1e-8, clip: float | None = None,
           schedule="muon", ns_steps: int = 5, ns_dtype="auto", ns_form: str = "standard",
           shape_rule: str = "0.2*sqrt(max(m,n))", **adamw_opts):
    """MuonEq (arXiv 2603.28254; official code github MaeChd/muon-eq, ``MuonEq``).

    Momentum convention: **sum** ``B ← μB + G``, Nesterov ``U = G + μB`` (official code).
    Balancing before NS, both scales from the same ``U`` (one-shot, not iterated):
    ``R``: ``(rowsum(U⊙U)+ε)^e U``; ``C``: ``U (colsum(U⊙U)+ε)^e``; ``RC``: both; ``e = −1/2``,
    ``ε = 1e-8``, optional ``clip`` of the scales to ``[1/c, c]``. ``phase=k`` (RC only): RC while
    ``step < k``, then R. Then NS5 (Muon schedule), Moonlight scale ``0.2·√max(m, n)``, and
    ``W ← W(1 − lr·λ) − lr·scale·O``; defaults lr 1e-3, λ 0.1, μ 0.95 (official code).
    """ + ADAMW_DOC
    check_choice(variant, "variant", tuple(_METHODS))
    if phase is not None and variant != "RC":
        raise ValueError(f"phase switches RC to R; it needs variant='RC', got {variant!r}")
    opts = dict(exponent=exponent, eps=eps, clip=clip)
    if phase is None:
        bal = balance(_METHODS[variant], **opts)
    else:
        bal = balance("muoneq_rc", switch_at=phase, switch_to="muoneq_rows", **opts)
    chain = Chain(
        sum_momentum(momentum, nesterov=nesterov),
        bal,
        orthogonalize(schedule, steps=ns_steps, dtype=ns_dtype, form=ns_form),
        scale_by_shape(shape_rule),
        add_decayed_weights(weight_decay),
    )
    return build(params, chain, lr=lr, preset=f"muoneq-{variant.lower()}", **adamw_opts)
