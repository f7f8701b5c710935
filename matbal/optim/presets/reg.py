"""REG: RACS in place of Newton–Schulz, first moment only, RMS-normalized update."""
from __future__ import annotations

from ..chain import Chain
from ..transforms import add_decayed_weights, balance, ema_momentum, normalize_rms
from ._build import ADAMW_DOC, build

__all__ = ["reg"]


def reg(params, *, lr: float = 1e-3, momentum: float = 0.9, p: float = 2, racs_steps: int = 5,
        rms_target: float = 0.2, weight_decay: float = 0.1, **adamw_opts):
    """REG (arXiv 2510.03691): ``M ← lerp(M, G, 1−β)``, ``U = RACS_p^{(k)}(M)``,
    ``U ← rms_target·U/RMS(U)``, ``W ← W(1 − lr·λ) − lr·U``; embeddings/head via AdamW.

    Momentum convention: **EMA** first moment only (no Nesterov, no second moment), β = 0.9 (the
    paper positions REG next to AdamW; β₁ = 0.9 is our choice, the paper's code is not public).

    RACS member used (the paper's exact formula is not public, see docs/math.md §1): ``racs`` with
    ``p = 2`` — exactly ``racs_steps`` alternating Sinkhorn sweeps on ``M⊙M`` (= SinkGD's iteration),
    rows → norm √n, columns → √m. Why this default: the paper reports p = 2 worked best; a fixed
    sweep count keeps the step cost constant and deterministic; 5 sweeps bring Gaussian-like
    matrices near the balanced fixed point (contraction ≈ 2(m^-½+n^-½)² per sweep) while leaving
    κ > 1, the "less drastic than polar" behaviour REG argues for. The RMS target 0.2 matches
    AdamW's typical update RMS (Moonlight arXiv 2502.16982).
    """ + ADAMW_DOC
    chain = Chain(
        ema_momentum(momentum, nesterov=False),
        balance("racs", p=p, steps=racs_steps),
        normalize_rms(rms_target),
        add_decayed_weights(weight_decay),
    )
    return build(params, chain, lr=lr, preset="reg", **adamw_opts)
