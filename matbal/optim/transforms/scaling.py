"""Shape scaling of a matrix update, with the rule named by its formula (m×n = flattened shape).

| rule                    | factor                 | used by                                           |
|-------------------------|------------------------|---------------------------------------------------|
| ``"sqrt(max(1,m/n))"``  | √max(1, m/n)           | Muon "original" (KellerJordan/Muon, torch.optim.Muon), NorMuon, RMNP |
| ``"0.2*sqrt(max(m,n))"``| 0.2·√max(m, n)         | Moonlight "match AdamW RMS" (arXiv 2502.16982), MuonEq |
| ``"sqrt(m/n)"``         | √(m/n)                 | spectral-norm scaling (Bernstein & Newhouse)       |
| ``"1"``                 | 1                      | none                                              |

Aliases: ``"original"`` and ``"match_rms_adamw"`` (torch.optim.Muon's ``adjust_lr_fn`` names).
A callable ``rule(m, n) -> float`` is also accepted (a finite number ≥ 0; checked on every new
shape). ``(m, n)`` is the shape the chain sees: for a conv weight ``(out, in, kh, kw)`` it is
``(out, in·kh·kw)``, for a transformers Conv1D ``(out, in)``, for a split fused QKV each block's
``(d, d)`` (see :mod:`matbal.optim.views`).

>>> import torch
>>> t = scale_by_shape(lambda m, n: (m / n) ** 0.5)
>>> from matbal.optim.transforms.base import StepContext
>>> ctx = StepContext(params=[], steps=[1], names=["w"], group={}, matrix=True)
>>> float(t.apply([torch.ones(8, 2)], [{}], ctx)[0][0, 0])
2.0
"""
from __future__ import annotations

import math
from typing import Callable

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
    """Multiply each matrix update by ``SHAPE_RULES[rule](m, n)``, or by ``rule(m, n)`` for a
    callable ``rule``."""

    name = "scale_by_shape"

    def per_parameter(self, updates) -> bool:  # each update on its own
        return True

    def __init__(self, rule: str | Callable[[int, int], float] = "sqrt(max(1,m/n))"):
        if callable(rule):
            self.rule, self._f = rule, rule
        else:
            rule = _ALIASES.get(rule, rule)
            check_choice(rule, "rule", list(SHAPE_RULES) + list(_ALIASES))
            self.rule, self._f = rule, SHAPE_RULES[rule]
        self._cache: dict[tuple[int, int], float] = {}

    def factor(self, m: int, n: int) -> float:
        """The scale for an ``(m, n)`` matrix (validated once per shape)."""
        s = self._cache.get((m, n))
        if s is None:
            s = self._f(m, n)
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) \
                    or s < 0:
                raise ValueError(f"scale_by_shape rule {self.rule!r} returned {s!r} for "
                                 f"(m, n) = ({m}, {n}); expected a finite float >= 0")
            s = self._cache[(m, n)] = float(s)
        return s

    def __repr__(self) -> str:
        rule = self.rule if isinstance(self.rule, str) else getattr(
            self.rule, "__qualname__", type(self.rule).__name__)
        return f"ScaleByShape(rule={rule!r})"

    def apply(self, updates, states, ctx: StepContext):
        if not ctx.matrix:
            raise ValueError("scale_by_shape needs matrix parameters")
        out = []
        for u in updates:
            s = self.factor(u.shape[-2], u.shape[-1])
            # a factor of exactly 1 (every wide or square matrix under "original") would only
            # copy: pass the update on (transforms never modify their inputs in place)
            out.append(u if s == 1.0 else u * s)
        return out


def scale_by_shape(rule: str | Callable[[int, int], float] = "sqrt(max(1,m/n))") -> ScaleByShape:
    """Shape-scaling transform: a rule named in ``SHAPE_RULES`` (or an alias), or a callable
    ``(m, n) -> float`` (see :class:`ScaleByShape`)."""
    return ScaleByShape(rule)
