"""Equivalences the optimizer layer claims: torch.optim.AdamW, torch.optim.Muon, and the papers'
formulas for MuonEq-R, SinkGD and RMNP."""
import math

import pytest
import torch
from torch import nn

import matbal
from matbal.optim import adamw, muon, muoneq, rmnp, sinkgd


def _model(seed, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(7, 5), nn.Tanh(), nn.Linear(5, 3)).to(dtype)


def _grads_stream(model, steps, seed):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g, dtype=p.dtype) for p in model.parameters()]
            for _ in range(steps)]


@pytest.mark.parametrize("wd", [0.0, 0.05])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.95)])
def test_adamw_matches_torch_adamw_step_for_step(wd, betas):
    a, b = _model(0), _model(0)
    ours = adamw(a, lr=3e-3, betas=betas, eps=1e-8, weight_decay=wd)
    ref = torch.optim.AdamW(b.parameters(), lr=3e-3, betas=betas, eps=1e-8, weight_decay=wd)
    for grads in _grads_stream(a, 25, 1):
        for pa, pb, g in zip(a.parameters(), b.parameters(), grads):
            pa.grad, pb.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-12, atol=1e-14)


def _torch_muon_ns_in(dtype_expr):
    """torch.optim.Muon's own NS function with its ``grad.bfloat16()`` cast replaced by another
    dtype: the same code, so any remaining difference is in the optimizer logic, not rounding."""
    import inspect

    from torch.optim import _muon

    src = inspect.getsource(_muon._zeropower_via_newtonschulz)
    assert "grad.bfloat16()" in src
    namespace = dict(vars(_muon))
    exec(src.replace("grad.bfloat16()", f"grad.to({dtype_expr}, copy=True)"), namespace)
    return namespace["_zeropower_via_newtonschulz"]


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("rule", ["original", "match_rms_adamw"])
def test_muon_matches_torch_muon_logic_in_float64(monkeypatch, nesterov, rule):
    """Momentum, Nesterov, lr adjustment and weight decay equal torch.optim.Muon's to 1e-12 when
    both run NS in float64 (torch's NS code with only its dtype changed). ``eps=0``: matbal's NS
    divides by ``‖X‖_F + eps`` (KellerJordan/Muon), torch by ``max(‖X‖_F, eps)``; for a nonzero
    matrix they coincide at eps = 0 (at eps = 1e-7 they differ by ~1e-8 relative)."""
    from torch.optim import _muon

    monkeypatch.setattr(_muon, "_zeropower_via_newtonschulz", _torch_muon_ns_in("torch.float64"))
    torch.manual_seed(0)
    shapes = [(6, 10), (12, 4), (8, 8)]
    ws_a = [nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in shapes]
    ws_b = [nn.Parameter(w.detach().clone()) for w in ws_a]
    ours = muon(ws_a, lr=0.02, momentum=0.95, nesterov=nesterov, weight_decay=0.1,
                ns_dtype=torch.float64, shape_rule=rule, eps=0.0)
    ref = torch.optim.Muon(ws_b, lr=0.02, momentum=0.95, nesterov=nesterov, weight_decay=0.1,
                           adjust_lr_fn=rule)
    g = torch.Generator().manual_seed(3)
    for _ in range(6):
        for wa, wb in zip(ws_a, ws_b):
            grad = torch.randn(wa.shape, generator=g, dtype=torch.float64)
            wa.grad, wb.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
        for wa, wb in zip(ws_a, ws_b):
            torch.testing.assert_close(wa, wb, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device,shapes", [
    ("cpu", [(6, 10), (12, 4), (8, 8)]),
    pytest.param("cuda", [(64, 160), (192, 64), (128, 128)], marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")),
])
def test_muon_agrees_with_stock_torch_muon_bf16_to_bf16_noise(device, shapes):
    """Against stock torch.optim.Muon (bf16 NS) with ``ns_dtype=torch.bfloat16``: the per-step
    update differs only by bf16 rounding, which the Muon schedule amplifies (its repelling fixed
    point 0.868 has slope −1.58): measured ≈ 1–3 % of the step in Frobenius norm; bound 6 %.
    A wrong convention (e.g. a missing Nesterov or shape factor) would differ by ≥ 20 %."""
    torch.manual_seed(0)
    ws_a = [nn.Parameter(torch.randn(s).to(device)) for s in shapes]
    ws_b = [nn.Parameter(w.detach().clone()) for w in ws_a]
    ours = muon(ws_a, lr=0.02, ns_dtype=torch.bfloat16)
    ref = torch.optim.Muon(ws_b, lr=0.02)
    g = torch.Generator().manual_seed(3)
    for _ in range(4):
        for wa, wb in zip(ws_a, ws_b):
            grad = torch.randn(wa.shape, generator=g).to(device)
            wa.grad, wb.grad = grad.clone(), grad.clone()
        before = [w.detach().clone() for w in ws_b]
        ours.step()
        ref.step()
        for wa, wb, w0 in zip(ws_a, ws_b, before):
            rel = float((wa - wb).detach().norm() / (wb.detach() - w0).norm())
            assert rel < 0.06, rel
            wa.data.copy_(wb.data)  # compare step by step, not accumulated drift


def test_muon_float32_ns_is_close_to_bf16_reference():
    torch.manual_seed(1)
    w32 = nn.Parameter(torch.randn(16, 24))
    wbf = nn.Parameter(w32.detach().clone())
    o32, obf = muon([w32], lr=0.02), muon([wbf], lr=0.02, ns_dtype=torch.bfloat16)
    g = torch.randn(16, 24)
    w32.grad, wbf.grad = g.clone(), g.clone()
    o32.step()
    obf.step()
    assert (w32 - wbf).abs().max() < 0.02 * 0.02 * 1.3  # within a few % of one step


