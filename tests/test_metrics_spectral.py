"""Exact spectral metrics (svd, ranks, orthogonality, report) against numpy/scipy in float64."""
from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import matbal.kernels.metrics as M
import matbal.synthetic as syn
from matbal.kernels.metrics import (
    condition_number,
    effective_rank,
    frobenius_norm,
    numerical_rank,
    orthogonality_error,
    spectrum_report,
    stable_rank,
    svdvals,
    x_min,
)

F64 = torch.float64
SHAPES = [(1, 1), (1, 7), (7, 1), (5, 5), (12, 30), (30, 12)]


def _mat(m, n, kappa=1e2, seed=0, dtype=F64, top=1.0):
    return syn.prescribed_spectrum(
        m, n, syn.geometric_spectrum(min(m, n), kappa=kappa, top=top), seed=seed, dtype=dtype
    )


def _np_metrics(a: np.ndarray) -> dict:
    """Reference values from numpy/scipy only."""
    s = np.linalg.svd(a, compute_uv=False)
    fro = np.linalg.norm(a, "fro")
    two = np.linalg.norm(a, 2)
    p = s / s.sum()
    p = p[p > 0]
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    polar = u @ vt
    gram = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    eye = np.eye(gram.shape[0])
    return dict(
        s=s,
        fro=fro,
        two=two,
        sr=fro**2 / two**2,
        kappa=np.linalg.cond(a, 2) if a.shape[0] == a.shape[1] else s[0] / s[-1],
        rank=np.linalg.matrix_rank(a),
        erank=np.exp(-(p * np.log(p)).sum()),
        x_min=s[-1] / fro,
        polar_spec=np.linalg.norm(a - polar, 2),
        polar_fro=np.linalg.norm(a - polar, "fro"),
        gram_spec=np.linalg.norm(gram - eye, 2),
        gram_fro=np.linalg.norm(gram - eye, "fro"),
    )


