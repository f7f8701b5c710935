"""Edge cases of the optimizer hot path met as a researcher meets them: a chain edited after its
first call, a user's subclass of a built-in transform, checkpoints mid-training, groups added
later, the non-finite modes beside torch.optim."""
from __future__ import annotations

import torch

from matbal.optim import Chain
from matbal.optim.transforms import StepContext, Transform, scale_by_shape


class _Negate(Transform):
    name = "negate"

    def apply(self, updates, states, ctx):
        return [-u for u in updates]


def _ctx(u):
    return StepContext(params=[torch.zeros_like(u)], steps=[1], names=["w"], group={},
                       matrix=True, views=None)


def test_a_chain_runs_the_transforms_it_holds_after_they_are_reassigned():
    u = torch.ones(2, 3)
    chain = Chain(scale_by_shape("original"))
    first = chain([u], [{}], _ctx(u))[0]
    assert not torch.equal(first, -u)
    chain.transforms = (_Negate(),)
    assert torch.equal(chain([u], [{}], _ctx(u))[0], -u)
    chain.transforms = (_Negate(), _Negate())
    assert torch.equal(chain([u], [{}], _ctx(u))[0], u)