def test_muoneq_r_equals_muon_when_rows_are_unit_norm():
    torch.manual_seed(2)
    w_eq = nn.Parameter(torch.randn(6, 9, dtype=torch.float64))
    w_mu = nn.Parameter(w_eq.detach().clone())
    eq = muoneq([w_eq], variant="R", momentum=0.0, lr=0.01, ns_dtype=torch.float64)
    mu = muon([w_mu], momentum=0.0, lr=0.01, ns_dtype=torch.float64,
              shape_rule="0.2*sqrt(max(m,n))")
    g = torch.randn(6, 9, dtype=torch.float64)
    g = g / g.norm(dim=1, keepdim=True)
    w_eq.grad, w_mu.grad = g.clone(), g.clone()
    eq.step()
    mu.step()
    torch.testing.assert_close(w_eq, w_mu, rtol=0, atol=1e-9)


def test_muoneq_r_invariant_to_row_rescaling_of_the_gradient():
    """EQ-3 at the optimizer level: one step from D·G equals one step from G (μ irrelevant)."""
    torch.manual_seed(3)
    g = torch.randn(8, 12, dtype=torch.float64)
    d = torch.logspace(-2, 2, 8, dtype=torch.float64)[:, None]
    outs = []
    for grad in (g, d * g):
        w = nn.Parameter(torch.zeros(8, 12, dtype=torch.float64))
        opt = muoneq([w], variant="R", lr=0.01, eps=0.0, ns_dtype=torch.float64)
        w.grad = grad
        opt.step()
        outs.append(w.detach().clone())
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-12)


def _sinkgd_formula(x, iters):
    """SinkGD's iteration written from arXiv 2502.06742: Y = √n Q⁻¹X, X ← √m Y R(Y)⁻¹."""
    m, n = x.shape
    for _ in range(iters):
        y = math.sqrt(n) * x / x.norm(dim=1, keepdim=True)
        x = math.sqrt(m) * y / y.norm(dim=0, keepdim=True)
    return x


@pytest.mark.parametrize("iters", [1, 3, 5])
def test_sinkgd_equals_racs_p2_and_the_paper_formula(iters):
    torch.manual_seed(4)
    w = nn.Parameter(torch.randn(9, 6, dtype=torch.float64))
    w0 = w.detach().clone()
    opt = sinkgd([w], lr=0.1, iterations=iters)
    g = torch.randn(9, 6, dtype=torch.float64) * torch.logspace(-1, 1, 6, dtype=torch.float64)
    w.grad = g
    opt.step()
    expected_racs = w0 - 0.1 * matbal.racs(g, p=2, steps=iters).matrix
    expected_paper = w0 - 0.1 * _sinkgd_formula(g, iters)
    torch.testing.assert_close(w.detach(), expected_racs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w.detach(), expected_paper, rtol=1e-10, atol=1e-10)


def test_rmnp_equals_row_normalization_plus_scaling():
    torch.manual_seed(5)
    w = nn.Parameter(torch.randn(12, 5, dtype=torch.float64))
    w0 = w.detach().clone()
    opt = rmnp([w], lr=0.01, momentum=0.0, weight_decay=0.0)
    g = torch.randn(12, 5, dtype=torch.float64)
    w.grad = g
    opt.step()
    expected = w0 - 0.01 * math.sqrt(12 / 5) * matbal.normalize_rows(g)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-12)


def test_ns_dtype_auto_follows_the_measured_policy_and_is_validated(monkeypatch):
    from matbal.kernels import dtype_policy
    from matbal.optim.transforms import orthogonalize
    from matbal.optim.transforms.orthogonalize import ns_dtype_for

    assert ns_dtype_for("auto", torch.device("cuda")) is torch.bfloat16
    assert ns_dtype_for("auto", torch.device("cpu")) is dtype_policy.auto_ns_dtype("cpu")
    monkeypatch.setenv("MATBAL_NS_DTYPE", "float32")
    assert ns_dtype_for("auto", torch.device("cpu")) is None
    assert ns_dtype_for("auto", torch.device("cuda")) is None
    monkeypatch.setenv("MATBAL_NS_DTYPE", "bfloat16")
    assert ns_dtype_for("auto", torch.device("cpu")) is torch.bfloat16
    assert ns_dtype_for(torch.float64, torch.device("cuda")) is torch.float64
    with pytest.raises(ValueError, match="dtype"):
        orthogonalize("muon", dtype="fast")
    with pytest.raises(TypeError, match="dtype"):
        orthogonalize("muon", dtype=3)


@pytest.mark.parametrize("env, expected", [("float32", None), ("bfloat16", torch.bfloat16)])
def test_muon_default_ns_dtype_on_cpu_is_the_policy_path_bit_exactly(monkeypatch, env, expected):
    monkeypatch.setenv("MATBAL_NS_DTYPE", env)
    torch.manual_seed(2)
    ws = [[nn.Parameter(torch.randn(12, 20))] for _ in range(2)]
    ws[1][0].data.copy_(ws[0][0].data)
    a, b = muon(ws[0], lr=0.02), muon(ws[1], lr=0.02, ns_dtype=expected)
    for _ in range(3):
        g = torch.randn(12, 20)
        ws[0][0].grad, ws[1][0].grad = g.clone(), g.clone()
        a.step()
        b.step()
    assert torch.equal(ws[0][0], ws[1][0])
