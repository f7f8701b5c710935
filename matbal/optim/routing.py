"""Parameter routing: which parameters go through a matrix chain and which through AdamW.

Labels come from module *types*, never from ``ndim`` alone:

- ``"matrix"``: weights of ``nn.Linear`` and ``nn.Conv1d/2d/3d`` hidden layers (a conv weight
  ``(out, in, *k)`` is treated as the matrix ``(out, in·∏k)``);
- ``"adamw"``: everything else — biases, normalization gains, ``nn.Embedding`` weights, the output
  head, and parameters of module types matbal does not know.

The output head is found with ``head=`` : ``"auto"`` (default) takes Linear layers named like a head
(``lm_head``, ``head``, ``classifier``, ``fc_out``, ``output``) or whose weight is tied to an
``nn.Embedding``; if none is found, the last ``nn.Linear`` registered in the module. ``head=None``
routes no Linear to AdamW; a string or list of strings names the head module(s) exactly.

>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> {n: l for n, l in label_params(net).items()}
{'0.weight': 'matrix', '0.bias': 'adamw', '2.weight': 'adamw', '2.bias': 'adamw'}
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

__all__ = ["label_params", "split_params", "HEAD_NAMES"]

HEAD_NAMES = ("lm_head", "head", "classifier", "fc_out", "output")
_MATRIX_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _find_heads(module: nn.Module, head) -> set[str]:
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if head is None:
        return set()
    if isinstance(head, str) and head != "auto":
        head = [head]
    if not isinstance(head, str):
        names = set(head)
        known = {n for n, _ in linears}
        missing = names - known
        if missing:
            raise ValueError(f"head names {sorted(missing)} are not nn.Linear modules of the model")
        return names
    emb_weights = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    found = {n for n, m in linears
             if n.split(".")[-1] in HEAD_NAMES or id(m.weight) in emb_weights}
    if not found and linears:
        found = {linears[-1][0]}
    return found


def label_params(module: nn.Module, *, head="auto") -> dict[str, str]:
    """Map each trainable parameter name of ``module`` to ``"matrix"`` or ``"adamw"``.

    Shared (tied) parameters appear once, under their first name. See the module docstring.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    heads = _find_heads(module, head)
    labels: dict[str, str] = {}
    seen: dict[int, str] = {}
    tied_to_embedding = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    for mod_name, mod in module.named_modules():
        for p_name, p in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if not p.requires_grad or id(p) in seen:
                continue
            seen[id(p)] = full
            is_matrix = (isinstance(mod, _MATRIX_TYPES) and p_name == "weight"
                         and mod_name not in heads and id(p) not in tied_to_embedding)
            labels[full] = "matrix" if is_matrix else "adamw"
    return labels


def split_params(params, *, head="auto") -> dict[str, tuple[list[str], list[torch.Tensor]]]:
    """Normalize the ways a user can hand parameters to a preset into ``{label: (names, params)}``.

    ``params`` may be an ``nn.Module`` (labelled by :func:`label_params`), a dict
    ``{"matrix": [...], "adamw": [...]}`` of explicit labels (lists of tensors or of
    ``(name, tensor)`` pairs), or an iterable of tensors / ``(name, tensor)`` pairs, all of which are
    then treated as matrices.
    """
    if isinstance(params, nn.Module):
        labels = label_params(params, head=head)
        named = dict(params.named_parameters())
        out: dict[str, tuple[list, list]] = {"matrix": ([], []), "adamw": ([], [])}
        for name, label in labels.items():
            out[label][0].append(name)
            out[label][1].append(named[name])
        return out
    if isinstance(params, dict):
        unknown = set(params) - {"matrix", "adamw"}
        if unknown:
            raise ValueError(f"params labels must be 'matrix' or 'adamw', got {sorted(unknown)}")
        return {label: _named(params.get(label, []), label) for label in ("matrix", "adamw")}
    return {"matrix": _named(params, "matrix"), "adamw": ([], [])}


def _named(items: Iterable, label: str) -> tuple[list[str], list[torch.Tensor]]:
    names, tensors = [], []
    for i, item in enumerate(items):
        name, t = item if isinstance(item, tuple) else (f"{label}{i}", item)
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"params: expected tensors, got {type(t).__name__} (param groups "
                            "go to ChainOptimizer directly)")
        names.append(name)
        tensors.append(t)
    return names, tensors
