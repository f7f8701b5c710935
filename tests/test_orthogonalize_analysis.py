"""Schedules as data, the scalar predictor, published constants (MU-1, PE-1, PE-2, CA-1), sympy view."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from matbal.kernels.orthogonalize import (
    POLAR_EXPRESS_PUBLISHED,
    SCHEDULES,
    Schedule,
    cans_cubic,
    cans_schedule,
    compose,
    describe,
    get_schedule,
    output_band,
    predict_singular_values,
    step_polynomial,
    steps_to_accuracy,
    worst_case_error,
)
from matbal.kernels.orthogonalize.symbolic import compose_exact, exact_step, extrema, fixed_points, slope_at_zero

MUON = (3.4445, -4.7750, 2.0315)

# --- schedules -----------------------------------------------------------------------------------


def test_registry_contents_and_provenance():
    assert {"muon", "polar_express", "you", "you6", "cubic", "quintic_pade"} <= set(SCHEDULES)
    for s in SCHEDULES.values():
        assert s.source, s.name
    assert SCHEDULES["muon"].coefficients == (MUON,) and SCHEDULES["muon"].default_steps == 5
    assert SCHEDULES["you"].coefficients[0] == (4.0848, -6.8946, 2.9270) and len(SCHEDULES["you"].coefficients) == 5
    assert SCHEDULES["you6"].coefficients[0] == (3955 / 1024, -8306 / 1024, 5008 / 1024)
    assert SCHEDULES["quintic_pade"].coefficients == ((15 / 8, -10 / 8, 3 / 8),)
    assert SCHEDULES["cubic"].degree == 3 and SCHEDULES["muon"].degree == 5


def test_polar_express_safety_applied_as_in_reference():
    pe = SCHEDULES["polar_express"]
    assert pe.safety == 1.01 and pe.repeat_last
    for (a, b, c), (a0, b0, c0) in zip(pe.coefficients[:-1], POLAR_EXPRESS_PUBLISHED[:-1]):
        assert (a, b, c) == (a0 / 1.01, b0 / 1.01**3, c0 / 1.01**5)
    assert pe.coefficients[-1] == (1.875, -1.25, 0.375)
    # safety-scaled step = published step evaluated at x/1.01
    x = np.linspace(0, 1, 11)
    np.testing.assert_allclose(step_polynomial(pe.coefficients[0])(x), step_polynomial(POLAR_EXPRESS_PUBLISHED[0])(x / 1.01), rtol=1e-14)
    assert pe.steps(10)[-3:] == [(1.875, -1.25, 0.375)] * 3


def test_steps_extension_modes():
    rep = Schedule("r", ((1.0, 2.0), (3.0, 4.0)), repeat_last=True)
    cyc = Schedule("c", ((1.0, 2.0), (3.0, 4.0)), cycle=True)
    fixed = Schedule("f", ((1.0, 2.0), (3.0, 4.0)), default_steps=2)
    assert rep.steps(4) == [(1.0, 2.0), (3.0, 4.0), (3.0, 4.0), (3.0, 4.0)]
    assert cyc.steps(3) == [(1.0, 2.0), (3.0, 4.0), (1.0, 2.0)]
    assert fixed.steps() == fixed.steps(2) and fixed.steps(1) == [(1.0, 2.0)]
    with pytest.raises(ValueError, match="fixed-length"):
        fixed.steps(3)
    with pytest.raises(ValueError, match="steps is required"):
        rep.steps()
    with pytest.raises(ValueError, match="exclusive"):
        Schedule("x", ((1.0,),), repeat_last=True, cycle=True)
    with pytest.raises(ValueError, match="steps"):
        rep.steps(0)


def test_get_schedule_forms():
    assert get_schedule("MUON") is SCHEDULES["muon"]
    s = get_schedule(MUON)
    assert s.repeat_last and s.steps(3) == [MUON] * 3
    u = get_schedule([(1.5, -0.5), (15 / 8, -10 / 8, 3 / 8)])
    assert u.default_steps == 2 and u.degree == 5 and not u.extends
    assert get_schedule(u) is u
    with pytest.raises(ValueError, match="schedule must be one of"):
        get_schedule("nope")
    with pytest.raises(TypeError, match="schedule"):
        get_schedule(3.0)
    with pytest.raises(TypeError):
        get_schedule([(1.0, "a")])
    with pytest.raises(ValueError, match="finite"):
        get_schedule([(1.0, float("inf"))])


# --- the scalar predictor ------------------------------------------------------------------------


def test_compose_works_on_float_numpy_torch():
    P = compose("polar_express", 5)
    xs = np.array([1e-3, 0.1, 0.5, 1.0])
    np.testing.assert_allclose(P(torch.from_numpy(xs)).numpy(), P(xs), rtol=0, atol=0)
    assert P(0.5) == P(xs)[2]
    assert P(0.0) == 0.0


def test_predict_normalizations_and_eps():
    s = np.array([3.0, 2.0, 1.0, 0.0])
    got = predict_singular_values(s, schedule="cubic", steps=1, eps=0.0)
    x = s / np.linalg.norm(s)
    np.testing.assert_allclose(got, 1.5 * x - 0.5 * x**3, rtol=1e-15)
    got8 = predict_singular_values(s, schedule="cubic", steps=1, normalize="schatten8", eps=0.0)
    x8 = s / np.sum(s**8) ** 0.125
    np.testing.assert_allclose(got8, 1.5 * x8 - 0.5 * x8**3, rtol=1e-15)
    pe = predict_singular_values(s, schedule="polar_express", steps=1, eps=0.5)
    xs = s / (1.01 * np.linalg.norm(s) + 0.5)
    np.testing.assert_allclose(pe, step_polynomial(SCHEDULES["polar_express"].coefficients[0])(xs), rtol=1e-15)
    assert np.all(predict_singular_values(np.zeros((2, 3))) == 0)
    t = predict_singular_values(torch.tensor([[1.0, 0.5]]), steps=2)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.shape == (1, 2)


def test_predict_bad_input():
    with pytest.raises(ValueError, match="spectral"):
        predict_singular_values([1.0], normalize="spectral")
    with pytest.raises(ValueError, match="normalize"):
        predict_singular_values([1.0], normalize="l1")
    with pytest.raises(ValueError, match="sigma"):
        predict_singular_values([1.0, -1.0])
    with pytest.raises(ValueError, match="sigma"):
        predict_singular_values([])
    with pytest.raises(ValueError, match="eps"):
        predict_singular_values([1.0], eps=-1.0)


def test_band_refinement_beats_grid():
    # the refined extremes agree with a 10x denser grid and are never inside it
    lo, hi = output_band("muon", 5, 1e-3, 1.0)
    x = np.linspace(1e-3, 1, 2_000_001)
    y = compose("muon", 5)(x)
    assert lo <= y.min() + 1e-15 and hi >= y.max() - 1e-15
    assert y.min() - lo < 1e-9 and hi - y.max() < 1e-9


def test_worst_case_error_is_the_spectral_error_of_ns():
    from matbal.kernels.orthogonalize import newton_schulz, polar
    from matbal.synthetic import prescribed_spectrum

    s = np.geomspace(1.0, 1e-2, 9)
    x = prescribed_spectrum(9, 12, s, seed=0, dtype=torch.float64)
    err = torch.linalg.matrix_norm(newton_schulz(x, schedule="polar_express", steps=4) - polar(x), ord=2)
    pred = predict_singular_values(s, schedule="polar_express", steps=4)
    assert abs(float(err) - np.max(np.abs(1 - pred))) < 1e-12
    xn = s / np.linalg.norm(s)
    assert float(err) <= worst_case_error("polar_express", 4, xn.min(), xn.max()) + 1e-12


# --- published constants -------------------------------------------------------------------------


def test_MU1_muon_band_and_no_convergence():
    lo, hi = output_band("muon", 5, 1e-2, 1.0)
    assert abs(lo - 0.682) < 5e-4 and abs(hi - 1.134) < 5e-4  # MU-1: [1e-2, 1] -> ~[0.68, 1.13]
    assert steps_to_accuracy("muon", 0.1, 1e-2, max_steps=60) is None  # never converges
    assert worst_case_error("muon", 40, 0.5, 1.0) > 0.1


def test_MU1_muon_step_polynomial_fixed_points_and_max():
    fps = fixed_points(MUON)
    assert [round(f.x, 3) for f in fps] == [0.0, 0.868, 1.264]
    assert not any(f.attracting for f in fps)  # 0.868 repels: no limit point near 1
    assert abs(fps[1].slope) > 1
    top = max(extrema(MUON), key=lambda e: e.value)
    assert top.kind == "max" and round(top.x, 4) == 0.5545 and round(top.value, 4) == 1.2024
    assert slope_at_zero(MUON) == sp.Rational(6889, 2000)
    d = describe("muon").steps[0]
    assert d.max_on_unit == (top.x, top.value) and d.degree == 5


def test_PE1_polar_express_bands():
    lo5, hi5 = output_band("polar_express", 5, 1e-3, 1.0)
    lo6, hi6 = output_band("polar_express", 6, 1e-3, 1.0)
    assert abs(lo5 - 0.840) < 1e-3 and abs(hi5 - 1.1236) < 1e-3  # PE-1: ~[0.84, 1.12]
    assert abs(lo6 - 0.9935) < 5e-4 and abs(hi6 - 1.0012) < 5e-4  # PE-1: ~[0.993, 1.001]
    # without the initial 1.01 scaling, the lower end moves up a little
    assert output_band("polar_express", 5, 1e-3, 1.0, apply_safety=False)[0] > lo5


def test_PE2_polar_express_needs_about_half_the_steps_of_quintic_pade():
    pe = steps_to_accuracy("polar_express", 1e-2, 1e-3)
    pade = steps_to_accuracy("quintic_pade", 1e-2, 1e-3)
    assert (pe, pade) == (6, 13)


def test_fixed_point_one_is_superattracting_for_classical_steps():
    for co in ((1.5, -0.5), (15 / 8, -10 / 8, 3 / 8)):
        one = [f for f in fixed_points(co) if abs(f.x - 1) < 1e-12]
        assert one and one[0].attracting and one[0].slope == 0.0


# --- CANS (CA-1) ---------------------------------------------------------------------------------


def _minimax_cubic_lp(lo, hi, n=4001):
    from scipy.optimize import linprog

    x = np.unique(np.concatenate([np.linspace(lo, hi, n), np.geomspace(lo, hi, n)]))
    # variables (alpha, beta, E): minimize E s.t. |1 - alpha x - beta x^3| <= E
    A = np.concatenate([np.stack([-x, -(x**3), -np.ones_like(x)], 1), np.stack([x, x**3, -np.ones_like(x)], 1)])
    b = np.concatenate([-np.ones_like(x), np.ones_like(x)])
    res = linprog([0, 0, 1], A_ub=A, b_ub=b, bounds=[(None, None)] * 3, method="highs")
    assert res.success
    return res.x


@pytest.mark.parametrize("lo,hi", [(0.1, 1.0), (1e-3, 1.0), (0.5, 1.5), (0.9, 1.1)])
def test_CA1_cans_closed_form_equals_numerical_minimax(lo, hi):
    (a, b), = cans_cubic(lo, hi).coefficients
    alpha, beta, E = _minimax_cubic_lp(lo, hi)
    assert abs(a - alpha) <= 1e-4 * abs(a) and abs(b - beta) <= 1e-4 * max(abs(b), 1)
    err = worst_case_error(cans_cubic(lo, hi), 1, lo, hi, apply_safety=False)
    assert abs(err - E) < 1e-6
    e2 = (lo * lo + lo * hi + hi * hi) / 3
    f_lo = 1.5 * lo / math.sqrt(e2) - 0.5 * lo**3 / e2**1.5
    assert math.isclose(err, (1 - f_lo) / (1 + f_lo), rel_tol=1e-9)


def test_cans_iterated_schedule_tracks_its_band():
    s = cans_schedule(1e-3, 1.0, 6)
    assert s.default_steps == 6 and not s.extends
    lo, hi = 1e-3, 1.0
    for k in range(1, 7):
        blo, bhi = output_band(s, k, 1e-3, 1.0, apply_safety=False)
        (a, b), = cans_cubic(lo, hi).coefficients
        assert s.coefficients[k - 1] == pytest.approx((a, b), rel=1e-12)
        assert abs((1 - blo) - (bhi - 1)) < 1e-9  # equioscillation: band symmetric about 1
        lo, hi = blo, bhi
    with pytest.raises(ValueError, match="lo"):
        cans_cubic(0.0, 1.0)
    with pytest.raises(ValueError, match="steps"):
        cans_schedule(0.1, 1.0, 0)


# --- sympy view -----------------------------------------------------------------------------------


def test_exact_polynomials_and_composition():
    x = sp.Symbol("x", real=True)
    assert exact_step((1.5, -0.5)).as_expr() == sp.Rational(3, 2) * x - x**3 / 2
    assert exact_step(SCHEDULES["you6"].coefficients[0]).coeffs()[-1] == sp.Rational(3955, 1024)
    P = compose_exact("polar_express", 2)
    assert P.degree() == 25
    num = compose("polar_express", 2)
    for v in (0.01, 0.3, 0.9):
        assert abs(float(P.eval(sp.Rational(repr(v)))) - num(v)) < 1e-13
    with pytest.raises(ValueError, match="max_degree"):
        compose_exact("muon", 5)


def test_describe_shapes():
    d = describe("you")
    assert d.name == "you" and len(d.steps) == 5 and d.degree == 5
    for step in d.steps:
        assert step.extrema[0].kind == "endpoint" and step.extrema[-1].x == 1.0
        assert step.slope_at_zero == step.coefficients[0]


@settings(max_examples=15, deadline=None)
@given(
    a=st.floats(1.0, 5.0), b=st.floats(-8.0, 0.0), c=st.floats(0.0, 4.0), x=st.floats(0.0, 1.5)
)
def test_property_scalar_and_exact_step_agree(a, b, c, x):
    p = step_polynomial((a, b, c))
    assert math.isclose(p(x), a * x + b * x**3 + c * x**5, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(float(exact_step((a, b, c)).eval(sp.Rational(repr(x)))), p(x), rel_tol=1e-12, abs_tol=1e-12)
    assert p(-x) == -p(x)


def test_lift_threshold_is_the_first_crossing_of_the_level():
    from matbal.kernels.orthogonalize.analysis import compose, lift_threshold

    t = lift_threshold("muon", 5)
    P = compose("muon", 5)
    assert P(t) >= 0.5 > P(t * (1 - 1e-6))          # EQ-2: Muon NS5 lifts x to 0.5 only from ~1e-3
    assert 1.0e-3 < t < 1.1e-3
    assert lift_threshold("cubic", 1, level=10.0) is None   # a level no step reaches
    assert lift_threshold("polar_express", 6) < t           # a better schedule lifts smaller x
