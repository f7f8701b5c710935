"""The ways a user can hand parameters to a preset, normalized into labelled groups.

``params`` may be (torch's calling conventions, plus a model):

- an ``nn.Module``: routed by module type (:func:`matbal.optim.route`); names kept;
- ``model.named_parameters()`` (``(name, tensor)`` pairs): routed by ``ndim`` and names only —
  ≥2-D → matrix, except names with an embedding component (``embed_tokens``, ``wte``, …) or a head
  component (``HEAD_NAMES``), which go to AdamW; no module types are known, so pass the model
  itself for Conv1D / fused-QKV / tied-weight handling;
- a list of tensors: ≥2-D → matrix, others → AdamW (named ``p0``, ``p1``, … by position);
- a list of param-group dicts with an explicit per-group flag — ``use_muon`` (KellerJordan's
  ``MuonWithAuxAdam``), ``matrix`` (bool) or ``label`` (``"matrix"``/``"adamw"``) — and optional
  ``names``, ``lr``, ``weight_decay``, and (AdamW groups) ``betas``, ``eps``;
- a dict ``{"matrix": [...], "adamw": [...]}`` of explicit labels.

>>> import torch
>>> w, b = torch.zeros(3, 4), torch.zeros(3)
>>> named = [("body.weight", w), ("body.bias", b), ("head.weight", torch.zeros(2, 3))]
>>> [(g.label, [r.name for r in g.routes]) for g in normalize_params(named)]
[('matrix', ['body.weight']), ('adamw', ['body.bias', 'head.weight'])]
>>> g = normalize_params([{"params": [w], "use_muon": True, "lr": 0.02}])[0]
>>> g.label, g.options
('matrix', {'lr': 0.02})
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from .routing import (LABELS, SMALL, Route, RoutingWarning, _apply_overrides, _explicit_heads,
                      _head_warning, route)
from .routing_rules import HEAD_NAMES, TOP_LEVEL_HEAD_NAMES, is_embedding_name
from .views import MATRIX

__all__ = ["ParamGroupSpec", "normalize_params", "GROUP_FLAGS", "GROUP_OPTIONS"]

GROUP_FLAGS = ("use_muon", "matrix", "label")
GROUP_OPTIONS = {"matrix": ("lr", "weight_decay"), "adamw": ("lr", "weight_decay", "betas", "eps")}


@dataclass
class ParamGroupSpec:
    """One labelled group: its routes, tensors (aligned) and per-group ``options``."""

    label: str
    routes: list[Route]
    params: list[torch.Tensor]
    options: dict = field(default_factory=dict)


def _pairs(items, prefix: str, arg: str) -> list[tuple[str, torch.Tensor]]:
    out = []
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, t = item
        else:
            name, t = f"{prefix}{i}", item
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{arg}: expected tensors or (name, tensor) pairs, got "
                            f"{type(t).__name__}")
        out.append((name, t))
    return out


def _by_label(routes, params, options=None) -> list[ParamGroupSpec]:
    return [ParamGroupSpec(lab, [r for r in routes if r.label == lab],
                           [p for r, p in zip(routes, params) if r.label == lab],
                           dict(options or {})) for lab in LABELS]


def _name_routes(pairs, *, head, include, exclude, label_fn, named: bool, force: str | None):
    """Routes from names and ndim only (no module types)."""
    routes = []
    for name, p in pairs:
        parts = name.split(".")[:-1] if named else []
        if force is not None:
            routes.append(Route(name, tuple(p.shape), force, None, f"{force} preset"))
        elif p.ndim < 2:
            routes.append(Route(name, tuple(p.shape), "adamw", None, SMALL))
        elif is_embedding_name(name):
            routes.append(Route(name, tuple(p.shape), "adamw", None,
                                "embedding (by name; no module type known): AdamW"))
        else:
            why = "≥ 2-D, by name and ndim only (pass the model to route by module type)"
            routes.append(Route(name, tuple(p.shape), "matrix", MATRIX, why if named else
                                "≥ 2-D tensor of a plain list: matrix (out, rest)"))
    if force is None and named:
        mods = [n.rsplit(".", 1)[0] if "." in n else "" for n, _ in pairs]
        if head is None:
            heads = {}
        elif isinstance(head, str) and head == "auto":
            heads = {}
            for m, r in zip(mods, routes):
                parts = m.split(".") if m else []
                if r.label == "matrix" and parts and (parts[-1] in HEAD_NAMES or (
                        len(parts) == 1 and parts[0] in TOP_LEVEL_HEAD_NAMES)):
                    heads[m] = f"named '{parts[-1]}'"
            ms = [m for m, r in zip(mods, routes) if r.label == "matrix"]
            if not heads and ms:
                _head_warning(len(set(ms)), ms[-1])
        else:
            heads = _explicit_heads(head, [m for m, (_, p) in zip(mods, pairs) if p.ndim >= 2])
        routes = [replace(r, label="adamw", view=None, why=f"output head ({heads[m]}): AdamW")
                  if m in heads and r.label == "matrix" else r for r, m in zip(routes, mods)]
    if force is None:
        routes = _apply_overrides(routes, [(p, None) for _, p in pairs], include, exclude,
                                  label_fn, [MATRIX if p.ndim >= 2 else None for _, p in pairs])
    return routes


def _group_label(g: dict, i: int, force: str | None) -> str:
    flags = [k for k in GROUP_FLAGS if k in g]
    if len(flags) > 1:
        raise ValueError(f"param group {i}: give one of {GROUP_FLAGS}, got {flags}")
    if not flags:
        if force is not None:
            return force
        raise ValueError(f"param group {i}: needs an explicit flag — use_muon=True/False "
                         "(as KellerJordan's MuonWithAuxAdam), matrix=True/False, or "
                         "label='matrix'/'adamw'")
    k = flags[0]
    v = g[k]
    if k == "label":
        if v not in LABELS:
            raise ValueError(f"param group {i}: label must be 'matrix' or 'adamw', got {v!r}")
        lab = v
    else:
        if not isinstance(v, bool):
            raise TypeError(f"param group {i}: {k} must be True or False, got {v!r}")
        lab = "matrix" if v else "adamw"
    return force or lab


def _groups(groups: list[dict], force: str | None) -> list[ParamGroupSpec]:
    out = []
    for i, g in enumerate(groups):
        if "params" not in g:
            raise ValueError(f"param group {i}: missing 'params'")
        lab = _group_label(g, i, force)
        allowed = set(GROUP_OPTIONS[lab]) | set(GROUP_FLAGS) | {"params", "names"}
        extra = sorted(set(g) - allowed)
        if extra:
            raise ValueError(f"param group {i} ({lab}): unsupported keys {extra}; allowed: "
                             f"{sorted(allowed)}")
        ps = g["params"]
        pairs = _pairs([ps] if isinstance(ps, torch.Tensor) else list(ps), f"group{i}.",
                       f"param group {i}")
        names = g.get("names")
        if names is not None:
            names = list(names)
            if len(names) != len(pairs):
                raise ValueError(f"param group {i}: {len(names)} names for {len(pairs)} params")
            pairs = [(n, p) for n, (_, p) in zip(names, pairs)]
        flag = next((f"{k}={g[k]!r}" for k in GROUP_FLAGS if k in g), "no flag")
        routes = [Route(n, tuple(p.shape), lab, MATRIX if lab == "matrix" else None,
                        f"param group {i} ({flag})") for n, p in pairs]
        out.append(ParamGroupSpec(lab, routes, [p for _, p in pairs],
                                  {k: g[k] for k in GROUP_OPTIONS[lab] if k in g}))
    return out


def normalize_params(params, *, head="auto", split_qkv: bool = False, include=None, exclude=None,
                     label_fn=None, rules=(), force: str | None = None) -> list[ParamGroupSpec]:
    """Labelled groups (see the module docstring) in a stable order. ``force="adamw"`` labels
    everything AdamW (the ``adamw`` preset: names kept, flags optional). Routing options
    (``head``, ``split_qkv``, ``include``, ``exclude``, ``label_fn``, ``rules``) act on a model or
    named parameters; param groups and label dicts carry explicit labels."""
    explicit = include is not None or exclude is not None or label_fn is not None
    if isinstance(params, nn.Module):
        if force is not None:
            table = route(params, head=None)
            routes = [replace(r, label=force, view=None, why=f"{force} preset", unknown=False)
                      for r in table]
            return [ParamGroupSpec(force, routes, table.params)]
        table = route(params, head=head, split_qkv=split_qkv, include=include, exclude=exclude,
                      label_fn=label_fn, rules=rules)
        return _by_label(table.routes, table.params)
    if isinstance(params, torch.Tensor):
        params = [params]
    if isinstance(params, dict):
        unknown = set(params) - set(LABELS)
        if unknown:
            raise ValueError(f"params labels must be 'matrix' or 'adamw', got {sorted(unknown)}")
        groups = [{"params": params.get(lab, []), "label": lab} for lab in LABELS]
        return [g for g in _groups(groups, force)]
    items = list(params)
    if not items:
        raise ValueError("params is empty")
    if all(isinstance(x, dict) for x in items):
        if explicit:
            raise ValueError("include/exclude/label_fn act on a model or named parameters; "
                             "param groups carry explicit flags")
        return _groups(items, force)
    if any(isinstance(x, dict) for x in items):
        raise TypeError("params: a list of param-group dicts cannot be mixed with tensors")
    named = any(isinstance(x, tuple) for x in items)
    pairs = _pairs(items, "p", "params")
    routes = _name_routes(pairs, head=head, include=include, exclude=exclude, label_fn=label_fn,
                          named=named, force=force)
    return _by_label(routes, [p for _, p in pairs])


def warn_unknown(routes, preset: str) -> None:
    """Warn (:class:`~matbal.optim.routing.RoutingWarning`) about ≥2-D parameters of module types
    the routing table does not know that land in AdamW."""
    unknown = [f"{r.name} {tuple(r.shape)} ({r.module})" for r in routes if r.unknown]
    if unknown:
        warnings.warn(f"{preset}: {len(unknown)} >= 2-D parameter(s) of module types not in the "
                      f"routing table go to AdamW: {', '.join(unknown[:6])}"
                      f"{' …' if len(unknown) > 6 else ''}. Route them with include=[...] or "
                      "rules=[...], or silence with exclude=[...]; see matbal.optim.routing_table.",
                      RoutingWarning, stacklevel=4)
