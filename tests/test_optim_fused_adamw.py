"""The shell's fast path for plain AdamW groups (torch's fused kernel): the same update and state
as the general chain and as torch.optim.AdamW; used only where the chain is exactly AdamW's and
the tensors are plain; the general chain elsewhere."""
import pytest
import torch
from torch import nn

from matbal.optim import Chain, ChainOptimizer, adamw, muon
from matbal.optim.transforms import (ScaleByAdam, add_decayed_weights, normalize_rms,
                                     scale_by_adam)
from matbal.optim.transforms import adam as adam_mod


def _model(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(7, 5), nn.Tanh(), nn.Linear(5, 3)).to(dtype)


def _grads(model, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g, dtype=p.dtype) for p in model.parameters()]
            for _ in range(steps)]


def _run(model, opt, grads):
    for gs in grads:
        for p, g in zip(model.parameters(), gs):
            p.grad = g.clone()
        opt.step()


@pytest.fixture
def calls(monkeypatch):
    """Count the calls of torch's fused kernel."""
    n = {"fused": 0}
    real = torch._fused_adamw_

    def counted(*a, **k):
        n["fused"] += 1
        return real(*a, **k)

    monkeypatch.setattr(torch, "_fused_adamw_", counted)
    return n


@pytest.mark.parametrize("fused", [True, False])
def test_both_paths_match_torch_adamw_in_float64(calls, fused):
    a, b = _model(), _model()
    ours = adamw(a, lr=3e-3, betas=(0.8, 0.95), weight_decay=0.05)
    ours.fused = fused
    ref = torch.optim.AdamW(b.parameters(), lr=3e-3, betas=(0.8, 0.95), weight_decay=0.05,
                            foreach=False)
    grads = _grads(a, 20)
    _run(a, ours, grads)
    _run(b, ref, grads)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=1e-14)
    assert (calls["fused"] == 20) is fused


def test_fused_state_is_the_chain_state_and_loads_across_paths():
    """Same state keys, dtypes and values; a fused optimizer's state continues in a general one
    (and back) exactly as if one path had run throughout."""
    a, b, c = _model(), _model(), _model()
    fa = adamw(a, lr=1e-2, weight_decay=0.1)
    gb = ChainOptimizer(b.parameters(), chain=Chain(scale_by_adam(), add_decayed_weights(0.1)),
                        lr=1e-2, fused=False)
    grads = _grads(a, 6)
    _run(a, fa, grads[:3])
    _run(b, gb, grads[:3])
    sa, sb = fa.state_dict()["state"], gb.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].keys() == sb[k].keys() == {"step", "0.exp_avg", "0.exp_avg_sq"}
        assert sa[k]["step"] == sb[k]["step"] == 3
        for key in ("0.exp_avg", "0.exp_avg_sq"):
            assert sa[k][key].dtype == sb[k][key].dtype
            torch.testing.assert_close(sa[k][key], sb[k][key], rtol=1e-13, atol=0)
    # continue a's fused state on the general path in model c
    c.load_state_dict(a.state_dict())
    gc = ChainOptimizer(c.parameters(), chain=Chain(scale_by_adam(), add_decayed_weights(0.1)),
                        lr=1e-2, fused=False)
    gc.load_state_dict(gb.state_dict())
    _run(a, fa, grads[3:])
    _run(c, gc, grads[3:])
    for pa, pc in zip(a.parameters(), c.parameters()):
        torch.testing.assert_close(pa, pc, rtol=1e-12, atol=1e-14)


def test_skipped_parameters_keep_their_own_step_counts(calls):
    """nonfinite='skip': the skipped parameter is untouched and its step count lags; the next
    steps (mixed step counts in one kernel call) match the general chain."""
    a, b = _model(dtype=torch.float32), _model(dtype=torch.float32)
    fa = adamw(a, lr=1e-2, nonfinite="skip")
    gb = adamw(b, lr=1e-2, nonfinite="skip")
    gb.fused = False
    grads = _grads(a, 5)
    grads[1][0][0, 0] = float("nan")
    _run(a, fa, grads)
    _run(b, gb, grads)
    first = next(iter(a.parameters()))
    assert fa.state[first]["step"] == 4 and fa.state[first]["skipped"] == 1
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
    assert calls["fused"] == 5


def _refuse(*a, **k):
    raise AssertionError("the fused kernel must not run here")


def test_other_chains_run_the_general_path(monkeypatch):
    monkeypatch.setattr(torch, "_fused_adamw_", _refuse)

    class MyAdam(ScaleByAdam):
        pass

    for chain in (Chain(scale_by_adam(), normalize_rms(0.2), add_decayed_weights(0.1)),
                  Chain(MyAdam(), add_decayed_weights(0.1)),
                  Chain(add_decayed_weights(0.1), scale_by_adam())):
        w = nn.Parameter(torch.randn(4, 3))
        w.grad = torch.randn(4, 3)
        before = w.detach().clone()
        ChainOptimizer([w], chain=chain, lr=0.1).step()
        assert not torch.equal(w, before)


def test_non_contiguous_and_mixed_tensors_fall_back(monkeypatch):
    """A transposed (non-contiguous) parameter: the kernel is not called, the chain's update
    is applied (checked against a contiguous twin on the fused path)."""
    base = torch.randn(3, 4, dtype=torch.float64)
    g = torch.randn(4, 3, dtype=torch.float64)
    twin = nn.Parameter(base.t().contiguous())
    w = nn.Parameter(base).t()  # non-contiguous leaf view: the step writes through it
    w.retain_grad()
    w.grad, twin.grad = g.clone(), g.clone()
    ref = adamw([twin], lr=0.1)
    ref.step()
    monkeypatch.setattr(torch, "_fused_adamw_", _refuse)
    opt = ChainOptimizer([w], chain=Chain(scale_by_adam(), add_decayed_weights(0.01)), lr=0.1)
    opt.step()
    torch.testing.assert_close(w, twin, rtol=1e-13, atol=1e-15)
    assert not adam_mod.fused_adamw_([w], [g], [torch.zeros(4, 3)], [torch.zeros(4, 3)], [1],
                                     lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)


def test_presets_run_their_adamw_group_fused(calls):
    """A preset's non-matrix (AdamW) group takes the fused kernel; its matrix group does not."""
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8))
    opt = muon(model, lr=1e-2, ns_dtype=torch.float32, head=None)
    model(torch.randn(4, 6)).square().mean().backward()
    opt.step()
    assert calls["fused"] == 1


def test_fused_flag_is_checked():
    with pytest.raises(TypeError, match="fused"):
        ChainOptimizer([nn.Parameter(torch.ones(2))], chain=Chain(scale_by_adam()), fused="yes")
