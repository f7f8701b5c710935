"""``ChainOptimizer``: one ``torch.optim.Optimizer`` that runs a :class:`Chain` per parameter group.

The shell only keeps books — param groups, per-parameter state, step counts, ``state_dict`` — and
applies ``p ← p − lr·u`` where ``u`` is what the group's chain returns (a trailing
``add_decayed_weights(λ)`` is applied as ``p ← p(1 − lr·λ) − lr·u``: the same update, one pass
fewer). Matrix groups
(``matrix=True``) hand the chain each gradient through its matrix view (group key ``views``: one
:class:`~matbal.optim.views.MatrixView` spec per parameter, default ``"matrix"``: ``(out, in·k·k)``;
``"transpose"``: HF Conv1D; ``"split3"``: fused QKV as a ``(3, d, d)`` batch) and write the
chain's output back in the stored layout.

Guarantees:
- ``p.grad`` is never modified; a zero gradient gives a zero direction (weight decay aside);
- non-finite gradients raise ``FloatingPointError`` naming the parameter (``nonfinite="raise"``,
  default) or skip that parameter's step and count it in ``state[p]["skipped"]``
  (``nonfinite="skip"``); weights never silently become NaN;
- ``state_dict``/``load_state_dict`` round trip bit-exactly: state tensors keep their own dtype
  (torch's base class would cast them to the parameter's dtype); chains are not serialized (they
  are code): the loading optimizer's chains are used, and a differing chain description warns.

Example
-------
>>> import torch
>>> from matbal.optim import ChainOptimizer, Chain
>>> from matbal.optim.transforms import scale_by_adam, add_decayed_weights
>>> w = torch.nn.Parameter(torch.randn(3, 4))
>>> opt = ChainOptimizer([w], chain=Chain(scale_by_adam(), add_decayed_weights(0.01)), lr=1e-3)
>>> w.grad = torch.ones_like(w); opt.step()
"""
from __future__ import annotations

import warnings
from typing import Any

import torch

from ..kernels._checks import check_choice, check_positive
from .chain import Chain
from .transforms.base import StepContext
from .transforms.weight_decay import AddDecayedWeights
from .views import MATRIX, parse_view

__all__ = ["ChainOptimizer"]