@pytest.mark.parametrize("m,n", SHAPES)
def test_metrics_match_numpy(m, n):
    x = _mat(m, n, kappa=50.0, seed=m * 31 + n, top=1.7)
    ref = _np_metrics(x.numpy())
    np.testing.assert_allclose(svdvals(x).numpy(), ref["s"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(float(frobenius_norm(x)), ref["fro"], rtol=1e-13)
    np.testing.assert_allclose(float(stable_rank(x)), ref["sr"], rtol=1e-11)
    np.testing.assert_allclose(float(condition_number(x)), ref["kappa"], rtol=1e-10)
    assert int(numerical_rank(x)) == ref["rank"]
    np.testing.assert_allclose(float(effective_rank(x)), ref["erank"], rtol=1e-12)
    np.testing.assert_allclose(float(x_min(x)), ref["x_min"], rtol=1e-11)
    e = orthogonality_error(x)
    np.testing.assert_allclose(float(e.spectral), ref["polar_spec"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(float(e.frobenius), ref["polar_fro"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(float(e.gram_spectral), ref["gram_spec"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(float(e.gram_frobenius), ref["gram_fro"], rtol=1e-10, atol=1e-13)


def test_polar_distance_matches_scipy_polar():
    x = _mat(9, 6, kappa=8.0, seed=3, top=2.0).numpy()
    u, _ = scipy.linalg.polar(x)  # x = u p, u with orthonormal columns
    e = orthogonality_error(x)
    np.testing.assert_allclose(e.spectral, np.linalg.norm(x - u, 2), rtol=1e-10)
    np.testing.assert_allclose(e.frobenius, np.linalg.norm(x - u), rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 16),
    n=st.integers(1, 16),
    seed=st.integers(0, 2**31),
    log_kappa=st.floats(0, 6),
    log_top=st.floats(-5, 5),
)
def test_x_min_identity(m, n, seed, log_kappa, log_top):
    """x_min = σ_r/‖X‖_F = 1/(κ √sr), prescribed spectra, float64."""
    x = _mat(m, n, kappa=10**log_kappa, seed=seed, top=10**log_top)
    kappa = condition_number(x, rtol=0)
    sr = stable_rank(x)
    torch.testing.assert_close(x_min(x), 1 / (kappa * sr.sqrt()), rtol=1e-10, atol=0)
    r = spectrum_report(x, rtol=0)
    torch.testing.assert_close(r.x_min, 1 / (r.condition_number * r.stable_rank.sqrt()), rtol=1e-10, atol=0)


def test_prescribed_spectrum_is_recovered():
    s = syn.geometric_spectrum(10, kappa=1e4, top=3.0)
    x = syn.prescribed_spectrum(10, 25, s, seed=1, dtype=F64)
    torch.testing.assert_close(svdvals(x), s, rtol=1e-10, atol=0)
    np.testing.assert_allclose(float(condition_number(x)), 1e4, rtol=1e-9)
    np.testing.assert_allclose(float(stable_rank(x)), float((s**2).sum() / s[0] ** 2), rtol=1e-12)


@pytest.mark.parametrize("m,n", [(8, 8), (6, 11), (11, 6)])
def test_orthogonal_invariance(m, n):
    x = _mat(m, n, kappa=30.0, seed=5, top=2.5)
    gen = torch.Generator().manual_seed(9)
    q = syn.random_orthogonal(m, m, generator=gen)
    p = syn.random_orthogonal(n, n, generator=gen)
    y = q @ x @ p
    a, b = spectrum_report(x), spectrum_report(y)
    for k in ("stable_rank", "condition_number", "effective_rank", "x_min", "spectral_norm",
              "frobenius_norm", "polar_error_spectral", "polar_error_frobenius",
              "gram_error_spectral", "gram_error_frobenius"):
        torch.testing.assert_close(getattr(a, k), getattr(b, k), rtol=1e-10, atol=1e-13, msg=k)
    assert int(a.numerical_rank) == int(b.numerical_rank)


@pytest.mark.parametrize("c", [1e-20, 3e-3, 7.0, -2.0, 1e25])
def test_scale_invariance(c):
    x = _mat(7, 13, kappa=100.0, seed=2)
    for f in (stable_rank, condition_number, effective_rank, x_min):
        torch.testing.assert_close(f(c * x), f(x), rtol=1e-11, atol=0)
    torch.testing.assert_close(svdvals(c * x), abs(c) * svdvals(x), rtol=1e-12, atol=0)


def test_rank_deficient():
    s = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.0, 0.0], dtype=F64)
    x = syn.prescribed_spectrum(6, 9, s, seed=4, dtype=F64)
    assert math.isinf(float(condition_number(x)))
    assert int(numerical_rank(x)) == 4 == np.linalg.matrix_rank(x.numpy())
    assert float(x_min(x)) < 1e-15
    # float32 storage: the data resolve only 4 values; rank by input-dtype eps as numpy does
    x32 = x.float()
    assert int(numerical_rank(x32)) == 4 == np.linalg.matrix_rank(x32.numpy())
    # κ of the float32 matrix as stored is finite but huge; with the data tolerance it is inf
    assert float(condition_number(x32)) > 1e5
    rt = max(x.shape) * torch.finfo(torch.float32).eps
    assert math.isinf(float(condition_number(x32, rtol=rt)))


def test_rtol_controls_numerical_rank():
    x = syn.prescribed_spectrum(5, 5, [1.0, 1e-2, 1e-4, 1e-6, 1e-8], seed=0, dtype=F64)
    assert [int(numerical_rank(x, rtol=t)) for t in (0.0, 1e-9, 1e-7, 1e-5, 1e-3, 1e-1, 1.0)] == [
        5, 5, 4, 3, 2, 1, 0,
    ]
    assert math.isinf(float(condition_number(x, rtol=1e-7)))
    np.testing.assert_allclose(float(condition_number(x, rtol=1e-9)), 1e8, rtol=1e-6)


def test_identity_and_known_values():
    assert float(effective_rank(torch.eye(6, dtype=F64))) == pytest.approx(6.0, rel=1e-14)
    assert float(effective_rank(torch.eye(4, 9))) == pytest.approx(4.0, rel=1e-12)
    assert float(stable_rank(torch.eye(6))) == pytest.approx(6.0, rel=1e-14)
    assert float(condition_number(torch.eye(6))) == pytest.approx(1.0, rel=1e-14)
    assert float(x_min(torch.eye(4))) == pytest.approx(0.5, rel=1e-14)
    e = orthogonality_error(torch.eye(5, 3))
    assert all(float(getattr(e, k)) < 1e-15 for k in ("spectral", "frobenius", "gram_spectral", "gram_frobenius"))
    # effective rank of k equal singular values is k, of a rank-1 matrix 1
    x = syn.prescribed_spectrum(6, 6, [2, 2, 2, 0, 0, 0], seed=1, dtype=F64)
    assert float(effective_rank(x)) == pytest.approx(3.0, rel=1e-12)
    assert float(effective_rank(torch.ones(4, 5))) == pytest.approx(1.0, rel=1e-6)


def test_zero_matrix_conventions():
    z = torch.zeros(2, 4, 6)
    r = spectrum_report(z)
    for k, v in r.as_dict().items():
        if k not in ("m", "n"):
            assert not np.isnan(np.asarray(v, dtype=float)).any(), k
    assert torch.equal(stable_rank(z), torch.zeros(2, dtype=F64))
    assert torch.equal(effective_rank(z), torch.zeros(2, dtype=F64))
    assert torch.equal(x_min(z), torch.zeros(2, dtype=F64))
    assert torch.equal(numerical_rank(z), torch.zeros(2, dtype=torch.int64))
    assert torch.isinf(condition_number(z)).all()
    e = orthogonality_error(z)  # distance of 0 to the nearest semi-orthogonal matrix
    assert torch.equal(e.spectral, torch.ones(2, dtype=F64))
    torch.testing.assert_close(e.frobenius, torch.full((2,), 2.0, dtype=F64))
    assert torch.equal(r.imbalance_residual, torch.zeros(2))
    assert r.zero_rows.tolist() == [4, 4] and r.zero_cols.tolist() == [6, 6]


def test_report_equals_individual_metrics_batched_and_loop():
    x = torch.stack([_mat(6, 10, kappa=k, seed=i, top=0.5 + i) for i, k in enumerate((1.0, 10.0, 1e3))])
    x = x.reshape(3, 1, 6, 10)
    x[1, 0, 2] = 0  # a zero row in one element
    r = spectrum_report(x)
    e = orthogonality_error(x)
    imb = M.imbalance(x)
    pairs = dict(
        stable_rank=stable_rank(x), condition_number=condition_number(x),
        numerical_rank=numerical_rank(x), effective_rank=effective_rank(x), x_min=x_min(x),
        spectral_norm=svdvals(x)[..., 0], frobenius_norm=frobenius_norm(x),
        polar_error_spectral=e.spectral, polar_error_frobenius=e.frobenius,
        gram_error_spectral=e.gram_spectral, gram_error_frobenius=e.gram_frobenius,
        imbalance_residual=imb.residual, row_cv=imb.row_cv, col_cv=imb.col_cv,
        zero_rows=imb.zero_rows, zero_cols=imb.zero_cols,
    )
    assert set(pairs) | {"m", "n"} == set(r.as_dict())
    for k, v in pairs.items():
        assert getattr(r, k).shape == (3, 1), k
        torch.testing.assert_close(getattr(r, k), v, rtol=0, atol=0, msg=k)
    # batched == loop
    for i in range(3):
        ri = spectrum_report(x[i, 0])
        for k in pairs:
            torch.testing.assert_close(getattr(r, k)[i, 0], getattr(ri, k), rtol=1e-12, atol=1e-15, msg=k)
    rows = r.rows()
    assert len(rows) == 3 and rows[2]["batch_index"] == (2, 0) and rows[0]["m"] == 6
    assert rows[1]["zero_rows"] == 1
    assert rows[2]["condition_number"] == pytest.approx(1e3, rel=1e-9)
    d = spectrum_report(x[0, 0]).as_dict()
    assert isinstance(d["stable_rank"], float) and isinstance(d["numerical_rank"], int)
    assert spectrum_report(x[0, 0]).rows()[0]["batch_index"] == ()


def test_numpy_in_numpy_out():
    x = _mat(5, 8, kappa=10.0).numpy()
    assert isinstance(svdvals(x), np.ndarray) and isinstance(stable_rank(x), np.ndarray)
    r = spectrum_report(x)
    assert isinstance(r.x_min, np.ndarray) and isinstance(r.rows()[0]["x_min"], float)
    assert isinstance(orthogonality_error(x).spectral, np.ndarray)
    np.testing.assert_allclose(r.condition_number, 10.0, rtol=1e-10)


def test_bf16_and_half_input():
    x64 = _mat(64, 96, kappa=20.0, seed=7)
    xb = x64.to(torch.bfloat16)
    r = spectrum_report(xb)
    ref = _np_metrics(xb.to(F64).numpy())  # exact metrics of the stored bf16 matrix
    assert r.spectral_norm.dtype == F64
    np.testing.assert_allclose(float(r.stable_rank), ref["sr"], rtol=1e-10)
    np.testing.assert_allclose(float(r.condition_number), ref["kappa"], rtol=1e-9)
    np.testing.assert_allclose(float(r.x_min), ref["x_min"], rtol=1e-9)
    # and close to the float64 original within bf16 accuracy
    np.testing.assert_allclose(float(r.condition_number), 20.0, rtol=0.2)
    # 16-bit default tolerance: full rank (numpy's max(m,n)·eps would be > 1 here, i.e. rank 0)
    assert int(r.numerical_rank) == 64
    assert int(numerical_rank(x64.half())) == 64
    lowrank = syn.prescribed_spectrum(64, 96, [1.0] * 8 + [0.0] * 56, seed=1, dtype=torch.bfloat16)
    assert int(numerical_rank(lowrank)) == 8


@pytest.mark.parametrize("big", [1e30, 1e-30])
def test_huge_dynamic_range(big):
    x = _mat(20, 30, kappa=1e3, seed=11)
    for dtype in (torch.float32, F64):
        y = (x * big).to(dtype)
        r = spectrum_report(y)
        for k, v in r.as_dict().items():
            assert np.isfinite(np.asarray(v, dtype=float)).all() or k == "condition_number", k
        np.testing.assert_allclose(float(r.condition_number), 1e3, rtol=1e-4)
        np.testing.assert_allclose(float(r.spectral_norm) / big, 1.0, rtol=1e-5)
        np.testing.assert_allclose(float(r.frobenius_norm) / big, float(frobenius_norm(x)), rtol=1e-5)
        assert int(r.numerical_rank) == 20


def test_mixed_1e30_and_1e_minus_30_float32():
    """Entries spanning 60 decades in one float32 matrix: statistics stay finite and exact."""
    d = torch.tensor([1e30, 1.0, 1e-30], dtype=F64)
    x64 = d[:, None] * _mat(3, 8, kappa=2.0, seed=1)
    x = x64.float()
    s = svdvals(x)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(x.double().numpy(), compute_uv=False), rtol=1e-6)
    assert float(s[-1]) > 0
    # κ ≈ 1e60 is far beyond the float64 SVD's resolution: inf by default, the ratio with rtol=0
    assert math.isinf(float(condition_number(x)))
    assert 1e58 < float(condition_number(x, rtol=0)) < 1e62
    assert int(numerical_rank(x, rtol=0)) == 3
    imb = M.imbalance(x)
    assert int(imb.zero_rows) == 0  # the 1e-30 row is live
    rows, _ = M.row_col_norms(x)
    np.testing.assert_allclose(rows.double().numpy(), np.linalg.norm(x.double().numpy(), axis=1), rtol=1e-6)


def test_orthogonality_of_orthogonal_and_scaled():
    q = syn.random_orthogonal(10, 4, generator=torch.Generator().manual_seed(0))
    e = orthogonality_error(q.T)  # wide, orthonormal rows
    assert float(e.spectral) < 1e-14 and float(e.gram_frobenius) < 1e-14
    e = orthogonality_error(3 * q)  # σ = 3: distance 2 per value, Gram 8
    np.testing.assert_allclose([float(e.spectral), float(e.frobenius)], [2.0, 4.0], rtol=1e-13)
    np.testing.assert_allclose([float(e.gram_spectral), float(e.gram_frobenius)], [8.0, 16.0], rtol=1e-13)


BAD = [
    (torch.ones(5), ValueError, "x must have at least 2 dimensions"),
    (torch.ones(0, 3), ValueError, "x is empty"),
    (torch.ones(2, 2, dtype=torch.complex64), TypeError, "x must be real"),
    (torch.ones(2, 2, dtype=torch.int64), TypeError, "x must have a floating dtype"),
    (torch.tensor([[1.0, float("nan")]]), ValueError, "x contains NaN or Inf"),
    (torch.tensor([[1.0, float("inf")]]), ValueError, "x contains NaN or Inf"),
    (np.ones((2, 2), dtype=np.int32), TypeError, "x must have a floating dtype"),
    (np.ones((2, 2), dtype=np.complex128), TypeError, "x must be real"),
    ([[1.0, 2.0]], TypeError, "x must be a torch.Tensor or numpy.ndarray"),
]
FUNCS = [svdvals, frobenius_norm, stable_rank, condition_number, numerical_rank, effective_rank,
         x_min, orthogonality_error, spectrum_report]


@pytest.mark.parametrize("f", FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad,exc,msg", BAD, ids=range(len(BAD)))
def test_bad_input_names_argument(f, bad, exc, msg):
    with pytest.raises(exc, match=msg):
        f(bad)


@pytest.mark.parametrize("f", [condition_number, numerical_rank, spectrum_report], ids=lambda f: f.__name__)
@pytest.mark.parametrize("rtol", [-1.0, float("nan"), "a"])
def test_bad_rtol(f, rtol):
    with pytest.raises((ValueError, TypeError), match="rtol"):
        f(torch.eye(2), rtol=rtol)


@pytest.mark.parametrize("mod", ["svd", "ranks", "orthogonality", "report"])
def test_docstring_examples(mod):
    import importlib

    res = doctest.testmod(importlib.import_module(f"matbal.kernels.metrics.{mod}"))
    assert res.failed == 0 and res.attempted > 0
