"""Property tests (hypothesis) for the balancing kernels: invariances and guarantees that must hold
for every shape, scale and seed, on matrices with prescribed spectra."""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import matbal.synthetic as syn
from matbal.kernels.balancing import aol, balance, normalize_cols, normalize_rows, racs, ruiz
from matbal.kernels.metrics.imbalance import imbalance

F64 = torch.float64
PROPS = settings(max_examples=12, deadline=None)

dims = st.integers(min_value=1, max_value=12)
seeds = st.integers(min_value=0, max_value=10_000)
log_kappa = st.floats(min_value=0.0, max_value=6.0)
spread = st.floats(min_value=0.0, max_value=8.0)   # decades of the diagonal scalings


def matrix(m, n, seed, lk, dtype=F64):
    s = syn.geometric_spectrum(min(m, n), kappa=10.0**lk)
    return syn.prescribed_spectrum(m, n, s, seed=seed, dtype=dtype)


def diag(k, seed, decades, dtype=F64):
    g = torch.Generator().manual_seed(seed + 1)
    return (10.0 ** (decades * (torch.rand(k, dtype=F64, generator=g) - 0.5))).to(dtype)


@PROPS
@given(m=dims, n=dims, seed=seeds, lk=log_kappa, dec=spread)
def test_R_and_C_exactly_invariant(m, n, seed, lk, dec):
    # eps=0: only exact zeros are dead, so R(DX) = R(X) for every positive D. (With the default
    # eps=1e-8 a row/column more than 1e8 below the largest is dead by design, which a spread of
    # 8 decades on top of the matrix's own norm spread can reach: hypothesis found it.)
    for dtype, tol in ((F64, 1e-14), (torch.float32, 2e-6)):
        x = matrix(m, n, seed, lk, dtype)
        d_r, d_c = diag(m, seed, dec, dtype), diag(n, seed + 7, dec, dtype)
        torch.testing.assert_close(normalize_rows(d_r[:, None] * x, eps=0.0),
                                   normalize_rows(x, eps=0.0), rtol=tol, atol=tol)
        torch.testing.assert_close(normalize_cols(x * d_c[None, :], eps=0.0),
                                   normalize_cols(x, eps=0.0), rtol=tol, atol=tol)


@PROPS
@given(m=dims, n=dims, seed=seeds, lk=log_kappa, scale=st.floats(min_value=-20, max_value=20))
def test_aol_spectral_norm_at_most_one(m, n, seed, lk, scale):
    x = matrix(m, n, seed, lk) * 10.0**scale
    for side in ("cols", "rows"):
        out = aol(x, side=side)
        assert float(torch.linalg.matrix_norm(out, ord=2)) <= 1 + 1e-12
    x32 = x.float()
    assert float(torch.linalg.matrix_norm(aol(x32).double(), ord=2)) <= 1 + 1e-5


@PROPS
@given(m=st.integers(2, 12), n=st.integers(2, 12), seed=seeds, lk=st.floats(0.0, 3.0), dec=spread)
def test_racs_fixed_point_invariant_to_diagonal_scaling(m, n, seed, lk, dec):
    """The balanced matrix of a dense (fully indecomposable) X is unique: D1 X D2 balances to it.

    X has |entries| in [0.1, 1.1] (random signs): well inside total support, so σ₂(P̃)² stays
    away from 1 and 5000 sweeps reach 1e-11. (A prescribed-spectrum draw can be a near-permutation
    — e.g. a 2×2 rotation by a tiny angle — whose rate σ₂² → 1: hypothesis found one.)"""
    g = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(m, n, generator=g, dtype=F64) < 0.5, -1.0, 1.0)
    x = signs * (0.1 + torch.rand(m, n, generator=g, dtype=F64)) * (1.0 + lk)
    y = diag(m, seed, dec)[:, None] * x * diag(n, seed + 3, dec)[None, :]
    a, b = racs(x, rtol=1e-11, max_iter=5000), racs(y, rtol=1e-11, max_iter=5000)
    assert a.converged and b.converged
    torch.testing.assert_close(b.matrix, a.matrix, rtol=1e-8, atol=1e-9)
    assert float(imbalance(a.matrix).residual) <= 1e-10
    r = ruiz(y, rtol=1e-9, max_iter=2000)
    assert r.converged
    torch.testing.assert_close(r.matrix.abs().amax(-1), torch.ones(m, dtype=F64), rtol=1e-8, atol=0)


@PROPS
@given(b=st.integers(1, 3), m=st.integers(1, 8), n=st.integers(1, 8), seed=seeds,
       method=st.sampled_from(["racs", "ruiz", "rows", "rc"]))
def test_batched_equals_loop_property(b, m, n, seed, method):
    x = torch.stack([matrix(m, n, seed + i, lk=float(i)) for i in range(b)])
    if m > 1:
        x[0, 0] = 0
    res = balance(x, method=method)
    for i in range(b):
        one = balance(x[i], method=method)
        torch.testing.assert_close(res.matrix[i], one.matrix, rtol=1e-12, atol=1e-14)
    assert torch.isfinite(res.matrix).all()
    assert math.isfinite(float(res.history[-1]))
