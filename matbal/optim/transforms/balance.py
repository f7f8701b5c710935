"""Balance each matrix update with any matbal balancing kernel (MuonEq R/C/RC, RACS, Sinkhorn, …).

Methods:
- ``"muoneq_rows"``, ``"muoneq_cols"``, ``"muoneq_rc"``: the MuonEq official-code scalings
  ``(rowsum(U⊙U)+ε)^e`` and/or ``(colsum(U⊙U)+ε)^e``, both from the same input, optionally clipped
  to ``[1/c, c]`` (github MaeChd/muon-eq, ``MuonEq._parallel_rowcol_normalize``; arXiv 2603.28254).
- any name accepted by :func:`matbal.balance` (``"rows"``, ``"cols"``, ``"rc"``, ``"racs"``,
  ``"sinkhorn"``, ``"ruiz"``, ``"knight_ruiz"``, ``"aol"``) with its options.

``switch_at=k, switch_to=method`` changes method from step ``k`` on (MuonEq's ``phase``: RC until
step ``phase``, then R; the official code switches when ``step >= phase``).

Batching: ``batch="auto"`` (default) stacks same-shape updates into one call where that was
measured to pay (:data:`~matbal.optim.transforms._batching.STACK_UP_TO`: on the CPU iterative
kernels up to width 128, the one-shot MuonEq scalings never; always on CUDA); ``True``/``False``
force it.

``racs`` runs as :func:`~matbal.kernels.balancing.racs_matrix` (the matrix alone; with fixed
``steps`` its lean path: no per-sweep residual or history, one host read per call).
"""
from __future__ import annotations

import torch

from ...kernels._checks import check_positive
from ...kernels.balancing import balance as balance_kernel
from ...kernels.balancing import racs_matrix
from ._batching import map_by_shape, stack_pays, stacks_any
from .base import StepContext, Transform

__all__ = ["Balance", "balance", "muoneq_scale"]

_MUONEQ = {"muoneq_rows": (True, False), "muoneq_cols": (False, True), "muoneq_rc": (True, True)}
#: kernels with a matrix-only form (no BalanceResult bookkeeping; a lean fixed-``steps`` path)
_MATRIX_ONLY = {"racs": racs_matrix}


def muoneq_scale(
    u: torch.Tensor,
    *,
    rows: bool,
    cols: bool,
    exponent: float = -0.5,
    eps: float = 1e-8,
    clip: float | None = None,
) -> torch.Tensor:
    """MuonEq one-shot scaling ``D_r^e U D_c^e`` with ``D = diag(sum of squares + eps)``, scales
    clipped to ``[1/clip, clip]``; both from the same input ``u`` of shape ``(..., m, n)``."""
    sq = u.to(torch.promote_types(u.dtype, torch.float32)).square()
    out = u
    for on, dim, unsq in ((rows, -1, -1), (cols, -2, -2)):
        if not on:
            continue
        s = (sq.sum(dim) + eps).pow(exponent)
        if clip is not None:
            s = s.clamp(1.0 / clip, clip)
        out = out * s.unsqueeze(unsq).to(u.dtype)
    return out


class Balance(Transform):
    """Apply a balancing kernel to each matrix update (same-shape ones batched)."""

    name = "balance"

    def __init__(self, method: str = "racs", *, switch_at: int | None = None,
                 switch_to: str | None = None, batch: bool | str = "auto", **opts):
        if switch_at is not None:
            check_positive(switch_at, "switch_at", integer=True)
            if switch_to is None:
                raise ValueError("switch_to must name a method when switch_at is given")
        if not (isinstance(batch, bool) or (isinstance(batch, str) and batch == "auto")):
            raise ValueError(f"batch must be True, False or 'auto', got {batch!r}")
        self.method, self.switch_at, self.switch_to = method, switch_at, switch_to
        self.opts, self.batch = opts, batch
        # validate the method names and options once, on a tiny matrix
        probe = torch.ones(2, 3)
        for m in {method, switch_to} - {None}:
            self._kernel(m)(probe)

    def _kernel(self, method: str):
        if method in _MUONEQ:
            rows, cols = _MUONEQ[method]
            return lambda x: muoneq_scale(x, rows=rows, cols=cols, **self.opts)
        if method in _MATRIX_ONLY:
            return lambda x: _MATRIX_ONLY[method](x, **self.opts)
        return lambda x: balance_kernel(x, method=method, **self.opts).matrix

    def _batch(self, method: str):
        """``map_by_shape``'s ``batch`` for ``method`` (``"auto"``: the measured table)."""
        if self.batch != "auto":
            return self.batch
        kernel = "scale" if method in _MUONEQ else "balance"
        return lambda x: stack_pays(kernel, x)

    def per_parameter(self, updates) -> bool:
        """True unless some of ``updates`` would be stacked (by either method)."""
        return not any(stacks_any(updates, self._batch(m))
                       for m in {self.method, self.switch_to} - {None})

    def apply(self, updates, states, ctx: StepContext):
        if not ctx.matrix:
            raise ValueError("balance needs matrix parameters (route others to AdamW)")
        if self.switch_at is None:
            return map_by_shape(self._kernel(self.method), updates, batch=self._batch(self.method))
        before = [i for i, t in enumerate(ctx.steps) if t < self.switch_at]
        after = [i for i, t in enumerate(ctx.steps) if t >= self.switch_at]
        out: list = [None] * len(updates)
        for idx, m in ((before, self.method), (after, self.switch_to)):
            res = map_by_shape(self._kernel(m), [updates[i] for i in idx], batch=self._batch(m))
            for i, r in zip(idx, res):
                out[i] = r
        return out


def balance(method: str = "racs", **opts) -> Balance:
    """Balancing transform (see :class:`Balance`).

    >>> t = balance("racs", p=2, steps=5)
    """
    return Balance(method, **opts)
