"""design_schedule: greedy minimax (Remez) schedules — published Polar Express list, CANS, optimum,
equioscillation (sympy), the predictor's band, and newton_schulz on the result."""
from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

import matbal
from matbal.kernels.orthogonalize import (
    POLAR_EXPRESS_PUBLISHED,
    POLAR_EXPRESS_SETTINGS,
    SCHEDULES,
    DesignedSchedule,
    cans_schedule,
    compose,
    equioscillation,
    optimal_step,
    output_band,
    polar,
    worst_case_error,
)
from matbal.kernels.orthogonalize.design import POLAR_EXPRESS_CUSHION


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1.0)))


@pytest.fixture(scope="module")
def paper_raw():
    """The paper's construction without the post-hoc 1.01 factors (the published list's form)."""
    return matbal.design_schedule(1e-3, steps=8, cushion=POLAR_EXPRESS_CUSHION)


@pytest.fixture(scope="module")
def optimum():
    return {k: matbal.design_schedule(1e-3, steps=k) for k in (5, 6)}


def test_reproduces_published_polar_express_list(paper_raw):
    # steps 1–6: to float64 rounding; step 7 (ρ = 0.9988, ill-conditioned) to 5e-11; step 8 is
    # the flat limit (15x − 10x³ + 3x⁵)/8 the paper lists on [1, 1], scaled here by u₈ = 1 + 1.04e-9
    for t, (got, pub) in enumerate(zip(paper_raw.coefficients, POLAR_EXPRESS_PUBLISHED)):
        tol = 5e-15 if t < 6 else 5e-11 if t == 6 else 6e-9
        assert _rel(got, pub) < tol, (t, got, pub)
    assert _rel(paper_raw.coefficients[7], (1.875, -1.25, 0.375)) > 1e-10  # really scaled, not copied


def test_paper_settings_reproduce_registry_schedule():
    s = matbal.design_schedule(1e-3, steps=8, **POLAR_EXPRESS_SETTINGS)
    ref = SCHEDULES["polar_express"]
    assert s.safety == ref.safety == 1.01
    for t, (got, exp) in enumerate(zip(s.coefficients, ref.coefficients)):
        assert _rel(got, exp) < (5e-15 if t < 6 else 5e-11 if t == 6 else 6e-9)
    # and the predictor gives the published band [0.84, 1.12] for it at 5 steps
    lo, hi = output_band(s, 5, 1e-3)
    assert abs(lo - 0.84) < 5e-3 and abs(hi - 1.12) < 5e-3


@pytest.mark.parametrize("k", [5, 6])
def test_optimum_beats_published_list(optimum, k):
    s = optimum[k]
    e_pub = worst_case_error(list(POLAR_EXPRESS_PUBLISHED[:k]), k, 1e-3)
    e_pe = worst_case_error("polar_express", k, 1e-3)
    assert s.worst_error < e_pub < e_pe
    # the predictor's band is the design's [1 − E_T, 1 + E_T]
    E = s.step_errors[-1]
    assert s.band == pytest.approx((1 - E, 1 + E), abs=1e-10)
    assert s.worst_error == pytest.approx(worst_case_error(s, k, 1e-3), abs=0)


def test_greedy_intervals_are_images(optimum):
    s = optimum[6]
    for t in range(5):
        (l, u), (l2, u2) = s.intervals[t], s.intervals[t + 1]
        E = s.step_errors[t]
        assert (l2, u2) == pytest.approx((1 - E, 1 + E), abs=1e-15)
        lo, hi = output_band([s.coefficients[t]], 1, l, u, apply_safety=False)
        assert (lo, hi) == pytest.approx((1 - E, 1 + E), abs=1e-10)


@pytest.mark.parametrize("degree", [3, 5, 7])
def test_equioscillation_sympy(degree):
    s = matbal.design_schedule(1e-3, steps=4, degree=degree)
    m = (degree + 1) // 2
    for c, (l, u), E in zip(s.coefficients, s.intervals, s.step_errors):
        eq = equioscillation(c, l, u)
        assert eq.alternates and len(eq.points) == m + 1
        assert eq.level == pytest.approx(E, rel=1e-12)
        assert eq.spread < 1e-13


def test_equioscillation_detects_non_optimal():
    # Muon's step on [1e-3, 1] does not equioscillate about 1 (its min is at 1e-3, max inside)
    eq = equioscillation((3.4445, -4.7750, 2.0315), 1e-3, 1.0)
    assert not (eq.alternates and eq.spread < 1e-6)
    # perturbing an optimal step breaks the equal levels
    c, E = optimal_step(0.1, 1.0)
    eq = equioscillation((c[0] * (1 + 1e-6), c[1], c[2]), 0.1, 1.0)
    assert eq.spread > 1e-7


