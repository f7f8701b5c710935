"""One contract table over every preset (design.md): downhill, bit-exact resume, bad input, zeros."""
import copy
import io

import pytest
import torch
from torch import nn

from matbal.optim import PRESETS, ChainOptimizer
from _optim_cases import CASES, make

NAMES = sorted(CASES)


def least_squares(seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(64, 12, generator=g)
    w_true = torch.randn(12, 10, generator=g)
    b = a @ w_true
    model = nn.Linear(12, 10)
    torch.manual_seed(seed)
    model.reset_parameters()
    loss_fn = lambda: ((model(a) - b) ** 2).mean()  # noqa: E731
    return model, loss_fn


def small_mlp(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 16, generator=g)
    y = (x @ torch.randn(16, 4, generator=g)).argmax(1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 4))
    loss_fn = lambda: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    return model, loss_fn


def train(opt, loss_fn, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(loss_fn())


@pytest.mark.parametrize("name", NAMES)
def test_goes_downhill_on_least_squares(name):
    model, loss_fn = least_squares()
    with torch.no_grad():
        start = float(loss_fn())
    opt = make(name, model, head=None)  # the Linear weight is the matrix under test
    assert any(g["label"] == "matrix" for g in opt.param_groups) or name == "adamw"
    end = train(opt, loss_fn, 30)
    assert end < 0.7 * start, (start, end)


@pytest.mark.parametrize("name", NAMES)
def test_goes_downhill_on_mlp(name):
    model, loss_fn = small_mlp()
    with torch.no_grad():
        start = float(loss_fn())
    end = train(make(name, model), loss_fn, 40)
    assert end < 0.8 * start, (start, end)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_is_bit_exact(name):
    model, loss_fn = small_mlp(1)
    opt = make(name, model)
    train(opt, loss_fn, 3)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    ref_model = copy.deepcopy(model)
    ref_opt = make(name, ref_model)
    ref_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    train(opt, loss_fn, 4)  # uninterrupted run
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # no pickle of code: plain tensors and numbers
    model2, loss_fn2 = small_mlp(1)
    model2.load_state_dict(ckpt["model"])
    opt2 = make(name, model2)
    opt2.load_state_dict(ckpt["opt"])
    train(opt2, loss_fn2, 4)  # resumed run
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
    for k in opt.state_dict()["state"]:
        for key, v in opt.state_dict()["state"][k].items():
            w = opt2.state_dict()["state"][k][key]
            assert (torch.equal(v, w) and v.dtype == w.dtype) if torch.is_tensor(v) else v == w


@pytest.mark.parametrize("name", NAMES)
def test_zero_gradient_gives_zero_update_and_keeps_grad(name):
    model, _ = small_mlp(2)
    no_decay = {"weight_decay": 0.0} if name == "adamw" else {"weight_decay": 0.0,
                                                              "adamw_weight_decay": 0.0}
    opt = make(name, model, **no_decay)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    grads = [p.grad for p in model.parameters()]
    for _ in range(3):
        opt.step()
    for p, b, g in zip(model.parameters(), before, grads):
        assert torch.isfinite(p).all()
        assert torch.equal(p, b)
        assert p.grad is g and not g.any()


@pytest.mark.parametrize("name", NAMES)
def test_never_mutates_grad(name):
    model, loss_fn = small_mlp(3)
    opt = make(name, model)
    loss_fn().backward()
    saved = [p.grad.clone() for p in model.parameters()]
    opt.step()
    opt.step()
    for p, s in zip(model.parameters(), saved):
        assert torch.equal(p.grad, s)


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_gradient_raises_or_skips(name):
    model, _ = small_mlp(4)
    opt = make(name, model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    first = next(model.parameters())
    first.grad[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite"):
        opt.step()
    model2, _ = small_mlp(4)
    opt2 = make(name, model2, nonfinite="skip")
    before = [p.detach().clone() for p in model2.parameters()]
    for p in model2.parameters():
        p.grad = torch.ones_like(p)
    next(model2.parameters()).grad[0, 0] = float("inf")
    opt2.step()
    params = list(model2.parameters())
    assert torch.equal(params[0], before[0])  # skipped, not NaN
    assert opt2.state[params[0]]["skipped"] == 1
    assert all(torch.isfinite(p).all() for p in params)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [{"lr": -1.0}, {"lr": float("nan")}, {"weight_decay": -0.1}])
def test_bad_hyperparameters_are_rejected(name, bad):
    model, _ = small_mlp()
    with pytest.raises((ValueError, TypeError), match=next(iter(bad))):
        PRESETS[name](model, **bad)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("adamw", "sinkgd", "polargrad", "reg")])
def test_bad_momentum_is_rejected(name):
    model, _ = small_mlp()
    with pytest.raises(ValueError, match="momentum"):
        PRESETS[name](model, momentum=1.5)


@pytest.mark.parametrize("name", NAMES)
def test_lr_scheduler_and_closure(name):
    model, loss_fn = least_squares(5)
    opt = make(name, model, head=None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5**t)
    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    loss = opt.step(closure)
    assert torch.is_tensor(loss)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(CASES[name]["lr"] * 0.5)


def test_conv_weights_are_flattened_and_routed():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    opt = PRESETS["muon"](net, lr=0.01)
    mats = [g for g in opt.param_groups if g["label"] == "matrix"][0]
    assert mats["names"] == ["0.weight"]
    x = torch.randn(2, 3, 6, 6)
    net(x).sum().backward()
    opt.step()
    state = opt.state[net[0].weight]
    assert state["0.buf"].shape == (8, 27)  # (out, in*k*k)


def test_chain_optimizer_refuses_non_chain_and_vector_matrix():
    w = nn.Parameter(torch.randn(3))
    with pytest.raises(TypeError, match="chain"):
        ChainOptimizer([w], chain="muon")
    from matbal.optim import Chain
    from matbal.optim.transforms import orthogonalize
    with pytest.raises(ValueError, match="matrix group"):
        ChainOptimizer([w], chain=Chain(orthogonalize()), matrix=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_nonfinite_check_is_exact_even_when_squares_overflow(dtype):
    from matbal.optim.optimizer import _nonfinite

    big = torch.finfo(dtype).max / 4  # finite, but its square overflows any accumulator
    grads = [torch.ones(3, 4, dtype=dtype), torch.full((5,), big, dtype=dtype),
             torch.ones(2, 2, dtype=dtype), torch.ones(6, dtype=dtype)]
    assert _nonfinite(grads) == set()
    grads[2][1, 0] = float("nan")
    grads[3][5] = -float("inf")
    assert _nonfinite(grads) == {2, 3}
    assert _nonfinite([]) == set()
