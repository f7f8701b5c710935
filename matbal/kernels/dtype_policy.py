"""Which dtype should an optimizer's Newton–Schulz iterate in *on this device*? Decided by measurement.

Muon-style NS is a chain of GEMMs; its speed is the matmul rate of the working dtype. On CUDA bf16 is
the fast dtype everywhere (tensor cores), as torch.optim.Muon and KellerJordan/Muon assume. On CPUs
it depends on the silicon: without native bf16 (AVX2 machines) a bf16 GEMM is emulated and was
measured ~100× *slower* than float32; with AVX512-BF16 or AMX it is several times *faster* (this
project measured 1.35 TFLOP/s bf16 vs 0.17 TFLOP/s float32 on one core of an AMX Xeon at 1024²).
So ``"auto"`` cannot be a constant. :func:`auto_ns_dtype` answers per device:

- ``cuda`` → ``torch.bfloat16``;
- ``cpu`` → ``torch.bfloat16`` when the CPU advertises native bf16 (``avx512_bf16`` or ``amx_bf16``
  in its flags) **and** a one-time micro-benchmark (two square GEMMs per dtype at ``n = 384``,
  a few ms, cached for the process) finds bf16 at least :data:`MIN_SPEEDUP` × faster than float32;
  otherwise ``None`` (float32, the kernel's own policy);
- anything else → ``None``.

The environment variable ``MATBAL_NS_DTYPE`` overrides the decision for every ``"auto"`` in the
process: ``float32`` (accuracy first), ``bfloat16`` (speed first) or ``auto``.
:func:`dtype_policy_report` says what was decided and why (presets show it in their ``repr``; the
training loop writes it to the run directory's ``env.json``).

**Accuracy cost** (stated, not hidden): Muon's NS5 in bf16 differs from float64 NS5 by ~1e-2 in
relative Frobenius norm — the level torch.optim.Muon, KellerJordan/Muon and every other peer run
at; float32 NS5 by ~1e-6. Experiments whose claims are about NS accuracy pin
``ns_dtype=torch.float32`` (or float64) explicitly.

>>> auto_ns_dtype("cuda")
torch.bfloat16
>>> auto_ns_dtype("cpu") in (None, torch.bfloat16)
True
>>> sorted(dtype_policy_report("cpu"))
['choice', 'cpu_capability', 'device', 'native_bf16_flags', 'reason', 'speedup']
"""
from __future__ import annotations

import functools
import os
import time

import torch

__all__ = ["auto_ns_dtype", "dtype_policy_report", "bf16_matmul_speedup", "cpu_bf16_flags",
           "MIN_SPEEDUP", "ENV_VAR"]

#: bf16 must beat float32 by this factor in the micro-benchmark before ``"auto"`` picks it on a CPU.
MIN_SPEEDUP = 1.5
#: process-wide override of every ``"auto"`` NS dtype: ``float32``, ``bfloat16`` or ``auto``.
ENV_VAR = "MATBAL_NS_DTYPE"
_OVERRIDES = {"float32": None, "fp32": None, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
              "auto": "auto", "": "auto"}
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The native-bf16 CPU flags this machine advertises (``/proc/cpuinfo`` on Linux; empty
    elsewhere, where the micro-benchmark alone cannot turn bf16 on)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(f for f in _BF16_FLAGS if f in flags)
    except OSError:
        pass
    return ()


def _rate(dtype: torch.dtype, n: int, repeats: int) -> float:
    a = torch.randn(n, n, dtype=torch.float32).to(dtype)
    b = torch.randn(n, n, dtype=torch.float32).to(dtype)
    a @ b  # warm-up (kernel selection, packing buffers)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


@functools.lru_cache(maxsize=None)
def bf16_matmul_speedup(n: int = 384, repeats: int = 5) -> float:
    """Measured ``rate(bf16) / rate(float32)`` of an ``n × n`` CPU matmul (best of ``repeats``,
    interleaved so both dtypes see the same machine load); cached per process."""
    f32 = bf16 = 0.0
    for _ in range(2):
        f32 = max(f32, _rate(torch.float32, n, repeats))
        bf16 = max(bf16, _rate(torch.bfloat16, n, repeats))
    return bf16 / f32


def _override():
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return "auto"
    key = raw.strip().lower()
    if key not in _OVERRIDES:
        raise ValueError(f"environment variable {ENV_VAR} must be one of "
                         f"{sorted(k for k in _OVERRIDES if k)}, got {raw!r}")
    return _OVERRIDES[key]


def dtype_policy_report(device: str | torch.device = "cpu") -> dict:
    """What :func:`auto_ns_dtype` decides on ``device`` and why (JSON-friendly values)."""
    dev = torch.device(device)
    report = {"device": str(dev), "cpu_capability": None, "native_bf16_flags": [],
              "speedup": None, "choice": "float32", "reason": ""}
    forced = _override()
    if forced != "auto":
        report["choice"] = "bfloat16" if forced is torch.bfloat16 else "float32"
        report["reason"] = f"{ENV_VAR}={os.environ.get(ENV_VAR)}"
        return report
    if dev.type == "cuda":
        report.update(choice="bfloat16", reason="CUDA: bf16 tensor-core GEMMs")
        return report
    if dev.type != "cpu":
        report["reason"] = f"{dev.type}: no measured policy; the kernel's default"
        return report
    report["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    flags = cpu_bf16_flags()
    report["native_bf16_flags"] = list(flags)
    if not flags:
        report["reason"] = "CPU without native bf16 (no avx512_bf16/amx_bf16): bf16 is emulated"
        return report
    speedup = bf16_matmul_speedup()
    report["speedup"] = round(speedup, 2)
    if speedup >= MIN_SPEEDUP:
        report.update(choice="bfloat16",
                      reason=f"native bf16 ({'+'.join(flags)}), measured {speedup:.1f}x float32")
    else:
        report["reason"] = (f"native bf16 flags but measured only {speedup:.2f}x float32 "
                            f"(< {MIN_SPEEDUP})")
    return report


def auto_ns_dtype(device: str | torch.device) -> torch.dtype | None:
    """The NS working dtype ``"auto"`` means on ``device``: ``torch.bfloat16`` or ``None`` (keep
    float32/float64, see :func:`matbal.newton_schulz`). See the module docstring for the rule.
    Called on every optimizer step: the decision is cached per device type and override value
    (``auto_ns_dtype.cache_clear()`` forgets it)."""
    return _decide(torch.device(device).type, os.environ.get(ENV_VAR))


@functools.lru_cache(maxsize=None)
def _decide(device_type: str, override: str | None) -> torch.dtype | None:
    return torch.bfloat16 if dtype_policy_report(device_type)["choice"] == "bfloat16" else None


auto_ns_dtype.cache_clear = _decide.cache_clear