def test_degree3_is_cans():
    s = matbal.design_schedule(1e-3, steps=6, degree=3)
    assert all(len(c) == 2 for c in s.coefficients)
    assert _rel(s.coefficients, cans_schedule(1e-3, 1.0, 6).coefficients) < 1e-12


def test_optimal_step_no_perturbation_is_better():
    c, E = optimal_step(1e-2, 1.0)
    g = np.geomspace(1e-2, 1.0, 4001)
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = np.asarray(c) * (1 + 1e-3 * rng.standard_normal(3))
        assert np.max(np.abs(1 - compose([tuple(d)], 1)(g))) > E - 1e-12


def test_flat_limit_and_scale_invariance():
    c, E = optimal_step(1 - 1e-7, 1.0)
    assert c == pytest.approx((1.875, -1.25, 0.375), rel=1e-15) and E < 1e-15
    c1, E1 = optimal_step(0.01, 1.0)
    c2, E2 = optimal_step(0.02, 2.0)
    assert E1 == pytest.approx(E2, rel=1e-14)
    assert c2 == pytest.approx(tuple(v / 2 ** (2 * i + 1) for i, v in enumerate(c1)), rel=1e-13)


def test_one_call_for_recorded_xmin_and_newton_schulz_accepts_it():
    s = matbal.design_schedule(1e-4, steps=5)
    assert isinstance(s, DesignedSchedule) and s.default_steps == 5 and s.lo == 1e-4
    assert s.worst_error < worst_case_error("polar_express", 5, 1e-4)
    assert s.worst_error < worst_case_error("muon", 5, 1e-4)
    # matrix with normalized singular values inside [1e-4, 1]: NS error equals the predictor
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(24, 24, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    sig = torch.logspace(0, -3, 16, dtype=torch.float64)
    x = u[:, :16] @ torch.diag(sig) @ v.T
    o = matbal.newton_schulz(x, schedule=s)
    err = torch.linalg.matrix_norm(o - polar(x), ord=2).item()
    pred = np.abs(1 - matbal.predict_singular_values(sig.numpy(), schedule=s)).max()
    assert err == pytest.approx(pred, rel=1e-8, abs=1e-12)
    assert err <= s.worst_error + 1e-12


def test_margin_and_safety_are_applied():
    s = matbal.design_schedule(1e-2, steps=3, safety=1.01, normalization_margin=1.02)
    base = matbal.design_schedule(1e-2, steps=3)
    assert s.safety == 1.02 and base.safety is None
    for t in range(2):
        assert s.coefficients[t] == pytest.approx(
            tuple(v / 1.01 ** (2 * i + 1) for i, v in enumerate(base.coefficients[t])), rel=1e-15)
    assert s.coefficients[2] == base.coefficients[2]
    assert s.band == output_band(s, 3, 1e-2)
    assert s.worst_error > base.worst_error  # margins cost accuracy on [lo, hi]


@pytest.mark.parametrize("args, kwargs, error, word", [
    ((0.0,), {}, ValueError, "lo"), ((0.5,), {"hi": 0.1}, ValueError, "lo"),
    (("1e-3",), {}, TypeError, "lo"), ((1e-3,), {"degree": 4}, ValueError, "degree"),
    ((1e-3,), {"degree": 5.0}, TypeError, "degree"), ((1e-3,), {"steps": 0}, ValueError, "steps"),
    ((1e-3,), {"steps": 2.5}, TypeError, "steps"), ((1e-3,), {"safety": 0.9}, ValueError, "safety"),
    ((1e-3,), {"normalization_margin": 0.5}, ValueError, "normalization_margin"),
    ((1e-3,), {"cushion": 1.0}, ValueError, "cushion")])
def test_bad_input_names_the_argument(args, kwargs, error, word):
    with pytest.raises(error, match=word):
        matbal.design_schedule(*args, **kwargs)


def test_equioscillation_refuses_an_empty_interval():
    with pytest.raises(ValueError, match="lo < hi"):
        equioscillation((1.5, -0.5), 0.5, 0.5)


def test_degenerate_interval_is_flat_limit():
    s = matbal.design_schedule(1.0, steps=2)
    assert s.coefficients[0] == pytest.approx((1.875, -1.25, 0.375), rel=1e-15)
    assert s.worst_error == pytest.approx(0.0, abs=1e-15)


def test_mpmath_precision_restored():
    before = mpmath.mp.dps
    matbal.design_schedule(1e-3, steps=2)
    assert mpmath.mp.dps == before
