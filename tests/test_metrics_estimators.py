"""Cheap estimators: their stated bound directions hold, they converge, and they refuse bad input."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import matbal.kernels.metrics.estimators as E
import matbal.synthetic as syn
from matbal.kernels.metrics import (
    quick_stats,
    spectral_norm_estimate,
    stable_rank,
    stable_rank_estimate,
    svdvals,
)


@st.composite
def matrices(draw):
    """Random matrices of mixed structure and dtype, with the exact σ_1 and sr of the stored matrix."""
    m, n = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31))
    kind = draw(st.sampled_from(["gaussian", "geometric", "flat", "rank1", "heavy_rows", "heavy_tailed"]))
    dtype = draw(st.sampled_from([torch.float64, torch.float32, torch.bfloat16]))
    scale = 10.0 ** draw(st.integers(-20, 20))
    r = min(m, n)
    if kind == "gaussian":
        x = syn.gaussian(m, n, seed=seed, dtype=torch.float64)
    elif kind == "geometric":
        x = syn.prescribed_spectrum(m, n, syn.geometric_spectrum(r, kappa=1e4), seed=seed, dtype=torch.float64)
    elif kind == "flat":  # worst case for power iteration: no gap at all
        x = syn.prescribed_spectrum(m, n, torch.ones(r), seed=seed, dtype=torch.float64)
    elif kind == "rank1":  # Schatten bound is exact: rounding must not push it below σ_1
        x = syn.prescribed_spectrum(m, n, [1.0] + [0.0] * (r - 1), seed=seed, dtype=torch.float64)
    elif kind == "heavy_rows":
        x = syn.heavy_rows(m, n, k=1, factor=30.0, seed=seed, dtype=torch.float64)
    else:
        x = syn.heavy_tailed(m, n, df=1.5, seed=seed, dtype=torch.float64)
    x = (x * scale).to(dtype)
    return x


def _truth(x):
    return float(svdvals(x)[0]), float(stable_rank(x))


def _le(a, b, c):
    """a ≤ b ≤ c, allowing 1e-12 relative rounding in the float64 reference b itself."""
    return a <= b * (1 + 1e-12) and b * (1 - 1e-12) <= c


@settings(max_examples=50, deadline=None)
@given(x=matrices(), iters=st.integers(0, 6), seed=st.integers(0, 100))
def test_bound_directions_hold(x, iters, seed):
    s1, sr = _truth(x)
    lo = spectral_norm_estimate(x, iters=iters, kind="lower", seed=seed)
    hi = spectral_norm_estimate(x, iters=iters, kind="upper")
    assert not lo.is_upper_bound and hi.is_upper_bound
    assert _le(float(lo.value), s1, float(hi.value))
    sr_hi = stable_rank_estimate(x, iters=iters, kind="upper", seed=seed)
    sr_lo = stable_rank_estimate(x, iters=iters, kind="lower")
    assert sr_hi.is_upper_bound and not sr_lo.is_upper_bound
    assert _le(float(sr_lo.value), sr, float(sr_hi.value))
    q = quick_stats(x, power_iters=iters, upper_iters=iters, seed=seed)
    assert _le(float(q.spectral_lower), s1, float(q.spectral_upper))
    assert _le(float(q.stable_rank_lower), sr, float(q.stable_rank_upper))
    assert q.spectral_lower == lo.value and q.stable_rank_lower == sr_lo.value


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), b=st.integers(1, 3))
def test_bound_directions_batched_equal_loop(seed, b):
    x = syn.gaussian(12, 20, seed=seed, batch=(b, 2), dtype=torch.float32)
    q = quick_stats(x, seed=3)
    s1 = svdvals(x)[..., 0]
    assert (q.spectral_lower.double() <= s1).all() and (s1 <= q.spectral_upper.double()).all()
    assert q.spectral_lower.shape == (b, 2)
    for i in range(b):
        for j in range(2):
            # the batched start vector differs from the single one; the bounds hold for both
            qi = quick_stats(x[i, j], seed=3)
            assert float(qi.spectral_lower) <= float(s1[i, j]) <= float(qi.spectral_upper)
            torch.testing.assert_close(qi.frobenius_norm, q.frobenius_norm[i, j])
            torch.testing.assert_close(qi.spectral_upper, q.spectral_upper[i, j], rtol=1e-5, atol=0)


def test_convergence_both_sides():
    x = syn.prescribed_spectrum(128, 96, syn.geometric_spectrum(96, kappa=1e2), seed=0, dtype=torch.float64)
    s1 = float(svdvals(x)[0])
    lows = [float(spectral_norm_estimate(x, iters=k).value) for k in (1, 5, 20, 80)]
    highs = [float(spectral_norm_estimate(x, iters=k, kind="upper").value) for k in (0, 1, 3, 6)]
    assert lows == sorted(lows) and highs == sorted(highs, reverse=True)
    assert 1 - lows[-1] / s1 < 1e-6
    assert highs[-1] / s1 - 1 < 1e-2
    # the upper bound overestimates by at most r^{1/(4p)} (p = 2^{iters-1}), before the safety margin
    for k in (1, 2, 3):
        v = float(spectral_norm_estimate(x, iters=k, kind="upper").value)
        assert v / s1 <= 96 ** (1 / (4 * 2 ** (k - 1))) * (1 + 1e-12)


def test_exact_on_simple_matrices():
    d = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64))
    assert float(spectral_norm_estimate(d, iters=30).value) == pytest.approx(3.0, rel=1e-12)
    assert float(spectral_norm_estimate(d, iters=0, kind="upper").value) == pytest.approx(3.0, rel=1e-12)
    assert float(stable_rank_estimate(torch.eye(5, dtype=torch.float64), iters=3).value) == pytest.approx(5.0)


def test_zero_matrix_and_huge_range():
    z = torch.zeros(3, 4, 5)
    for kind in ("lower", "upper"):
        v = spectral_norm_estimate(z, iters=3, kind=kind).value
        assert torch.equal(v, torch.zeros(3))
        assert torch.equal(stable_rank_estimate(z, iters=3, kind=kind).value, torch.zeros(3))
    q = quick_stats(z)
    assert all(not np.isnan(np.asarray(v)).any() for v in q.as_dict().values())
    x = syn.gaussian(30, 20, seed=1, dtype=torch.float64)
    for big in (1e30, 1e-30):
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            y = (x * big).to(dtype)
            s1 = float(svdvals(y)[0])
            q = quick_stats(y)
            assert np.isfinite(list(q.as_dict().values())).all()
            assert float(q.spectral_lower) <= s1 <= float(q.spectral_upper)
            assert float(q.spectral_upper) / float(q.spectral_lower) < 1.1
    # float64 input of 1e200 with a float32 compute dtype: scaled before the cast
    v = spectral_norm_estimate(x * 1e200, iters=20, dtype=torch.float32).value
    assert np.isfinite(float(v)) and 0.9 < float(v) / float(svdvals(x * 1e200)[0]) <= 1


def test_dtypes_and_numpy():
    x = syn.gaussian(10, 14, seed=2, dtype=torch.bfloat16)
    assert spectral_norm_estimate(x, iters=2).value.dtype == torch.float32
    assert spectral_norm_estimate(x, iters=2, dtype=torch.float64).value.dtype == torch.float64
    xn = syn.gaussian(10, 14, seed=2, dtype=torch.float64).numpy()
    e = spectral_norm_estimate(xn, iters=5, kind="upper")
    assert isinstance(e.value, np.ndarray) and e.is_upper_bound and e.method == "schatten_64"
    assert isinstance(quick_stats(xn).as_dict()["spectral_lower"], float)


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        (dict(iters=-1), ValueError, "iters"),
        (dict(iters=1.5), TypeError, "iters"),
        (dict(iters=2, kind="both"), ValueError, "kind"),
        (dict(iters=2, dtype=torch.float16), ValueError, "dtype"),
        (dict(iters=2, seed="a"), TypeError, "seed"),
    ],
)
@pytest.mark.parametrize("f", [spectral_norm_estimate, stable_rank_estimate], ids=lambda f: f.__name__)
def test_bad_parameters(f, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        f(torch.eye(3), **kwargs)


@pytest.mark.parametrize(
    "bad,exc,msg",
    [
        (torch.ones(4), ValueError, "x must have at least 2 dimensions"),
        (torch.ones(3, 0), ValueError, "x is empty"),
        (torch.ones(2, 2, dtype=torch.complex128), TypeError, "x must be real"),
        (torch.ones(2, 2, dtype=torch.int32), TypeError, "x must have a floating dtype"),
        (torch.tensor([[float("nan")]]), ValueError, "x contains NaN or Inf"),
    ],
)
def test_bad_input(bad, exc, msg):
    for f in (
        lambda a: spectral_norm_estimate(a, iters=1),
        lambda a: stable_rank_estimate(a, iters=1),
        quick_stats,
    ):
        with pytest.raises(exc, match=msg):
            f(bad)
    with pytest.raises(ValueError, match="power_iters"):
        quick_stats(torch.eye(2), power_iters=-2)


def test_docstring_examples():
    res = doctest.testmod(E)
    assert res.failed == 0 and res.attempted > 0
