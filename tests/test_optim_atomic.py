"""All-or-nothing steps and loads, for every preset: a refused ``step()`` or ``load_state_dict()``
leaves weights, state and step counts bit-identical to before."""
import copy
import itertools
import warnings

import pytest
import torch
from torch import nn

from _optim_cases import CASES, make

NAMES = sorted(CASES)
X = torch.randn(16, 6, generator=torch.Generator().manual_seed(0))


def tiny(width=8):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                         nn.Linear(width, 3))


def stepped(name, width=8, **kw):
    """A tiny model and its optimizer after one step (so every state entry exists)."""
    model = tiny(width)
    opt = make(name, model, **kw)
    model(X).square().mean().backward()
    opt.step()
    return model, opt


def snapshot(model, opt):
    return [p.detach().clone() for p in model.parameters()], copy.deepcopy(opt.state_dict())


def same(a, b):
    """Bit-identical nested containers of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def assert_unchanged(model, opt, before):
    params, sd = before
    assert all(same(p, q) for p, q in zip(model.parameters(), params))
    assert same(opt.state_dict(), sd)


CASES_BY_GROUP = [(n, label) for n in NAMES for label in ("matrix", "adamw")
                  if n != "adamw" or label == "matrix"]


@pytest.mark.parametrize("name,label", CASES_BY_GROUP)
def test_nonfinite_gradient_in_any_group_refuses_the_whole_step(name, label):
    model, opt = stepped(name)
    groups = [g for g in opt.param_groups if g["label"] == label] if name != "adamw" \
        else opt.param_groups
    assert len(groups) == 1
    bad = groups[0]["params"][-1]  # the group's last parameter: other groups come first or after
    opt.zero_grad()
    model(X).square().mean().backward()
    bad.grad.view(-1)[0] = float("nan")
    before = snapshot(model, opt)
    with pytest.raises(FloatingPointError, match=f"{groups[0]['names'][-1]}.*nothing was updated"):
        opt.step()
    assert_unchanged(model, opt, before)
    # the same gradients without the NaN: the step goes through and changes every parameter
    bad.grad.view(-1)[0] = 0.0
    opt.step()
    assert all(not torch.equal(p, q) for p, q in zip(model.parameters(), before[0]))


@pytest.mark.parametrize("name,label", CASES_BY_GROUP)
def test_nonfinite_skip_leaves_only_the_bad_parameter_untouched(name, label):
    model, opt = stepped(name, nonfinite="skip")
    group = [g for g in opt.param_groups if g["label"] == label or name == "adamw"][0]
    bad = group["params"][-1]
    opt.zero_grad()
    model(X).square().mean().backward()
    bad.grad.view(-1)[-1] = float("inf")
    w_before, st_before = bad.detach().clone(), copy.deepcopy(opt.state[bad])
    others = [(p, p.detach().clone()) for p in model.parameters() if p is not bad]
    opt.step()
    assert torch.equal(bad, w_before)
    assert opt.state[bad]["skipped"] == 1
    assert same({k: v for k, v in opt.state[bad].items() if k != "skipped"}, st_before)
    assert all(not torch.equal(p, q) for p, q in others)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_state_from_a_model_with_other_shapes_is_refused_at_load(name):
    _, src = stepped(name, width=8)
    model, opt = stepped(name, width=9)
    before = snapshot(model, opt)
    with pytest.raises(ValueError,
                       match=r"parameter \S+ \(shape .*state .* has shape .*other shapes"):
        opt.load_state_dict(src.state_dict())
    assert_unchanged(model, opt, before)


def _kinds(opt):
    from matbal.optim.optimizer import _kinds
    return [_kinds(g["chain"]) for g in opt.param_groups]


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "without-transforms-entry"])
def test_state_from_another_preset_loads_only_when_usable(legacy):
    """All 90 ordered preset pairs: a load either is refused with ValueError (optimizer
    unchanged) or succeeds and the next step runs. With the chain's transform kinds in the
    state_dict, a load succeeds exactly when they match (here: the muoneq variants, which differ
    in a hyperparameter only, and warn); a state_dict without them (older files) is still checked
    entry by entry, so no pair fails later with a KeyError or size error."""
    loaded = set()
    for a, b in itertools.permutations(NAMES, 2):
        _, src = stepped(a)
        sd = src.state_dict()
        if legacy:
            for g in sd["param_groups"]:
                del g["transforms"]
        model, opt = stepped(b)
        before = snapshot(model, opt)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                opt.load_state_dict(sd)
        except ValueError as e:
            assert "param group" in str(e) or "parameter" in str(e), (a, b, e)
            assert_unchanged(model, opt, before)
            continue
        assert any("different chain" in str(w.message) for w in caught), (a, b)
        loaded.add((a, b))
        opt.zero_grad()
        model(X).square().mean().backward()
        opt.step()
        assert all(torch.isfinite(p).all() for p in model.parameters())
    if not legacy:
        expected = {(a, b) for a, b in itertools.permutations(NAMES, 2)
                    if _kinds(stepped(a)[1]) == _kinds(stepped(b)[1])}
        assert loaded == expected
        assert loaded == {(a, b) for a, b in itertools.permutations(
            ["muoneq-c", "muoneq-r", "muoneq-rc"], 2)}


def test_load_refuses_wrong_group_and_parameter_counts_and_stray_state():
    _, src = stepped("muon")
    model, opt = stepped("muon")
    before = snapshot(model, opt)
    sd = src.state_dict()
    bad = copy.deepcopy(sd)
    bad["param_groups"] = bad["param_groups"][:1]
    with pytest.raises(ValueError, match="1 param groups, optimizer has 2"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(sd)
    bad["param_groups"][1]["params"] = bad["param_groups"][1]["params"][:-1]
    with pytest.raises(ValueError, match=r"param group 1 \(adamw\): state_dict has \d+ parameters"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(sd)
    bad["state"][999] = bad["state"][0]
    with pytest.raises(ValueError, match="999"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(sd)
    pid = sd["param_groups"][0]["params"][0]
    del bad["state"][pid]["0.buf"]
    with pytest.raises(ValueError, match=r"lacks state \['0.buf'\]"):
        opt.load_state_dict(bad)
    assert_unchanged(model, opt, before)
    opt.load_state_dict(sd)  # the intact state loads
    assert same(opt.state_dict(), sd)


@pytest.mark.parametrize("dtype,lr", [(torch.float32, 1e300), (torch.float16, 1e5)])
def test_an_lr_that_overflows_the_parameters_dtype_is_refused(dtype, lr):
    from matbal.optim import Chain, ChainOptimizer
    from matbal.optim.transforms import scale_by_adam

    w = nn.Parameter(torch.ones(2, 2, dtype=dtype))
    with pytest.raises(ValueError, match=r"lr=.*overflows parameter w's dtype"):
        ChainOptimizer([{"params": [w], "names": ["w"]}], chain=Chain(scale_by_adam()), lr=lr)
    ChainOptimizer([w], chain=Chain(scale_by_adam()), lr=float(torch.finfo(dtype).max))
