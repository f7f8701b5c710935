"""Shared assembly of a preset: route parameters, give matrices the preset's chain and the rest AdamW."""
from __future__ import annotations

from ..chain import Chain
from ..optimizer import ChainOptimizer
from ..routing import RoutingTable
from ..routing_inputs import normalize_params, warn_unknown
from ..transforms import add_decayed_weights, scale_by_adam
from ..transforms.weight_decay import AddDecayedWeights

__all__ = ["build", "adamw_chain", "ADAMW_DOC"]

ADAMW_DOC = """
    Routing and the AdamW group (:func:`matbal.optim.route`, :func:`matbal.optim.routing_table`):
    ``params`` is an ``nn.Module`` (routed by module type: ``nn.Linear``, convs flattened to
    ``(out, in·∏k)``, ``nn.MultiheadAttention``, transformers' ``Conv1D`` transposed; embeddings,
    biases, gains and the output head go to AdamW), ``model.named_parameters()``, a list of
    tensors, a list of param-group dicts with a per-group flag (``use_muon``/``matrix``/``label``;
    optional ``lr``, ``weight_decay``, and for AdamW groups ``betas``, ``eps``), or a dict
    ``{"matrix": [...], "adamw": [...]}``. Routing options: ``head`` (``"auto"``, ``None``, or
    module names), ``split_qkv`` (default False; True: a fused QKV as three matrices), ``include``/``exclude``
    (globs over parameter names), ``label_fn(name, param, module)``, ``rules``. The preset warns
    when a ≥2-D parameter of an unknown module type lands in AdamW, and raises ``ValueError`` when
    no parameter is a matrix.

    AdamW group: ``adamw_lr`` (default ``None``: the preset's ``lr``), ``adamw_betas=(0.9, 0.999)``,
    ``adamw_eps=1e-8``, ``adamw_weight_decay=0.0``. One lr for both groups follows Moonlight
    (arXiv 2502.16982, §2.2): with the update RMS matched to AdamW's (``0.2·√max(m, n)``) Muon
    reuses AdamW's lr and weight decay; at torch.optim.Muon's default lr (1e-3) it is also
    torch.optim.AdamW's default. With Muon-scale lrs and the ``√max(1, m/n)`` scale,
    KellerJordan's ``MuonWithAuxAdam`` (github KellerJordan/Muon) pairs lr 0.02 with an Adam lr of
    3e-4, betas (0.9, 0.95), eps 1e-10: pass those as ``adamw_*`` to reproduce it."""


def adamw_chain(*, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0) -> Chain:
    """torch.optim.AdamW's update as a chain: Adam direction + decoupled weight decay."""
    return Chain(scale_by_adam(betas, eps=eps), add_decayed_weights(weight_decay))


def _with_decay(chain: Chain, weight_decay) -> Chain:
    """``chain`` with its trailing weight decay set to ``weight_decay`` (None: unchanged)."""
    if weight_decay is None:
        return chain
    ts = chain.transforms
    if isinstance(ts[-1], AddDecayedWeights):
        ts = ts[:-1]
    return Chain(*ts, add_decayed_weights(weight_decay))


def build(params, matrix_chain: Chain | None, *, lr: float, adamw_lr=None,
          adamw_betas=(0.9, 0.999), adamw_eps=1e-8, adamw_weight_decay=0.0, head="auto",
          split_qkv: bool = False, include=None, exclude=None, label_fn=None, rules=(),
          nonfinite="raise", preset: str = "") -> ChainOptimizer:
    """A :class:`ChainOptimizer`: ``matrix_chain`` for the matrix parameters, AdamW for the rest
    (``matrix_chain=None``: every parameter to AdamW, the ``adamw`` preset)."""
    preset = preset or "optimizer"
    specs = normalize_params(params, head=head, split_qkv=split_qkv, include=include,
                             exclude=exclude, label_fn=label_fn, rules=rules,
                             force="adamw" if matrix_chain is None else None)
    groups, routes, tensors = [], [], []
    for spec in specs:
        if not spec.params:
            continue
        opts = spec.options
        if spec.label == "matrix":
            groups.append({"params": spec.params, "names": [r.name for r in spec.routes],
                           "chain": _with_decay(matrix_chain, opts.get("weight_decay")),
                           "lr": opts.get("lr", lr), "matrix": True, "label": "matrix",
                           "views": [r.view.spec for r in spec.routes]})
        else:
            chain = adamw_chain(betas=opts.get("betas", adamw_betas),
                                eps=opts.get("eps", adamw_eps),
                                weight_decay=opts.get("weight_decay", adamw_weight_decay))
            groups.append({"params": spec.params, "names": [r.name for r in spec.routes],
                           "lr": opts.get("lr", lr if adamw_lr is None else adamw_lr),
                           "chain": chain, "matrix": False, "label": "adamw"})
        routes += spec.routes
        tensors += spec.params
    if not groups:
        raise ValueError(f"{preset}: params is empty")
    table = RoutingTable(routes, tensors)
    if matrix_chain is not None:
        if not any(g["matrix"] for g in groups):
            raise ValueError(f"{preset}: no parameter is routed to the matrix chain (every one "
                             f"would be trained by AdamW):\n{table}\nUse the adamw preset, or "
                             "route matrices with include=[...] / rules=[...] / param groups.")
        warn_unknown(routes, preset)
    opt = ChainOptimizer(groups, lr=lr, nonfinite=nonfinite)
    opt.preset = preset
    opt.routing = table
    return opt
