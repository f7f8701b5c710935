"""Row/column norm imbalance: known values, masking of zero rows/columns, numerics, bad input."""
from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import matbal.synthetic as syn
from matbal.kernels.metrics import imbalance, row_col_norms

P = [1, 2, math.inf]


def _ref(a: np.ndarray, p) -> dict:
    """Straight numpy reference of the module-docstring definitions."""
    out = {}
    for name, ax in (("row", 1), ("col", 0)):
        v = np.linalg.norm(a, ord=p, axis=ax)
        live = v[v > 0]
        rel = live / live.mean() - 1 if live.size else np.zeros(1)
        out[f"{name}_dev"] = np.abs(rel).max()
        out[f"{name}_cv"] = live.std() / live.mean() if live.size else 0.0
        out[f"zero_{name}s"] = int((v == 0).sum())
    out["residual"] = max(out["row_dev"], out["col_dev"])
    return out


@pytest.mark.parametrize("p", P)
def test_equal_norms_give_zero(p):
    h = scipy.linalg.hadamard(8).astype(np.float64) * 3.0  # ±3 entries: all rows/cols equal norms
    q = h / np.sqrt(8)  # orthogonal
    for a in (h, q, np.ones((5, 7)), -2.5 * np.ones((4, 4))):
        imb = imbalance(a, p=p)
        for k in ("row_dev", "col_dev", "row_cv", "col_cv", "residual"):
            assert float(getattr(imb, k)) < 1e-6, (k, a.shape)
        assert int(imb.zero_rows) == 0 and int(imb.zero_cols) == 0


@pytest.mark.parametrize(
    "p,row_dev,col_dev",
    [
        (2, 2 / 3, (4 - math.sqrt(10)) / (4 + math.sqrt(10))),
        (1, 3 / 4, (4 - 4) / 4),  # rows 7, 0, 1 → mean 4; cols 4, 4
        (math.inf, 3 / 5, (4 - 3) / (4 + 3)),  # rows 4, 0, 1 → mean 2.5; cols 3, 4
    ],
)
def test_hand_example(p, row_dev, col_dev):
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    imb = imbalance(x, p=p)
    assert float(imb.row_dev) == pytest.approx(row_dev, rel=1e-6, abs=1e-7)
    assert float(imb.row_cv) == pytest.approx(row_dev, rel=1e-6)  # two live rows: cv = dev
    assert float(imb.col_dev) == pytest.approx(col_dev, rel=1e-6, abs=1e-7)
    assert float(imb.residual) == pytest.approx(max(row_dev, col_dev), rel=1e-6)
    assert int(imb.zero_rows) == 1 and int(imb.zero_cols) == 0  # zero row excluded and counted
    rows, cols = row_col_norms(x, p)
    assert rows.tolist()[1] == 0.0 and len(rows.tolist()) == 3 and len(cols.tolist()) == 2


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 12),
    seed=st.integers(0, 2**31),
    p=st.sampled_from(P),
    zr=st.integers(0, 3),
    zc=st.integers(0, 3),
)
def test_matches_numpy_reference(m, n, seed, p, zr, zc):
    a = syn.scale_mismatch(m, n, row_range=(0.1, 10.0), col_range=(0.5, 2.0), seed=seed, dtype=torch.float64).numpy()
    a[: min(zr, m)] = 0
    a[:, : min(zc, n)] = 0
    imb = imbalance(a, p=p)
    ref = _ref(a, p)
    for k, v in ref.items():
        np.testing.assert_allclose(getattr(imb, k), v, rtol=1e-10, atol=1e-12, err_msg=k)


def test_zero_matrix_and_batched_equals_loop():
    z = imbalance(torch.zeros(3, 4))
    assert float(z.residual) == 0.0 and int(z.zero_rows) == 3 and int(z.zero_cols) == 4
    x = syn.heavy_rows(6, 9, k=2, factor=5.0, seed=1, batch=(2, 3), dtype=torch.float64)
    x[1, 2, 0] = 0
    b = imbalance(x)
    assert b.residual.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            s = imbalance(x[i, j])
            for k in ("row_dev", "col_dev", "row_cv", "col_cv", "residual", "zero_rows", "zero_cols"):
                torch.testing.assert_close(getattr(b, k)[i, j], getattr(s, k), rtol=1e-12, atol=0)
    assert int(b.zero_rows[1, 2]) == 1


def test_invariances():
    x = syn.scale_mismatch(7, 5, row_range=(0.1, 10.0), seed=3, dtype=torch.float64)
    base = imbalance(x)
    perm = imbalance(x[torch.randperm(7, generator=torch.Generator().manual_seed(0))][:, [4, 2, 0, 1, 3]])
    scaled = imbalance(-1e3 * x)
    for other in (perm, scaled):
        for k in ("row_dev", "col_dev", "row_cv", "col_cv", "residual"):
            torch.testing.assert_close(getattr(other, k), getattr(base, k), rtol=1e-12, atol=1e-14)
    # a row scaling changes row norms, never the zero pattern
    assert float(base.row_cv) > 0.3 and float(imbalance(x / x.norm(dim=1, keepdim=True)).row_dev) < 1e-12


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_low_precision_and_range(dtype):
    x64 = syn.scale_mismatch(16, 24, row_range=(0.5, 2.0), seed=5, dtype=torch.float64)
    x = x64.to(dtype)
    imb = imbalance(x)
    assert imb.residual.dtype == torch.float32
    ref = _ref(x.double().numpy(), 2)
    np.testing.assert_allclose(float(imb.residual), ref["residual"], rtol=1e-5)
    for big in (1e30, 1e-30):  # float32 holds 1e±30; squares would overflow/underflow unscaled
        if dtype != torch.float32:
            continue
        y = (x64 * big).float()
        np.testing.assert_allclose(float(imbalance(y).residual), ref["residual"], rtol=1e-5)
        r, c = row_col_norms(y)
        assert torch.isfinite(r).all() and torch.isfinite(c).all()
        np.testing.assert_allclose(r.double().numpy() / big, np.linalg.norm(x64.numpy(), axis=1), rtol=1e-5)


def test_numpy_io_and_bad_input():
    a = np.ones((3, 4))
    r, c = row_col_norms(a)
    assert isinstance(r, np.ndarray) and r.shape == (3,) and c.shape == (4,)
    assert isinstance(imbalance(a).residual, np.ndarray)
    with pytest.raises(ValueError, match="p must be one of"):
        imbalance(a, p=3)
    with pytest.raises(ValueError, match="p must be one of"):
        row_col_norms(a, 0.5)
    for f in (imbalance, row_col_norms):
        with pytest.raises(ValueError, match="x must have at least 2 dimensions"):
            f(torch.ones(3))
        with pytest.raises(ValueError, match="x is empty"):
            f(torch.ones(0, 2))
        with pytest.raises(TypeError, match="x must be real"):
            f(torch.ones(2, 2, dtype=torch.complex64))
        with pytest.raises(TypeError, match="x must have a floating dtype"):
            f(np.ones((2, 2), dtype=int))
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        imbalance(torch.tensor([[1.0, float("nan")]]))


def test_docstring_examples():
    # the package attribute `imbalance` is the function (it shadows the submodule); fetch the module
    res = doctest.testmod(importlib.import_module("matbal.kernels.metrics.imbalance"))
    assert res.failed == 0 and res.attempted > 0
