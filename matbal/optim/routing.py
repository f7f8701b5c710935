"""Parameter routing: which parameters a preset's matrix chain trains, seen how, and why.

:func:`route` labels every trainable parameter of a model ``"matrix"`` or ``"adamw"`` from its
module's *type* (the table :data:`matbal.optim.routing_rules.RULES`: ``nn.Linear``, convs,
``nn.MultiheadAttention``, transformers' ``Conv1D``; embeddings → AdamW), never from ``ndim``
alone, and gives each matrix its :class:`~matbal.optim.views.MatrixView` (conv flattened, Conv1D
transposed, fused QKV split). Then, in this order of precedence (highest first):

1. ``label_fn(name, param, module) → "matrix" | "adamw" | None`` (None: no opinion);
2. ``exclude``: globs over parameter names → AdamW (wins over ``include``);
3. ``include``: globs → matrix (a ≥2-D parameter; its rule's view, else the plain view);
4. the output head → AdamW (``head=``, below);
5. the type rules; a parameter tied to an ``nn.Embedding`` → AdamW.

Output head (``head="auto"``), independent of registration order: a matrix layer whose weight is
tied to an embedding; a layer named in ``HEAD_NAMES`` (``lm_head``, ``head``, ``classifier``,
``fc_out``, ``output``, ``out_head``, ``score``; ``fc`` at top level), or the last matrix layer
inside a container so named (``classifier.6``) — neither inside a numbered block, where a layer
named ``output`` is a hidden matrix (BERT's ``layer.3.output.dense``); the last layer of a model that is an
``nn.Sequential`` (registration order is call order there). Which module's output feeds the loss
is not knowable from the module tree, so when none of these applies :func:`route` warns
(:class:`RoutingWarning`) and routes no layer as head: pass ``head="name"`` (module names or globs)
or ``head=None`` (no head).

Fused QKV: ``nn.MultiheadAttention.in_proj_weight`` and fused projections named in
``QKV_NAMES`` (GPT-2 ``c_attn``) are matrices. ``split_qkv=True`` hands the chain their three
``(d, d)`` blocks Q, K, V as separate matrices (a ``(3, d, d)`` batch: momentum, NS, balancing and
scaling act per block — tested equal to separate Q, K, V projections for every preset). Q, K and V
are three different linear maps and orthogonalizing the stacked ``(3d, d)`` matrix equalizes the
singular values of the stack, not of each map: modded-nanogpt (github KellerJordan/modded-nanogpt)
views its fused attention weight as separate matrices before Newton–Schulz, Moonlight
(arXiv 2502.16982) trains separate Q/K/V projections, and arXiv 2605.08933 ("When and Why Grouping
Attention Heads Accelerates Muon") reports that an appropriate grouping beats full-QKV Muon on
GPT-2 Small.
The default is nevertheless ``split_qkv=False``: a parameter is one matrix as stored — what
``torch.optim.Muon`` and KellerJordan/Muon's ``MuonWithAuxAdam`` do with the same weights, and what
every GPT run recorded in this repository used (its ``c_attn`` is fused); the routing table says
which was used ("fused QKV kept as one matrix").

>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> label_params(net)
{'0.weight': 'matrix', '0.bias': 'adamw', '2.weight': 'adamw', '2.bias': 'adamw'}
>>> print(routing_table(nn.MultiheadAttention(8, 2), head=None, split_qkv=True))  # doctest: +NORMALIZE_WHITESPACE
name            shape    label   matrix view         why
in_proj_weight  (24, 8)  matrix  3×(8, 8) qkv split  nn.MultiheadAttention fused QKV (3d, d); split into Q, K, V (split_qkv=True)
in_proj_bias    (24,)    adamw   –                   < 2-D (bias, gain, scalar)
out_proj.weight (8, 8)   matrix  (8, 8)              nn.Linear weight
out_proj.bias   (8,)     adamw   –                   < 2-D (bias, gain, scalar)
"""
from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import torch
from torch import nn

from .routing_rules import (HEAD_NAMES, QKV_NAMES, RULES, TOP_LEVEL_HEAD_NAMES, Rule,
                            rule_for)
from .views import MATRIX, MatrixView, parse_view

__all__ = ["Route", "RoutingTable", "RoutingWarning", "route", "label_params", "split_params",
           "routing_table", "HEAD_NAMES"]

LABELS = ("matrix", "adamw")
SMALL = "< 2-D (bias, gain, scalar)"


class RoutingWarning(UserWarning):
    """Routing could not decide something (the head, an unknown ≥2-D module type) and says so."""


