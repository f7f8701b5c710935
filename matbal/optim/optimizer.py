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
  (``nonfinite="skip"``); weights never silently become NaN — unless you opt out with
  ``nonfinite="unchecked"``: no screen at all, a NaN/Inf gradient reaches the weights as it does
  in ``torch.optim`` (the screen's one read of every gradient is ~0.15–0.25 of an AdamW step;
  measured in BENCHMARKS.md, ``python -m benchmarks.bench_optim --part adamw``);
- a step is all-or-nothing: every group's gradients are checked (one fused pass) before any
  group is updated, so a refused step leaves weights, state and step counts as they were;
- a group whose chain is exactly torch.optim.AdamW's (``scale_by_adam → add_decayed_weights``,
  as the presets build for non-matrix parameters) runs torch's fused AdamW kernel on its plain
  (non-DTensor) tensors: the same update and the same state entries, one pass over the
  parameters (:func:`~matbal.optim.transforms.adam.fused_adamw_`; ``fused=False``: run the chain);
- on the CPU a group whose transforms all treat each update on its own
  (:meth:`~matbal.optim.transforms.Transform.per_parameter`: no same-shape stacking, no taps)
  runs one parameter at a time through the whole chain and into its weight: the same operations
  per tensor (the same bits), with each matrix still in cache for the next transform;
- ``state_dict``/``load_state_dict`` round trip bit-exactly: state tensors keep their own dtype
  (torch's base class would cast them to the parameter's dtype); chains are not serialized (they
  are code): the state dict records each group's chain description and transform kinds, the
  loading optimizer's chains are used, state it cannot use (other transforms, missing entries,
  other shapes) is refused with ``ValueError`` before anything changes, and a chain that
  differs only in hyperparameters warns.

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

import functools

import math
import warnings
from typing import Any

import torch

