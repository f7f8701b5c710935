"""Batching only where it pays: the stacking table is data, the transforms follow it, and the
result does not depend on whether matrices were stacked."""
import importlib
import math

import pytest
import torch

from matbal.optim.transforms import StepContext, balance, orthogonalize
from matbal.optim.transforms import _batching as B

balance_mod = importlib.import_module("matbal.optim.transforms.balance")
ortho_mod = importlib.import_module("matbal.optim.transforms.orthogonalize")

KERNELS = {"ns", "ns_bf16", "balance", "scale"}


def _ctx(mats):
    names = [f"m{i}" for i in range(len(mats))]
    return StepContext(params=mats, steps=[1] * len(mats), names=names, group={"lr": 1.0},
                       matrix=True)


def _mats(k, m, n, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(m, n, generator=g, dtype=dtype) for _ in range(k)]


def test_table_is_data_and_stack_pays_reads_it():
    assert {k for k, _ in B.STACK_UP_TO} <= KERNELS
    for (kernel, device), limit in B.STACK_UP_TO.items():
        assert limit >= 0
        if device != "cpu":
            continue
        assert not B.stack_pays(kernel, torch.zeros(int(limit) + 1, 4 * int(limit) + 4))
        if limit >= 1:
            assert B.stack_pays(kernel, torch.zeros(int(limit), 4 * int(limit)))
            assert B.stack_pays(kernel, torch.zeros(3, 4 * int(limit), int(limit)))  # tall, batch
    # kernels and devices not in the table: always stack (today's behaviour)
    assert B.stack_pays("polar", torch.zeros(4096, 4096))
    assert B.stack_pays("scale", torch.zeros(4096, 4096, device="meta"))


def test_table_changes_are_followed(monkeypatch):
    monkeypatch.setitem(B.STACK_UP_TO, ("scale", "cpu"), math.inf)
    assert B.stack_pays("scale", torch.zeros(512, 512))
    monkeypatch.setitem(B.STACK_UP_TO, ("scale", "cpu"), 0)
    assert not B.stack_pays("scale", torch.zeros(1, 1))


def _recorder(monkeypatch, module, name):
    """Record the batch size of each call to ``module.name`` (or ``module[name]``: a table)."""
    calls = []
    table = isinstance(module, dict)
    real = module[name] if table else getattr(module, name)

    def rec(x, *a, **k):
        calls.append(len(x) if isinstance(x, list) else (x.shape[0] if x.ndim == 3 else 1))
        return real(x, *a, **k)

    if table:
        monkeypatch.setitem(module, name, rec)
    else:
        monkeypatch.setattr(module, name, rec)
    return calls


@pytest.mark.parametrize("dtype, width, stacked", [
    (torch.float32, B.STACK_UP_TO[("ns", "cpu")], True),
    (torch.float32, B.STACK_UP_TO[("ns", "cpu")] + 8, False),
    (torch.bfloat16, B.STACK_UP_TO[("ns", "cpu")] + 8, True),
    (torch.bfloat16, B.STACK_UP_TO[("ns_bf16", "cpu")] + 8, False),
])
def test_orthogonalize_auto_follows_the_table(monkeypatch, dtype, width, stacked):
    calls = _recorder(monkeypatch, ortho_mod, "newton_schulz")
    mats = _mats(3, width, 2 * width)
    t = orthogonalize("muon", dtype=dtype)
    assert t.batch == "auto"
    out = t.apply(mats, [{}] * 3, _ctx(mats))
    assert calls == ([3] if stacked else [1, 1, 1])
    ref = orthogonalize("muon", dtype=dtype, batch=not stacked).apply(mats, [{}] * 3, _ctx(mats))
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-2 if dtype == torch.bfloat16 else 1e-5)


def test_orthogonalize_auto_reads_the_kernel_upcast_of_bf16_input(monkeypatch):
    """dtype=None with bf16 updates on the CPU: NS iterates in float32, so the float32 row."""
    calls = _recorder(monkeypatch, ortho_mod, "newton_schulz")
    w = B.STACK_UP_TO[("ns", "cpu")] + 8
    mats = _mats(2, w, w, dtype=torch.bfloat16)
    orthogonalize("muon", dtype=None).apply(mats, [{}] * 2, _ctx(mats))
    assert calls == [1, 1]


@pytest.mark.parametrize("method, kernel", [("racs", "balance"), ("muoneq_rows", "scale"),
                                            ("muoneq_rc", "scale"), ("ruiz", "balance")])
def test_balance_auto_follows_the_table_and_equals_the_loop(monkeypatch, method, kernel):
    if method in balance_mod._MATRIX_ONLY:  # racs: its matrix-only form
        calls = _recorder(monkeypatch, balance_mod._MATRIX_ONLY, method)
    else:
        name = "muoneq_scale" if method.startswith("muoneq") else "balance_kernel"
        calls = _recorder(monkeypatch, balance_mod, name)
    opts = {"steps": 3} if method == "racs" else {}
    limit = B.STACK_UP_TO[(kernel, "cpu")]
    for width in {max(int(limit), 2), int(limit) + 8}:
        t = balance(method, **opts)  # (its constructor validates on a tiny matrix)
        calls.clear()
        mats = _mats(3, width, 2 * width, dtype=torch.float64, seed=width)
        out = t.apply(mats, [{}] * 3, _ctx(mats))
        assert calls == ([3] if width <= limit else [1, 1, 1]), width
        ref = balance(method, batch=False, **opts).apply(mats, [{}] * 3, _ctx(mats))
        for a, b in zip(out, ref):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_switch_uses_each_methods_row(monkeypatch):
    """MuonEq RC→R: both one-shot scalings, never stacked on the CPU."""
    calls = _recorder(monkeypatch, balance_mod, "muoneq_scale")
    mats = _mats(2, 8, 16)
    t = balance("muoneq_rc", switch_at=2, switch_to="muoneq_rows")
    calls.clear()
    t.apply(mats, [{}] * 2, StepContext(params=mats, steps=[1, 2], names=["a", "b"],
                                        group={"lr": 1.0}, matrix=True))
    assert calls == [1, 1]


def test_batch_argument_is_checked():
    for make in (lambda b: orthogonalize("muon", batch=b), lambda b: balance("racs", batch=b)):
        for bad in ("yes", 1, None):
            with pytest.raises(ValueError, match="batch"):
                make(bad)
