"""The shell runs a group one parameter at a time through its chain when every transform treats
each update on its own (``Transform.per_parameter``): the same bits as the whole-list run, and the
whole list wherever a transform stacks, taps or is unknown."""
import pytest
import torch
from torch import nn

from matbal.optim import Chain, ChainOptimizer, PRESETS
from matbal.optim.optimizer import _pipelines
from matbal.optim.transforms import Transform, balance, orthogonalize, tap
from _optim_cases import CASES

SHAPES = [(160, 160), (160, 640), (640, 160), (96, 200), (300, 280)]  # distinct: no stacking


def _params(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(*s, generator=g, dtype=dtype)) for s in SHAPES]


def _grads(step, dtype=torch.float64):
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(*s, generator=g, dtype=dtype) for s in SHAPES]


def _whole_list(opt):
    """The same optimizer, its chains made to run on the whole list (a no-op tap first)."""
    for g in opt.param_groups:
        g["chain"] = Chain(tap(lambda *a: None), *g["chain"].transforms)
    return opt


@pytest.mark.parametrize("name", ["reg", "muoneq-r", "muon", "normuon", "sinkgd", "rmnp"])
def test_pipelined_steps_equal_the_whole_list_bit_for_bit(name):
    a, b = _params(), _params()
    opt_a = PRESETS[name](a, **CASES[name])
    opt_b = _whole_list(PRESETS[name](b, **CASES[name]))
    # a's matrix group does run one parameter at a time, b's does not
    grads = _grads(0)
    assert any(_pipelines(g["chain"], g["params"], grads) for g in opt_a.param_groups)
    assert not any(_pipelines(g["chain"], g["params"], grads) for g in opt_b.param_groups)
    for step in range(3):
        for ps in (a, b):
            for p, g in zip(ps, _grads(step)):
                p.grad = g.clone()
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a, b):
        assert torch.equal(pa, pb)
    for pa, pb in zip(a, b):  # state too (b's chain has the tap at index 0: keys shift by 1)
        for k, v in opt_a.state[pa].items():
            if torch.is_tensor(v) and "." in k:
                i, rest = k.split(".", 1)
                assert torch.equal(v, opt_b.state[pb][f"{int(i) + 1}.{rest}"]), k


def test_which_groups_run_one_parameter_at_a_time():
    big = [torch.zeros(256, 256), torch.zeros(256, 256)]
    small = [torch.zeros(32, 64), torch.zeros(32, 64)]
    racs = Chain(balance("racs", p=2, steps=2))
    assert _pipelines(racs, big, big)            # racs: not stacked from width 256 on the CPU
    assert not _pipelines(racs, small, small)    # stacked at width 32
    assert not _pipelines(racs, big[:1], big[:1])  # one parameter: nothing to gain
    assert not _pipelines(Chain(tap(lambda *a: None), balance("racs")), big, big)
    assert not _pipelines(Chain(orthogonalize("muon", batch=True)), big, big)
    assert _pipelines(Chain(orthogonalize("muon", batch=False)), small, small)
    assert not _pipelines(None, big, big)

    class Mine(Transform):  # a user's transform: unknown, keeps its whole list
        def apply(self, updates, states, ctx):
            return updates

    assert not _pipelines(Chain(Mine()), big, big)


def test_a_users_transform_sees_the_whole_list():
    seen = []

    class Count(Transform):
        def apply(self, updates, states, ctx):
            seen.append(len(updates))
            return updates

    ps = _params()
    for p, g in zip(ps, _grads(0)):
        p.grad = g
    ChainOptimizer(ps, chain=Chain(Count()), lr=0.1, matrix=True).step()
    assert seen == [len(ps)]
