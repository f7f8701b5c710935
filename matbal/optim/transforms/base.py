"""The transform protocol: one verb acting on a list of parameter updates.

A chain of transforms turns gradients into a *direction* ``u``; the optimizer shell then applies
``p ← p − lr·u`` with the group's learning rate (so LR schedulers work unchanged). Transforms see a
list of updates (one per parameter of a group, matrix parameters already flattened to 2-D
``(out, in·k·k)``) so that a transform can batch same-shape matrices (orthogonalization does).

Rules every transform keeps:
- never modify an input update in place (the first input is ``p.grad`` itself, a later one may
  be a transform's state: plain momentum hands on its buffer); a chain checks each input's
  version counter and raises ``RuntimeError`` naming the transform that did;
- keep its per-parameter state in the dict it returns from :meth:`Transform.init` (tensors or ints);
  the shell namespaces it as ``"<index>.<key>"`` in ``optimizer.state[p]`` so ``state_dict`` round
  trips bit-exactly;
- validate hyperparameters in ``__init__`` with errors that name the argument;
- say whether it treats each update on its own (:meth:`Transform.per_parameter`, default False):
  a chain of such transforms may run one parameter at a time (the shell does on the CPU).

Example: a transform that flips the sign (for illustration)

>>> class Negate(Transform):
...     name = "negate"
...     def apply(self, updates, states, ctx):
...         return [-u for u in updates]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

__all__ = ["Transform", "StepContext"]


@dataclass
class StepContext:
    """What a transform may read during one optimizer step of one parameter group.

    ``params``: the parameters (original shapes); ``steps``: per-parameter step counts (1 on the
    first step); ``names``: parameter names (or ``"param<i>"``); ``group``: the param-group dict
    (``lr`` and any user keys); ``matrix``: True when updates are matrix views; ``views``: each
    parameter's :class:`~matbal.optim.views.MatrixView` (matrix groups), see :meth:`param_matrix`.
    """

    params: Sequence[torch.Tensor]
    steps: Sequence[int]
    names: Sequence[str]
    group: dict
    matrix: bool
    extras: dict = field(default_factory=dict)
    views: Sequence | None = None

    def param_matrix(self, i: int, like: torch.Tensor) -> torch.Tensor:
        """Parameter ``i`` (detached) in the layout of its update ``like``: through its matrix
        view (Conv1D transposed, fused QKV split) in matrix groups, else reshaped."""
        p = self.params[i].detach()
        if self.matrix and self.views is not None:
            return self.views[i].matrix(p)
        return p.reshape(like.shape)

    @property
    def lr(self) -> float:
        return float(self.group["lr"])


class Transform:
    """Base class: override :meth:`apply`, and :meth:`init` when the transform keeps state."""

    name: str = "transform"

    def init(self, update: torch.Tensor) -> dict[str, Any]:
        """Per-parameter state for a parameter whose (possibly flattened) update looks like
        ``update``. Called once, on the parameter's first step."""
        return {}

    def apply(
        self, updates: list[torch.Tensor], states: list[dict], ctx: StepContext
    ) -> list[torch.Tensor]:
        raise NotImplementedError

    def per_parameter(self, updates: list[torch.Tensor]) -> bool:
        """Whether :meth:`apply` on ``updates`` equals applying it to each update alone (no
        stacking, nothing shared across parameters); the optimizer shell may then run a whole
        chain one parameter at a time (see :class:`~matbal.optim.optimizer.ChainOptimizer`).
        Default False: an unknown transform keeps its whole list. A subclass that overrides
        :meth:`apply` must declare this again: the shell does not trust an answer inherited
        from above the ``apply`` it runs."""
        return False

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({opts})"
