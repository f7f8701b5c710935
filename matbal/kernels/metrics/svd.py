"""Exact singular values and Frobenius norms in float64, safe for huge dynamic range.

Every spectral metric in :mod:`matbal.kernels.metrics` is a function of the singular values
``σ_1 ≥ … ≥ σ_r`` (``r = min(m, n)``) and of ``‖X‖_F``. They are computed once, here, by a float64
SVD of ``X / α`` with ``α = max_ij |x_ij|`` per batch element (so the SVD sees entries in
``[-1, 1]`` whatever the input range: 1e±30 entries neither overflow nor underflow), and ``α`` is
multiplied back only for absolute quantities. Scale-invariant ratios (κ, sr, x_min, effective rank)
are taken on the scaled values. The input is detached: these are instruments, not losses.

Example
-------
>>> import torch
>>> from matbal.kernels.metrics import svdvals, frobenius_norm
>>> x = torch.diag(torch.tensor([3.0, 1.0]))
>>> svdvals(x).tolist(), float(frobenius_norm(x)) ** 2
([3.0, 1.0], 10.000000000000002)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import as_matrix, numpy_io

__all__ = ["svdvals", "frobenius_norm"]


@dataclass(frozen=True)
class _Spectrum:
    """Scaled float64 spectrum of a batch: ``σ = s * scale``, ``‖X‖_F = fro * scale``.

    ``s``: ``(*batch, r)`` descending; ``scale``, ``fro``: ``(*batch,)``; ``m, n`` the matrix shape;
    ``dtype`` the input dtype (sets the data-accuracy tolerance of :func:`numerical_rank`).
    """

    s: torch.Tensor
    scale: torch.Tensor
    fro: torch.Tensor
    m: int
    n: int
    dtype: torch.dtype

    @property
    def sigma(self) -> torch.Tensor:
        return self.s * self.scale.unsqueeze(-1)


def _scaled64(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X / α, α)`` in float64 with ``α = max|x_ij|`` per batch element (1 for a zero matrix)."""
    x64 = x.detach().to(torch.float64)
    scale = x64.abs().amax(dim=(-2, -1))
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return x64 / safe[..., None, None], scale


def _spectrum(x: torch.Tensor, name: str = "x") -> _Spectrum:
    x = as_matrix(x, name)
    y, scale = _scaled64(x)
    s = torch.linalg.svdvals(y)
    fro = torch.linalg.vector_norm(y, 2, dim=(-2, -1))
    return _Spectrum(s, scale, fro, x.shape[-2], x.shape[-1], x.dtype)


@numpy_io
def svdvals(x) -> torch.Tensor:
    """Singular values of ``x`` in float64, descending: ``(..., m, n)`` → ``(..., min(m, n))``.

    Computed by ``torch.linalg.svdvals`` on the float64 copy scaled by its max-abs entry (see the
    module docstring), so bf16 input and entries of 1e±30 give finite, accurate values.

    >>> import torch
    >>> svdvals(torch.eye(3, 5)).tolist()
    [1.0, 1.0, 1.0]
    """
    sp = _spectrum(x)
    return sp.sigma


@numpy_io
def frobenius_norm(x) -> torch.Tensor:
    """``‖X‖_F = sqrt(Σ_ij x_ij²)`` in float64, overflow-safe (max-abs scaled): ``(..., m, n)`` → ``(...)``.

    >>> import torch
    >>> float(frobenius_norm(torch.full((2, 2), 1e30, dtype=torch.float64)))
    2e+30
    """
    x = as_matrix(x, "x")
    y, scale = _scaled64(x)
    return torch.linalg.vector_norm(y, 2, dim=(-2, -1)) * scale
