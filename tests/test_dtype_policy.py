"""The measured NS dtype policy (matbal.kernels.dtype_policy): decisions, overrides, visibility."""
import pytest
import torch

from matbal.kernels import dtype_policy as dp
from matbal.optim import muon


def test_cuda_is_bf16_and_unknown_devices_keep_the_kernel_default():
    assert dp.auto_ns_dtype("cuda") is torch.bfloat16
    assert dp.auto_ns_dtype("meta") is None


def test_cpu_without_native_bf16_stays_float32(monkeypatch):
    dp.auto_ns_dtype.cache_clear()
    monkeypatch.setattr(dp, "cpu_bf16_flags", lambda: ())
    monkeypatch.setattr(dp, "bf16_matmul_speedup", lambda: pytest.fail("must not benchmark"))
    rep = dp.dtype_policy_report("cpu")
    assert rep["choice"] == "float32" and "emulated" in rep["reason"]
    assert dp.auto_ns_dtype("cpu") is None
    dp.auto_ns_dtype.cache_clear()  # the next test sees this machine again


@pytest.mark.parametrize("speedup, choice", [(7.7, "bfloat16"), (1.49, "float32"), (0.01, "float32")])
def test_cpu_with_native_bf16_follows_the_measurement(monkeypatch, speedup, choice):
    monkeypatch.setattr(dp, "cpu_bf16_flags", lambda: ("amx_bf16",))
    monkeypatch.setattr(dp, "bf16_matmul_speedup", lambda: speedup)
    rep = dp.dtype_policy_report("cpu")
    assert rep["choice"] == choice and rep["speedup"] == round(speedup, 2)
    assert rep["native_bf16_flags"] == ["amx_bf16"]


@pytest.mark.parametrize("value, choice", [("float32", "float32"), ("BF16", "bfloat16"),
                                           ("bfloat16", "bfloat16")])
def test_environment_override(monkeypatch, value, choice):
    monkeypatch.setenv(dp.ENV_VAR, value)
    monkeypatch.setattr(dp, "bf16_matmul_speedup", lambda: pytest.fail("must not benchmark"))
    assert dp.dtype_policy_report("cpu")["choice"] == choice
    assert dp.dtype_policy_report("cuda")["choice"] == choice


def test_bad_override_names_the_variable(monkeypatch):
    monkeypatch.setenv(dp.ENV_VAR, "fp8")
    dp.auto_ns_dtype.cache_clear()
    with pytest.raises(ValueError, match="MATBAL_NS_DTYPE"):
        dp.auto_ns_dtype("cpu")


def test_speedup_is_measured_once_and_positive():
    dp.bf16_matmul_speedup.cache_clear()
    s = dp.bf16_matmul_speedup(n=64, repeats=1)
    assert s > 0 and dp.bf16_matmul_speedup(n=64, repeats=1) == s
    assert dp.bf16_matmul_speedup.cache_info().hits >= 1


def test_preset_repr_shows_the_choice(monkeypatch):
    monkeypatch.setenv(dp.ENV_VAR, "bfloat16")
    opt = muon([torch.nn.Parameter(torch.randn(4, 6))], lr=0.01)
    assert "auto_dtype_on_cpu='bfloat16'" in repr(opt.param_groups[0]["chain"])
    monkeypatch.setenv(dp.ENV_VAR, "float32")
    assert "auto_dtype_on_cpu='float32'" in repr(opt.param_groups[0]["chain"])
