"""``racs_matrix``: the matrix of ``racs`` alone, with the lean fixed-``steps`` path the optimizers
use (no per-sweep residual, one host read). Checked against a float64 hand-written sweep loop,
against ``racs(...).matrix`` (the general path), bit for bit on the factors, and on every case the
lean path hands back to the general one (dead rows/columns, zero matrix, NaN/Inf, magnitudes near
the float limits, p = inf, autograd)."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from matbal.kernels.balancing import _engine, racs, racs_matrix

F64 = torch.float64


def gauss(*shape, seed=0, dtype=torch.float32):
    x = torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return (x * torch.logspace(-1, 1, shape[-1], dtype=F64)).to(dtype)  # unequal columns


def sweeps_f64(x: torch.Tensor, p: float, steps: int) -> torch.Tensor:
    """The k alternating sweeps written out in float64: K = |x|^p, u = n / Kv, v = m / Kᵀu,
    result diag(u^(1/p)) x diag(v^(1/p))."""
    x = x.double()
    K = x.abs() ** p
    m, n = x.shape[-2:]
    v = torch.ones(x.shape[:-2] + (n,), dtype=F64)
    for _ in range(steps):
        u = n / (K @ v.unsqueeze(-1)).squeeze(-1)
        v = m / (u.unsqueeze(-2) @ K).squeeze(-2)
    return x * u.unsqueeze(-1) ** (1 / p) * v.unsqueeze(-2) ** (1 / p)


def max_rel(a, b):
    return float(((a.double() - b.double()).abs() / b.double().abs().clamp_min(1e-30)).max())


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("shape", [(64, 64), (37, 90), (120, 30), (4, 32, 48)])
@pytest.mark.parametrize("steps", [1, 5])
def test_lean_matches_float64_and_the_general_path(p, shape, steps):
    x = gauss(*shape, seed=steps)
    lean = racs_matrix(x, p=p, steps=steps)
    general = racs(x, p=p, steps=steps).matrix
    ref = sweeps_f64(x, p, steps)
    assert lean.dtype == torch.float32 and lean.shape == x.shape
    # a few float32 rounding units from the general path (only the scales' last rounding differs)
    assert max_rel(lean, general) <= 1e-6
    # and as close to the float64 computation as the general path is (float32 sweeps)
    assert max_rel(lean, ref) <= 2e-5
    assert max_rel(lean, ref) <= 2 * max_rel(general, ref) + 1e-6


def test_factors_are_bit_identical_to_the_general_run():
    x = gauss(48, 80, seed=3)
    K, u, v = _engine.fixed_sweeps(x, 2.0, 5, torch.float32)
    kern = _engine.prepare_kernel(x, p=2.0, eps=0.0, log_domain=None, dtype=torch.float32)
    a = torch.full((48,), 80.0)
    b = torch.full((80,), 48.0)
    out = _engine.run(kern, a, b, residual=lambda s, _: s.amax(-1), steps=5, max_iter=100,
                      rtol=1e-6)
    assert torch.equal(torch.log(u.double()), out.lu) and torch.equal(torch.log(v.double()), out.lv)
    torch.testing.assert_close(K, x * x, rtol=0, atol=0)


def test_float64_input_matches_the_general_path_to_float64_rounding():
    x = gauss(40, 70, seed=4, dtype=F64)
    lean = racs_matrix(x, p=2, steps=5)
    assert lean.dtype == F64
    assert max_rel(lean, racs(x, p=2, steps=5).matrix) <= 1e-14
    assert max_rel(lean, sweeps_f64(x, 2, 5)) <= 1e-13


def test_bf16_input_iterates_in_float32_and_returns_bf16():
    x = gauss(32, 64, seed=5, dtype=torch.bfloat16)
    lean = racs_matrix(x, p=2, steps=5)
    assert lean.dtype == torch.bfloat16
    torch.testing.assert_close(lean, racs(x, p=2, steps=5).matrix, rtol=2 ** -7, atol=0)
    assert max_rel(lean, sweeps_f64(x, 2, 5)) <= 2 ** -8


@pytest.mark.parametrize("shape", [(5, 7), (3, 5, 7)])
def test_zero_matrix_gives_zeros_never_nan(shape):
    y = racs_matrix(torch.zeros(*shape), p=2, steps=5)
    assert torch.equal(y, torch.zeros(*shape))


def test_batch_with_a_zero_element_equals_the_general_path():
    x = gauss(3, 6, 9, seed=6)
    x[1] = 0
    y = racs_matrix(x, p=2, steps=5)
    assert torch.isfinite(y).all() and torch.equal(y[1], torch.zeros(6, 9))
    assert torch.equal(y, racs(x, p=2, steps=5).matrix)  # handed back: the general path itself


@pytest.mark.parametrize("p", [1, 2])
def test_dead_row_and_column_are_handed_to_the_general_path(p):
    x = gauss(10, 12, seed=7)
    x[3] = 0
    x[:, 5] = 0
    y = racs_matrix(x, p=p, steps=4)
    assert torch.equal(y, racs(x, p=p, steps=4).matrix)
    assert torch.isfinite(y).all() and not y[3].any() and not y[:, 5].any()


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e19])
def test_magnitudes_near_the_limits_equal_the_general_path(scale):
    x = gauss(16, 24, seed=8) * scale
    y = racs_matrix(x, p=2, steps=5)
    assert torch.isfinite(y).all()
    assert torch.equal(y, racs(x, p=2, steps=5).matrix)


def test_entries_spanning_the_float_range_use_the_log_domain_like_racs():
    x = gauss(8, 8, seed=9)
    x[0] *= 1e-25  # a row sum of K below sqrt(tiny): racs iterates in the log domain
    y = racs_matrix(x, p=2, steps=5)
    assert torch.isfinite(y).all()
    assert torch.equal(y, racs(x, p=2, steps=5).matrix)


def test_a_column_sum_below_the_floor_is_handed_to_the_general_path():
    # the lean path bounds the column sums from its first sweep (no column-sum pass): a column
    # of K summing to ~2e-24 < sqrt(tiny) ~ 1e-19 must still reach racs's log domain
    x = gauss(8, 8, seed=9)
    x[:, 2] *= 1e-12
    assert _engine.fixed_sweeps(x, 2.0, 5, torch.float32) is None
    y = racs_matrix(x, p=2, steps=5)
    assert torch.isfinite(y).all()
    assert torch.equal(y, racs(x, p=2, steps=5).matrix)
    # a small column far above the floor keeps the lean path (and its float64 agreement)
    x = gauss(8, 8, seed=9)
    x[:, 2] *= 1e-6
    assert _engine.fixed_sweeps(x, 2.0, 5, torch.float32) is not None
    assert max_rel(racs_matrix(x, p=2, steps=5), sweeps_f64(x, 2, 5)) <= 2e-5


def test_targets_as_full_tensors_divide_to_the_same_bits_as_numbers():
    t = torch.rand(1000, generator=torch.Generator().manual_seed(11)) * 1e3 + 1e-3
    for n in (7.0, 128.0, 1000.0, 4096.0):
        assert torch.equal(torch.div(torch.full((1000,), n), t), torch.div(n, t))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_inf_raise_naming_x(bad):
    x = gauss(6, 5)
    x[2, 3] = bad
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        racs_matrix(x, p=2, steps=5)


@pytest.mark.parametrize("opts", [dict(p=float("inf"), steps=2), dict(p=2),
                                  dict(p=2, steps=3, eps=1e-3),
                                  dict(p=1, steps=3, log_domain=True)])
def test_other_options_run_racs(opts):
    x = gauss(12, 9, seed=10)
    assert torch.equal(racs_matrix(x, **opts), racs(x, **opts).matrix)


@pytest.mark.parametrize("kw, match", [(dict(steps=0), "steps"), (dict(p=3), "p must be"),
                                       (dict(steps=2, eps=-1.0), "eps"),
                                       (dict(steps=2, callback=1), "callback")])
def test_bad_arguments_name_themselves(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        racs_matrix(torch.ones(3, 3), **kw)


def test_input_untouched_numpy_io_and_autograd():
    x = gauss(9, 11, seed=11)
    x0 = x.clone()
    racs_matrix(x, p=2, steps=5)
    assert torch.equal(x, x0)
    y = racs_matrix(x.numpy(), p=2, steps=5)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, racs_matrix(x, p=2, steps=5).numpy(), rtol=0, atol=0)
    xr = x.double().requires_grad_()
    racs_matrix(xr, p=2, steps=3).square().sum().backward()
    xg = x.double().requires_grad_()
    racs(xg, p=2, steps=3).matrix.square().sum().backward()
    torch.testing.assert_close(xr.grad, xg.grad, rtol=0, atol=0)


def test_the_common_case_takes_the_lean_path_and_the_rest_does_not(monkeypatch):
    racs_mod = sys.modules["matbal.kernels.balancing.racs"]  # (package's racs: the function)
    calls = []
    real = racs_mod.racs
    monkeypatch.setattr(racs_mod, "racs", lambda *a, **k: calls.append(1) or real(*a, **k))
    racs_matrix(gauss(3, 20, 30), p=2, steps=5)
    racs_matrix(gauss(20, 30), p=1, steps=2)
    assert calls == []  # neither went through racs
    racs_matrix(torch.zeros(4, 4), p=2, steps=5)
    racs_matrix(gauss(20, 30) * 1e30, p=2, steps=5)
    assert calls == [1, 1]


def test_remembered_option_checks_still_refuse_what_they_refused():
    x = gauss(5, 6)
    racs_matrix(x, p=2, steps=2, warn=True)  # validated and remembered
    with pytest.raises(TypeError, match="warn"):
        racs_matrix(x, p=2, steps=2, warn=1)  # 1 == True, but not a bool
    with pytest.raises(TypeError, match="steps"):
        racs_matrix(x, p=2, steps=2.0)
    with pytest.raises(ValueError, match="p must be"):
        racs_matrix(x, p=[2], steps=2)  # unhashable: checked, not remembered
    with pytest.raises(ValueError, match="rtol"):
        racs(x, rtol=float("nan"))


def test_non_contiguous_input():
    x = gauss(40, 24, seed=12).mT  # a transposed view
    y = racs_matrix(x, p=2, steps=5)
    assert max_rel(y, racs(x, p=2, steps=5).matrix) <= 1e-6
    assert max_rel(y, sweeps_f64(x, 2, 5)) <= 2e-5
