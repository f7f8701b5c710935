"""Shape scaling of a matrix update, with the rule named by its formula (m×n = flattened shape).

| rule                    | factor                 | used by                                           |
|-------------------------|------------------------|---------------------------------------------------|
| ``"sqrt(max(1,m/n))"``  | √max(1, m/n)           | Muon "original" (KellerJordan/Muon, torch.optim.Muon), NorMuon, RMNP |
| ``"0.2*sqrt(max(m,n))"``| 0.2·√max(m, n)         | Moonlight "match AdamW RMS" (arXiv 2502.16982), MuonEq |
| ``"sqrt(m/n)"``         | √(m/n)                 | spectral-norm scaling (Bernstein & Newhouse)       |
| ``"1"``                 | 1                      | none                                              |

Aliases: ``"original"`` and ``"match_rms_adamw"`` (torch.optim.Muon's ``adjust_lr_fn`` names).
For a conv weight ``(out, in, kh, kw)`` the shape used is ``(out, in·kh·kw)``.
"""
from __future__ import annotations

import math

from ...kernels._checks import check_choice
from .base import StepContext, Transform

__all__ = ["ScaleByShape", "scale_by_shape", "SHAPE_RULES"]

SHAPE_RULES = {
    "sqrt(max(1,m/n))": lambda m, n: math.sqrt(max(1.0, m / n)),
    "0.2*sqrt(max(m,n))": lambda m, n: 0.2 * math.sqrt(max(m, n)),
    "sqrt(m/n)": lambda m, n: math.sqrt(m / n),
    "1": lambda m, n: 1.0,
}
_ALIASES = {"original": "sqrt(max(1,m/n))", "match_rms_adamw": "0.2*sqrt(max(m,n))"}


class ScaleByShape(Transform):
    """Multiply each matrix update by ``SHAPE_RULES[rule](m, n)``."""

    name = "scale_by_shape"

    def __init__(self, rule: str = "sqrt(max(1,m/n))"):
        rule = _ALIASES.get(rule, rule)
        check_choice(rule, "rule", list(SHAPE_RULES) + list(_ALIASES))
        self.rule = rule

    def apply(self, updates, states, ctx: StepContext):
        if not ctx.matrix:
            raise ValueError("scale_by_shape needs matrix parameters")
        f = SHAPE_RULES[self.rule]
        out = []
        for u in updates:
            s = f(u.shape[-2], u.shape[-1])
            # a factor of exactly 1 (every wide or square matrix under "original") would only
            # copy: pass the update on (transforms never modify their inputs in place)
            out.append(u if s == 1.0 else u * s)
        return out


def scale_by_shape(rule: str = "sqrt(max(1,m/n))") -> ScaleByShape:
    """Shape-scaling transform (see :class:`ScaleByShape` and ``SHAPE_RULES``)."""
    return ScaleByShape(rule)