@dataclass(frozen=True)
class Route:
    """One parameter's routing decision: ``label`` (``"matrix"``/``"adamw"``), the ``view`` the
    matrix chain sees (None for AdamW), ``why``, the owning ``module`` type, and ``unknown``:
    a ≥2-D parameter of a module type no rule covers (it lands in AdamW; presets warn)."""

    name: str
    shape: tuple
    label: str
    view: MatrixView | None
    why: str
    module: str = ""
    unknown: bool = False

    @property
    def view_text(self) -> str:
        return self.view.describe(self.shape) if self.view is not None else "–"


class RoutingTable:
    """The routes of a model or optimizer; ``print`` it, index it by name, iterate its rows.

    ``params``: the tensors, aligned with ``routes`` (None for a table read from an optimizer
    without them)."""

    COLUMNS = ("name", "shape", "label", "matrix view", "why")

    def __init__(self, routes: Iterable[Route], params: list[torch.Tensor] | None = None):
        self.routes = list(routes)
        self.params = params

    def __iter__(self):
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)

    def __getitem__(self, name: str) -> Route:
        for r in self.routes:
            if r.name == name:
                return r
        raise KeyError(name)

    def labels(self) -> dict[str, str]:
        """``{name: label}``."""
        return {r.name: r.label for r in self.routes}

    def rows(self) -> list[dict]:
        """One dict per parameter (the printed columns), e.g. for CSV export."""
        return [dict(zip(self.COLUMNS, (r.name, tuple(r.shape), r.label, r.view_text, r.why)))
                for r in self.routes]

    def __str__(self) -> str:
        cells = [list(self.COLUMNS)] + [[str(v) for v in row.values()] for row in self.rows()]
        widths = [max(len(c[i]) for c in cells) for i in range(len(self.COLUMNS) - 1)]
        return "\n".join("  ".join([c.ljust(w) for c, w in zip(row, widths)] + [row[-1]])
                         for row in cells)

    __repr__ = __str__


