"""Optimizers as compositions of small transforms (layer 3 of matbal; see docs/architecture.md).

Presets: :func:`adamw`, :func:`muon`, :func:`muoneq`, :func:`reg`, :func:`normuon`, :func:`rmnp`,
:func:`sinkgd`, :func:`polargrad`. Your own: ``ChainOptimizer(groups)`` with a :class:`Chain` of
transforms from :mod:`matbal.optim.transforms`. Which parameters a preset trains as matrices, and
how it sees them: :func:`routing_table` (rules: :mod:`matbal.optim.routing_rules`).

A new preconditioner in a few lines ("RACS with p = ∞, then 3 Polar Express steps"):

>>> import torch
>>> from matbal.optim import Chain, build
>>> from matbal.optim.transforms import (ema_momentum, balance, orthogonalize,
...                                      scale_by_shape, add_decayed_weights)
>>> chain = Chain(ema_momentum(0.95), balance("racs", p=float("inf"), steps=3),
...               orthogonalize("polar_express", steps=3), scale_by_shape("0.2*sqrt(max(m,n))"),
...               add_decayed_weights(0.1))
>>> opt = build(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 2)), chain, lr=1e-3)
"""
from .chain import Chain
from .optimizer import ChainOptimizer
from .presets import PRESETS, adamw, muon, muoneq, normuon, polargrad, reg, rmnp, sinkgd
from .presets._build import build
from .routing import (Route, RoutingTable, RoutingWarning, label_params, route, routing_table,
                      split_params)
from .routing_rules import RULES, Rule
from .views import MatrixView

__all__ = ["Chain", "ChainOptimizer", "build", "label_params", "split_params", "route",
           "routing_table", "Route", "RoutingTable", "RoutingWarning", "Rule", "RULES",
           "MatrixView", "PRESETS", "adamw", "muon", "muoneq", "reg", "normuon", "rmnp", "sinkgd",
           "polargrad"]
