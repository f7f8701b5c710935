"""The per-call shortcuts of the optimizer step (issue 15: REG within 1.1× of its hand-written
step) change no bit: each is checked against the code it replaced, kept here verbatim —
``normalize_rms``'s host-read branch (was a ``torch.where`` over the scale), ``map_by_shape`` on a
single matrix (was the shape-grouping loop) and the shell's weight update of a single parameter
(was the foreach kernels, with their no-op casts) — on a small GPT's parameters over a few steps
of the REG, MuonEq-R and Muon presets, and unit by unit."""
import importlib

import pytest
import torch
from torch import nn

from matbal.optim import PRESETS
from matbal.optim import optimizer as shell
from matbal.optim.transforms import _batching
from matbal.optim.transforms.base import StepContext
from _optim_cases import CASES

# the modules (the package re-exports functions of the same names)
normalize = importlib.import_module("matbal.optim.transforms.normalize")
balance_mod = importlib.import_module("matbal.optim.transforms.balance")


def _old_normalize_apply(self, updates, states, ctx):
    out = []
    for u in updates:
        u2 = u if u.ndim >= 2 else u.reshape(1, -1)
        r = normalize._rms(u2)
        scale = torch.where(r > self.eps, self.target / r.clamp_min(self.eps), 1.0)
        out.append(u * scale.to(u.dtype).reshape(scale.shape if u.ndim >= 2 else ()))
    return out


def _old_map_by_shape(fn, mats, *, batch=True, stack=True):
    if batch is False:
        return [fn(x) for x in mats]
    out = [None] * len(mats)
    for idx, stacked in _batching._groups(mats, batch):
        if not stacked:
            for i in idx:
                out[i] = fn(mats[i])
            continue
        same = [mats[i] for i in idx]
        res = fn(torch.stack(same) if stack else same)
        for j, i in enumerate(idx):
            out[i] = res[j]
    return out


def _old_apply(out, params, views, lr, decay):
    if decay:
        torch._foreach_mul_(params, 1.0 - lr * decay)
    if views is not None:
        out = [v.storage(u, p.shape) for p, v, u in zip(params, views, out)]
    torch._foreach_add_(params, [u.reshape(p.shape).to(p.dtype) for p, u in zip(params, out)],
                        alpha=-lr)


def _old_paths(mp):
    mp.setattr(normalize.NormalizeRMS, "apply", _old_normalize_apply)
    mp.setattr(balance_mod, "map_by_shape", _old_map_by_shape)
    mp.setattr(shell.ChainOptimizer, "_apply", staticmethod(_old_apply))


# a 2-block GPT's matrices at width 160 (> 128: REG's racs runs one matrix at a time, so its group
# runs one parameter at a time through the chain), an embedding and gains (AdamW group); "+ small":
# two 64×64 more (stacked: the whole-list path)
GPT = [(160, 480), (160, 160), (160, 640), (640, 160)] * 2
SETS = {"gpt": GPT, "gpt + small": GPT + [(64, 64), (64, 64)]}


def _model(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    mats = [nn.Parameter(torch.randn(*s, generator=g) * 0.05) for s in shapes]
    return mats + [nn.Parameter(torch.randn(300, 160, generator=g) * 0.05),
                   nn.Parameter(torch.ones(160))]


def _run(name, shapes, steps=3):
    params = _model(shapes)
    opt = PRESETS[name](params, **CASES[name])
    for k in range(steps):
        g = torch.Generator().manual_seed(100 + k)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return params, opt


@pytest.mark.parametrize("shapes", SETS)
@pytest.mark.parametrize("name", ["reg", "muoneq-r", "muon"])
def test_steps_equal_the_replaced_code_bit_for_bit(name, shapes, monkeypatch):
    new, opt_new = _run(name, SETS[shapes])
    with monkeypatch.context() as mp:
        _old_paths(mp)
        old, opt_old = _run(name, SETS[shapes])
    assert not torch.equal(new[0], _model(SETS[shapes])[0])  # the weights moved
    for a, b in zip(new, old):
        assert torch.equal(a, b)
    for a, b in zip(new, old):
        for k, v in opt_new.state[a].items():
            if torch.is_tensor(v):
                assert torch.equal(v, opt_old.state[b][k]), k


def test_reg_on_the_gpt_runs_one_parameter_at_a_time():
    # so the test above covers the single-parameter weight update and racs one matrix at a time
    params = _model(GPT)
    opt = PRESETS["reg"](params, **CASES["reg"])
    g = next(g for g in opt.param_groups if g["matrix"])
    assert shell._pipelines(g["chain"], g["params"], [p.detach() for p in g["params"]])


def _ctx():
    return StepContext(params=[], steps=[1], names=["w"], group={}, matrix=True, views=None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("scale", [1.0, 1e-3, 0.0])
def test_normalize_rms_branch_equals_the_where_form(dtype, scale):
    t = normalize.normalize_rms(0.2)
    u = (torch.randn(37, 53, generator=torch.Generator().manual_seed(1)) * scale).to(dtype)
    before = u.clone()
    new, = t.apply([u], [{}], _ctx())
    old, = _old_normalize_apply(t, [u], [{}], _ctx())
    assert new.dtype == old.dtype == dtype and torch.equal(new, old)
    assert torch.equal(u, before) and new.data_ptr() != u.data_ptr()  # input untouched
    if scale == 0.0:
        assert torch.equal(new, torch.zeros_like(u))  # a zero update stays zero, no NaN
    else:  # and the math: RMS of the result = target, against float64
        ref = u.double() * 0.2 / u.double().square().mean().sqrt()
        tol = {torch.float32: 1e-6, torch.float64: 1e-14, torch.bfloat16: 1e-2}[dtype]
        torch.testing.assert_close(new.double(), ref, rtol=tol, atol=0)


def test_normalize_rms_compares_with_eps_in_the_update_dtype():
    # RMS between float32(eps) and eps (float32(1e-12) < 1e-12 here): the where form compares in
    # float32, so must the branch; and just below the rounded eps both keep u unchanged
    eps = 1e-12
    e32 = float(torch.tensor(eps, dtype=torch.float32))
    t = normalize.normalize_rms(0.2, eps=eps)
    for rms in (e32 * (1 + 2 ** -20), e32, e32 * (1 - 2 ** -20)):
        u = torch.full((4, 4), rms, dtype=torch.float32)
        new, = t.apply([u], [{}], _ctx())
        old, = _old_normalize_apply(t, [u], [{}], _ctx())
        assert torch.equal(new, old), rms


def test_map_by_shape_on_one_matrix_calls_fn_once_on_it():
    x = torch.randn(8, 8)
    seen = []
    out = _batching.map_by_shape(lambda a: seen.append(a) or a * 2, [x], batch=True)
    assert len(seen) == 1 and seen[0] is x and torch.equal(out[0], x * 2)
