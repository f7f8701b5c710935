"""Edge cases of the optimizer hot path met as a researcher meets them: a chain edited after its
first call, a user's subclass of a built-in transform, checkpoints mid-training, groups added
later, the non-finite modes beside torch.optim."""
from __future__ import annotations

import pytest
import torch

from matbal.optim import Chain, ChainOptimizer
from matbal.optim.optimizer import _pipelines
from matbal.optim.transforms import (NormalizeRMS, StepContext, Transform, ema_momentum,
                                     scale_by_shape)


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


class _GroupRMS(NormalizeRMS):
    """A user's variant of a built-in: one RMS over all the group's updates (shared)."""

    def apply(self, updates, states, ctx):
        total = sum(float(u.double().square().sum()) for u in updates)
        rms = (total / sum(u.numel() for u in updates)) ** 0.5
        return [u * (self.target / rms) for u in updates]


def test_a_users_subclass_overriding_apply_does_not_inherit_per_parameter():
    g = torch.Generator().manual_seed(0)
    ws = [torch.nn.Parameter(torch.randn(4, 3, generator=g, dtype=torch.float64))
          for _ in range(2)]
    grads = [torch.randn(4, 3, generator=g, dtype=torch.float64) * s for s in (1.0, 10.0)]
    before = [w.detach().clone() for w in ws]
    for w, gr in zip(ws, grads):
        w.grad = gr.clone()
    opt = ChainOptimizer(ws, chain=Chain(_GroupRMS(0.2)), lr=0.1, matrix=True)
    opt.step()
    rms = (sum(float(gr.square().sum()) for gr in grads) / sum(gr.numel() for gr in grads)) ** 0.5
    for w, b, gr in zip(ws, before, grads):
        torch.testing.assert_close(w.detach(), b - 0.1 * 0.2 * gr / rms, rtol=1e-14, atol=0)
    # the built-in itself still runs one parameter at a time
    assert _pipelines(Chain(NormalizeRMS(0.2)), ws, grads)
    assert not _pipelines(Chain(_GroupRMS(0.2)), ws, grads)


class _ClipInPlace(Transform):
    """A user's transform that breaks the read-only rule: clamps its input in place."""

    name = "clip_in_place"

    def apply(self, updates, states, ctx):
        return [u.clamp_(-0.01, 0.01) for u in updates]


def test_a_transform_that_modifies_its_input_in_place_is_refused_naming_it():
    # after plain momentum the input is the momentum buffer itself: an in-place op would
    # corrupt the state silently (and before it, p.grad); the chain refuses it instead
    w = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    for first in ([ema_momentum(0.9, nesterov=False)], []):
        opt = ChainOptimizer([w], chain=Chain(*first, _ClipInPlace()), lr=0.1, matrix=True)
        w.grad = torch.randn(4, 3, dtype=torch.float64)
        grad = w.grad.clone()
        with pytest.raises(RuntimeError, match=r"_ClipInPlace.*in place.*param"):
            opt.step()
        if first:  # the buffer, not p.grad, was the clamped input
            assert torch.equal(w.grad, grad)


def test_ddp_step_screens_the_gradients_once(monkeypatch):
    """step() screens every group on every rank before any update; the matrix part does not
    read the non-owned gradients a second time (one isfinite pass each, per step, before)."""
    from matbal.optim.distributed import DistributedChainOptimizer

    ws = [torch.nn.Parameter(torch.randn(6, 5, dtype=torch.float64)) for _ in range(4)]
    opt = DistributedChainOptimizer(ws, chain=Chain(ema_momentum(0.9)), lr=0.1, matrix=True)
    opt.rank, opt.world_size = 0, 2  # rank 0 of two: it owns half the matrices
    monkeypatch.setattr(opt, "_exchange", lambda params, owners: None)
    assert 0 < opt.owners(opt.param_groups[0]).count(1) < 4
    for w in ws:
        w.grad = torch.randn(6, 5, dtype=torch.float64)
    calls, isfinite = [], torch.isfinite
    grads = {id(w.grad) for w in ws}
    monkeypatch.setattr(torch, "isfinite",
                        lambda t: calls.append(id(t) in grads) or isfinite(t))
    opt.step()
    assert not any(calls)  # the screen's one read (a sum per gradient) was all
    monkeypatch.setattr(torch, "isfinite", isfinite)
    # a non-finite gradient of a matrix another rank owns still raises here, before any update
    before = [w.detach().clone() for w in ws]
    other = opt.owners(opt.param_groups[0]).index(1)
    ws[other].grad[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=opt.param_groups[0]["names"][other]):
        opt.step()
    assert all(torch.equal(w, b) for w, b in zip(ws, before))
    with pytest.raises(FloatingPointError, match=opt.param_groups[0]["names"][other]):
        opt._step_group(opt.param_groups[0])  # outside step(): the group's own check
    assert all(torch.equal(w, b) for w, b in zip(ws, before))