class ChainOptimizer(torch.optim.Optimizer):
    """Run ``group["chain"]`` on each param group's gradients, then ``p ← p − lr·u``.

    Parameters
    ----------
    params : iterable of tensors or of dicts (param groups). Group keys: ``chain`` (a
        :class:`Chain`), ``lr``, ``matrix`` (bool: flatten to 2-D), ``names`` (list of str),
        ``label`` (str, e.g. ``"matrix"``/``"adamw"``), ``views`` (matrix groups: one view spec
        per parameter, see :func:`matbal.optim.views.parse_view`), and any user keys.
    chain, lr, matrix : defaults for groups that do not set them.
    nonfinite : ``"raise"`` or ``"skip"`` (see module docstring).
    """

    def __init__(self, params, *, chain: Chain | None = None, lr: float = 1e-3,
                 matrix: bool = False, nonfinite: str = "raise"):
        check_positive(lr, "lr", allow_zero=True)
        check_choice(nonfinite, "nonfinite", ("raise", "skip"))
        self.nonfinite = nonfinite
        defaults = {"lr": lr, "chain": chain, "matrix": matrix, "names": None, "label": None,
                    "views": None}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        if not isinstance(g["chain"], Chain):
            raise TypeError(f"param group {len(self.param_groups) - 1}: chain must be a "
                            f"matbal Chain, got {type(g['chain']).__name__}")
        check_positive(g["lr"], "lr", allow_zero=True)
        if g["names"] is None:
            g["names"] = [f"param{i}" for i in range(len(g["params"]))]
        elif len(g["names"]) != len(g["params"]):
            raise ValueError(f"names has {len(g['names'])} entries for {len(g['params'])} params")
        for p, name in zip(g["params"], g["names"]):
            if p.is_complex():
                raise TypeError(f"parameter {name}: complex parameters are not supported")
            if g["matrix"] and p.ndim < 2:
                raise ValueError(f"parameter {name} has shape {tuple(p.shape)}: a matrix group "
                                 "needs >= 2-D parameters (route it to AdamW)")
        self._set_views(g)

    def _set_views(self, g: dict) -> None:
        """Parse and check the group's matrix views; kept by parameter identity so that any
        subset of a group (a rank's share) finds its views."""
        if not g["matrix"]:
            g["views"] = None
            return
        specs = g["views"] if g["views"] is not None else ["matrix"] * len(g["params"])
        if isinstance(specs, str) or len(specs) != len(g["params"]):
            raise ValueError(f"views must be a list with one spec per parameter "
                             f"({len(g['params'])}), got {specs!r}")
        views = [parse_view(v) for v in specs]
        for p, name, v in zip(g["params"], g["names"], views):
            v.check(p.shape, f"parameter {name}")
        g["views"] = [v.spec for v in views]
        if "_views" not in self.__dict__:
            self._views = {}
        self._views.update((id(p), v) for p, v in zip(g["params"], views))

    def matrix_view(self, p: torch.Tensor):
        """The :class:`~matbal.optim.views.MatrixView` of a matrix-group parameter ``p``."""
        return self.__dict__.get("_views", {}).get(id(p), MATRIX)

    @torch.no_grad()
    def step(self, closure=None):
        """One optimization step; returns the closure's loss when a closure is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict) -> None:
        live = [(p, name) for p, name in zip(group["params"], group["names"])
                if p.grad is not None]
        for p, name in live:
            if p.grad.is_sparse:
                raise RuntimeError(f"parameter {name}: sparse gradients are not supported")
        bad = _nonfinite([p.grad for p, _ in live])
        params, names = [], []
        for i, (p, name) in enumerate(live):
            if i in bad:
                if self.nonfinite == "raise":
                    raise FloatingPointError(
                        f"non-finite gradient (NaN/Inf) in parameter {name}; pass "
                        "nonfinite='skip' to skip such steps")
                st = self.state[p]
                st["skipped"] = st.get("skipped", 0) + 1
                continue
            params.append(p)
            names.append(name)
        if not params:
            return
        chain: Chain = group["chain"]
        matrix = bool(group["matrix"])
        views = [self.matrix_view(p) for p in params] if matrix else None
        updates = [v.matrix(p.grad) for p, v in zip(params, views)] if matrix else \
            [p.grad for p in params]
        states, steps = [], []
        for p, u in zip(params, updates):
            st = self.state[p]
            if "step" not in st:
                st["step"] = 0
                st.update(chain.init(u))
            st["step"] += 1
            states.append(st)
            steps.append(st["step"])
        ctx = StepContext(params=params, steps=steps, names=names, group=group, matrix=matrix,
                          views=views)
        head, decay = _split_trailing_decay(chain)
        out = head(updates, states, ctx) if head is not None else updates
        lr = float(group["lr"])
        if decay:
            torch._foreach_mul_(params, 1.0 - lr * decay)
        if matrix:
            out = [v.storage(u, p.shape) for p, v, u in zip(params, views, out)]
        torch._foreach_add_(params, [u.reshape(p.shape).to(p.dtype) for p, u in zip(params, out)],
                            alpha=-lr)

    # --- serialization -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        for g in sd["param_groups"]:
            g["chain"] = repr(g["chain"])  # description only; chains are code, not data
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(saved_groups)} param groups, optimizer has "
                             f"{len(self.param_groups)}")
        groups = []
        for i, (sg, g) in enumerate(zip(saved_groups, self.param_groups)):
            if sg.get("chain") != repr(g["chain"]):
                warnings.warn(f"param group {i}: loaded state was made by a different chain "
                              f"({sg.get('chain')}); using this optimizer's {g['chain']!r}",
                              stacklevel=2)
            groups.append({**sg, "chain": g["chain"]})
        super().load_state_dict({**state_dict, "param_groups": groups})
        # restore state tensors with their saved dtypes (the base class casts to param dtype)
        id_to_param = {pid: p for sg, g in zip(saved_groups, self.param_groups)
                       for pid, p in zip(sg["params"], g["params"])}
        for pid, st in state_dict["state"].items():
            p = id_to_param[pid]
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    self.state[p][k] = v.to(device=p.device, copy=True)


def _split_trailing_decay(chain: Chain) -> tuple[Chain | None, float]:
    """``(head, λ)``: the chain without its trailing plain ``add_decayed_weights`` transforms and
    their summed decay, which the shell applies as ``p ← p(1 − lr·λ) − lr·u`` instead of
    ``p ← p − lr·(u + λp)`` — the same update (torch.optim.AdamW's and torch.optim.Muon's order
    of operations) with one pass over the parameters fewer and no new tensor. ``head`` keeps the
    transforms' indices (so their state keys); it is None when the chain is decay only.
    A decay wrapped by an instrument (it then has taps to call) is not split off. Cached on the
    chain (chains are immutable)."""
    cached = getattr(chain, "_split_decay", None)
    if cached is not None:
        return cached
    ts = chain.transforms
    k = len(ts)
    while k > 0 and type(ts[k - 1]) is AddDecayedWeights:
        k -= 1
    if k == len(ts):
        out = (chain, 0.0)
    else:
        out = ((Chain(*ts[:k]) if k else None), sum(t.weight_decay for t in ts[k:]))
    chain._split_decay = out
    return out


def _nonfinite(grads: list[torch.Tensor]) -> set[int]:
    """Indices of gradients holding NaN/Inf.

    One fused 2-norm pass over the list (``torch._foreach_norm(grads, 2)``): a finite norm proves
    every entry finite (NaN/Inf propagate through the sum of squares), so the common case costs
    one read. A non-finite norm may also come from finite entries whose squares overflow (|g| ≳
    1e19 in float32): those tensors alone are then checked entry by entry, so the answer is exact.
    (The max-abs norm, ``ord=inf``, is exact in one pass too but takes a slow reduction path on
    the CPU: 12× the 2-norm's time, BENCHMARKS §4.)"""
    if not grads:
        return set()
    norms = torch._foreach_norm(grads, 2)
    if bool(torch.isfinite(torch.stack([n.float() for n in norms])).all()):
        return set()
    return {i for i, (g, n) in enumerate(zip(grads, norms))
            if not bool(torch.isfinite(n)) and not bool(torch.isfinite(g).all())}
