"""Autograd through ``newton_schulz`` (the computed iteration) and ``polar`` (closed-form derivative
of ``UVᵀ``): float64 ``gradcheck``, an independent hand-written reference, the limit NS → polar,
and the edge cases (zero matrix, list input, no_grad, rank-deficient polar)."""
import pytest
import torch
from torch.autograd import gradcheck

import matbal


def rand(*shape, seed=0):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (2, 3, 4)])
@pytest.mark.parametrize("normalize", ["frobenius", "schatten8", "spectral", "none"])
@pytest.mark.parametrize("form", ["standard", "gram"])
def test_newton_schulz_gradcheck(shape, normalize, form):
    x = rand(*shape)
    if normalize == "none":  # the caller guarantees ‖X‖₂ ≤ 1
        x = x / (2 * torch.linalg.matrix_norm(x, ord=2, keepdim=True))
    x.requires_grad_()
    for schedule, steps in (("muon", 5), ("cubic", 3), ("polar_express", 4)):
        def f(t):
            return matbal.newton_schulz(t, schedule=schedule, steps=steps, normalize=normalize,
                                        form=form)
        assert gradcheck(f, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)
        # the recorded path computes the same map as the no-grad one
        torch.testing.assert_close(f(x).detach(), f(x.detach()), rtol=0, atol=1e-12)


def test_newton_schulz_grad_equals_handwritten_muon():
    x, w = rand(4, 7, seed=1).requires_grad_(), rand(4, 7, seed=2)
    (matbal.newton_schulz(x, steps=5) * w).sum().backward()
    y = x.detach().clone().requires_grad_()
    z = y / (torch.linalg.matrix_norm(y) + 1e-7)
    for _ in range(5):
        a = z @ z.T
        z = 3.4445 * z + (-4.7750 * a + 2.0315 * a @ a) @ z
    (z * w).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-10, atol=1e-12)


def test_newton_schulz_float32_and_list_inputs():
    x = rand(6, 10, seed=3).float().requires_grad_()
    out = matbal.newton_schulz(x)
    assert out.requires_grad and out.dtype == torch.float32
    torch.testing.assert_close(out.detach(), matbal.newton_schulz(x.detach()), rtol=0, atol=1e-5)
    out.sum().backward()
    assert x.grad.dtype == torch.float32 and bool(torch.isfinite(x.grad).all())
    a, b = rand(3, 4, seed=4).requires_grad_(), rand(3, 4, seed=5).requires_grad_()
    matbal.newton_schulz([a, b]).sum().backward()
    a2 = a.detach().clone().requires_grad_()
    matbal.newton_schulz(a2).sum().backward()
    torch.testing.assert_close(a.grad, a2.grad, rtol=1e-12, atol=1e-12)
    assert b.grad is not None


def test_newton_schulz_zero_matrix_and_no_grad():
    z = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    out = matbal.newton_schulz(z)
    out.sum().backward()
    assert bool((out == 0).all()) and bool((z.grad == 0).all())
    x = rand(3, 4).requires_grad_()
    before = x.detach().clone()
    with torch.no_grad():
        assert not matbal.newton_schulz(x).requires_grad
    matbal.newton_schulz(x, normalize="schatten8").sum().backward()
    assert torch.equal(x.detach(), before)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (2, 3, 4), (2, 4, 3)])
def test_polar_gradcheck(shape):
    x = rand(*shape, seed=6).requires_grad_()
    assert gradcheck(matbal.polar, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_polar_grad_is_the_limit_of_newton_schulz():
    # σ ∈ [0.3, 0.9]: 40 cubic steps converge to polar(X) with their derivative
    u, _ = torch.linalg.qr(rand(5, 5, seed=7))
    v, _ = torch.linalg.qr(rand(8, 5, seed=8))
    x0 = u @ torch.diag(torch.linspace(0.3, 0.9, 5, dtype=torch.float64)) @ v.T
    w = rand(5, 8, seed=9)
    grads = []
    for f in (lambda t: matbal.polar(t),
              lambda t: matbal.newton_schulz(t, schedule="cubic", steps=40, normalize="none")):
        x = x0.clone().requires_grad_()
        (f(x) * w).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-8, atol=1e-9)


def test_polar_repeated_singular_values_finite():
    q, _ = torch.linalg.qr(rand(4, 4, seed=10))  # every σ = 1
    x = q.clone().requires_grad_()
    assert gradcheck(matbal.polar, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)
    xf = torch.eye(3).requires_grad_()  # float32 input: float64 work, float32 gradient
    matbal.polar(xf, dtype=None).sum().backward()
    assert xf.grad.dtype == torch.float32 and bool(torch.isfinite(xf.grad).all())


def test_polar_rank_deficient_backward_is_refused():
    x = (rand(4, 1) @ rand(1, 5)).requires_grad_()
    q = matbal.polar(x)  # the forward is defined (a partial isometry)
    with pytest.raises(ValueError, match="rank-deficient"):
        q.sum().backward()
