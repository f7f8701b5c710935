"""The routing table as data: which module types hold matrices, and how the chain sees them.

Each :class:`Rule` is one row: a module test, the parameter names it covers, a label
(``"matrix"``: the preset's matrix chain; ``"adamw"``: the AdamW group), the default
:class:`~matbal.optim.views.MatrixView`, whether the weight may be a fused QKV, and the reason
printed by :func:`matbal.optim.routing_table`. :func:`matbal.optim.route` takes the first rule
that matches a (module, parameter name) pair; ``rules=`` puts a user's rows in front of these.

| rule          | module                                   | parameters                        | label  | view                   |
|---------------|------------------------------------------|-----------------------------------|--------|------------------------|
| ``hf_conv1d`` | transformers ``Conv1D`` (GPT-2)          | ``weight`` (stored ``(in, out)``) | matrix | transposed             |
| ``linear``    | ``nn.Linear`` (and subclasses)           | ``weight``                        | matrix | ``(out, in)``          |
| ``conv``      | ``nn.Conv1d/2d/3d``                      | ``weight``                        | matrix | ``(out, in·∏k)``       |
| ``mha_qkv``   | ``nn.MultiheadAttention``                | ``in_proj_weight`` ``(3d, d)``    | matrix | fused QKV              |
| ``mha_q_k_v`` | ``nn.MultiheadAttention`` (kdim ≠ d)     | ``q/k/v_proj_weight``             | matrix | ``(d, d_k)``           |
| ``embedding`` | ``nn.Embedding``, ``nn.EmbeddingBag``    | ``weight``                        | adamw  | –                      |

(``nn.MultiheadAttention.out_proj`` is an ``nn.Linear``.) transformers' ``Conv1D`` is recognized
without importing transformers: by its class name and its ``nf`` attribute matching the stored
``(nx, nf)`` weight (the same test passes ``transformers.pytorch_utils.Conv1D`` and a look-alike).

Fused QKV (``qkv="always"``, or ``qkv="by_name"`` for a module whose last name component is in
``QKV_NAMES`` and whose matrix is ``(3d, d)``): with ``split_qkv=True`` the chain sees the three
``(d, d)`` blocks Q, K, V as three matrices (a batch ``(3, d, d)``: NS per block).

>>> import torch.nn as nn
>>> rule_for(nn.Linear(2, 3), "weight").name, rule_for(nn.Embedding(5, 2), "weight").label
('linear', 'adamw')
>>> rule_for(nn.LayerNorm(3), "weight") is None
True
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from torch import nn

from .views import MATRIX, MatrixView

__all__ = ["Rule", "RULES", "HEAD_NAMES", "TOP_LEVEL_HEAD_NAMES", "QKV_NAMES", "EMBEDDING_NAMES",
           "rule_for", "is_hf_conv1d", "is_embedding_name"]

HEAD_NAMES = ("lm_head", "head", "classifier", "fc_out", "output", "out_head", "score")
"""Module names (any depth, last component) read as the output head."""
TOP_LEVEL_HEAD_NAMES = ("fc",)
"""Names read as the head only at the model's top level (torchvision ResNet's ``fc``)."""
QKV_NAMES = ("c_attn", "qkv", "qkv_proj", "Wqkv", "in_proj", "to_qkv")
"""Module names of fused QKV projections laid out as contiguous ``[Q; K; V]`` row blocks
(GPT-2 ``c_attn``, timm ``qkv``, MPT ``Wqkv``). Head-interleaved layouts (GPT-NeoX/BLOOM
``query_key_value``) are not listed: their row blocks are not Q, K, V."""
EMBEDDING_NAMES = ("embed", "wte", "wpe", "tok_emb", "pos_emb")
"""When only names are known, a parameter is read as an embedding if a component of its name
contains ``"embed"`` (``embed_tokens``, ``word_embeddings``, ``tok_embeddings``) or equals one of
the others (nanoGPT's ``wte``/``wpe``, minGPT's ``tok_emb``/``pos_emb``)."""


def is_embedding_name(name: str) -> bool:
    """Whether a parameter name reads as an embedding (see ``EMBEDDING_NAMES``).

    >>> is_embedding_name("model.embed_tokens.weight"), is_embedding_name("fc.weight")
    (True, False)
    """
    return any("embed" in c or c in EMBEDDING_NAMES for c in name.split("."))


def is_hf_conv1d(module: nn.Module) -> bool:
    """transformers' GPT-2 ``Conv1D`` (weight stored ``(nx, nf)`` = (in, out), ``y = x W + b``),
    by class name and layout, or by identity when ``transformers.pytorch_utils`` is loaded."""
    hf = sys.modules.get("transformers.pytorch_utils")
    if hf is not None and isinstance(module, getattr(hf, "Conv1D", ())):
        return True
    w = getattr(module, "weight", None)
    return (type(module).__name__ == "Conv1D" and getattr(w, "ndim", 0) == 2
            and getattr(module, "nf", None) == w.shape[1])


@dataclass(frozen=True)
class Rule:
    """One row of the routing table.

    ``matches(module) → bool``; ``params``: parameter names (as registered on the module) the
    row covers; ``label``: ``"matrix"`` or ``"adamw"``; ``view``: the matrix view (matrix rows);
    ``qkv``: ``"never"``, ``"always"`` (a fused ``(3d, d)`` QKV by construction) or
    ``"by_name"`` (fused when the module is named in ``QKV_NAMES``); ``why``: the reason shown.
    """

    name: str
    matches: Callable[[nn.Module], bool]
    params: tuple[str, ...]
    label: str
    why: str
    view: MatrixView | None = MATRIX
    qkv: str = "never"

    def __post_init__(self):
        if self.label not in ("matrix", "adamw"):
            raise ValueError(f"rule {self.name!r}: label must be 'matrix' or 'adamw', "
                             f"got {self.label!r}")
        if self.qkv not in ("never", "always", "by_name"):
            raise ValueError(f"rule {self.name!r}: qkv must be 'never', 'always' or 'by_name', "
                             f"got {self.qkv!r}")
        if not callable(self.matches):
            raise TypeError(f"rule {self.name!r}: matches must be callable")


def _isa(*types):
    return lambda m: isinstance(m, types)


RULES: tuple[Rule, ...] = (
    Rule("hf_conv1d", is_hf_conv1d, ("weight",), "matrix",
         "transformers Conv1D weight, stored (in, out): the chain sees its transpose",
         view=MatrixView(transpose=True), qkv="by_name"),
    Rule("linear", _isa(nn.Linear), ("weight",), "matrix", "nn.Linear weight", qkv="by_name"),
    Rule("conv", _isa(nn.Conv1d, nn.Conv2d, nn.Conv3d), ("weight",), "matrix",
         "conv weight (out, in, *k) as the matrix (out, in·∏k)"),
    Rule("mha_qkv", _isa(nn.MultiheadAttention), ("in_proj_weight",), "matrix",
         "nn.MultiheadAttention fused QKV (3d, d)", qkv="always"),
    Rule("mha_q_k_v", _isa(nn.MultiheadAttention),
         ("q_proj_weight", "k_proj_weight", "v_proj_weight"), "matrix",
         "nn.MultiheadAttention separate projection (kdim/vdim ≠ embed_dim)"),
    Rule("embedding", _isa(nn.Embedding, nn.EmbeddingBag), ("weight",), "adamw",
         "embedding (a lookup table): AdamW", view=None),
)


def rule_for(module: nn.Module, param_name: str, rules=RULES) -> Rule | None:
    """The first rule of ``rules`` covering ``param_name`` of ``module`` (None: no row)."""
    for r in rules:
        if param_name in r.params and r.matches(module):
            return r
    return None
