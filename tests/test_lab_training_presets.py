"""The exact-polar control arms of :mod:`matbal.lab.training` (EQ-5's polar(M) and polar(R(M))):
one step equals the float64 SVD polar factor of the (row-balanced) gradient times MuonEq's scale;
and EQ-5's steps-to-target interpolation."""
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from matbal.lab import training as T

ROOT = Path(__file__).resolve().parents[1]


def _polar64(a: torch.Tensor) -> torch.Tensor:
    u, _, vh = torch.linalg.svd(a.double(), full_matrices=False)
    return u @ vh


@pytest.mark.parametrize("name,rows", [("polar-m", False), ("polar-rm", True)])
def test_exact_polar_arm_one_step_is_the_svd_polar_factor(name, rows):
    T.register_lab_presets()
    from matbal.optim import PRESETS

    torch.manual_seed(0)
    m, n = 12, 7
    w = torch.randn(m, n, dtype=torch.float64, requires_grad=True)
    w0 = w.detach().clone()
    g = torch.randn(m, n, dtype=torch.float64) * torch.logspace(-2, 1, m, dtype=torch.float64)[:, None]
    opt = PRESETS[name]({"matrix": [w]}, lr=0.1, weight_decay=0.0)
    w.grad = g.clone()
    opt.step()
    if rows:  # MuonEq's Nesterov sum momentum at step 1: U = G + 0.95·G; R(U) with ε = 1e-8
        u = 1.95 * g
        u = u / (u.pow(2).sum(1, keepdim=True) + 1e-8).sqrt()
    else:  # Muon's EMA momentum at step 1 is ∝ G, and the polar factor ignores the scale
        u = g
    expected = w0 - 0.1 * 0.2 * math.sqrt(max(m, n)) * _polar64(u)
    assert torch.allclose(w.detach(), expected, atol=1e-10, rtol=0)
    assert torch.equal(g, w.grad)  # the gradient is not mutated


def test_register_lab_presets_keeps_existing_names():
    from matbal.optim import PRESETS

    before = PRESETS["muon"]
    T.register_lab_presets()
    T.register_lab_presets()
    assert PRESETS["muon"] is before and set(T.LAB_PRESETS) <= set(PRESETS)


def test_steps_to_target_interpolates_and_reports_never():
    spec = importlib.util.spec_from_file_location("eq5", ROOT / "experiments" / "eq5_muoneq_gpt.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ms = [{"step": 0, "val_loss": 4.0}, {"step": 20, "val_loss": 3.0}, {"step": 40, "val_loss": 2.0}]
    assert mod.steps_to_target(ms, 2.75) == pytest.approx(25.0)
    assert mod.steps_to_target(ms, 4.5) == 0.0
    assert math.isnan(mod.steps_to_target(ms, 1.0))