from ..kernels._checks import check_choice, check_positive
from .chain import Chain
from .transforms.adam import ScaleByAdam, fused_adamw_
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
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"unchecked"`` (see module docstring).
    fused : run groups whose chain is exactly ``scale_by_adam → add_decayed_weights`` with
        torch's fused AdamW kernel (default True; see module docstring).
    """

    def __init__(self, params, *, chain: Chain | None = None, lr: float = 1e-3,
                 matrix: bool = False, nonfinite: str = "raise", fused: bool = True):
        check_positive(lr, "lr", allow_zero=True)
        check_choice(nonfinite, "nonfinite", ("raise", "skip", "unchecked"))
        if not isinstance(fused, bool):
            raise TypeError(f"fused must be True or False, got {fused!r}")
        self.nonfinite, self.fused = nonfinite, fused
        self._refused: set[int] | None = None  # set during step(): ids of params to skip
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
            if p.is_floating_point() and g["lr"] > torch.finfo(p.dtype).max:
                raise ValueError(f"lr={g['lr']!r} overflows parameter {name}'s dtype {p.dtype} "
                                 f"(max {torch.finfo(p.dtype).max:.3g})")
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
        """One optimization step; returns the closure's loss when a closure is given.

        All-or-nothing: every group's gradients are screened first (sparse, non-finite) and a
        refused step raises before any weight, state entry or step count has changed."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._refused = self._screen(self.param_groups)
        try:
            for group in self.param_groups:
                self._step_group(group)
        finally:
            self._refused = None
        return loss

    def _screen(self, groups) -> set[int]:
        """``id``s of the parameters of ``groups`` whose gradients hold NaN/Inf, found by one
        fused check over all of them (:func:`_nonfinite`); raises instead, before anything is
        updated, on a sparse gradient or (``nonfinite="raise"``) a non-finite one."""
        live = [(p, name) for g in groups for p, name in zip(g["params"], g["names"])
                if p.grad is not None]
        for p, name in live:
            if p.grad.is_sparse:
                raise RuntimeError(f"parameter {name}: sparse gradients are not supported")
        if self.nonfinite == "unchecked":  # opted out: torch.optim's behaviour, no extra read
            return set()
        bad = sorted(self._find_nonfinite([p.grad for p, _ in live]))
        if bad and self.nonfinite == "raise":
            names = [live[i][1] for i in bad]
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            raise FloatingPointError(
                f"non-finite gradient (NaN/Inf) in parameter {names[0]}{more}; nothing was "
                "updated; pass nonfinite='skip' to skip such parameters' steps")
        return {id(live[i][0]) for i in bad}

    def _expected_state(self, group: dict, p: torch.Tensor) -> dict[str, Any]:
        """The state this optimizer creates for ``p`` on its first step (keys and shapes; what
        :meth:`load_state_dict` checks a loaded state against)."""
        return _init_state(group["chain"], p, self.matrix_view(p) if group["matrix"] else None)

    def _find_nonfinite(self, grads: list[torch.Tensor]) -> set[int]:
        """Indices of the non-finite gradients among ``grads`` (a sharded subclass makes every
        rank agree)."""
        return _nonfinite(grads)

    def _step_group(self, group: dict) -> None:
        refused = getattr(self, "_refused", None)
        if refused is None:  # called outside step(): screen this group alone
            refused = self._screen([group])
        params, names = [], []
        for p, name in zip(group["params"], group["names"]):
            if p.grad is None:
                continue
            if id(p) in refused:  # nonfinite="skip"
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
        head, decay = _split_trailing_decay(chain)
        lr = float(group["lr"])
        if not matrix and self._fused_adamw(head, decay, lr, params, updates, states, steps):
            return
        if _pipelines(head, params, updates):
            # one parameter at a time through the whole chain and into its weight: each matrix
            # stays in cache from its momentum to its update (REG on a GPT's 16 matrices:
            # 0.72–0.75× the time of the chain over the whole list, BENCHMARKS.md session 7);
            # the same operations per tensor, so the same bits
            for i in range(len(params)):
                ctx = StepContext(params=params[i:i + 1], steps=steps[i:i + 1],
                                  names=names[i:i + 1], group=group, matrix=matrix,
                                  views=views[i:i + 1] if views is not None else None)
                self._apply(head(updates[i:i + 1], states[i:i + 1], ctx), params[i:i + 1],
                            views[i:i + 1] if views is not None else None, lr, decay)
            return
        ctx = StepContext(params=params, steps=steps, names=names, group=group, matrix=matrix,
                          views=views)
        out = head(updates, states, ctx) if head is not None else updates
        self._apply(out, params, views, lr, decay)

    @staticmethod
    def _apply(out, params, views, lr: float, decay: float) -> None:
        """``p ← p(1 − lr·λ) − lr·u`` for the chain's outputs ``out`` (matrix views mapped back)."""
        if views is not None:
            out = [v.storage(u, p.shape) for p, v, u in zip(params, views, out)]
        out = [u if u.shape == p.shape and u.dtype == p.dtype else u.reshape(p.shape).to(p.dtype)
               for p, u in zip(params, out)]  # no-op casts skipped (a fixed cost per tensor)
        if len(params) == 1 and params[0].device.type == "cpu":  # the per-parameter pipeline: the
            # foreach kernels' CPU loop, unrolled
            p = params[0]
            if decay:
                p.mul_(1.0 - lr * decay)
            p.add_(out[0], alpha=-lr)
            return
        if decay:
            torch._foreach_mul_(params, 1.0 - lr * decay)
        torch._foreach_add_(params, out, alpha=-lr)

    def _fused_adamw(self, head, decay, lr, params, grads, states, steps) -> bool:
        """Run the step of a non-matrix group with torch's fused AdamW kernel when its chain
        ``head`` (+ trailing ``decay``) is exactly AdamW's and the tensors allow it (plain, or a
        DTensor's local shards); False (nothing changed) otherwise."""
        if not (self.__dict__.get("fused", True) and _is_adam(head)):
            return False
        adam = head.transforms[0]
        return fused_adamw_(params, grads, [st["0.exp_avg"] for st in states],
                            [st["0.exp_avg_sq"] for st in states], steps, lr=lr,
                            betas=adam.betas, eps=adam.eps, weight_decay=decay)

    # --- serialization -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        for g in sd["param_groups"]:
            g["transforms"] = _kinds(g["chain"])
            g["chain"] = repr(g["chain"])  # description only; chains are code, not data
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load ``state_dict`` after checking that this optimizer can use it; on any mismatch
        raise ``ValueError`` naming the group or parameter and what differs (the number of
        groups or parameters, the chain's transforms, a state entry's presence or shape), and
        leave the optimizer as it was. A chain with the same transforms but other
        hyperparameters (e.g. momentum 0.9 instead of 0.95) only warns."""
        saved_groups = state_dict["param_groups"]
        _check_loadable(self, state_dict)
        groups = []
        for i, (sg, g) in enumerate(zip(saved_groups, self.param_groups)):
            if sg.get("chain") != repr(g["chain"]):
                warnings.warn(f"param group {i}: loaded state was made by a different chain "
                              f"({sg.get('chain')}); using this optimizer's {g['chain']!r}",
                              stacklevel=2)
            groups.append({**{k: v for k, v in sg.items() if k != "transforms"},
                           "chain": g["chain"]})
        super().load_state_dict({**state_dict, "param_groups": groups})
        # restore state tensors with their saved dtypes (the base class casts to param dtype)
        id_to_param = {pid: p for sg, g in zip(saved_groups, self.param_groups)
                       for pid, p in zip(sg["params"], g["params"])}
        for pid, st in state_dict["state"].items():
            p = id_to_param[pid]
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    self.state[p][k] = v.to(device=p.device, copy=True)


def _kinds(chain: Chain) -> list[str]:
    """The chain's transform kinds in order: each transform's ``repr`` up to its first
    parenthesis (a wrapper that keeps the inner transform's repr, like an instrument, is
    transparent)."""
    return [repr(t).partition("(")[0] for t in chain.transforms]


def _check_loadable(opt: ChainOptimizer, sd: dict[str, Any]) -> None:
    """Raise ``ValueError`` when ``opt`` cannot use the state in ``sd`` (see
    :meth:`ChainOptimizer.load_state_dict`); changes nothing."""
    saved_groups, state = sd.get("param_groups"), sd.get("state")
    if not isinstance(saved_groups, list) or not isinstance(state, dict):
        raise ValueError("state_dict must hold 'param_groups' (a list) and 'state' (a dict)")
    if len(saved_groups) != len(opt.param_groups):
        raise ValueError(f"state_dict has {len(saved_groups)} param groups, optimizer has "
                         f"{len(opt.param_groups)}")
    owner: dict[Any, tuple[int, int]] = {}
    for i, (sg, g) in enumerate(zip(saved_groups, opt.param_groups)):
        where = f"param group {i}" + (f" ({g['label']})" if g.get("label") else "")
        if len(sg["params"]) != len(g["params"]):
            raise ValueError(f"{where}: state_dict has {len(sg['params'])} parameters, the "
                             f"optimizer has {len(g['params'])}")
        mine = _kinds(g["chain"])
        if "transforms" in sg and list(sg["transforms"]) != mine:
            raise ValueError(f"{where}: state_dict was made by a chain of {list(sg['transforms'])}"
                             f" (another optimizer or preset), this optimizer runs {mine}")
        for j, pid in enumerate(sg["params"]):
            owner[pid] = (i, j)
    for pid, st in state.items():
        if pid not in owner:
            raise ValueError(f"state_dict has state for parameter id {pid!r}, which is in no "
                             "param group")
        i, j = owner[pid]
        g = opt.param_groups[i]
        p, name = g["params"][j], g["names"][j]
        keys = set(st) - {"skipped"}
        if not keys:  # never stepped (only skipped, or nothing)
            continue
        want = {"step": 0, **opt._expected_state(g, p)}
        missing = sorted(set(want) - keys)
        if missing:
            raise ValueError(f"parameter {name}: state_dict lacks state {missing} that this "
                             f"optimizer's chain keeps (has {sorted(keys)}): another optimizer "
                             "or preset")
        for k, w in want.items():
            v = st[k]
            if isinstance(w, torch.Tensor) and (not isinstance(v, torch.Tensor)
                                                or v.shape != w.shape):
                got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise ValueError(f"parameter {name} (shape {tuple(p.shape)}): state {k!r} has "
                                 f"shape {got}, this optimizer needs {tuple(w.shape)}: state "
                                 "from a model with other shapes")


def _init_state(chain: Chain, p: torch.Tensor, view, **span) -> dict[str, Any]:
    """The state ``chain.init`` gives ``p`` (through its :class:`~matbal.optim.views.MatrixView`
    ``view`` in a matrix group, ``None`` otherwise; ``p`` may be a shape), built on the meta device
    (no memory) unless a transform's ``init`` needs real data. ``span``: ``start``/``stop`` of the
    transforms (a chain run in pieces)."""
    shape = tuple(p.shape) if isinstance(p, torch.Tensor) else tuple(p)
    dtype = p.dtype if isinstance(p, torch.Tensor) else torch.float32
    shape = view.matrix_shape(shape) if view is not None else shape
    try:
        return chain.init(torch.empty(shape, dtype=dtype, device="meta"), **span)
    except (RuntimeError, NotImplementedError):
        return chain.init(torch.zeros(shape, dtype=dtype), **span)


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


def _pipelines(head: Chain | None, params: list[torch.Tensor], updates: list) -> bool:
    """Whether a group's step runs one parameter at a time: more than one plain CPU tensor, and
    every transform of the chain says it treats each of these updates on its own
    (:meth:`~matbal.optim.transforms.Transform.per_parameter`: no stacking, no taps). On the CPU
    that keeps each matrix in cache through the chain; other devices keep the whole-list calls
    (fewer launches, foreach kernels)."""
    return (head is not None and len(params) > 1
            and all(p.device.type == "cpu" and type(p) in (torch.Tensor, torch.nn.Parameter)
                    for p in params)
            and all(_declares_per_parameter(type(t)) and t.per_parameter(updates)
                    for t in head.transforms))


@functools.lru_cache(maxsize=None)
def _declares_per_parameter(cls: type) -> bool:
    """Whether ``cls``'s :meth:`~matbal.optim.transforms.Transform.per_parameter` speaks for its
    own ``apply``: declared by the class that defines ``apply`` or by a subclass of it. A user's
    subclass that overrides ``apply`` of a built-in transform (e.g. one RMS over all the
    group's updates) does not inherit the built-in's answer: it keeps its whole list."""
    def owner(name):
        return next(k for k in cls.__mro__ if name in vars(k))
    return issubclass(owner("per_parameter"), owner("apply"))


def _is_adam(head: Chain | None) -> bool:
    """Whether ``head`` (a chain less its trailing decay) is exactly ``scale_by_adam`` — the
    chain torch's fused AdamW kernel computes."""
    return head is not None and len(head) == 1 and type(head.transforms[0]) is ScaleByAdam


def _nonfinite(grads: list[torch.Tensor]) -> set[int]:
    """Indices of gradients holding NaN/Inf.

    One read of every gradient, reduced to one number per tensor that is finite only when all of
    its entries are (NaN/Inf propagate through a sum: ``inf + x = inf``, ``inf − inf = NaN``), and
    one host read for the whole list; the common case (all finite) costs nothing else. On the
    CPU the number is the plain sum (float32 accumulation for half types): one load per entry
    and no multiply, 0.85–0.9× the time of the 2-norm pass it replaces (BENCHMARKS.md, session
    7); elsewhere one fused ``torch._foreach_norm(grads, 2)`` launch. A non-finite value may also
    come from finite entries whose sum (or sum of squares) overflows: those tensors alone are
    then checked entry by entry, so the answer is exact. (The max-abs norm, ``ord=inf``, is exact
    in one pass too but takes a slow reduction path on the CPU: 12× the 2-norm's time,
    BENCHMARKS §4.)"""
    if not grads:
        return set()
    if all(g.device.type == "cpu" for g in grads):
        vals = [g.sum(dtype=torch.float32) if g.dtype in _HALF else g.sum() for g in grads]
    else:
        vals = torch._foreach_norm(grads, 2)
    if bool(torch.isfinite(torch.stack([v.float() for v in vals])).all()):
        return set()
    return {i for i, (g, v) in enumerate(zip(grads, vals))
            if not bool(torch.isfinite(v)) and not bool(torch.isfinite(g).all())}


_HALF = (torch.float16, torch.bfloat16)
