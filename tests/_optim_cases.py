"""The contract table: every preset with a learning rate that suits the toy problems below."""
from matbal.optim import PRESETS

# name -> constructor kwargs; lrs from a 4-point sweep on the least-squares problem (30 steps)
CASES = {
    "adamw": dict(lr=1e-2),
    "muon": dict(lr=0.1, adamw_lr=1e-2),
    "muoneq-r": dict(lr=0.1, adamw_lr=1e-2),
    "muoneq-c": dict(lr=0.1, adamw_lr=1e-2),
    "muoneq-rc": dict(lr=0.1, adamw_lr=1e-2),
    "reg": dict(lr=0.1, adamw_lr=1e-2),
    "normuon": dict(lr=0.1, adamw_lr=1e-2),
    "rmnp": dict(lr=0.1, adamw_lr=1e-2),
    "sinkgd": dict(lr=0.02, adamw_lr=1e-2),
    "polargrad": dict(lr=1e-2, adamw_lr=1e-2),
}
assert set(CASES) == set(PRESETS), "every preset must be in the contract table"


def make(name, params, **extra):
    return PRESETS[name](params, **{**CASES[name], **extra})
