"""Published optimizers as short chains. ``PRESETS`` maps CLI names to constructors."""
from functools import partial

from .adamw import adamw
from .muon import muon
from .muoneq import muoneq
from .normuon import normuon
from .polargrad import polargrad
from .reg import reg
from .rmnp import rmnp
from .sinkgd import sinkgd

PRESETS = {
    "adamw": adamw,
    "muon": muon,
    "muoneq-r": partial(muoneq, variant="R"),
    "muoneq-c": partial(muoneq, variant="C"),
    "muoneq-rc": partial(muoneq, variant="RC"),
    "reg": reg,
    "normuon": normuon,
    "rmnp": rmnp,
    "sinkgd": sinkgd,
    "polargrad": polargrad,
}

__all__ = ["adamw", "muon", "muoneq", "reg", "normuon", "rmnp", "sinkgd", "polargrad", "PRESETS"]
