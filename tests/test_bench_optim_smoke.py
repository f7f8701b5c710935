"""bench_optim's session-6 parts run end to end on tiny sizes, and its hand-written peers compute
the presets' steps (so the benchmark compares equal work)."""
import math

import torch

from benchmarks import bench_optim as BO
from matbal.optim import muoneq, reg


def _pair(shapes, dtype=torch.float64):
    a, b = BO._params(shapes), BO._params(shapes)
    for p in a + b:
        p.data = p.data.to(dtype)
        p.grad = p.grad.to(dtype)
    return a, b


def test_hand_reg_step_is_the_reg_preset():
    shapes = [((6, 10), 2), ((10, 6), 1)]
    ours, hand = _pair(shapes)
    opt = reg(ours, lr=0.01)
    bufs = [torch.zeros_like(p) for p in hand]
    with torch.no_grad():
        for _ in range(3):
            opt.step()
            BO.hand_reg_step(hand, bufs, lr=0.01)
    for a, b in zip(ours, hand):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_hand_muoneq_r_step_is_the_muoneq_preset():
    shapes = [((6, 10), 2), ((10, 6), 1)]
    ours, hand = _pair(shapes)
    opt = muoneq(ours, lr=0.01, ns_dtype=torch.float64)
    bufs = [torch.zeros_like(p) for p in hand]
    with torch.no_grad():
        for _ in range(3):
            opt.step()
            BO.hand_muoneq_r_step(hand, bufs, dtype=torch.float64, lr=0.01)
    for a, b in zip(ours, hand):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_session6_parts_run_on_tiny_sizes():
    rows = BO.adamw_table(True, sizes=[(8, 1, 32)])
    assert {r["peer"] for r in rows} >= {"torch.optim.AdamW fused", "matbal adamw (fused kernel)",
                                         "matbal adamw (fused kernel, nonfinite='unchecked')"}
    rows = BO.batching_table(True, widths=(8,), k=2)
    assert len(rows) == 4 and all(r["stacked_over_loop"] > 0 for r in rows)
    rows = BO.hand_table(True, sizes=[(8, 1)])
    assert len(rows) == 9 and all(math.isfinite(r["x_hand"]) for r in rows)
    assert "matbal reg (policy, nonfinite='unchecked')" in {r["optimizer"] for r in rows}
    rows = BO.forms_table(True, shapes=[(8, 16)])
    assert len(rows) == 5
    svd = next(r for r in rows if r["form"].startswith("svd"))
    assert svd["err_vs_polar"] < 1e-5  # the exact polar (float32 SVD) is what it claims
