"""matbal.lab.ns_arms (orthogonalizer arms, NS error predicted from a spectrum) and matbal.lab.lr_fit
(sub-grid best lr, paired seed bootstrap), used by the NL-1 experiment."""
import math
import warnings

import numpy as np
import pytest
import torch

import matbal
from matbal.lab.lr_fit import bootstrap_seeds, subgrid_lr
from matbal.lab.ns_arms import FAMILIES, ORTHOGONALIZERS, band_error, ortho_arm, spectrum_error


def _spread_matrix(m=48, n=32, seed=0):
    """float64 matrix with singular values spread over four decades (NS leaves the small ones
    far from 1 for few steps)."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(m, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = torch.logspace(0, -4, n, dtype=torch.float64)
    return u @ torch.diag(s) @ v.T


@pytest.mark.parametrize("ortho", ["ns1", "ns2", "ns3", "ns5", "ns8", "cubic5"])
def test_spectrum_error_equals_newton_schulz_on_the_matrix(ortho):
    x = _spread_matrix()
    schedule, steps = ORTHOGONALIZERS[ortho]
    o = matbal.newton_schulz(x, schedule=schedule, steps=steps, dtype=torch.float64)
    q = matbal.polar(x)  # full rank: U Vᵀ
    r = min(x.shape)
    want_err = float(torch.linalg.norm(o - q) / math.sqrt(r))
    want_size = float(torch.linalg.norm(o) / math.sqrt(r))
    got = spectrum_error(matbal.svdvals(x).numpy(), ortho)
    assert got["error_fro"] == pytest.approx(want_err, rel=1e-9, abs=1e-12)
    assert got["size_ratio"] == pytest.approx(want_size, rel=1e-9, abs=1e-12)


def test_spectrum_error_orders_the_step_counts_and_exact_is_zero():
    s = matbal.svdvals(_spread_matrix()).numpy()
    errs = [spectrum_error(s, o)["error_fro"] for o in ("ns1", "ns2", "ns3", "ns5")]
    assert all(a > b for a, b in zip(errs, errs[1:]))  # more steps lift more singular values
    assert spectrum_error(s, "exact") == {"error_fro": 0.0, "size_ratio": 1.0}
    assert spectrum_error(s, "ns1")["size_ratio"] < 1  # few steps shrink the update


def test_spectrum_error_zero_matrix_and_bad_input():
    assert spectrum_error(np.zeros(4), "ns5") == {"error_fro": 0.0, "size_ratio": 0.0}
    s = np.array([1.0, 0.5])
    before = s.copy()
    spectrum_error(s, "ns3")
    assert np.array_equal(s, before)  # input untouched
    for bad in ([], [1.0, -0.1], [1.0, math.nan]):
        with pytest.raises(ValueError, match="sigma"):
            spectrum_error(bad, "ns5")
    with pytest.raises(ValueError, match="ortho"):
        spectrum_error([1.0], "ns4")


def test_band_error_is_the_worst_case_error_of_the_schedule():
    assert band_error("ns5", 1e-3) == pytest.approx(matbal.worst_case_error("muon", 5, 1e-3))
    assert band_error("cubic5", 0.1) == pytest.approx(matbal.worst_case_error("cubic", 5, 0.1))
    assert band_error("exact", 1e-9) == 0.0


@pytest.mark.parametrize("ortho, lo", [("ns5", 1e-2), ("ns3", 1e-3), ("cubic5", 0.1), ("ns1", 0.3)])
def test_band_error_against_a_dense_grid_of_the_scalar_map(ortho, lo):
    """Independent of :func:`matbal.worst_case_error`: the NS scalar map ``P_k`` on 2·10⁵
    log-spaced points of ``[lo, 1]`` (no normalization), its largest ``|1 − P_k(x)|``."""
    schedule, steps = ORTHOGONALIZERS[ortho]
    x = np.geomspace(lo, 1.0, 200_001)
    p = np.asarray(matbal.predict_singular_values(x, schedule=schedule, steps=steps,
                                                  normalize="none"))
    grid = float(np.abs(1.0 - p).max())
    assert grid - 1e-12 <= band_error(ortho, lo) <= grid * (1 + 1e-6)
    with pytest.raises(ValueError, match="ortho"):
        band_error("svd", 0.1)


def test_ortho_arm_builds_the_family_preset_or_its_exact_control():
    a = ortho_arm("plain", "ns2", lr=0.03, adamw_lr=0.003)
    assert (a.label, a.optimizer, a.lr, a.adamw_lr) == ("plain-ns2", "muon", 0.03, 0.003)
    assert dict(a.optimizer_kwargs) == {"shape_rule": "match_rms_adamw", "schedule": "muon",
                                        "ns_steps": 2}
    e = ortho_arm("plain", "exact", lr=0.03, adamw_lr=0.003, label="x")
    assert (e.label, e.optimizer, dict(e.optimizer_kwargs)) == ("x", FAMILIES["plain"]["exact"], {})
    assert ortho_arm("R", "cubic5", lr=None, adamw_lr=None).optimizer == "muoneq-r"
    with pytest.raises(ValueError, match="family"):
        ortho_arm("C", "ns5", lr=0.1, adamw_lr=None)


def test_ortho_arm_exact_control_trains_with_the_polar_factor():
    """The exact arm's optimizer really orthogonalizes exactly (SVD), the NS arm does not."""
    from matbal.lab.training import register_lab_presets
    from matbal.optim import PRESETS

    register_lab_presets()
    w = torch.zeros(8, 6)  # zero weights: weight decay adds nothing to the step
    steps = {}
    for ortho in ("ns1", "exact"):
        a = ortho_arm("plain", ortho, lr=1.0, adamw_lr=None)
        p = torch.nn.Parameter(w.detach().clone())
        opt = PRESETS[a.optimizer]([p], lr=1.0, **dict(a.optimizer_kwargs))
        p.grad = _spread_matrix(8, 6, seed=1).float()
        opt.step()
        steps[ortho] = (w.detach() - p.detach()).double()
    sv_exact = matbal.svdvals(steps["exact"])
    assert float(sv_exact.max() / sv_exact.min()) == pytest.approx(1.0, abs=1e-4)
    sv_ns1 = matbal.svdvals(steps["ns1"])
    assert float(sv_ns1.max() / sv_ns1.min()) > 10


