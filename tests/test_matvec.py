"""Batched mat-vecs (matbal.kernels._matvec): same values as the float64 product in every layout,
and the Sinkhorn-family kernels now give a batch exactly what a loop over its elements gives."""
import pytest
import torch

from matbal.kernels._matvec import matvec, vecmat
from matbal.kernels.balancing import racs, sinkhorn_knopp

SHAPES = [(7, 5), (3, 7, 5), (2, 3, 4, 9), (4, 1, 6), (4, 6, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("transposed", [False, True])
def test_matvec_and_vecmat_match_float64(shape, dtype, transposed):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(shape, generator=gen, dtype=dtype)
    if transposed:  # a non-contiguous view
        a = torch.randn(shape[:-2] + shape[-2:][::-1], generator=gen, dtype=dtype).transpose(-2, -1)
    v = torch.randn(shape[:-2] + shape[-1:], generator=gen, dtype=dtype)
    u = torch.randn(shape[:-1], generator=gen, dtype=dtype)
    ref_av = (a.double() @ v.double().unsqueeze(-1)).squeeze(-1)
    ref_ua = (u.double().unsqueeze(-2) @ a.double()).squeeze(-2)
    tol = 1e-5 if dtype == torch.float32 else 1e-13
    av, ua = matvec(a, v), vecmat(u, a)
    assert av.shape == shape[:-1] and ua.shape == shape[:-2] + shape[-1:]
    assert av.dtype == ua.dtype == dtype
    torch.testing.assert_close(av.double(), ref_av, rtol=tol, atol=tol)
    torch.testing.assert_close(ua.double(), ref_ua, rtol=tol, atol=tol)


def test_matvec_broadcasts_a_shared_vector():
    a = torch.randn(3, 4, 5, dtype=torch.float64)
    v = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(matvec(a, v), torch.stack([a[i] @ v for i in range(3)]))


@pytest.mark.parametrize("p", [1, 2])
def test_batched_balancing_equals_loop_bit_for_bit(p):
    x = torch.randn(4, 48, 160, generator=torch.Generator().manual_seed(1))
    batched = racs(x, p=p)
    loop = [racs(xi, p=p) for xi in x]
    assert torch.equal(batched.matrix, torch.stack([r.matrix for r in loop]))
    assert batched.iterations == max(r.iterations for r in loop)
    k = x * x
    assert torch.equal(sinkhorn_knopp(k).matrix, torch.stack([sinkhorn_knopp(ki).matrix for ki in k]))
