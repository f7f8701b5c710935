"""CUDA paths: kernels, optimizers, instruments and training on a GPU agree with the CPU.

Skipped where no GPU is present (CI has none). Run on a GPU machine with
``python -m pytest -p no:nbmake tests/test_cuda.py``; BENCHMARKS.md §7 records when and where it last
ran. Float32 comparisons switch TF32 off (``torch.backends.cuda.matmul.allow_tf32 = False``, torch's
default) so CPU and GPU compute the same products up to summation order; bf16 comparisons are bounded
by bf16 rounding (unit roundoff ``u = 2⁻⁸``).
"""
import dataclasses
import inspect
import math

import pytest
import torch
from torch import nn

import matbal
import matbal.synthetic as syn
from matbal.optim import PRESETS, muon

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


def _rel(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm())


# --------------------------------------------------------------------------------------------- kernels

@pytest.mark.parametrize("schedule", ["muon", "polar_express", "you", "quintic_pade"])
def test_newton_schulz_float32_on_gpu_equals_cpu(schedule):
    x = syn.prescribed_spectrum(128, 384, syn.geometric_spectrum(128, kappa=1e2), seed=0)
    cpu = matbal.newton_schulz(x, schedule=schedule, steps=5)
    gpu = matbal.newton_schulz(x.to(CUDA), schedule=schedule, steps=5)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    assert _rel(gpu, cpu) < 1e-5


