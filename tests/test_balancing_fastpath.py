"""The plain-domain fast path of the balancing engine (``_engine.prepare_kernel`` without a max-abs
pass, K and its row/column sums formed once, output written into K's storage): same results as a
float64 reference and as the general (pre-scaled) path, input never modified, dead rows/columns,
batches, NaN/Inf, magnitudes near the float limits, autograd."""
from __future__ import annotations

import math

import pytest
import torch

from matbal.kernels.balancing import _engine, knight_ruiz, racs, ruiz, sinkhorn_knopp
from matbal.kernels.metrics.imbalance import imbalance

F64 = torch.float64


def gauss(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize("p", [1, 2])
def test_fast_path_matches_float64_and_general_path(p):
    x = gauss(64, 48, seed=1) * torch.logspace(-1, 1, 48)[None, :]
    fast = racs(x, p=p, rtol=1e-6)
    ref = racs(x.double(), p=p, rtol=1e-12)
    assert fast.converged and fast.matrix.dtype == torch.float32
    torch.testing.assert_close(fast.matrix.double(), ref.matrix, rtol=2e-4, atol=2e-5)
    torch.testing.assert_close(fast.row_scale.double(), ref.row_scale, rtol=2e-4, atol=0)
    general = racs(x, p=p, rtol=1e-6, eps=1e-30)  # eps > 0 takes the general path
    assert general.iterations == fast.iterations and general.matvecs == fast.matvecs
    torch.testing.assert_close(fast.matrix, general.matrix, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.history, general.history, rtol=1e-3, atol=4e-7)


def test_realistic_size_matches_reference():
    x = gauss(256, 4096, seed=2)  # 4 MiB
    fast = racs(x)
    assert fast.converged and fast.iterations <= 4 and fast.matvecs == 2 + 2 * fast.iterations
    xd = x.double()  # the fast path starts from x itself: history[0] is its target deviation
    dev0 = torch.maximum((xd.norm(dim=1) / 4096**0.5 - 1).abs().amax(),
                         (xd.norm(dim=0) / 16 - 1).abs().amax())
    assert fast.history[0] == pytest.approx(float(dev0), rel=1e-5)
    assert float(imbalance(fast.matrix.double()).residual) < 2e-6
    ref = racs(x.double(), rtol=1e-12)
    torch.testing.assert_close(fast.matrix.double(), ref.matrix, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_input_never_modified_and_never_aliased(dtype):
    x = gauss(64, 48, seed=3, dtype=dtype)
    keep = x.clone()
    outs = [racs(x, p=p, warn=False) for p in (1, 2, math.inf)]
    outs.append(sinkhorn_knopp(x.abs(), warn=False))
    b = x.abs()
    keep_b = b.clone()
    outs.append(sinkhorn_knopp(b, warn=False))  # p = 1, nonnegative: K may share b's storage
    outs.append(ruiz(x, warn=False))
    if dtype != torch.bfloat16:
        outs.append(knight_ruiz(x, warn=False))
    assert torch.equal(x, keep) and torch.equal(b, keep_b)
    for res in outs:
        assert res.matrix.dtype == dtype
        assert res.matrix.data_ptr() not in (x.data_ptr(), b.data_ptr())
        assert torch.isfinite(res.matrix).all()


def test_sinkhorn_on_squares_equals_racs_fast_path():
    x = gauss(64, 48, seed=4)
    sk = sinkhorn_knopp(x * x, rtol=1e-6)
    rc = racs(x, rtol=1e-6)
    torch.testing.assert_close(sk.matrix, rc.matrix**2, rtol=1e-4, atol=1e-6)


def test_dead_rows_and_columns_fast_path():
    x = gauss(64, 48, seed=5)
    x[[3, 17, 63]] = 0
    x[:, [0, 40]] = 0
    res = racs(x)
    assert res.zero_rows.nonzero().flatten().tolist() == [3, 17, 63]
    assert res.zero_cols.nonzero().flatten().tolist() == [0, 40]
    assert (res.matrix[[3, 17, 63]] == 0).all() and (res.matrix[:, [0, 40]] == 0).all()
    assert (res.row_scale[[3, 17, 63]] == 0).all() and (res.col_scale[[0, 40]] == 0).all()
    keep_r, keep_c = ~res.zero_rows, ~res.zero_cols
    live = racs(x[keep_r][:, keep_c])
    torch.testing.assert_close(res.matrix[keep_r][:, keep_c], live.matrix, rtol=1e-5, atol=1e-6)
    assert res.iterations == live.iterations


def test_batched_fast_path_equals_loop():
    x = gauss(3, 64, 48, seed=6)
    x[1, 5] = 0                                              # a dead row in one element
    x[2] *= torch.logspace(-2, 2, 64)[:, None]               # a slower element
    res = racs(x)
    for i in range(3):
        one = racs(x[i])
        torch.testing.assert_close(res.matrix[i], one.matrix, rtol=1e-5, atol=1e-6)
        assert torch.equal(res.zero_rows[i], one.zero_rows)
        assert one.iterations <= res.iterations
        # residuals near the float32 floor are multiples of ~1.2e-7 (one ulp of 1)
        assert float(res.residual[i]) == pytest.approx(float(one.residual), rel=1e-3, abs=4e-7)


def test_all_zero_element_in_a_batch():
    x = gauss(2, 64, 48, seed=7)
    x[0] = 0
    res = racs(x)
    assert (res.matrix[0] == 0).all() and res.zero_rows[0].all() and res.zero_cols[0].all()
    torch.testing.assert_close(res.matrix[1], racs(x[1]).matrix, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_inf_still_raise(bad):
    x = gauss(64, 48, seed=8)
    x[10, 7] = bad
    for p in (1, 2, math.inf):
        with pytest.raises(ValueError, match="NaN or Inf"):
            racs(x, p=p)
    with pytest.raises(ValueError, match="NaN or Inf"):
        sinkhorn_knopp(x.abs())


@pytest.mark.parametrize("scale", [1e-30, 1e-18, 1e18, 1e30])
def test_magnitudes_near_the_limits(scale):
    # x*x under/overflows float32 here: the general path (pre-scale or log domain) takes over
    x = gauss(64, 48, seed=9)
    ref = racs(x)
    res = racs(x * scale)
    assert res.converged and torch.isfinite(res.matrix).all()
    torch.testing.assert_close(res.matrix, ref.matrix, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_eps_is_relative_to_the_max_abs_entry(scale):
    x = torch.ones(6, 5, dtype=F64)
    x[0] = 1e-5                        # p-norm 2.2e-5 << eps * max = 1e-3
    x[:, 1] *= 2e-3                    # column p-norm 4.9e-3 > eps * max: stays live
    res = racs(x * scale, eps=1e-3)
    assert res.zero_rows.tolist() == [True] + [False] * 5
    assert not res.zero_cols.any()


def test_autograd_through_the_fast_path():
    x = gauss(64, 48, seed=10).requires_grad_()
    res = racs(x)
    res.matrix.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():
        torch.testing.assert_close(res.matrix, racs(x.detach()).matrix)
