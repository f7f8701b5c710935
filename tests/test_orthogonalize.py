"""newton_schulz and polar: exact spectral prediction, invariances, batching, dtypes, bad input."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from matbal.kernels.orthogonalize import (
    Schedule,
    cans_schedule,
    newton_schulz,
    polar,
    predict_singular_values,
    working_dtype,
)
from matbal.synthetic import geometric_spectrum, prescribed_spectrum, random_orthogonal

F64 = torch.float64


def _x(m=12, n=20, kappa=1e2, seed=0, batch=(), dtype=F64):
    return prescribed_spectrum(m, n, geometric_spectrum(min(m, n), kappa=kappa), seed=seed, batch=batch, dtype=dtype)


def _sv(x):
    return torch.linalg.svdvals(x.to(F64))


def _pred(x, **kw):
    return predict_singular_values(_sv(x), **kw).sort(dim=-1, descending=True).values


CASES = [
    ("muon", None, "frobenius"),
    ("muon", 7, "schatten8"),
    ("polar_express", 5, "frobenius"),
    ("polar_express", 10, "schatten8"),
    ("you", None, "frobenius"),
    ("you6", None, "schatten8"),
    ("cubic", 12, "frobenius"),
    ("quintic_pade", 6, "schatten8"),
    ([(2.0, -1.5, 0.5, -0.05)], 1, "frobenius"),  # degree-7 step: the Horner path
    ((1.5, -0.5), 4, "frobenius"),
]


@pytest.mark.parametrize("schedule,steps,normalize", CASES)
@pytest.mark.parametrize("shape", [(12, 20), (20, 12), (16, 16)])
def test_singular_values_match_exact_predictor(schedule, steps, normalize, shape):
    x = _x(*shape, kappa=1e3)
    out = newton_schulz(x, schedule=schedule, steps=steps, normalize=normalize)
    torch.testing.assert_close(_sv(out), _pred(x, schedule=schedule, steps=steps, normalize=normalize), rtol=0, atol=1e-10)


def test_normalize_none_matches_predictor_and_is_plain_polynomial():
    x = _x(8, 10) / 2.0  # sigma_1 = 0.5
    out = newton_schulz(x, schedule="cubic", steps=3, normalize="none")
    torch.testing.assert_close(_sv(out), _pred(x, schedule="cubic", steps=3, normalize="none"), rtol=0, atol=1e-12)
    y = x.clone()
    for _ in range(3):
        y = 1.5 * y - 0.5 * y @ y.mT @ y
    torch.testing.assert_close(out, y, rtol=0, atol=1e-13)


def test_batched_predictor():
    x = _x(6, 9, batch=(2, 3), seed=3)
    out = newton_schulz(x, schedule="polar_express")
    torch.testing.assert_close(_sv(out), _pred(x, schedule="polar_express"), rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "schedule,steps", [("cubic", 30), ("quintic_pade", 14), ("polar_express", 9), (cans_schedule(1e-3, 1.0, 12), 12)]
)
def test_convergent_schedules_reach_polar(schedule, steps):
    x = _x(10, 14, kappa=30.0, seed=1)  # x_min = sigma_r/||X||_F ~ 1e-2
    torch.testing.assert_close(newton_schulz(x, schedule=schedule, steps=steps), polar(x), rtol=0, atol=1e-9)


def test_orthogonal_invariance():
    gen = torch.Generator().manual_seed(7)
    x = _x(9, 13, seed=2)
    q = random_orthogonal(9, 9, generator=gen)
    p = random_orthogonal(13, 13, generator=gen)
    for norm in ("frobenius", "schatten8"):
        lhs = newton_schulz(q @ x @ p, normalize=norm)
        torch.testing.assert_close(lhs, q @ newton_schulz(x, normalize=norm) @ p, rtol=0, atol=1e-11)


@pytest.mark.parametrize("dtype,atol", [(F64, 1e-12), (torch.float32, 1e-5)])
def test_batched_equals_loop(dtype, atol):
    x = _x(7, 11, batch=(2, 3), seed=4, dtype=dtype)
    out = newton_schulz(x, schedule="you", normalize="schatten8")
    loop = torch.stack([torch.stack([newton_schulz(x[i, j], schedule="you", normalize="schatten8") for j in range(3)]) for i in range(2)])
    assert out.shape == x.shape
    torch.testing.assert_close(out, loop, rtol=0, atol=atol)


@pytest.mark.parametrize("normalize", ["frobenius", "schatten8", "spectral"])
def test_tall_equals_transposed_wide(normalize):
    x = _x(9, 15, seed=5)
    torch.testing.assert_close(newton_schulz(x.mT, normalize=normalize), newton_schulz(x, normalize=normalize).mT, rtol=0, atol=1e-13)


def test_normalizations_are_ordered_upper_bounds_of_sigma1():
    # the identity schedule p(x) = x returns X0 = X / (nu + eps): it reveals the norm used
    x = _x(10, 30, kappa=10.0, seed=6)
    ident = Schedule("identity", ((1.0,),), default_steps=1)
    nus = {k: 1.0 / _sv(newton_schulz(x, schedule=ident, normalize=k, eps=0.0))[0] * _sv(x)[0] for k in ("frobenius", "schatten8", "spectral")}
    s = _sv(x)
    torch.testing.assert_close(nus["frobenius"], s.norm(), rtol=1e-12, atol=0)
    torch.testing.assert_close(nus["schatten8"], s.pow(8).sum().pow(1 / 8), rtol=1e-12, atol=0)
    assert s[0] <= nus["spectral"] <= nus["schatten8"] <= nus["frobenius"]


def test_spectral_bound_is_exact_for_orthogonal_rows():
    x = 3.0 * random_orthogonal(20, 8, generator=torch.Generator().manual_seed(0)).mT  # sigma = 3 (x8)
    ident = Schedule("identity", ((1.0,),), default_steps=1)
    out = newton_schulz(x, schedule=ident, normalize="spectral", eps=0.0)
    torch.testing.assert_close(_sv(out), torch.ones(8, dtype=F64), rtol=1e-12, atol=0)


def test_safety_factor_of_polar_express_initial_scaling():
    x = _x(6, 8)
    seen = []
    newton_schulz(x, schedule=Schedule("pe-like", ((1.0,),), safety=1.01, default_steps=1), eps=0.0, callback=lambda k, y: seen.append(y))
    torch.testing.assert_close(seen[0], x / (1.01 * torch.linalg.matrix_norm(x)), rtol=1e-14, atol=0)


@pytest.mark.parametrize("normalize", ["frobenius", "schatten8", "spectral", "none"])
@pytest.mark.parametrize("eps", [1e-7, 0.0])
@pytest.mark.parametrize("dtype", [F64, torch.float32, torch.bfloat16])
def test_zero_matrix_gives_zeros(normalize, eps, dtype):
    z = torch.zeros(2, 5, 3, dtype=dtype)
    out = newton_schulz(z, normalize=normalize, eps=eps)
    assert out.dtype == dtype and out.shape == z.shape
    assert torch.equal(out, torch.zeros_like(z))


def test_zero_matrix_inside_batch_does_not_poison_others():
    x = _x(4, 6, batch=(3,), seed=8)
    x[1] = 0
    out = newton_schulz(x, eps=0.0)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    torch.testing.assert_close(out[0], newton_schulz(x[0], eps=0.0))


def test_polar_zero_and_rank_deficient():
    assert torch.equal(polar(torch.zeros(3, 4)), torch.zeros(3, 4, dtype=F64))
    s = torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=F64)
    x = prescribed_spectrum(4, 7, s, seed=1, dtype=F64)
    q = polar(x)
    torch.testing.assert_close(_sv(q), torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(q @ q.mT @ q, q, rtol=0, atol=1e-12)  # partial isometry
    # Newton-Schulz converges to the same partial isometry (p(0) = 0)
    torch.testing.assert_close(newton_schulz(x, schedule="quintic_pade", steps=12), q, rtol=0, atol=1e-10)


def test_polar_matches_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    x = _x(9, 9, kappa=1e4, seed=9)
    u, _ = scipy_linalg.polar(x.numpy())
    np.testing.assert_allclose(polar(x.numpy()), u, atol=1e-10)
    tall = _x(12, 5, seed=9)
    torch.testing.assert_close(polar(tall), polar(tall.mT).mT)
    assert polar(tall, dtype=None).dtype == F64 and polar(tall.float(), dtype=None).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, F64])
def test_dtype_round_trip(dtype):
    x = _x(16, 24, kappa=10.0, dtype=dtype)
    out = newton_schulz(x)
    assert out.dtype == dtype and out.shape == x.shape
    ref = newton_schulz(x.to(F64))
    tol = {torch.bfloat16: 2e-2, torch.float16: 2e-3, torch.float32: 1e-5, F64: 0.0}[dtype]
    torch.testing.assert_close(out.to(F64), ref, rtol=0, atol=tol)
    assert not torch.equal(x, torch.zeros_like(x))  # input untouched below
    torch.testing.assert_close(x, _x(16, 24, kappa=10.0, dtype=dtype), rtol=0, atol=0)


def test_working_dtype_policy():
    cpu = torch.zeros(2, 2)
    assert working_dtype(cpu.bfloat16()) == torch.float32
    assert working_dtype(cpu.half()) == torch.float32
    assert working_dtype(cpu) == torch.float32 and working_dtype(cpu.double()) == F64
    assert working_dtype(cpu, torch.bfloat16) == torch.bfloat16
    # forcing bf16 on CPU runs in bf16 and still returns the input dtype
    x = _x(8, 12, dtype=torch.float32)
    out = newton_schulz(x, dtype=torch.bfloat16)
    assert out.dtype == torch.float32
    assert (out - newton_schulz(x)).abs().max() > 1e-4  # really computed in bf16


def test_numpy_in_numpy_out():
    x = _x(5, 7).numpy()
    out = newton_schulz(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (5, 7)
    np.testing.assert_allclose(out, newton_schulz(torch.from_numpy(x)).numpy(), atol=0)
    x32 = x.astype(np.float32)
    assert newton_schulz(x32).dtype == np.float32
    assert isinstance(polar(x32), np.ndarray)


def test_input_is_not_mutated():
    x = _x(6, 4)
    before = x.clone()
    for norm in ("frobenius", "schatten8", "spectral", "none"):
        newton_schulz(x / 10 if norm == "none" else x, normalize=norm)
    assert torch.equal(x, before)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_callback_called_once_per_step(steps):
    calls = []
    x = _x(5, 9, batch=(2,))
    out = newton_schulz(x, schedule="polar_express", steps=steps, callback=lambda k, y: calls.append((k, y)))
    assert [k for k, _ in calls] == list(range(1, steps + 1))
    assert all(y.shape == x.shape for _, y in calls)
    torch.testing.assert_close(calls[-1][1], out, rtol=0, atol=0)
    # tall input: the callback sees the input orientation
    seen = []
    newton_schulz(x.mT, steps=2, callback=lambda k, y: seen.append(y.shape))
    assert seen == [x.mT.shape] * 2


def test_frozen_muon_ns5_values():
    # regenerate only on purpose: the default path (Muon NS5, Frobenius, eps=1e-7) on a seeded matrix
    x = prescribed_spectrum(3, 4, [1.0, 0.1, 0.01], seed=0, dtype=F64)
    out = predict_singular_values(_sv(x))
    np.testing.assert_allclose(out, [0.70207066, 0.70865227, 0.69673412], rtol=1e-6)
    torch.testing.assert_close(_sv(newton_schulz(x)), torch.as_tensor(np.sort(out)[::-1].copy(), dtype=F64), rtol=0, atol=1e-12)


def _reference(g, coeffs, safety=1.0):
    # transcription of KellerJordan/Muon zeropower_via_newtonschulz5 and NoahAmsel/PolarExpress
    # PolarExpress(), in float64 instead of bf16
    x = g.mT if g.size(-2) > g.size(-1) else g
    x = x / (x.norm(dim=(-2, -1), keepdim=True) * safety + 1e-7)
    for a, b, c in coeffs:
        A = x @ x.mT
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.mT if g.size(-2) > g.size(-1) else x


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (2, 7, 7)])
def test_equals_reference_code(shape):
    from matbal.kernels.orthogonalize import POLAR_EXPRESS_PUBLISHED

    g = torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(0))
    muon = [(3.4445, -4.7750, 2.0315)] * 5
    torch.testing.assert_close(newton_schulz(g), _reference(g, muon), rtol=0, atol=1e-13)
    pe = [(a / 1.01, b / 1.01**3, c / 1.01**5) for (a, b, c) in POLAR_EXPRESS_PUBLISHED[:-1]]
    pe = pe + [POLAR_EXPRESS_PUBLISHED[-1]] * 3
    torch.testing.assert_close(
        newton_schulz(g, schedule="polar_express", steps=10), _reference(g, pe, safety=1.01), rtol=0, atol=1e-13
    )


BAD = [
    (torch.ones(4), ValueError, "x"),
    (torch.ones(0, 3), ValueError, "x"),
    (torch.ones(2, 2, dtype=torch.complex64), TypeError, "x"),
    (torch.ones(2, 2, dtype=torch.int64), TypeError, "x"),
    (torch.tensor([[1.0, float("nan")]]), ValueError, "x"),
    (torch.tensor([[1.0, float("inf")]]), ValueError, "x"),
    ([[1.0, 2.0]], TypeError, "x"),
]


@pytest.mark.parametrize("x,err,name", BAD)
def test_bad_x_is_refused(x, err, name):
    with pytest.raises(err, match=name):
        newton_schulz(x)
    with pytest.raises(err, match=name):
        polar(x)


def test_bad_numpy_x_is_refused():
    with pytest.raises(TypeError, match="x"):
        newton_schulz(np.ones((2, 2), dtype=np.complex128))
    with pytest.raises(TypeError, match="x"):
        newton_schulz(np.ones((2, 2), dtype=np.int32))


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        (dict(schedule="nope"), ValueError, "schedule"),
        (dict(schedule=42), TypeError, "schedule"),
        (dict(schedule=[(1.0, float("nan"))]), ValueError, "finite"),
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps=2.0), TypeError, "steps"),
        (dict(schedule="you", steps=6), ValueError, "steps=6"),
        (dict(schedule="cubic"), ValueError, "steps is required"),
        (dict(normalize="l1"), ValueError, "normalize"),
        (dict(eps=-1.0), ValueError, "eps"),
        (dict(dtype=torch.int32), TypeError, "dtype"),
        (dict(callback=3), TypeError, "callback"),
    ],
)
def test_bad_options_are_refused(kwargs, err, match):
    with pytest.raises(err, match=match):
        newton_schulz(_x(3, 4), **kwargs)


def test_polar_bad_options():
    with pytest.raises(TypeError, match="dtype"):
        polar(_x(3, 4), dtype=torch.int64)
    with pytest.raises(ValueError, match="rtol"):
        polar(_x(3, 4), rtol=-1.0)


@settings(max_examples=12, deadline=None)
@given(
    m=st.integers(1, 9),
    n=st.integers(1, 9),
    log_kappa=st.floats(0.0, 4.0),
    schedule=st.sampled_from(["muon", "polar_express", "you", "quintic_pade"]),
    normalize=st.sampled_from(["frobenius", "schatten8"]),
    seed=st.integers(0, 2**16),
)
def test_property_prediction_is_exact(m, n, log_kappa, schedule, normalize, seed):
    x = prescribed_spectrum(m, n, geometric_spectrum(min(m, n), kappa=10**log_kappa, top=3.0), seed=seed, dtype=F64)
    steps = 6 if schedule == "quintic_pade" else None
    out = newton_schulz(x, schedule=schedule, steps=steps, normalize=normalize)
    torch.testing.assert_close(_sv(out), _pred(x, schedule=schedule, steps=steps, normalize=normalize), rtol=0, atol=1e-10)


@settings(max_examples=10, deadline=None)
@given(scale=st.floats(1e-30, 1e30), seed=st.integers(0, 2**16))
def test_property_scale_invariance(scale, seed):
    x = _x(5, 8, seed=seed)
    torch.testing.assert_close(newton_schulz(scale * x, eps=0.0), newton_schulz(x, eps=0.0), rtol=0, atol=1e-12)
    x32 = x.float()
    torch.testing.assert_close(newton_schulz(scale * x32, eps=0.0), newton_schulz(x32, eps=0.0), rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("normalize", ["frobenius", "schatten8", "spectral", "none"])
def test_nan_or_inf_anywhere_in_a_batch_is_refused_for_every_dtype_and_norm(dtype, normalize):
    """The finiteness check rides on the float64 norm (no separate pass): it must still catch
    one bad entry in one batch element, and huge finite entries must not trip it."""
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.ones(2, 3, 5, dtype=dtype)
        x[1, 2, 4] = bad
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            newton_schulz(x, normalize=normalize)
    if normalize != "none":  # "none" does not scale: huge input overflows the polynomial by design
        big = torch.full((3, 4), torch.finfo(dtype).max / 16, dtype=dtype)  # ‖big‖_F finite
        assert torch.isfinite(newton_schulz(big, normalize=normalize).float()).all()
    if dtype == torch.float64 and normalize != "none":  # ‖x‖_F beyond float64: said, not zeros
        with pytest.raises(ValueError, match="overflows float64"):
            newton_schulz(torch.full((3, 4), torch.finfo(dtype).max / 2, dtype=dtype), normalize=normalize)


_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _DEVICES)
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_half_work_norm_in_float32_agrees_with_float64(in_dtype, device):
    """An iteration in bf16/fp16 takes its Frobenius norm accumulated in float32 (one read, no
    float64 copy): within 1e-5 of the float64 norm (2e-6 seen), the NS result within bf16 rounding."""
    from matbal.kernels.orthogonalize.newton_schulz import _fro, _fro_half_work

    x = torch.randn(3, 64, 256, generator=torch.Generator().manual_seed(0)).to(device, in_dtype)
    got, f64 = _fro_half_work(x), _fro(x)
    assert got is not None and got[0].dtype == torch.float32
    f32 = got[0]
    torch.testing.assert_close(f32.double(), f64, rtol=1e-5, atol=0)
    o = newton_schulz(x, dtype=torch.bfloat16).float()
    ref = newton_schulz(x.double()).float()
    assert float((o - ref).norm() / ref.norm()) < 2e-2
    # a single matrix takes the scalar path (one host read): same map as in the batch
    one = newton_schulz(x[1], dtype=torch.bfloat16).float()
    assert float((one - o[1]).norm() / o[1].norm()) < 2e-2
    assert float((one - ref[1]).norm() / ref[1].norm()) < 2e-2


@pytest.mark.parametrize("device", _DEVICES)
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scale", [1e-25, 1e-20, 1e25])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_half_work_norm_falls_back_to_float64_when_float32_cannot_hold_it(scale, batch, device, in_dtype):
    """Entries whose squares underflow (≲1e-19) or overflow (≳1e19) float32: the float32 norm is
    not trusted and the float64 one is used, so scaling x changes nothing (eps = 0)."""
    from matbal.kernels.orthogonalize.newton_schulz import _fro_half_work

    x = torch.randn(*batch, 16, 48, generator=torch.Generator().manual_seed(1)).to(device, in_dtype)
    x = x * 2.0 ** -20 if scale > 1 else x * 2.0 ** 20  # powers of 2: x·2^k·scale is exact in bf16
    big = (x.float() * scale).to(in_dtype)
    assert _fro_half_work(big) is None
    o = newton_schulz(big, dtype=torch.bfloat16, eps=0.0)
    ref = newton_schulz(big.double(), eps=0.0)
    assert float((o.double() - ref).norm() / ref.norm()) < 2e-2  # bf16 NS, scale recovered
    for bad in (float("nan"), float("inf")):  # NaN/Inf still refused on this path
        y = x.clone()
        y[..., 3, 5] = bad
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            newton_schulz(y, dtype=torch.bfloat16)
    z = torch.zeros(*batch, 16, 48, device=device)
    assert _fro_half_work(z) is None and not newton_schulz(z, dtype=torch.bfloat16).any()


@pytest.mark.parametrize("device", _DEVICES)
@pytest.mark.parametrize("shape", [(32, 96), (96, 32), (40, 40)])
@pytest.mark.parametrize("dtype,work", [(torch.float32, None), (torch.float32, torch.bfloat16),
                                        (torch.float64, None), (torch.bfloat16, torch.bfloat16)])
def test_list_input_is_the_stacked_batch(monkeypatch, device, shape, dtype, work):
    """A list of same-shape matrices gives what their stack gives: through the direct path
    (threshold lowered so these small matrices take it) to the rounding of the norm."""
    ns_mod = importlib.import_module("matbal.kernels.orthogonalize.newton_schulz")

    monkeypatch.setattr(ns_mod, "LIST_MIN_BYTES", 0)
    gen = torch.Generator().manual_seed(3)
    mats = [torch.randn(*shape, generator=gen).to(device, dtype) for _ in range(3)]
    seen = []
    keep = ns_mod._normalize_list
    monkeypatch.setattr(ns_mod, "_normalize_list", lambda *a: seen.append(1) or keep(*a))
    got = newton_schulz(mats, dtype=work)
    ref = newton_schulz(torch.stack(mats), dtype=work)
    assert seen and got.shape == ref.shape == (3, *shape) and got.dtype == dtype
    tol = {torch.float64: 1e-12, torch.float32: 1e-5}.get(work or dtype, 2e-2)
    assert float((got.double() - ref.double()).abs().max()) <= tol
    # a zero or non-finite matrix in the list: the general path (zeros stay zeros; NaN raises)
    mats[1] = torch.zeros_like(mats[1])
    got = newton_schulz(mats, dtype=work)
    single = newton_schulz(mats[0], dtype=work)
    assert not got[1].any() and float((got[0].double() - single.double()).abs().max()) <= tol
    mats[1][0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        newton_schulz(mats, dtype=work)


def test_list_input_small_or_other_normalization_is_stacked_and_bad_lists_are_refused():
    mats = [torch.randn(8, 12, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    for norm in ("frobenius", "schatten8"):
        assert torch.equal(newton_schulz(mats, normalize=norm),
                           newton_schulz(torch.stack(mats), normalize=norm))
    assert newton_schulz(tuple(mats[:1])).shape == (1, 8, 12)
    with pytest.raises(ValueError, match="empty list"):
        newton_schulz([])
    with pytest.raises(ValueError, match=r"x\[1\] is \(12, 8\)"):
        newton_schulz([mats[0], mats[1].T])
    with pytest.raises(ValueError, match=r"x\[1\] is \(8, 12\) torch.float64"):
        newton_schulz([mats[0], mats[1].double()])
    with pytest.raises(ValueError, match=r"x\[0\] must be a matrix"):
        newton_schulz([torch.randn(2, 8, 12)])
    with pytest.raises(TypeError, match=r"x\[1\] must be a torch.Tensor"):
        newton_schulz([mats[0], [[1.0]]])
