"""Post-normalizations of an update: NorMuon's row second moment, and RMS targets.

- **NorMuon** (arXiv 2510.05491; official code github zichongli5/NorMuon ``normuon_update``):
  ``v ← β₂v + (1−β₂)·mean_j(O_ij²)`` (one entry per row), ``Ô = O/(√v + 10⁻¹⁰)``, then
  ``rescale="frobenius"``: ``Ô·‖O‖_F/(‖Ô‖_F + 10⁻¹⁰)`` (official code) or ``rescale="rms"``:
  ``Ô·target/RMS(Ô)`` (the paper's RMS-0.2 target).
- **RMS target**: ``U ↦ target·U/RMS(U)`` with ``RMS(U) = ‖U‖_F/√(mn)``; a zero update stays zero.
"""
from __future__ import annotations

import functools

import torch

from ...kernels._checks import check_choice, check_positive
from .base import StepContext, Transform

__all__ = ["NorMuonNormalize", "NormalizeRMS", "normuon_normalize", "normalize_rms"]


def _rms(u: torch.Tensor) -> torch.Tensor:
    """RMS of each matrix of ``(..., m, n)``, shaped ``(..., 1, 1)`` (a batch: one per block),
    accumulated in float32 at least (float64 updates keep float64)."""
    work = torch.promote_types(u.dtype, torch.float32)
    return (torch.linalg.vector_norm(u, dim=(-2, -1), keepdim=True, dtype=work)
            / (u.shape[-2] * u.shape[-1]) ** 0.5)


@functools.lru_cache(maxsize=None)
def _eps_in(eps: float, dtype: torch.dtype) -> float:
    """``eps`` rounded to ``dtype``: what ``r > eps`` compares a ``dtype`` tensor against."""
    return float(torch.tensor(eps, dtype=dtype))


class NormalizeRMS(Transform):
    """``U ↦ target·U/RMS(U)``; zero (or sub-``eps`` RMS) updates are returned unchanged."""

    name = "normalize_rms"

    def per_parameter(self, updates) -> bool:  # each update on its own
        return True

    def __init__(self, target: float = 0.2, *, eps: float = 1e-12):
        check_positive(target, "target")
        check_positive(eps, "eps")
        self.target, self.eps = float(target), float(eps)

    def apply(self, updates, states, ctx: StepContext):
        out = []
        for u in updates:
            u2 = u if u.ndim >= 2 else u.reshape(1, -1)
            r = _rms(u2)
            if u.ndim == 2 and u.device.type == "cpu" and r.dtype == u.dtype:
                # one matrix on the CPU, where a host read is free: the branch of the ``where``
                # below taken in Python, with its bits (``target / r`` is ``r.reciprocal() *
                # target``, the comparison is in r's dtype); four small operations fewer
                if float(r) > _eps_in(self.eps, r.dtype):
                    out.append(u * (self.target / r))
                else:
                    out.append(u.clone())  # ``u * 1.0``
                continue
            scale = torch.where(r > self.eps, self.target / r.clamp_min(self.eps), 1.0)
            out.append(u * scale.to(u.dtype).reshape(scale.shape if u.ndim >= 2 else ()))
        return out


class NorMuonNormalize(Transform):
    """NorMuon's neuron-wise (row) second-moment normalization of an orthogonalized update."""

    name = "normuon_normalize"

    def per_parameter(self, updates) -> bool:  # each update on its own
        return True

    def __init__(self, beta2: float = 0.95, *, eps: float = 1e-10, rescale: str = "frobenius",
                 target: float = 0.2):
        if isinstance(beta2, bool) or not isinstance(beta2, (int, float)) or not 0 <= beta2 < 1:
            raise ValueError(f"beta2 must be in [0, 1), got {beta2!r}")
        check_positive(eps, "eps")
        check_choice(rescale, "rescale", ("frobenius", "rms"))
        check_positive(target, "target")
        self.beta2, self.eps, self.rescale, self.target = float(beta2), eps, rescale, target

    def init(self, update):
        return {"v": torch.zeros(*update.shape[:-1], 1, dtype=torch.float32,
                                 device=update.device)}

    def apply(self, updates, states, ctx: StepContext):
        if not ctx.matrix:
            raise ValueError("normuon_normalize needs matrix parameters")
        out = []
        for u, st in zip(updates, states):
            o = u.float()
            v = st["v"]
            v.lerp_(o.square().mean(dim=-1, keepdim=True), 1 - self.beta2)
            o_hat = o / (v.sqrt() + self.eps)
            if self.rescale == "frobenius":
                fro = (-2, -1)  # per matrix (a fused-QKV batch: per block)
                o_hat = o_hat * (torch.linalg.vector_norm(o, dim=fro, keepdim=True)
                                 / (torch.linalg.vector_norm(o_hat, dim=fro, keepdim=True)
                                    + self.eps))
            else:
                r = _rms(o_hat)
                o_hat = o_hat * torch.where(r > 0, self.target / r.clamp_min(1e-30), 0.0)
            out.append(o_hat.to(u.dtype))
        return out


def normuon_normalize(beta2: float = 0.95, **kwargs) -> NorMuonNormalize:
    """NorMuon post-normalization (see :class:`NorMuonNormalize`)."""
    return NorMuonNormalize(beta2, **kwargs)


def normalize_rms(target: float = 0.2, **kwargs) -> NormalizeRMS:
    """RMS-target normalization (see :class:`NormalizeRMS`)."""
    return NormalizeRMS(target, **kwargs)
