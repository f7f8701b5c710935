"""Plain momentum hands its buffer on without a copy, so the transform rule "never modify an input
update in place" now protects optimizer state: checked for every transform of every preset, and
REG's and plain-momentum steps are checked against their formulas over several steps."""
import math

import pytest
import torch
from torch import nn

import matbal
from matbal.optim import Chain, ChainOptimizer, reg
from matbal.optim.transforms import StepContext, ema_momentum, sum_momentum
from _optim_cases import CASES, make


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 4))


def _guard(t, seen):
    """Wrap ``t.apply``: fail if it changes any input update in place."""
    real = t.apply

    def apply(updates, states, ctx):
        before = [u.clone() for u in updates]
        out = real(updates, states, ctx)
        for u, b in zip(updates, before):
            assert torch.equal(u, b), f"{t!r} modified its input in place"
        seen.append(t.name)
        return out

    t.apply = apply


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_preset_transform_modifies_its_input(name):
    model = _model()
    opt = make(name, model)
    opt.fused = False  # AdamW groups through their chain too
    seen = []
    for g in opt.param_groups:
        for t in g["chain"].transforms:
            _guard(t, seen)
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    assert seen  # the guards ran


@pytest.mark.parametrize("kind", [ema_momentum, sum_momentum])
def test_plain_momentum_returns_its_buffer_and_stays_exact(kind):
    t = kind(0.9, nesterov=False)
    g = [torch.randn(5, 7, dtype=torch.float64) for _ in range(3)]
    st = [t.init(u) for u in g[:1]]
    ctx = StepContext(params=g[:1], steps=[1], names=["w"], group={"lr": 1.0}, matrix=True)
    buf = torch.zeros(5, 7, dtype=torch.float64)
    for k, gk in enumerate(g):
        out = t.apply([gk], st, ctx)[0]
        assert out is st[0]["buf"]  # no copy
        buf = torch.lerp(buf, gk, 1 - 0.9) if kind is ema_momentum else 0.9 * buf + gk
        torch.testing.assert_close(out, buf, rtol=1e-15, atol=0)


def test_reg_steps_equal_the_formula_in_float64():
    """M ← lerp(M, G, 1−β); U = racs_p2^(5)(M); U ← 0.2·U/RMS(U); W ← W(1 − lr·λ) − lr·U."""
    g = torch.Generator().manual_seed(3)
    w = nn.Parameter(torch.randn(9, 6, dtype=torch.float64, generator=g))
    opt = reg([w], lr=0.05, momentum=0.9, weight_decay=0.1)
    ref, m = w.detach().clone(), torch.zeros(9, 6, dtype=torch.float64)
    for _ in range(4):
        grad = torch.randn(9, 6, dtype=torch.float64, generator=g)
        w.grad = grad.clone()
        opt.step()
        m = torch.lerp(m, grad, 0.1)
        u = matbal.racs(m, p=2, steps=5).matrix
        u = 0.2 * u / u.square().mean().sqrt()
        ref = ref * (1 - 0.05 * 0.1) - 0.05 * u
        torch.testing.assert_close(w.detach(), ref, rtol=1e-12, atol=1e-12)
    assert not math.isnan(float(w.detach().sum()))


def test_a_chain_ending_in_plain_momentum_keeps_its_state():
    """The shell reads the final update (the buffer itself) without changing it."""
    w = nn.Parameter(torch.ones(4, 3, dtype=torch.float64))
    opt = ChainOptimizer([w], chain=Chain(ema_momentum(0.5, nesterov=False)), lr=0.1,
                         matrix=True)
    for k in range(3):
        w.grad = torch.full((4, 3), float(k + 1), dtype=torch.float64)
        opt.step()
    buf = opt.state[w]["0.buf"]
    # buf: 0.5, 1.25, 2.125; w = 1 - 0.1 * (0.5 + 1.25 + 2.125)
    torch.testing.assert_close(buf, torch.full((4, 3), 2.125, dtype=torch.float64))
    torch.testing.assert_close(w.detach(), torch.full((4, 3), 1 - 0.3875, dtype=torch.float64))
