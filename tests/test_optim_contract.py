"""One contract table over every preset (docs/architecture.md, Conventions): downhill, bit-exact resume, bad input, zeros."""
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


def test_trailing_weight_decay_is_applied_by_the_shell_as_the_same_update():
    """``p ← p(1 − lr·λ) − lr·u`` (shell) equals ``p ← p − lr·(u + λp)`` (transform) to float64
    rounding; a decay that is not trailing, or is wrapped by an instrument, runs as a transform."""
    from matbal.instruments.probes.placement import Instrumented
    from matbal.optim import Chain, ChainOptimizer
    from matbal.optim.optimizer import _split_trailing_decay
    from matbal.optim.transforms import add_decayed_weights, scale_by_adam, scale_by_shape

    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(6, 5, dtype=torch.float64, generator=gen)
    grads = [torch.randn(6, 5, dtype=torch.float64, generator=gen) for _ in range(4)]
    lr, lam = 0.05, 0.3

    def run(chain):
        w = torch.nn.Parameter(w0.clone())
        opt = ChainOptimizer([w], chain=chain, lr=lr)
        for g in grads:
            w.grad = g.clone()
            opt.step()
            assert torch.equal(w.grad, g)  # p.grad never touched
        return w.detach()

    decay = add_decayed_weights(lam)
    head, got = _split_trailing_decay(Chain(scale_by_adam(), decay, add_decayed_weights(0.1)))
    assert len(head) == 1 and got == pytest.approx(0.4)
    assert _split_trailing_decay(Chain(decay, scale_by_shape("sqrt(m/n)")))[1] == 0.0
    assert _split_trailing_decay(Chain(scale_by_adam(), Instrumented(decay)))[1] == 0.0
    assert _split_trailing_decay(Chain(decay)) == (None, lam)
    # the manual reference: Adam direction, then p - lr (u + λ p)
    ref = Chain(scale_by_adam())
    w = w0.clone()
    states = [ref.init(w)]
    for k, g in enumerate(grads, 1):
        from matbal.optim.transforms.base import StepContext
        ctx = StepContext(params=[w], steps=[k], names=["w"], group={"lr": lr}, matrix=False)
        u = ref([g], states, ctx)[0]
        w = w - lr * (u + lam * w)
    torch.testing.assert_close(run(Chain(scale_by_adam(), decay)), w, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(run(Chain(scale_by_adam(), Instrumented(decay))), w, rtol=1e-14, atol=1e-15)
    # decay alone: p(1 - lr λ)^k - lr Σ ...; with a zero gradient exactly p (1 - lr λ)^k
    wz = torch.nn.Parameter(w0.clone())
    opt = ChainOptimizer([wz], chain=Chain(decay), lr=lr)
    for _ in range(3):
        wz.grad = torch.zeros_like(w0)
        opt.step()
    torch.testing.assert_close(wz.detach(), w0 * (1 - lr * lam) ** 3, rtol=1e-15, atol=0)


def test_scale_by_shape_passes_a_unit_factor_through_and_scales_the_rest():
    from matbal.optim.transforms import scale_by_shape
    from matbal.optim.transforms.base import StepContext

    us = [torch.randn(4, 8), torch.randn(8, 2), torch.randn(3, 3)]
    ctx = StepContext(params=us, steps=[1, 1, 1], names=["a", "b", "c"], group={"lr": 1.0}, matrix=True)
    out = scale_by_shape("original").apply(us, [{}] * 3, ctx)
    assert out[0] is us[0] and out[2] is us[2]  # √max(1, m/n) = 1: no copy
    torch.testing.assert_close(out[1], us[1] * 2.0, rtol=0, atol=0)
    out = scale_by_shape("match_rms_adamw").apply(us, [{}] * 3, ctx)
    torch.testing.assert_close(out[0], us[0] * (0.2 * 8 ** 0.5), rtol=0, atol=0)


def test_orthogonalize_hands_same_shape_updates_to_ns_as_a_list(monkeypatch):
    """Same-shape updates reach newton_schulz as a list (normalized straight into the working
    dtype when large; the threshold is lowered here) and give the per-matrix results."""
    import importlib

    from matbal.optim.transforms import orthogonalize
    from matbal.optim.transforms.base import StepContext

    ns_mod = importlib.import_module("matbal.kernels.orthogonalize.newton_schulz")
    monkeypatch.setattr(ns_mod, "LIST_MIN_BYTES", 0)
    calls = []
    keep = ns_mod._normalize_list
    monkeypatch.setattr(ns_mod, "_normalize_list", lambda mats, *a: calls.append(len(mats)) or keep(mats, *a))
    gen = torch.Generator().manual_seed(0)
    us = [torch.randn(16, 40, generator=gen) for _ in range(3)] + [torch.randn(40, 16, generator=gen) for _ in range(2)]
    ctx = StepContext(params=us, steps=[1] * 5, names=list("abcde"), group={"lr": 1.0}, matrix=True)
    got = orthogonalize("muon").apply(us, [{}] * 5, ctx)
    ref = orthogonalize("muon", batch=False).apply(us, [{}] * 5, ctx)
    assert sorted(calls) == [2, 3]
    for g, r, u in zip(got, ref, us):
        assert g.shape == u.shape and g.dtype == u.dtype
        torch.testing.assert_close(g, r, rtol=0, atol=1e-5)
