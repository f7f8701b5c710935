"""newton_schulz(form="gram"/"auto"): the Gram form of the same polynomial map.

Reference everywhere: the standard form in float64. Float32 bounds are ~2× the worst error measured
over these shapes, seeds and schedules (κ = 1e3 geometric spectra): standard float32 ≤ 6.5e-6,
Gram float32 with the default restart (every 3 steps) ≤ 2.0e-5 (polar_express, 6 steps), Gram
without restart up to 2.6e-3 (13 quintic-Padé steps). Float64 Gram agrees to ≤ 5e-12 (no restart)
and ≤ 5e-14 (restart 3).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from matbal.kernels.orthogonalize import cans_schedule, newton_schulz
from matbal.optim.transforms import orthogonalize
from matbal.optim.transforms.base import StepContext
from matbal.synthetic import geometric_spectrum, prescribed_spectrum

F64 = torch.float64

SCHEDULES = [
    ("muon", 5),
    ("polar_express", 6),
    ("you", 5),
    ("you6", 6),
    ("cubic", 12),
    ("quintic_pade", 8),
    ("quintic_pade", 13),
    (cans_schedule(1e-3, 1.0, 8), None),
    ([(2.0, -1.5, 0.5, -0.05)], 1),  # degree-7 step: Horner
    ((1.5, -0.5), 4),  # one cubic tuple, repeated
    ((0.9,), 2),  # degree-1 step: P = c₀I
]
SHAPES = [(24, 96), (96, 24), (32, 32), (3, 16, 48), (2, 2, 40, 20)]


def _x(shape, kappa=1e3, seed=0, dtype=F64):
    *batch, m, n = shape
    s = geometric_spectrum(min(m, n), kappa=kappa)
    return prescribed_spectrum(m, n, s, seed=seed, batch=tuple(batch), dtype=dtype)


def _rel(out, ref):
    return float((out.to(F64) - ref).norm() / ref.norm())


def _id(s):
    return getattr(s, "name", None) or str(s)[:20]


@pytest.mark.parametrize("schedule,steps", SCHEDULES, ids=[_id(s) for s, _ in SCHEDULES])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("restart_every", [3, None, 1, 2])
def test_float64_gram_equals_standard(schedule, steps, shape, restart_every):
    x = _x(shape)
    ref = newton_schulz(x, schedule=schedule, steps=steps)
    out = newton_schulz(x, schedule=schedule, steps=steps, form="gram", restart_every=restart_every)
    assert out.shape == x.shape and out.dtype == F64
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("normalize", ["frobenius", "schatten8", "spectral", "none"])
@pytest.mark.parametrize("schedule,steps", [("muon", 5), ("cubic", 7), ("you6", 6)])
@pytest.mark.parametrize("shape", [(12, 40), (40, 12), (2, 20, 20)])
def test_float64_all_normalizations(normalize, schedule, steps, shape):
    x = _x(shape) / (2.0 if normalize == "none" else 1.0)  # "none" needs ‖x‖₂ ≤ 1
    ref = newton_schulz(x, schedule=schedule, steps=steps, normalize=normalize)
    out = newton_schulz(x, schedule=schedule, steps=steps, normalize=normalize, form="gram")
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("schedule,steps", SCHEDULES[:8], ids=[_id(s) for s, _ in SCHEDULES[:8]])
@pytest.mark.parametrize("shape", [(64, 256), (256, 64), (48, 48), (3, 32, 128)])
def test_float32_error_vs_float64_standard(schedule, steps, shape):
    x = _x(shape, seed=1)
    ref = newton_schulz(x, schedule=schedule, steps=steps)
    x32 = x.float()
    std = _rel(newton_schulz(x32, schedule=schedule, steps=steps), ref)
    gram = newton_schulz(x32, schedule=schedule, steps=steps, form="gram")
    assert gram.dtype == torch.float32
    err = _rel(gram, ref)
    assert err < 4e-5, err  # measured ≤ 2.0e-5
    assert err < 8 * std + 1e-6, (err, std)  # measured ratio ≤ 3.5


@pytest.mark.parametrize("schedule,steps", [("quintic_pade", 13), ("polar_express", 6), ("cubic", 20)])
def test_float32_restart_is_what_keeps_long_schedules_accurate(schedule, steps):
    x = _x((64, 256), seed=2)
    ref = newton_schulz(x, schedule=schedule, steps=steps)
    x32 = x.float()
    restarted = _rel(newton_schulz(x32, schedule=schedule, steps=steps, form="gram"), ref)
    pure = _rel(newton_schulz(x32, schedule=schedule, steps=steps, form="gram", restart_every=None), ref)
    assert restarted < 4e-5
    assert pure > 10 * restarted, (pure, restarted)  # measured 30–300×


def test_float32_polar_express_singular_values():
    x = _x((128, 512), kappa=1e2, seed=3)
    ref = torch.linalg.svdvals(newton_schulz(x, schedule="polar_express", steps=6))
    pe = dict(schedule="polar_express", steps=6)
    s_std = torch.linalg.svdvals(newton_schulz(x.float(), **pe).to(F64))
    s_gram = torch.linalg.svdvals(newton_schulz(x.float(), **pe, form="gram").to(F64))
    # PE-6 on κ = 1e2 is converged: max |σ − 1| is the schedule's own band, rounding adds ~1e-6
    assert float((s_gram - ref).abs().max()) < 1e-5  # measured 1.4e-6 (standard f32: 2.3e-7)
    assert abs(float((s_gram - 1).abs().max()) - float((s_std - 1).abs().max())) < 1e-5


def test_bf16_with_restart_stays_finite_and_close_to_standard_bf16():
    x = _x((64, 256), kappa=1e3, seed=4)
    ref = newton_schulz(x, schedule="quintic_pade", steps=13)
    std = _rel(newton_schulz(x, schedule="quintic_pade", steps=13, dtype=torch.bfloat16), ref)
    out = newton_schulz(x, schedule="quintic_pade", steps=13, dtype=torch.bfloat16, form="gram")
    assert bool(torch.isfinite(out).all())
    assert _rel(out, ref) < 1.5 * std  # measured ≈0.7× the standard bf16 error


@pytest.mark.parametrize("normalize", ["frobenius", "schatten8", "spectral", "none"])
@pytest.mark.parametrize("dtype", [F64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("restart_every", [3, None])
def test_zero_matrix_gives_zeros(normalize, dtype, restart_every):
    for shape in [(4, 9), (9, 4), (2, 5, 5)]:
        z = torch.zeros(shape, dtype=dtype)
        out = newton_schulz(z, normalize=normalize, form="gram", restart_every=restart_every, eps=0.0)
        assert out.dtype == dtype and out.shape == z.shape
        assert bool((out == 0).all())


def test_zero_matrix_inside_batch_does_not_poison_others():
    x = _x((3, 6, 14))
    x[1] = 0
    out = newton_schulz(x, form="gram")
    assert bool((out[1] == 0).all()) and bool(torch.isfinite(out).all())
    torch.testing.assert_close(out[0], newton_schulz(x[0]), rtol=0, atol=1e-10)


def test_input_is_not_mutated():
    x = _x((6, 15))
    before = x.clone()
    for norm in ("frobenius", "schatten8", "spectral", "none"):
        newton_schulz(x / 10 if norm == "none" else x, normalize=norm, form="gram")
        newton_schulz(x.mT / 10 if norm == "none" else x.mT, normalize=norm, form="gram", restart_every=1)
    assert torch.equal(x, before)


def test_dtype_and_numpy_round_trip():
    x = _x((8, 24))
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        assert newton_schulz(x.to(dt), form="gram").dtype == dt
    out = newton_schulz(x.numpy(), form="gram")
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, newton_schulz(x).numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("steps", [1, 3, 5, 8])
@pytest.mark.parametrize("restart_every", [3, None])
def test_callback(steps, restart_every):
    x = _x((2, 5, 13))
    std, gram = [], []
    newton_schulz(x, schedule="polar_express", steps=steps, callback=lambda k, y: std.append((k, y)))
    out = newton_schulz(
        x, schedule="polar_express", steps=steps, form="gram", restart_every=restart_every,
        callback=lambda k, y: gram.append((k, y)),
    )
    assert [k for k, _ in gram] == list(range(1, steps + 1))
    for (_, a), (_, b) in zip(std, gram):
        assert b.shape == x.shape
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10)
    torch.testing.assert_close(gram[-1][1], out, rtol=0, atol=0)
    # the callback only observes: same bits with and without it (float32, where rounding shows)
    x32 = x.float()
    kw = dict(schedule="polar_express", steps=steps, form="gram", restart_every=restart_every)
    quiet = newton_schulz(x32, **kw)
    loud = newton_schulz(x32, **kw, callback=lambda k, y: None)
    assert torch.equal(quiet, loud)
    # tall input: the callback sees the input orientation
    seen = []
    newton_schulz(x.mT, steps=2, form="gram", callback=lambda k, y: seen.append(y.shape))
    assert seen == [x.mT.shape] * 2


def test_auto_picks_gram_exactly_when_aspect_is_at_least_two():
    cases = [((16, 32), True), ((33, 16), True), ((16, 31), False), ((20, 20), False), ((2, 8, 40), True)]
    for shape, gram in cases:
        x = _x(shape, dtype=torch.float32)
        auto = newton_schulz(x, schedule="polar_express", steps=6, form="auto")
        want = newton_schulz(x, schedule="polar_express", steps=6, form="gram" if gram else "standard")
        assert torch.equal(auto, want), shape


def test_standard_is_the_default_and_ignores_restart_every():
    x = _x((10, 30), dtype=torch.float32)
    base = newton_schulz(x)
    assert torch.equal(newton_schulz(x, form="standard", restart_every=None), base)
    assert torch.equal(newton_schulz(x, form="standard", restart_every=1), base)
    assert not torch.equal(newton_schulz(x, form="gram"), base)  # a different rounding path


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        (dict(form="gramm"), ValueError, "form must be one of"),
        (dict(form=None), ValueError, "form"),
        (dict(form="gram", restart_every=0), ValueError, "restart_every"),
        (dict(form="gram", restart_every=-2), ValueError, "restart_every"),
        (dict(form="gram", restart_every=2.5), TypeError, "restart_every"),
        (dict(form="gram", restart_every=True), TypeError, "restart_every"),
        (dict(restart_every="3"), TypeError, "restart_every"),
    ],
)
def test_bad_options_are_refused(kwargs, err, match):
    with pytest.raises(err, match=match):
        newton_schulz(_x((3, 4)), **kwargs)


def test_orthogonalize_transform_passes_form_through():
    # float32, 13 quintic-Padé steps without restart: the Gram result differs from the standard one
    # by ~1e-3, far above batched-vs-single rounding (~1e-7), so the comparison shows which form ran
    ups = [_x(shape, seed=s, dtype=torch.float32) for s, shape in enumerate([(8, 24), (8, 24), (24, 8)])]
    ctx = StepContext(params=ups, steps=[1] * 3, names=["a", "b", "c"], group={"lr": 1.0}, matrix=True)
    kw = dict(schedule="quintic_pade", steps=13)
    t = orthogonalize(kw["schedule"], steps=13, form="gram", restart_every=None)
    out = t.apply(ups, [{}, {}, {}], ctx)
    std = orthogonalize(kw["schedule"], steps=13).apply(ups, [{}, {}, {}], ctx)
    for u, o, s in zip(ups, out, std):
        gram_ref = newton_schulz(u, **kw, form="gram", restart_every=None)
        std_ref = newton_schulz(u, **kw)
        torch.testing.assert_close(o, gram_ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(s, std_ref, rtol=0, atol=1e-5)
        assert float((o - std_ref).abs().max()) > 1e-4
    assert "form='gram'" in repr(t) and "restart_every=None" in repr(t)
    assert orthogonalize().form == "standard" and orthogonalize().restart_every == 3
    with pytest.raises(ValueError, match="form"):
        orthogonalize(form="fast")
    with pytest.raises(ValueError, match="restart_every"):
        orthogonalize(form="gram", restart_every=0)