def test_subgrid_lr_recovers_the_vertex_on_an_uneven_grid():
    lrs = [0.004, 0.01, 0.016, 0.05]
    for v in (0.007, 0.012, 0.02):  # each nearest to an interior grid point
        loss = [2.0 + 0.3 * (math.log2(lr) - math.log2(v)) ** 2 for lr in lrs]
        r = subgrid_lr(lrs, loss)
        assert r["bracketed"] and r["lr"] == pytest.approx(v, rel=1e-12)


def test_subgrid_lr_edges_divergence_and_bad_input():
    assert subgrid_lr([0.01, 0.02, 0.04], [3.0, 2.0, 1.0]) == \
        {"grid_lr": 0.04, "lr": 0.04, "bracketed": False, "log2_lr": math.log2(0.04)}
    r = subgrid_lr([0.01, 0.02, 0.04], [3.0, 2.0, math.inf])  # diverged neighbour: no bracket
    assert (r["lr"], r["bracketed"]) == (0.02, False)
    r = subgrid_lr([0.01, 0.02, 0.04], [3.0, 2.0, 2.0])  # flat pair: vertex midway in log2(lr)
    assert r["bracketed"] and r["lr"] == pytest.approx(math.sqrt(0.02 * 0.04), rel=1e-12)
    for lrs, vals, match in (([0.01], [1.0], "lrs"), ([0.02, 0.01], [1.0, 2.0], "lrs"),
                             ([0.0, 0.01], [1.0, 2.0], "positive"), ([-0.01, 0.01], [1.0, 2.0], "positive"),
                             ([0.01, 0.02], [1.0], "values"),
                             ([0.01, 0.02], [math.nan, math.inf], "diverged")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # refused before any log2 of a non-positive lr
            with pytest.raises(ValueError, match=match):
                subgrid_lr(lrs, vals)


def test_bootstrap_seeds_resamples_the_same_seeds_for_every_arm():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 4))
    # arm b = arm a + 0.5 on every seed: the paired difference never varies across resamples
    vals = {"a": a, "b": a + 0.5}
    r = bootstrap_seeds(vals, lambda m: float(np.mean(m["b"] - m["a"])), resamples=300)
    assert r["estimate"] == pytest.approx(0.5)
    assert r["ci"] == pytest.approx([0.5, 0.5])
    # an unpaired statistic does vary
    r2 = bootstrap_seeds(vals, lambda m: float(m["a"][0]), resamples=300)
    assert r2["ci"][0] < r2["estimate"] < r2["ci"][1]
    assert r2["ci"][0] >= a[0].min() - 1e-12 and r2["ci"][1] <= a[0].max() + 1e-12


def test_bootstrap_seeds_drops_non_finite_and_rejects_bad_input():
    vals = {"a": np.array([[1.0, 2.0, 3.0]])}
    r = bootstrap_seeds(vals, lambda m: float(m["a"][0]) if m["a"][0] < 2.5 else math.nan,
                        resamples=200)
    assert 0 < r["dropped"] < 200 and r["ci"][1] < 2.5
    with pytest.raises(ValueError, match="empty"):
        bootstrap_seeds({}, lambda m: 0.0)
    with pytest.raises(ValueError, match="n_seeds"):
        bootstrap_seeds({"a": np.ones((2, 2)), "b": np.ones((2, 3))}, lambda m: 0.0)
    with pytest.raises(ValueError, match="n_seeds"):
        bootstrap_seeds({"a": np.ones((2, 1))}, lambda m: 0.0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_seeds({"a": np.ones((2, 2))}, lambda m: 0.0, resamples=10)
