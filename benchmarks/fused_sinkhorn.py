"""Prototype fused CPU kernels for Sinkhorn on ``K = X⊙X`` — benchmark-only, not part of matbal.

They answer one question for BENCHMARKS.md §2: how much of the way from racs to the "10× POT" goal a
compiled kernel would go. Eager torch needs three passes to form ``K`` with its row and column sums
(``x*x``, ``K·1``, ``1ᵀK``) and two passes to write ``diag(r) X diag(c)`` (``x·r``, then ``·c``).
The two kernels below do each job in one pass over memory:

- ``prep(x) -> (K, K·1, 1ᵀK)``: each row is squared, written and summed once; the column sums are
  accumulated per OpenMP thread and then reduced (float32 accumulation, so the sums differ from
  MKL's ``mv`` in the last bits);
- ``scale_out(x, r, c, out)``: ``out_ij = x_ij r_i c_j``.

Built on first use with ``torch.utils.cpp_extension.load_inline`` (g++ with OpenMP, ninja; ~30 s
the first time, then cached by torch). :func:`available` says whether a build can be tried.
float32, 2-D, contiguous input only.

>>> import torch
>>> from benchmarks import fused_sinkhorn as F
>>> if F.available():  # doctest: +SKIP
...     K, rows, cols = F.prep(torch.ones(2, 3))
"""
from __future__ import annotations

import functools
import shutil

import torch

_SOURCE = r"""
#include <torch/extension.h>
#include <omp.h>
#include <vector>

std::vector<torch::Tensor> prep(torch::Tensor x) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.is_contiguous(),
              "prep: x must be a contiguous 2-D float32 tensor");
  const int64_t m = x.size(0), n = x.size(1);
  auto K = torch::empty_like(x);
  auto t = torch::empty({m}, x.options());
  auto c = torch::zeros({n}, x.options());
  const float* X = x.data_ptr<float>();
  float* k = K.data_ptr<float>();
  float* T = t.data_ptr<float>();
  float* C = c.data_ptr<float>();
  const int nt = omp_get_max_threads();
  std::vector<float> part((size_t)nt * n, 0.f);
  #pragma omp parallel
  {
    float* P = part.data() + (size_t)omp_get_thread_num() * n;
    #pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = X + i * n;
      float* ki = k + i * n;
      float s = 0.f;
      #pragma omp simd reduction(+:s)
      for (int64_t j = 0; j < n; ++j) { const float v = xi[j] * xi[j]; ki[j] = v; s += v; P[j] += v; }
      T[i] = s;
    }
  }
  for (int q = 0; q < nt; ++q) {
    const float* P = part.data() + (size_t)q * n;
    for (int64_t j = 0; j < n; ++j) C[j] += P[j];
  }
  return {K, t, c};
}

void scale_out(torch::Tensor x, torch::Tensor r, torch::Tensor c, torch::Tensor out) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.is_contiguous()
              && out.is_contiguous() && out.sizes() == x.sizes() && out.scalar_type() == torch::kFloat32
              && r.numel() == x.size(0) && c.numel() == x.size(1)
              && r.scalar_type() == torch::kFloat32 && c.scalar_type() == torch::kFloat32
              && r.is_contiguous() && c.is_contiguous(),
              "scale_out: contiguous float32 x (m, n), r (m), c (n), out (m, n)");
  const int64_t m = x.size(0), n = x.size(1);
  const float* X = x.data_ptr<float>();
  const float* R = r.data_ptr<float>();
  const float* C = c.data_ptr<float>();
  float* O = out.data_ptr<float>();
  #pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < m; ++i) {
    const float ri = R[i];
    const float* xi = X + i * n;
    float* oi = O + i * n;
    #pragma omp simd
    for (int64_t j = 0; j < n; ++j) oi[j] = xi[j] * ri * C[j];
  }
}
"""


def available() -> bool:
    """A C++ compiler and ninja are on this machine (the build can be tried)."""
    return shutil.which("g++") is not None and shutil.which("ninja") is not None


@functools.lru_cache(maxsize=1)
def _ext():
    from torch.utils.cpp_extension import load_inline

    return load_inline("matbal_bench_fused_sinkhorn", cpp_sources=_SOURCE, functions=["prep", "scale_out"],
                       extra_cflags=["-O3", "-march=native", "-fopenmp"], extra_ldflags=["-fopenmp"])


def prep(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(K, K·1, 1ᵀK)`` with ``K = x⊙x`` in one pass (module docstring)."""
    K, t, c = _ext().prep(x)
    return K, t, c


def scale_out(x: torch.Tensor, r: torch.Tensor, c: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = diag(r) x diag(c)`` in one pass; returns ``out``."""
    _ext().scale_out(x, r, c, out)
    return out


def fused_sinkhorn(x: torch.Tensor, rtol: float = 1e-6, max_iter: int = 1000):
    """``bench_balance.hand_sinkhorn`` (rows of ``K`` to n, columns to m, the same stopping test)
    with the two fused kernels around it; returns the balanced matrix ``diag(√u) x diag(√v)``
    (what racs returns) and the sweep count."""
    from benchmarks.bench_balance import hand_sinkhorn

    u, v, K, k = hand_sinkhorn(x, rtol, max_iter, prep=prep)
    return scale_out(x, u.sqrt(), v.sqrt(), K), k