# --- routing a module --------------------------------------------------------------------------
def _globs(value, arg: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    value = tuple(value)
    if not all(isinstance(v, str) for v in value):
        raise TypeError(f"{arg} must be a glob string or a list of them, got {value!r}")
    return value


def _match(name: str, globs: tuple[str, ...]) -> str | None:
    return next((g for g in globs if fnmatch.fnmatchcase(name, g)), None)


def _rule_route(full, p, mod_name, mod, rule: Rule | None, split_qkv: bool, tied: str | None):
    kind = type(mod).__name__
    if rule is None:
        if p.ndim < 2:
            return Route(full, tuple(p.shape), "adamw", None, SMALL, kind)
        return Route(full, tuple(p.shape), "adamw", None,
                     f"{kind} is not in the routing table: AdamW (include=/rules= route it "
                     "as a matrix)", kind, unknown=True)
    if rule.label == "adamw" or p.ndim < 2:
        return Route(full, tuple(p.shape), "adamw", None, rule.why if p.ndim >= 2 else SMALL, kind)
    if tied is not None:
        return Route(full, tuple(p.shape), "adamw", None,
                     f"output head: weight tied to embedding '{tied}': AdamW", kind)
    view, why = rule.view, rule.why
    fused = rule.qkv == "always" or (rule.qkv == "by_name"
                                     and mod_name.split(".")[-1] in QKV_NAMES)
    if fused:
        m, n = view.matrix_shape(p.shape)
        if m != 3 * n:
            why += f"; named like a fused QKV but not (3d, d): one matrix"
        elif split_qkv:
            view, why = replace(view, blocks=3), why + "; split into Q, K, V (split_qkv=True)"
        else:
            why += "; fused QKV kept as one matrix (split_qkv=False)"
    return Route(full, tuple(p.shape), "matrix", view, why, kind)


def _in_repeated_block(parts: list[str]) -> bool:
    """True inside a numbered block (``encoder.layer.3.…``, ``h.0.…``): a head is never per layer,
    so BERT's ``layer.3.output.dense`` (``BertOutput``) is a hidden matrix, not a head."""
    return any(p.isdigit() for p in parts)


def _auto_heads(model: nn.Module, matrix_modules: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    containers: dict[str, str] = {}
    for name in matrix_modules:
        parts = name.split(".")
        if parts[-1] in HEAD_NAMES and not _in_repeated_block(parts[:-1]):
            found[name] = f"named '{parts[-1]}'"
        elif len(parts) == 1 and parts[0] in TOP_LEVEL_HEAD_NAMES:
            found[name] = f"top-level '{parts[0]}'"
        else:
            for i in range(len(parts) - 1, 0, -1):
                if parts[i - 1] in HEAD_NAMES and not _in_repeated_block(parts[:i - 1]):
                    containers[".".join(parts[:i])] = name  # the last registered one wins
                    break
    for prefix, name in containers.items():
        if prefix not in found:
            found.setdefault(name, f"last matrix layer inside '{prefix}'")
    if not found and isinstance(model, nn.Sequential) and matrix_modules:
        found[matrix_modules[-1]] = "last layer of an nn.Sequential"
    return found


def _explicit_heads(head, candidates: list[str]) -> dict[str, str]:
    pats = _globs(head, "head")
    found = {}
    for pat in pats:
        hit = [n for n in candidates if n == pat or fnmatch.fnmatchcase(n, pat)]
        if not hit:
            more = " …" if len(candidates) > 8 else ""
            raise ValueError(f"head={pat!r} matches no module with a matrix parameter "
                             f"(candidates: {candidates[:8]}{more})")
        for n in hit:
            found[n] = f"head={pat!r}"
    return found


def _head_warning(n_matrix: int, last: str | None) -> None:
    warnings.warn(
        f"routing: could not tell which layer is the output head (no weight tied to an "
        f"embedding, no layer named {'/'.join(HEAD_NAMES)}, not an nn.Sequential); all "
        f"{n_matrix} matrix layers go to the matrix chain. Pass head='<module name>'"
        + (f" (e.g. head={last!r})" if last else "") + " or head=None if there is no head.",
        RoutingWarning, stacklevel=3)


def _apply_overrides(routes, entries, include, exclude, label_fn, base_views):
    include, exclude = _globs(include, "include"), _globs(exclude, "exclude")
    if label_fn is not None and not callable(label_fn):
        raise TypeError(f"label_fn must be callable(name, param, module), got {label_fn!r}")
    out = []
    for r, (p, mod), base in zip(routes, entries, base_views):
        src = lab = None
        if label_fn is not None:
            lab = label_fn(r.name, p, mod)
            if lab is not None and lab not in LABELS:
                raise ValueError(f"label_fn returned {lab!r} for {r.name}; expected 'matrix', "
                                 "'adamw' or None")
            src = "label_fn" if lab is not None else None
        if src is None and (g := _match(r.name, exclude)) is not None:
            src, lab = f"exclude={g!r}", "adamw"
        if src is None and (g := _match(r.name, include)) is not None:
            src, lab = f"include={g!r}", "matrix"
        if src is None or lab == r.label:
            out.append(r if src is None else replace(r, why=f"{src} ({r.why})"))
            continue
        if lab == "matrix":
            if p.ndim < 2:
                raise ValueError(f"{src}: parameter {r.name} has shape {tuple(p.shape)}; only "
                                 ">= 2-D parameters can go to a matrix chain")
            out.append(replace(r, label="matrix", view=base or MATRIX, unknown=False,
                               why=f"{src} (was: {r.why})"))
        else:
            out.append(replace(r, label="adamw", view=None, unknown=False,
                               why=f"{src} (was: {r.why})"))
    unused = [g for g in include + exclude
              if not any(fnmatch.fnmatchcase(r.name, g) for r in routes)]
    if unused:
        raise ValueError(f"include/exclude globs {unused} match no parameter name")
    return out


def route(model: nn.Module, *, head="auto", split_qkv: bool = False, include=None, exclude=None,
          label_fn: Callable | None = None, rules: Iterable[Rule] = ()) -> RoutingTable:
    """Route every trainable parameter of ``model`` (see the module docstring).

    Parameters
    ----------
    model : an ``nn.Module``. Shared (tied) parameters appear once, under their first name.
    head : ``"auto"``, ``None``, or module name(s)/glob(s) of the output head(s).
    split_qkv : hand fused QKV weights to the chain as three ``(d, d)`` matrices (default False:
        one matrix as stored; see the module docstring).
    include, exclude : glob(s) over parameter names forced to matrix / AdamW.
    label_fn : ``callable(name, param, module) → "matrix" | "adamw" | None``.
    rules : extra :class:`~matbal.optim.routing_rules.Rule` rows, tried before the built-in ones.

    Returns a :class:`RoutingTable` (with ``.params``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    rules = tuple(rules)
    if not all(isinstance(r, Rule) for r in rules):
        raise TypeError("rules must be matbal.optim.routing_rules.Rule objects")
    table = rules + RULES
    emb = {id(m.weight): n for n, m in model.named_modules()
           if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
    routes, entries, mods, base_views, seen = [], [], [], [], set()
    for mod_name, mod in model.named_modules():
        for p_name, p in mod.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            rule = rule_for(mod, p_name, table)
            tied = emb.get(id(p)) if not isinstance(mod, (nn.Embedding, nn.EmbeddingBag)) else None
            r = _rule_route(full, p, mod_name, mod, rule, split_qkv, tied)
            routes.append(r)
            entries.append((p, mod))
            mods.append(mod_name)
            base_views.append(r.view if r.label == "matrix" else
                              (rule.view if rule is not None and rule.label == "matrix" else None))
    matrix_modules = list(dict.fromkeys(m for m, r in zip(mods, routes) if r.label == "matrix"))
    if head is None:
        heads = {}
    elif isinstance(head, str) and head == "auto":
        heads = _auto_heads(model, matrix_modules)
        tied_head = any(id(getattr(m, "weight", None)) in emb for m in model.modules()
                        if not isinstance(m, (nn.Embedding, nn.EmbeddingBag)))
        if not heads and not tied_head and matrix_modules:
            _head_warning(len(matrix_modules), matrix_modules[-1])
    else:
        candidates = list(dict.fromkeys(m for m, r in zip(mods, routes) if len(r.shape) >= 2))
        heads = _explicit_heads(head, candidates)
    routes = [replace(r, label="adamw", view=None, why=f"output head ({heads[m]}): AdamW")
              if m in heads and len(r.shape) >= 2 else r for r, m in zip(routes, mods)]
    routes = _apply_overrides(routes, entries, include, exclude, label_fn, base_views)
    return RoutingTable(routes, [p for p, _ in entries])


def label_params(module: nn.Module, **opts) -> dict[str, str]:
    """``{name: "matrix" | "adamw"}`` for each trainable parameter (:func:`route`'s labels)."""
    return route(module, **opts).labels()


def split_params(params, **opts) -> dict[str, tuple[list[str], list[torch.Tensor]]]:
    """``{label: (names, params)}`` for any input a preset accepts (see
    :func:`matbal.optim.routing_inputs.normalize_params`); options as :func:`route`."""
    from .routing_inputs import normalize_params
    out: dict[str, tuple[list, list]] = {"matrix": ([], []), "adamw": ([], [])}
    for g in normalize_params(params, **opts):
        out[g.label][0].extend(r.name for r in g.routes)
        out[g.label][1].extend(g.params)
    return out


def routing_table(model_or_optimizer, *, model: nn.Module | None = None, **opts) -> RoutingTable:
    """A printable :class:`RoutingTable` for a model (``opts`` as :func:`route`) or for an
    optimizer: a preset's own routing (with the reasons), or, for any other
    ``torch.optim.Optimizer``, one row per parameter from its param groups — named by the group's
    ``names`` key, else by ``model`` (its parameter names), else ``group<g>.<i>``; labelled by the
    group's ``label`` (matbal) or ``"group<g>"``.

    >>> import torch
    >>> from matbal.optim import muon
    >>> opt = muon(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)))
    >>> [(r.name, r.label) for r in routing_table(opt)]
    [('0.weight', 'matrix'), ('0.bias', 'adamw'), ('1.weight', 'adamw'), ('1.bias', 'adamw')]
    """
    if isinstance(model_or_optimizer, nn.Module):
        return route(model_or_optimizer, **opts)
    if not isinstance(model_or_optimizer, torch.optim.Optimizer):
        raise TypeError("routing_table needs an nn.Module or a torch.optim.Optimizer, got "
                        f"{type(model_or_optimizer).__name__}")
    if opts:
        raise TypeError(f"routing options {sorted(opts)} apply to a model, not an optimizer")
    table = getattr(model_or_optimizer, "routing", None)
    if isinstance(table, RoutingTable) and model is None:
        return table
    by_id = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    routes, params = [], []
    for gi, g in enumerate(model_or_optimizer.param_groups):
        ps = list(g["params"])
        names = g.get("names") or [by_id.get(id(p), f"group{gi}.{i}") for i, p in enumerate(ps)]
        matrix = bool(g.get("matrix", False))
        views = g.get("views") or [None] * len(ps)
        label = "matrix" if matrix else str(g.get("label") or f"group{gi}")
        for p, name, v in zip(ps, names, views):
            routes.append(Route(name, tuple(p.shape), label, parse_view(v) if matrix else None,
                                f"param group {gi} of {type(model_or_optimizer).__name__}"))
        params += ps
    return RoutingTable(routes, params)