def test_newton_schulz_keeps_bf16_on_gpu_and_stays_within_bf16_rounding():
    """bf16 input iterates in bf16 on CUDA (the policy); its distance to the float64 iteration is
    a few u per step, amplified by at most the schedule's slope: bounded by 10·u·steps ≈ 0.2."""
    x = syn.gaussian(256, 1024, seed=1)
    ref = matbal.newton_schulz(x.double())
    out = matbal.newton_schulz(x.to(CUDA, torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.device.type == "cuda"
    err = _rel(out, ref)
    assert err < 10 * 2.0**-8 * 5, err
    assert torch.isfinite(out.float()).all()


def test_zero_matrix_gives_zero_on_gpu_in_every_dtype():
    for dt in (torch.float32, torch.bfloat16):
        z = torch.zeros(3, 64, 96, device=CUDA, dtype=dt)
        assert torch.equal(matbal.newton_schulz(z), z)
        r = matbal.racs(torch.zeros(16, 8, device=CUDA, dtype=dt))
        assert torch.equal(r.matrix, torch.zeros_like(r.matrix))


def test_polar_on_gpu_is_exact():
    x = syn.gaussian(64, 96, seed=2).to(CUDA)
    o = matbal.polar(x)
    assert o.device.type == "cuda"
    assert _rel(o, matbal.polar(x.cpu())) < 1e-6
    assert float(matbal.orthogonality_error(o.cpu().double()).spectral) < 1e-5


@pytest.mark.parametrize("method,kw", [("racs", {"p": 2}), ("racs", {"p": 1}), ("racs", {"p": math.inf}),
                                       ("sinkhorn", {}), ("ruiz", {}), ("knight_ruiz", {}),
                                       ("rc", {}), ("aol", {})])
def test_balancing_on_gpu_equals_cpu(method, kw):
    x = syn.scale_mismatch(96, 160, row_range=(1e-2, 1e2), col_range=(1e-1, 1e1), seed=3)
    x[5] = 0.0  # a dead row is masked on both devices
    if method == "sinkhorn":
        x = x.abs()
    cpu = matbal.balance(x, method=method, **kw)
    gpu = matbal.balance(x.to(CUDA), method=method, **kw)
    assert gpu.matrix.device.type == "cuda"
    assert _rel(gpu.matrix, cpu.matrix) < 1e-4
    if getattr(cpu, "iterations", None) is not None:
        assert abs(gpu.iterations - cpu.iterations) <= 1


def test_metrics_on_gpu_equal_cpu():
    x = syn.prescribed_spectrum(64, 128, syn.geometric_spectrum(64, kappa=1e3), seed=4)
    for f in (matbal.stable_rank, matbal.condition_number, matbal.effective_rank, matbal.x_min):
        a, b = f(x), f(x.to(CUDA))
        assert math.isclose(float(a), float(b), rel_tol=1e-4), f.__name__
    qc, qg = matbal.quick_stats(x), matbal.quick_stats(x.to(CUDA))
    for f in dataclasses.fields(qc):
        a, b = getattr(qc, f.name), getattr(qg, f.name)
        if torch.is_tensor(a) and a.is_floating_point():
            assert torch.allclose(a.double().cpu(), b.double().cpu(), rtol=1e-3), f.name


# ------------------------------------------------------------------------------------------ optimizers

def _mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(24, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 4))


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_steps_the_same_on_gpu_and_cpu(name):
    """Three steps with identical gradients: float32 parameters end within float32 rounding of the
    CPU run (RACS/NS are smooth maps; TF32 off; NS in float32 on both: ``ns_dtype=None``)."""
    cpu_m, gpu_m = _mlp(0), _mlp(0).to(CUDA)
    ctor = PRESETS[name]
    kw = {"ns_dtype": None} if "ns_dtype" in inspect.signature(ctor).parameters else {}
    opt_c, opt_g = ctor(cpu_m, lr=1e-2, **kw), ctor(gpu_m, lr=1e-2, **kw)
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        for pc, pg in zip(cpu_m.parameters(), gpu_m.parameters()):
            grad = torch.randn(pc.shape, generator=g)
            pc.grad, pg.grad = grad.clone(), grad.to(CUDA)
        opt_c.step()
        opt_g.step()
    for (n, pc), pg in zip(cpu_m.named_parameters(), gpu_m.parameters()):
        assert pg.device.type == "cuda"
        assert torch.allclose(pg.cpu(), pc, rtol=1e-4, atol=1e-5), (name, n)
    sd = opt_g.state_dict()
    opt_g.load_state_dict(sd)  # round trip with CUDA state
    for st in opt_g.state.values():
        assert all(v.device.type == "cuda" for v in st.values() if torch.is_tensor(v) and v.dim() > 0)


# ----------------------------------------------------------------------------------------- instruments

def test_store_records_gpu_tensors_bit_exactly(tmp_path):
    from matbal.instruments import MatrixStore

    t = torch.randn(32, 48, device=CUDA)
    b = t.to(torch.bfloat16)
    with MatrixStore(tmp_path / "s") as store:
        i, j = store.put_many("r", 0, [("w", "grad", t), ("w", "bf16", b)])
        assert torch.equal(store.get(i), t.cpu())
        assert torch.equal(store.get(j), b.cpu())


def test_training_on_gpu_with_probes_and_recording(tmp_path):
    from matbal.instruments import MatrixStore, read_rows
    from matbal.train import TrainConfig, train
    from matbal.train.rundir import read_metrics

    cfg = TrainConfig(n_layer=2, n_head=2, n_embd=64, block_size=64, batch_size=16, eval_batches=2,
                      quiet=True, warmup_steps=2, lr=1e-2, optimizer="muoneq-r", steps=30, eval_every=15,
                      device="cuda", probe_every=10, record_every=15, record_kinds="grad,momentum",
                      out_dir=str(tmp_path), run_name="gpu")
    res = train(cfg)
    metrics = read_metrics(res.run_dir)
    assert res.final_val_loss < metrics[0]["val_loss"] - 1.0
    assert next(res.model.parameters()).device.type == "cuda"
    rows = read_rows(res.run_dir / "probes.jsonl")
    assert {r["step"] for r in rows} == {1, 10, 20, 30}
    assert all(math.isfinite(r["value"]) for r in rows if isinstance(r.get("value"), float))
    with MatrixStore(res.run_dir / "store", mode="r") as store:
        recs = store.query(run="gpu")
        assert {r.step for r in recs} == {1, 15, 30} and {r.kind for r in recs} == {"grad", "momentum"}
        assert all(torch.isfinite(store.get(r)).all() for r in recs)


def test_muon_default_on_gpu_iterates_in_bf16_like_torch_muon():
    """``ns_dtype="auto"`` (the default) is bf16 on CUDA: bit-identical to ``ns_dtype=bf16``."""
    torch.manual_seed(1)
    ws = [nn.Parameter(torch.randn(64, 160, device=CUDA)) for _ in range(2)]
    ws[1].data.copy_(ws[0].data)
    a, b = muon([ws[0]], lr=0.02), muon([ws[1]], lr=0.02, ns_dtype=torch.bfloat16)
    for _ in range(3):
        g = torch.randn(64, 160, device=CUDA)
        ws[0].grad, ws[1].grad = g.clone(), g.clone()
        a.step()
        b.step()
    assert torch.equal(ws[0], ws[1])
