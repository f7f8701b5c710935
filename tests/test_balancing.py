"""Balancing kernels: definitions, equivalences, rates, masking, batching, dtypes, bad input."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from matbal.kernels._checks import ConvergenceWarning
from matbal.kernels.balancing import (
    METHODS,
    BalanceResult,
    aol,
    balance,
    knight_ruiz,
    normalize_cols,
    normalize_rows,
    racs,
    rc_scale,
    ruiz,
    sinkhorn_knopp,
)
from matbal.kernels.metrics.imbalance import imbalance

F64 = torch.float64


def gauss(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed)).to(dtype)


def check_identity(res: BalanceResult, x: torch.Tensor, rtol=1e-10):
    """matrix == row_scale[..., :, None] * x * col_scale[..., None, :] and shapes are fixed."""
    assert isinstance(res, BalanceResult)
    m, n = x.shape[-2:]
    assert res.matrix.shape == x.shape and res.matrix.dtype == x.dtype
    assert res.row_scale.shape == x.shape[:-1] and res.col_scale.shape == x.shape[:-2] + (n,)
    assert res.zero_rows.shape == x.shape[:-1] and res.zero_rows.dtype == torch.bool
    assert res.zero_cols.shape == x.shape[:-2] + (n,)
    assert res.history.dtype == F64 and res.history.ndim == 1
    assert len(res.history) == res.iterations + 1
    assert res.residual.shape == x.shape[:-2]
    rebuilt = res.row_scale.double()[..., :, None] * x.double() * res.col_scale.double()[..., None, :]
    torch.testing.assert_close(res.matrix.double(), rebuilt, rtol=rtol, atol=0)
    assert torch.isfinite(res.matrix).all()
    assert torch.isfinite(res.row_scale).all() and torch.isfinite(res.col_scale).all()


# ----------------------------------------------------------------------------------------------
# R and C


@pytest.mark.parametrize("dtype,tol", [(F64, 1e-14), (torch.float32, 1e-6)])
def test_row_col_normalization_invariance(dtype, tol):
    x = gauss(3, 7, 5, dtype=dtype)
    d_r = torch.exp(gauss(3, 7, 1, seed=1) * 3).to(dtype)   # positive diagonal, wide range
    d_c = torch.exp(gauss(3, 1, 5, seed=2) * 3).to(dtype)
    torch.testing.assert_close(normalize_rows(d_r * x), normalize_rows(x), rtol=tol, atol=tol)
    torch.testing.assert_close(normalize_cols(x * d_c), normalize_cols(x), rtol=tol, atol=tol)
    r = normalize_rows(x)
    torch.testing.assert_close(r.double().norm(dim=-1), torch.ones(3, 7, dtype=F64), rtol=tol, atol=0)
    c = normalize_cols(x)
    torch.testing.assert_close(c.double().norm(dim=-2), torch.ones(3, 5, dtype=F64), rtol=tol, atol=0)


def test_normalization_zero_and_tiny_rows_extreme_entries():
    x = gauss(4, 6)
    x[1] = 0
    x[2] = 1e-12 * x[2]                      # below eps=1e-8 relative -> dead -> zero
    out = normalize_rows(x)
    assert torch.isfinite(out).all()
    assert (out[1] == 0).all() and (out[2] == 0).all()
    assert normalize_rows(x, eps=0)[2].norm() == pytest.approx(1.0)  # eps=0: only exact zeros
    # entries at the float32 limits: no overflow in the squares, no underflow to a fake zero
    big = torch.tensor([[3e37, 4e37], [3e-30, 4e-30]], dtype=torch.float32)
    torch.testing.assert_close(normalize_rows(big, eps=0), torch.tensor([[0.6, 0.8], [0.6, 0.8]]))
    res = balance(x, method="rows")
    assert res.zero_rows.tolist() == [False, True, True, False]
    check_identity(res, x)
    resc = balance(x.mT, method="cols")
    assert resc.zero_cols.tolist() == [False, True, True, False]
    check_identity(resc, x.mT)


# ----------------------------------------------------------------------------------------------
# MuonEq one-shot RC


def _official_rc(g, exp=-0.5, eps=1e-8, clip=None):
    """The official MuonEq ``_parallel_rowcol_normalize`` (github MaeChd/muon-eq, 99b6c8b)."""
    sq = g.square()
    row, col = sq.sum(dim=1), sq.sum(dim=0)
    row, col = (row + eps).pow(exp), (col + eps).pow(exp)
    if clip is not None:
        row, col = row.clamp(1 / clip, clip), col.clamp(1 / clip, clip)
    return g * row[:, None] * col[None, :]


@pytest.mark.parametrize("exp,clip", [(-0.5, None), (-0.25, None), (-0.5, 3.0)])
def test_rc_scale_matches_official_code(exp, clip):
    x = gauss(9, 13) * torch.logspace(-2, 2, 9, dtype=F64)[:, None]
    torch.testing.assert_close(rc_scale(x, exponent=exp, clip=clip), _official_rc(x, exp, 1e-8, clip))
    tiny = x * 1e-6  # eps matters here: the absolute 1e-8 is added before the power
    torch.testing.assert_close(rc_scale(tiny, exponent=exp, clip=clip), _official_rc(tiny, exp, 1e-8, clip))


def test_rc_one_shot_does_not_equalize_and_batches():
    x = gauss(2, 9, 13) * torch.logspace(-2, 2, 9, dtype=F64)[:, None]
    out = rc_scale(x)
    assert float(imbalance(out).residual.amax()) > 1e-2
    assert float(imbalance(racs(x).matrix).residual.amax()) < 1e-5
    torch.testing.assert_close(out, torch.stack([rc_scale(x[0]), rc_scale(x[1])]))
    x[0, 3] = 0
    res = balance(x, method="rc", clip=10.0)
    assert res.zero_rows[0, 3] and not res.zero_rows[1].any()
    check_identity(res, x)
    # huge entries: computed in log space, no overflow
    assert torch.isfinite(rc_scale(torch.full((3, 3), 1e30, dtype=torch.float32))).all()


# ----------------------------------------------------------------------------------------------
# RACS / Sinkhorn–Knopp


def test_racs_p2_targets_and_equals_sinkhorn_on_squares():
    x = gauss(30, 20)
    res = racs(x, rtol=1e-12)
    assert res.converged and res.history[-1] <= 1e-12
    torch.testing.assert_close(res.matrix.norm(dim=1), torch.full((30,), math.sqrt(20), dtype=F64))
    torch.testing.assert_close(res.matrix.norm(dim=0), torch.full((20,), math.sqrt(30), dtype=F64))
    torch.testing.assert_close(res.matrix.pow(2).mean(), torch.tensor(1.0, dtype=F64))
    sk = sinkhorn_knopp(x * x, rtol=1e-12)
    torch.testing.assert_close(res.matrix**2, sk.matrix, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(res.row_scale**2 * res.col_scale[0] ** 2,
                               sk.row_scale * sk.col_scale[0], rtol=1e-9, atol=0)
    # residuals differ by definition (norms vs sums: ~ a factor 2), so counts may differ by one
    assert abs(res.iterations - sk.iterations) <= 1
    check_identity(res, x)
    check_identity(sk, x * x)


def test_racs_steps_equals_sinkgd():
    x = gauss(12, 7, seed=3)
    m, n = x.shape
    y = x.clone()
    for L in range(1, 5):
        y = math.sqrt(n) * y / y.norm(dim=1, keepdim=True)   # Y = sqrt(n) Q(X)^-1 X
        y = math.sqrt(m) * y / y.norm(dim=0, keepdim=True)   # X <- sqrt(m) Y R(Y)^-1
        res = racs(x, steps=L)
        assert res.iterations == L and len(res.history) == L + 1
        torch.testing.assert_close(res.matrix, y, rtol=1e-12, atol=1e-13)


def target_dev(y, p=2):
    """float64 reference: max relative deviation of row/column p-norms from n^(1/p), m^(1/p)."""
    y = y.double()
    m, n = y.shape[-2:]
    rows = y.norm(p=p, dim=-1) / n ** (1 / p)  # 1 / inf == 0: target 1
    cols = y.norm(p=p, dim=-2) / m ** (1 / p)
    return float(torch.maximum((rows - 1).abs().amax(-1), (cols - 1).abs().amax(-1)).amax())


def test_history_is_target_residual_of_each_iterate():
    # the residual is the deviation from the documented targets (not from the norms' mean)
    x = gauss(15, 9, seed=4) * torch.logspace(-1, 1, 15, dtype=F64)[:, None]
    full = racs(x, steps=6)
    assert full.history[0] == pytest.approx(target_dev(x), rel=1e-10)  # not pre-scaled here
    for k in range(1, 7):
        it = racs(x, steps=k).matrix
        assert full.history[k] == pytest.approx(target_dev(it), rel=1e-6, abs=1e-14)
    for p in (1, math.inf):
        res = racs(x, p=p, steps=2)
        assert res.history[-1] == pytest.approx(target_dev(res.matrix, p), rel=1e-6, abs=1e-14)


def test_racs_rate_matches_sigma2_squared():
    x = gauss(60, 40, seed=1)
    res = racs(x, rtol=1e-13, max_iter=300)
    P = res.matrix**2 / math.sqrt(60 * 40)        # marginal-normalized limit: sigma_1 = 1
    s = torch.linalg.svdvals(P)
    assert s[0] == pytest.approx(1.0, abs=1e-9)
    rate = float(s[1] ** 2)
    h = res.history
    ratios = h[1:] / h[:-1]
    lin = ratios[(h[:-1] < 1e-3) & (h[1:] > 1e-12)]   # linear regime
    assert len(lin) >= 4
    assert float(lin.median()) == pytest.approx(rate, rel=0.25)


def test_racs_rate_large_gaussian():
    m, n = 300, 500
    x = gauss(m, n, seed=2)
    res = racs(x, rtol=1e-13)
    h = res.history
    ratios = (h[1:] / h[:-1])[(h[:-1] < 1e-3) & (h[1:] > 1e-12)]
    predicted = 2 * (m**-0.5 + n**-0.5) ** 2
    assert float(ratios.median()) == pytest.approx(predicted, rel=0.3)


def test_racs_p1_and_pinf_targets():
    x = gauss(8, 5, seed=5)
    r1 = racs(x, p=1, rtol=1e-12)
    torch.testing.assert_close(r1.matrix.abs().sum(1), torch.full((8,), 5.0, dtype=F64))
    torch.testing.assert_close(r1.matrix.abs().sum(0), torch.full((5,), 8.0, dtype=F64))
    ri = racs(x, p=math.inf)
    assert ri.iterations == 1 and ri.converged       # the alternating max sweep is exact at once
    torch.testing.assert_close(ri.matrix.abs().amax(1), torch.ones(8, dtype=F64))
    torch.testing.assert_close(ri.matrix.abs().amax(0), torch.ones(5, dtype=F64))
    check_identity(r1, x)
    check_identity(ri, x)


def test_sinkhorn_prescribed_marginals_and_errors():
    b = gauss(6, 4, seed=6).abs() + 0.1
    a = torch.tensor([1.0, 2, 3, 4, 5, 5], dtype=F64)
    c = torch.tensor([5.0, 5, 5, 5], dtype=F64)
    res = sinkhorn_knopp(b, row_sums=a, col_sums=c, rtol=1e-12)
    torch.testing.assert_close(res.matrix.sum(1), a)
    torch.testing.assert_close(res.matrix.sum(0), c)
    with pytest.raises(ValueError, match="b must be nonnegative"):
        sinkhorn_knopp(-b)
    with pytest.raises(ValueError, match="equal totals"):
        sinkhorn_knopp(b, row_sums=a, col_sums=c * 2)
    with pytest.raises(ValueError, match="row_sums"):
        sinkhorn_knopp(b, row_sums=-a, col_sums=c)
    with pytest.raises(ValueError, match="row_sums must broadcast"):
        sinkhorn_knopp(b, row_sums=a[:3], col_sums=c)
    with pytest.raises(ValueError, match="both"):
        sinkhorn_knopp(b, row_sums=a)


def test_log_domain_sinkhorn_extreme_range_and_agreement():
    gen = torch.Generator().manual_seed(7)
    e = torch.exp(torch.empty(25, 35, dtype=F64).uniform_(-69, 69, generator=gen))  # 1e±30
    lg = sinkhorn_knopp(e, log_domain=True, max_iter=5000, rtol=1e-9)
    assert lg.converged and torch.isfinite(lg.matrix).all()
    torch.testing.assert_close(lg.matrix.sum(1), torch.full((25,), 35.0, dtype=F64), rtol=1e-8, atol=0)
    torch.testing.assert_close(lg.matrix.sum(0), torch.full((35,), 25.0, dtype=F64), rtol=1e-8, atol=0)
    plain = sinkhorn_knopp(e, log_domain=False, max_iter=5000, rtol=1e-9)  # float64 copes too
    torch.testing.assert_close(lg.matrix, plain.matrix, rtol=1e-6, atol=1e-12)
    check_identity(lg, e, rtol=1e-9)
    b = gauss(9, 11, seed=8).abs()
    torch.testing.assert_close(
        sinkhorn_knopp(b, log_domain=True, rtol=1e-12).matrix,
        sinkhorn_knopp(b, log_domain=False, rtol=1e-12).matrix, rtol=1e-9, atol=1e-12)


def test_extreme_range_float32_racs_and_ruiz():
    x = gauss(20, 30, seed=9) * torch.logspace(-30, 30, 20, dtype=F64)[:, None]
    ref = racs(x)
    for dtype in (torch.float32, F64):
        res = racs(x.to(dtype))                      # float32: chooses the log domain itself
        assert res.converged and torch.isfinite(res.matrix).all() and not res.zero_rows.any()
        torch.testing.assert_close(res.matrix.double(), ref.matrix, rtol=1e-5, atol=1e-5)
        ru = ruiz(x.to(dtype), rtol=1e-5)
        assert ru.converged and torch.isfinite(ru.matrix).all()
        torch.testing.assert_close(ru.matrix.abs().amax(1).double(), torch.ones(20, dtype=F64), rtol=1e-4, atol=0)


# ----------------------------------------------------------------------------------------------
# Ruiz, Knight–Ruiz, AOL


def test_ruiz_halves_the_imbalance():
    x = gauss(40, 25, seed=10) * torch.logspace(-3, 3, 40, dtype=F64)[:, None]
    res = ruiz(x, rtol=1e-12, max_iter=200)
    assert res.converged
    h = res.history
    ratios = h[1:] / h[:-1]
    tail = ratios[h[1:] < 1e-3]
    assert len(tail) >= 5
    assert float(tail.max()) <= 0.55 and float(tail.median()) == pytest.approx(0.5, abs=0.05)
    torch.testing.assert_close(res.matrix.abs().amax(1) / res.matrix.abs().amax(1).mean(),
                               torch.ones(40, dtype=F64), rtol=1e-10, atol=0)
    check_identity(res, x)


def test_knight_ruiz_same_fixed_point_fewer_iterations():
    x = gauss(40, 30, seed=11)
    x[:20, 15:] *= 0.05                     # nearly decomposable: slow for Sinkhorn
    x[20:, :15] *= 0.05
    kr = knight_ruiz(x, rtol=1e-10)
    rc = racs(x, rtol=1e-10, max_iter=3000)
    assert kr.converged and rc.converged
    torch.testing.assert_close(kr.matrix, rc.matrix, rtol=1e-7, atol=1e-8)
    assert kr.iterations * 50 < rc.iterations      # ~5 Newton steps vs ~1000 sweeps
    assert kr.matvecs * 10 < rc.matvecs            # and far less work, CG included
    check_identity(kr, x)
    xf = x.float()
    kr32 = knight_ruiz(xf)
    assert kr32.matrix.dtype == torch.float32 and kr32.converged


def test_aol_bound_and_scale_invariance():
    for seed, (m, n) in enumerate([(10, 6), (6, 10), (1, 5), (7, 1)]):
        x = gauss(m, n, seed=seed) * 10.0 ** (seed - 2)
        out = aol(x)
        assert float(torch.linalg.matrix_norm(out, ord=2)) <= 1 + 1e-12
        torch.testing.assert_close(aol(3.7 * x), out)
        assert float(torch.linalg.matrix_norm(aol(x, side="rows"), ord=2)) <= 1 + 1e-12
    x = gauss(8, 5)
    x[:, 2] = 0
    res = balance(x, method="aol")
    assert res.zero_cols.tolist() == [False, False, True, False, False]
    assert (res.matrix[:, 2] == 0).all()
    check_identity(res, x)


# ----------------------------------------------------------------------------------------------
# masking, support, convergence warnings


@pytest.mark.parametrize("method", METHODS)
def test_zero_rows_and_cols_masked_never_nan(method):
    x = gauss(2, 7, 5, seed=12)
    x[0, 2] = 0
    x[1, :, 4] = 0
    x[1, 5] = 0
    b = x.abs() if method == "sinkhorn" else x
    res = balance(b, method=method)
    assert torch.isfinite(res.matrix).all()
    assert res.zero_rows[0].tolist() == [False, False, True, False, False, False, False]
    assert res.zero_rows[1, 5] and res.zero_cols[1, 4] and not res.zero_cols[0].any()
    assert (res.matrix[0, 2] == 0).all() and (res.matrix[1, :, 4] == 0).all()
    if method in ("racs", "sinkhorn", "ruiz", "knight_ruiz", "rows", "cols", "rc", "aol"):
        assert (res.row_scale[0, 2] == 0) and (res.col_scale[1, 4] == 0)
    check_identity(res, b)
    if method in ("racs", "knight_ruiz"):   # live block balanced to its own shape (6 x 4)
        torch.testing.assert_close(res.matrix[1].norm(dim=1)[:5], torch.full((5,), 2.0, dtype=F64),
                                   rtol=1e-5, atol=0)


def test_all_zero_matrix_and_eps_cascade():
    z = torch.zeros(2, 3, 4)
    for method in METHODS:
        res = balance(z, method=method)
        assert (res.matrix == 0).all() and res.zero_rows.all() and res.zero_cols.all()
    # eps > 0: a sub-eps row is dead, and the column living only on it dies with it
    x = torch.tensor([[1.0, 2.0, 0.0], [3.0, 1.0, 0.0], [0.0, 0.0, 1e-9]], dtype=F64)
    res = racs(x, eps=1e-6)
    assert res.zero_rows.tolist() == [False, False, True]
    assert res.zero_cols.tolist() == [False, False, True]
    assert res.converged and (res.matrix[2] == 0).all()


def test_pattern_without_total_support_is_reported_not_nan():
    x = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=F64)
    with pytest.warns(ConvergenceWarning, match="total support"):
        res = racs(x, max_iter=300)
    assert not res.converged and torch.isfinite(res.matrix).all()
    assert res.matrix[0, 1] < 0.05 * res.matrix[0, 0]          # the off-matching entry decays
    h = res.history
    assert h[-1] / h[-11] > 0.7                                 # sublinear crawl, not linear
    with pytest.warns(ConvergenceWarning):
        sk = sinkhorn_knopp(x, max_iter=300)
    assert torch.isfinite(sk.matrix).all() and not sk.converged
    with pytest.warns(ConvergenceWarning):
        kr = knight_ruiz(x, max_iter=20)
    assert torch.isfinite(kr.matrix).all() and not kr.converged


def test_non_convergence_warns_and_steps_does_not():
    x = gauss(30, 20) * torch.logspace(-3, 3, 30, dtype=F64)[:, None]
    for fn in (racs, ruiz, sinkhorn_knopp):
        arg = x.abs() if fn is sinkhorn_knopp else x
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            res = fn(arg, max_iter=1, rtol=1e-14)
        assert not res.converged and res.iterations == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fn(arg, steps=1)
            fn(arg, max_iter=1, rtol=1e-14, warn=False)


def test_callback_and_early_stop():
    seen = []
    res = racs(gauss(10, 8), callback=lambda k, r: seen.append((k, float(r.amax()))) or k == 2,
               rtol=1e-14, warn=False)
    assert [k for k, _ in seen] == [1, 2] and res.iterations == 2
    assert seen[-1][1] == pytest.approx(float(res.history[-1]))


# ----------------------------------------------------------------------------------------------
# batches, dtypes, numpy, immutability


@pytest.mark.parametrize("method", ["racs", "sinkhorn", "ruiz", "knight_ruiz", "rows", "cols", "rc", "aol"])
def test_batched_equals_loop(method):
    x = gauss(2, 3, 9, 6, seed=13)
    x[0, 1] *= torch.logspace(-2, 2, 9, dtype=F64)[:, None]   # slower element
    x[1, 2] = torch.ones(9, 6, dtype=F64)                      # already balanced element
    x[1, 0, 3] = 0
    b = x.abs() if method == "sinkhorn" else x
    res = balance(b, method=method)
    for i in range(2):
        for j in range(3):
            one = balance(b[i, j], method=method)
            torch.testing.assert_close(res.matrix[i, j], one.matrix, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(res.row_scale[i, j], one.row_scale, rtol=1e-12, atol=1e-14)
            assert torch.equal(res.zero_rows[i, j], one.zero_rows)
            assert float(res.residual[i, j]) == pytest.approx(float(one.residual), rel=1e-9, abs=1e-15)
            assert one.iterations <= res.iterations
    assert float(res.history[-1]) == pytest.approx(float(res.residual.amax()), rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    x = gauss(40, 24, seed=14).to(dtype)
    work = F64 if dtype == F64 else torch.float32
    for method in METHODS:
        b = x.abs() if method == "sinkhorn" else x
        res = balance(b, method=method)
        assert res.matrix.dtype == dtype, method
        assert res.row_scale.dtype == work and res.col_scale.dtype == work, method
        assert torch.isfinite(res.matrix.float()).all()
        if method in ("racs", "sinkhorn", "ruiz", "knight_ruiz"):
            assert res.converged, (method, dtype)
    r = racs(x)
    tol = {torch.bfloat16: 1e-2, torch.float32: 1e-5, F64: 1e-6}[dtype]
    torch.testing.assert_close(r.matrix.double().norm(dim=1), torch.full((40,), math.sqrt(24), dtype=F64),
                               rtol=tol, atol=0)
    assert normalize_rows(x).dtype == dtype and rc_scale(x).dtype == dtype and aol(x).dtype == dtype


def test_numpy_in_numpy_out_and_no_mutation():
    x = gauss(7, 5, seed=15)
    xn = x.numpy().copy()
    keep = xn.copy()
    for fn in (normalize_rows, normalize_cols, rc_scale, aol):
        out = fn(xn)
        assert isinstance(out, np.ndarray) and out.dtype == xn.dtype
    for method in METHODS:
        res = balance(np.abs(xn) if method == "sinkhorn" else xn, method=method)
        assert isinstance(res.matrix, np.ndarray) and isinstance(res.row_scale, np.ndarray)
        assert isinstance(res.history, np.ndarray) and isinstance(res.zero_rows, np.ndarray)
    np.testing.assert_array_equal(xn, keep)
    np.testing.assert_allclose(racs(xn).matrix, racs(x).matrix.numpy())
    xt = x.clone()
    for method in METHODS:
        balance(xt.abs() if method == "sinkhorn" else xt, method=method)
        assert torch.equal(xt, x)


# ----------------------------------------------------------------------------------------------
# bad input


ALL_FUNCS = [normalize_rows, normalize_cols, rc_scale, aol, racs, sinkhorn_knopp, ruiz, knight_ruiz, balance]


@pytest.mark.parametrize("fn", ALL_FUNCS, ids=lambda f: f.__name__)
def test_bad_input_names_the_argument(fn):
    name = "b" if fn is sinkhorn_knopp else "x"
    bad = [
        (torch.ones(5), ValueError, "dimensions"),
        (torch.ones(0, 3), ValueError, "empty"),
        (torch.ones(2, 2, dtype=torch.complex64), TypeError, "real"),
        (torch.ones(2, 2, dtype=torch.int64), TypeError, "floating"),
        (np.ones((2, 2), dtype=np.int32), TypeError, "floating"),
        (torch.tensor([[1.0, float("nan")], [1.0, 1.0]]), ValueError, "NaN or Inf"),
        (torch.tensor([[1.0, float("inf")], [1.0, 1.0]]), ValueError, "NaN or Inf"),
        ([[1.0, 2.0]], TypeError, "Tensor"),
    ]
    for val, err, msg in bad:
        with pytest.raises(err, match=msg) as info:
            fn(val)
        assert name in str(info.value) or msg == "Tensor"


def test_bad_options():
    x = gauss(4, 3)
    cases = [
        (lambda: racs(x, p=3), ValueError, "p must be one of"),
        (lambda: racs(x, steps=0), ValueError, "steps"),
        (lambda: racs(x, steps=1.5), TypeError, "steps"),
        (lambda: racs(x, rtol=-1), ValueError, "rtol"),
        (lambda: racs(x, max_iter=0), ValueError, "max_iter"),
        (lambda: racs(x, eps=-1), ValueError, "eps"),
        (lambda: racs(x, callback=3), TypeError, "callback"),
        (lambda: ruiz(x, steps=0), ValueError, "steps"),
        (lambda: knight_ruiz(x, p=math.inf), ValueError, "p must be one of"),
        (lambda: sinkhorn_knopp(x.abs(), rtol=float("nan")), ValueError, "rtol"),
        (lambda: rc_scale(x, clip=0.5), ValueError, "clip"),
        (lambda: rc_scale(x, exponent=float("nan")), ValueError, "exponent"),
        (lambda: normalize_rows(x, eps=-1), ValueError, "eps"),
        (lambda: aol(x, side="diag"), ValueError, "side"),
        (lambda: balance(x, method="svd"), ValueError, "racs"),
        (lambda: balance(x, method="rows", p=2), TypeError, "unexpected options"),
        (lambda: balance(x, method="racs", q=1), TypeError, "q"),
        (lambda: racs(x, 2), TypeError, "positional"),
    ]
    for fn, err, msg in cases:
        with pytest.raises(err, match=msg):
            fn()
