"""Regression tests for the kernel defects of the reliability pass: racs on inputs balanced only
up to a scalar, batch independence and an honest ``converged``; norms of finite inputs whose
squares overflow; knight_ruiz on extreme column scales; dtypes torch cannot compute with and
unvalidated option strings. References are float64 and computed here, independently."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import matbal
from matbal.kernels.balancing import balance, racs

F64 = torch.float64


def gauss(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed)).to(dtype)


def target_dev(y, p=2.0):
    """float64: max relative deviation of row/column p-norms from n^(1/p), m^(1/p) (per matrix)."""
    y = y.double()
    m, n = y.shape[-2:]
    rows = torch.linalg.vector_norm(y, p, dim=-1) / n ** (1 / p)  # 1 / inf == 0: target 1
    cols = torch.linalg.vector_norm(y, p, dim=-2) / m ** (1 / p)
    return torch.maximum((rows - 1).abs().amax(-1), (cols - 1).abs().amax(-1))


# ---------------------------------------------------------------------------------------------
# racs: balanced up to a scalar

def _scalar_balanced():
    q, _ = torch.linalg.qr(gauss(5, 5, seed=1))
    sign = torch.where(gauss(4, 6, seed=2) > 0, 1.0, -1.0).double()
    return {
        "100*eye(3)": (100 * torch.eye(3, dtype=F64), math.sqrt(3) * torch.eye(3, dtype=F64)),
        "1x1": (torch.tensor([[-250.0]], dtype=F64), torch.tensor([[-1.0]], dtype=F64)),
        "7*sign": (7 * sign, sign),
        "0.01*orthogonal": (0.01 * q, math.sqrt(5) * q),
        "1e20*ones": (torch.full((3, 8), 1e20, dtype=F64), torch.ones(3, 8, dtype=F64)),
    }


@pytest.mark.parametrize("name", list(_scalar_balanced()))
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("log_domain", [None, True, False])
def test_racs_reaches_targets_when_balanced_up_to_a_scalar(name, dtype, log_domain):
    x, want = _scalar_balanced()[name]
    if log_domain is False and dtype == torch.float32 and name == "1e20*ones":
        pytest.skip("(1e20)^2 overflows float32's plain domain: log_domain=False is not for it")
    res = racs(x.to(dtype), log_domain=log_domain)
    assert res.converged
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(res.matrix.double(), want, rtol=4 * tol, atol=4 * tol)
    assert float(target_dev(res.matrix)) <= tol


def test_balance_racs_reaches_targets():
    res = balance(100 * torch.eye(3), method="racs")
    torch.testing.assert_close(res.matrix, math.sqrt(3) * torch.eye(3))
    assert res.iterations >= 1 and res.history[0] > 1


@pytest.mark.parametrize("p", [1, 2, math.inf])
def test_racs_batch_element_equals_its_result_alone(p):
    # a matrix balanced up to a scalar batched with an extreme companion that forces the
    # pre-scaled (or log) domain on the whole batch: each element equals its result alone
    plain = torch.full((8, 64), 3.0)
    wild = gauss(8, 64, seed=3, dtype=torch.float32) * 1e30
    tiny = gauss(8, 64, seed=4, dtype=torch.float32) * torch.logspace(-30, 0, 64)
    batch = racs(torch.stack([plain, wild, tiny]), p=p)
    for k, x in enumerate((plain, wild, tiny)):
        alone = racs(x, p=p)
        torch.testing.assert_close(batch.matrix[k], alone.matrix, rtol=2e-6, atol=1e-6)
        assert bool(batch.residual[k] <= 1e-6) == bool(alone.residual <= 1e-6)
    q = 1.0 if p == math.inf else p
    want = torch.full((8,), 64 ** (1 / q) if p != math.inf else 1.0, dtype=F64)
    torch.testing.assert_close(batch.matrix[0].double().norm(p=p, dim=1), want, rtol=1e-6, atol=0)


def test_converged_describes_the_returned_matrix():
    # float32 input pre-scaled by 1e30: the iterate met rtol, and the returned matrix must too
    # (a float32 log of the pre-scale once put a common 4e-6 error on every scale)
    cases = [gauss(8, 64, seed=s, dtype=torch.float32) * 1e30 for s in range(3)]
    cases += [gauss(64, 32, seed=s, dtype=torch.float32) for s in range(3)]
    cases += [gauss(40, 200, seed=s, dtype=torch.float32) * torch.logspace(-3, 3, 200) for s in range(3)]
    for x in cases:
        for rtol in (1e-6, 3e-7):
            res = racs(x, rtol=rtol, max_iter=500, warn=False)
            measured = float(target_dev(res.matrix))
            assert res.converged and measured <= rtol
            # the reported residual is the returned matrix's, to the documented float32-sum
            # accuracy (within which a float64 measurement decides)
            band = max(rtol / 4, 2 * torch.finfo(torch.float32).eps)
            assert abs(res.residual.item() - measured) <= band
            assert res.history[-1].item() == res.residual.item()


def test_rtol_below_the_rounding_floor_is_reported_not_converged():
    x = gauss(64, 32, seed=5, dtype=torch.float32)
    with pytest.warns(matbal.ConvergenceWarning, match="returned matrix|stalled"):
        res = racs(x, rtol=1e-9, max_iter=60)
    assert not res.converged
    assert float(target_dev(res.matrix)) > 1e-9


# ---------------------------------------------------------------------------------------------
# finite inputs whose norms overflow the dtype (scale before squaring, as LAPACK's nrm2)

HUGE = [torch.full((2, 9), 2e38), torch.tensor([[3e38, -3e38, 1.0], [1e-30, 0.0, 2e38]])]


@pytest.mark.parametrize("k", range(len(HUGE)))
def test_normalize_finite_rows_whose_norm_overflows(k):
    x = HUGE[k]
    keep = x.clone()
    for fn, dim in ((matbal.normalize_rows, 1), (matbal.normalize_cols, 0)):
        out = fn(x)
        ref = x.double() / x.double().norm(dim=dim, keepdim=True)
        torch.testing.assert_close(out.double(), ref, rtol=1e-6, atol=1e-7)
    assert torch.equal(x, keep)


@pytest.mark.parametrize("k", range(len(HUGE)))
def test_imbalance_and_one_shot_histories_finite_when_norms_overflow(k):
    from matbal.kernels.metrics.imbalance import imbalance

    x = HUGE[k]
    xd = x.double()
    rows, cols = xd.norm(dim=1), xd.norm(dim=0)
    live = cols > 0
    want = max(float((rows / rows.mean() - 1).abs().max()),
               float((cols / cols[live].mean() - 1).abs()[live].max()))
    got = imbalance(x)
    assert float(got.residual) == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert float(matbal.spectrum_report(x).imbalance_residual) == pytest.approx(want, rel=1e-5, abs=1e-6)
    for method in ("rows", "cols", "rc", "aol"):
        res = balance(x, method=method)
        assert bool(torch.isfinite(res.history).all()), method
        assert float(res.history[0]) == pytest.approx(want, rel=1e-5, abs=1e-6)
        assert bool(torch.isfinite(res.matrix).all())


def test_lower_spectral_estimate_never_above_sigma1():
    from matbal.kernels.metrics import quick_stats, spectral_norm_estimate

    x = torch.full((2, 9), 2e38)  # sigma_1 = 8.5e38 > float32 max
    sigma1 = float(torch.linalg.matrix_norm(x.double(), 2))
    lo = spectral_norm_estimate(x, iters=5, kind="lower").value
    assert bool(torch.isfinite(lo)) and float(lo) <= sigma1
    assert float(lo) == float(torch.finfo(torch.float32).max)
    assert float(quick_stats(x).spectral_lower) <= sigma1
    assert float(spectral_norm_estimate(x, iters=5, kind="upper").value) >= sigma1


# ---------------------------------------------------------------------------------------------
# knight_ruiz on scales spanning many decades

@pytest.mark.parametrize("decades", [15, 30])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_knight_ruiz_extreme_column_scales_converges_like_racs(decades, dtype):
    import warnings

    x = gauss(30, 20, seed=0) * torch.logspace(-decades, decades, 20, dtype=F64)
    x = x.to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning
        kr = matbal.knight_ruiz(x)
    assert kr.converged
    assert float(target_dev(kr.matrix)) <= 1e-6 + 4 * torch.finfo(dtype).eps
    ref = racs(x.double(), rtol=1e-12, max_iter=1000)
    torch.testing.assert_close(kr.matrix.double(), ref.matrix, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# dtypes torch cannot compute with; option flags that are not booleans

def _public_kernels():
    from matbal.kernels.metrics import row_col_norms

    return {
        "normalize_rows": matbal.normalize_rows, "normalize_cols": matbal.normalize_cols,
        "rc_scale": matbal.rc_scale, "racs": matbal.racs, "ruiz": matbal.ruiz,
        "knight_ruiz": matbal.knight_ruiz, "aol": matbal.aol, "balance": matbal.balance,
        "newton_schulz": matbal.newton_schulz, "polar": matbal.polar, "svdvals": matbal.svdvals,
        "frobenius_norm": matbal.frobenius_norm, "stable_rank": matbal.stable_rank,
        "condition_number": matbal.condition_number, "numerical_rank": matbal.numerical_rank,
        "effective_rank": matbal.effective_rank, "x_min": matbal.x_min,
        "orthogonality_error": matbal.orthogonality_error, "imbalance": matbal.imbalance,
        "row_col_norms": row_col_norms, "spectrum_report": matbal.spectrum_report,
        "spectral_norm_estimate": lambda x: matbal.spectral_norm_estimate(x, iters=3),
        "stable_rank_estimate": lambda x: matbal.stable_rank_estimate(x, iters=3),
        "quick_stats": matbal.quick_stats,
    }


UNUSABLE = {
    "float8_e4m3fn": lambda: torch.ones(3, 4).to(torch.float8_e4m3fn),
    "float8_e5m2": lambda: torch.ones(3, 4).to(torch.float8_e5m2),
    "longdouble": lambda: np.ones((3, 4), dtype=np.longdouble),
}


@pytest.mark.parametrize("dtype", list(UNUSABLE))
@pytest.mark.parametrize("name", list(_public_kernels()))
def test_unusable_dtype_refused_naming_the_argument(name, dtype):
    x = UNUSABLE[dtype]()
    with pytest.raises(TypeError, match=r"^x has dtype .*cannot compute with"):
        _public_kernels()[name](x)


@pytest.mark.parametrize("dtype", list(UNUSABLE))
def test_sinkhorn_unusable_dtype_names_b(dtype):
    with pytest.raises(TypeError, match=r"^b has dtype"):
        matbal.sinkhorn_knopp(UNUSABLE[dtype]())


@pytest.mark.parametrize("kernel,opt", [
    ("racs", "warn"), ("racs", "log_domain"), ("sinkhorn_knopp", "warn"),
    ("sinkhorn_knopp", "log_domain"), ("ruiz", "warn"), ("knight_ruiz", "warn"),
])
@pytest.mark.parametrize("value", ["yes", "no", 1, 0.0])
def test_flag_options_must_be_booleans(kernel, opt, value):
    x = gauss(4, 3, seed=0).abs()
    with pytest.raises(TypeError, match=rf"^{opt} must be True"):
        getattr(matbal, kernel)(x, **{opt: value})
    with pytest.raises(TypeError, match=rf"^{opt} must be True"):
        balance(x, method={"sinkhorn_knopp": "sinkhorn"}.get(kernel, kernel), **{opt: value})
    getattr(matbal, kernel)(x, **{opt: True})  # the booleans themselves pass


# ---------------------------------------------------------------------------------------------
# found by the fuzz pass (tests/test_kernel_fuzz.py)

def _cols_1e30(dtype):
    return (gauss(5, 8, seed=7) * torch.logspace(-30, 30, 8, dtype=F64)).to(dtype)


def test_rc_scale_float32_matches_float64_on_extreme_columns():
    # float32 logs of 1e60-sized sums (≈1e-5 absolute error) and a common pre-scale under which
    # 1e-30 columns underflowed (scale 0: a live column zeroed)
    x = _cols_1e30(torch.float32)
    r32, r64 = balance(x, method="rc"), balance(x.double(), method="rc")
    assert not bool(r32.zero_cols.any())
    torch.testing.assert_close(r32.row_scale.double(), r64.row_scale, rtol=2e-6, atol=0)
    torch.testing.assert_close(r32.col_scale.double(), r64.col_scale, rtol=2e-6, atol=0)
    # entries below float32's normal range are rounded as float32 must round them
    tiny = torch.finfo(torch.float32).tiny
    torch.testing.assert_close(matbal.rc_scale(x).double(), r64.matrix, rtol=2e-6, atol=tiny)


def test_aol_keeps_tiny_columns_live_in_float32():
    x = _cols_1e30(torch.float32)
    res32, res64 = balance(x, method="aol"), balance(x.double(), method="aol")
    assert not bool(res32.zero_cols.any())
    torch.testing.assert_close(res32.col_scale.double(), res64.col_scale, rtol=1e-5, atol=0)


def test_power_iteration_estimates_batch_equals_loop():
    from matbal.kernels.metrics import quick_stats, spectral_norm_estimate

    xs = torch.stack([gauss(5, 8, seed=s) for s in range(3)])
    batch = spectral_norm_estimate(xs, iters=3).value
    alone = torch.stack([spectral_norm_estimate(x, iters=3).value for x in xs])
    torch.testing.assert_close(batch, alone, rtol=1e-12, atol=0)
    lo = quick_stats(xs).spectral_lower
    torch.testing.assert_close(lo, torch.stack([quick_stats(x).spectral_lower for x in xs]))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_row_col_norms_refuses_nan_and_inf(bad):
    from matbal.kernels.metrics import row_col_norms

    x = gauss(3, 4)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="^x contains NaN or Inf"):
        row_col_norms(x)


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1.0])
def test_ruiz_converged_claim_holds_on_the_returned_matrix(scale):
    # float32 logs of the pre-scale put a common ~2e-6 error on every max-abs value
    for seed in range(3):
        x = gauss(1, 6, seed=seed, dtype=torch.float32) * scale
        for xx in (x, gauss(5, 8, seed=seed, dtype=torch.float32) * scale):
            res = matbal.ruiz(xx)
            assert res.converged
            assert float(target_dev(res.matrix, math.inf)) <= 1e-6
