"""The helpers of the width studies (SC-1, RM-1's width series): the bootstrap trend fit
(:func:`matbal.lab.stats.fit_trend`), the spectrum profile (:func:`matbal.lab.momenta.spectrum_quantiles`)
and the width recording's argument checks — each checked against a float64 reference."""
import math

import numpy as np
import pytest
import torch

import matbal
from matbal.lab.momenta import spectrum_quantiles, spectrum_summary
from matbal.lab.stats import fit_trend
from matbal.lab.training import WIDTH_RECORDING_QUICK, recorded_gpt_at_width


def test_fit_trend_recovers_an_exact_power_law_and_its_crossing():
    x = [64, 128, 256, 512]
    c, b, level = 3.0, -0.7, 1e-2
    f = fit_trend(x, [[c * v ** b] * 3 for v in x], level=level)
    assert f["slope"] == pytest.approx(b, abs=1e-12)
    assert math.exp(f["intercept"]) == pytest.approx(c, rel=1e-12)
    assert f["r2"] == pytest.approx(1.0, abs=1e-12)
    want = (level / c) ** (1 / b)  # c·x^b = level
    assert f["crossing"] == pytest.approx(want, rel=1e-10)
    assert f["crossing_ci"] == pytest.approx([want, want], rel=1e-10)  # no spread to resample
    assert f["slope_ci"] == pytest.approx([b, b], abs=1e-12)


def test_fit_trend_linear_in_log_x_and_direction_up():
    x = [64, 128, 256]
    y = [0.5 + 0.1 * math.log(v) for v in x]
    f = fit_trend(x, [[v] for v in y], logy=False, level=0.9, direction="up")
    assert f["slope"] == pytest.approx(0.1, abs=1e-12)
    assert f["crossing"] == pytest.approx(math.exp(4.0), rel=1e-10)  # 0.5 + 0.1·ln x = 0.9


def test_fit_trend_moving_away_never_crosses_and_past_level_crosses_below_range():
    x = [64, 128, 256]
    rising = [[1e-3 * v] for v in x]
    assert fit_trend(x, rising, level=1e-3, direction="down")["crossing"] == math.inf
    f = fit_trend(x, [[1e-4 / v] for v in x], level=1e-3, direction="down")
    assert f["crossing"] < 64  # already below the level at the smallest x
    assert fit_trend(x, rising)["crossing"] is None  # no level, no crossing


def test_fit_trend_bootstrap_interval_covers_the_true_slope_of_noisy_data():
    rng = np.random.default_rng(1)
    x = np.array([64, 128, 256, 512])
    samples = [2.0 * v ** -1.2 * np.exp(0.05 * rng.standard_normal(15)) for v in x]
    f = fit_trend(x, samples, level=1e-4, resamples=500)
    lo, hi = f["slope_ci"]
    assert lo < -1.2 < hi and hi - lo < 0.2
    assert f["crossing_ci"][0] < f["crossing"] < f["crossing_ci"][1]
    again = fit_trend(x, samples, level=1e-4, resamples=500)
    assert again["slope_ci"] == f["slope_ci"]  # fixed seed: reproducible
    assert f["n"] == [15] * 4 and [s.size for s in samples] == [15] * 4


@pytest.mark.parametrize("kwargs, match", [
    ({"x": [64], "samples": [[1.0]]}, "x needs"),
    ({"x": [64, 64], "samples": [[1.0], [2.0]]}, "x needs"),
    ({"x": [64, 128], "samples": [[1.0]]}, "samples must have"),
    ({"x": [64, 128], "samples": [[1.0], []]}, "at least one"),
    ({"x": [-1, 128], "samples": [[1.0], [2.0]]}, "x must be positive"),
    ({"x": [64, 128], "samples": [[0.0], [2.0]]}, "samples must be positive"),
    ({"x": [64, 128], "samples": [[math.nan], [2.0]]}, "finite"),
    ({"x": [64, 128], "samples": [[1.0], [2.0]], "direction": "left"}, "direction"),
    ({"x": [64, 128], "samples": [[1.0], [2.0]], "level": 0.0}, "level"),
    ({"x": [64, 128], "samples": [[1.0], [2.0]], "resamples": 0}, "resamples"),
    ({"x": [64, 128], "samples": [[1.0], [2.0]], "alpha": 1.5}, "alpha"),
])
def test_fit_trend_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_trend(**kwargs)


def test_spectrum_quantiles_against_float64_reference():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(40, 40, dtype=torch.float64))
    p, _ = torch.linalg.qr(torch.randn(10, 10, dtype=torch.float64))
    s = torch.logspace(0, -6, 10, dtype=torch.float64)
    x = (q[:, :10] * s) @ p.T
    before = x.clone()
    out = spectrum_quantiles(x.float(), (0.1, 0.5), drop=2, level=1e-3)
    ref = (s / s.norm()).numpy()[:8]
    assert out["x_eff"] == pytest.approx(ref[-1], rel=1e-4)
    assert out["q50"] == pytest.approx(np.quantile(ref, 0.5), rel=1e-4)
    assert out["q10"] == pytest.approx(np.quantile(ref, 0.1), rel=1e-4)
    assert out["frac_below"] == pytest.approx(np.mean(ref < 1e-3), abs=1e-6)
    assert out["n_kept"] == 8
    assert torch.equal(x, before)


def test_spectrum_quantiles_zero_matrix_and_bad_input():
    z = spectrum_quantiles(torch.zeros(5, 3), drop=1, level=1e-3)
    assert z["x_eff"] == 0.0 and z["q50"] == 0.0 and z["frac_below"] == 1.0
    with pytest.raises(ValueError, match="drop"):
        spectrum_quantiles(torch.ones(4, 3), drop=3)
    with pytest.raises(ValueError, match="quantiles"):
        spectrum_quantiles(torch.ones(4, 3), (1.5,))
    with pytest.raises(TypeError, match="x must"):
        spectrum_quantiles(np.ones((4, 3)))
    with pytest.raises(ValueError, match="drop"):
        spectrum_quantiles(torch.ones(4, 3), drop=True)
    with pytest.raises(ValueError, match="level"):
        spectrum_quantiles(torch.ones(4, 3), level=math.nan)


def test_spectrum_quantiles_agrees_with_spectrum_summary():
    """drop=0: ``x_eff`` is the x_min of :func:`spectrum_summary` (and of :func:`matbal.x_min`);
    ``drop=1``: its ``x_min2``. A zero matrix gives zeros in both, never NaN."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 7, generator=g, dtype=torch.float64)
    summ = spectrum_summary(x)
    assert spectrum_quantiles(x)["x_eff"] == pytest.approx(summ["x_min"], rel=1e-12)
    assert spectrum_quantiles(x, drop=1)["x_eff"] == pytest.approx(summ["x_min2"], rel=1e-12)
    assert summ["x_min"] == pytest.approx(float(matbal.x_min(x)), rel=1e-12)
    assert spectrum_summary(torch.zeros(4, 3)) == {"x_min": 0.0, "x_min2": 0.0, "stable_rank": 0.0}


@pytest.mark.parametrize("width, match", [(0, "positive int"), (48.0, "positive int"),
                                          (30, "multiple of n_head")])
def test_recorded_gpt_at_width_rejects_bad_widths(width, match, tmp_path):
    spec = dict(WIDTH_RECORDING_QUICK, model={**WIDTH_RECORDING_QUICK["model"], "n_head": 4})
    with pytest.raises(ValueError, match=match):
        recorded_gpt_at_width(spec, width, results_dir=tmp_path)
