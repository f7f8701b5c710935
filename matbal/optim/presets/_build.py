"""Shared assembly of a preset: route parameters, give matrices the preset's chain and the rest AdamW."""
from __future__ import annotations

from ..chain import Chain
from ..optimizer import ChainOptimizer
from ..routing import split_params
from ..transforms import add_decayed_weights, scale_by_adam

__all__ = ["build", "adamw_chain", "ADAMW_DOC"]

ADAMW_DOC = """
    Parameters that are not hidden matrices (biases, gains, embeddings, the output head; see
    :func:`matbal.optim.label_params`) are trained by AdamW with ``adamw_lr`` (default: ``lr``),
    ``adamw_betas=(0.9, 0.999)``, ``adamw_eps=1e-8``, ``adamw_weight_decay=0.0``.
    ``params``: an ``nn.Module``, a dict ``{"matrix": [...], "adamw": [...]}``, or an iterable of
    matrix tensors. ``head`` chooses the output head when ``params`` is a module."""


def adamw_chain(*, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0) -> Chain:
    """torch.optim.AdamW's update as a chain: Adam direction + decoupled weight decay."""
    return Chain(scale_by_adam(betas, eps=eps), add_decayed_weights(weight_decay))


def build(params, matrix_chain: Chain, *, lr: float, adamw_lr=None, adamw_betas=(0.9, 0.999),
          adamw_eps=1e-8, adamw_weight_decay=0.0, head="auto", nonfinite="raise",
          preset: str = "") -> ChainOptimizer:
    split = split_params(params, head=head)
    groups = []
    names, ps = split["matrix"]
    if ps:
        groups.append({"params": ps, "names": names, "chain": matrix_chain, "lr": lr,
                       "matrix": True, "label": "matrix"})
    names, ps = split["adamw"]
    if ps:
        groups.append({"params": ps, "names": names, "lr": lr if adamw_lr is None else adamw_lr,
                       "chain": adamw_chain(betas=adamw_betas, eps=adamw_eps,
                                            weight_decay=adamw_weight_decay),
                       "matrix": False, "label": "adamw"})
    if not groups:
        raise ValueError(f"{preset or 'optimizer'}: params is empty")
    opt = ChainOptimizer(groups, lr=lr, nonfinite=nonfinite)
    opt.preset = preset
    return opt
