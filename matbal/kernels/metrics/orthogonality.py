"""Distance of a matrix to orthogonality, computed exactly from its singular values.

With the thin SVD ``X = U diag(σ) Vᵀ`` (``r = min(m, n)``) and polar factor ``polar(X) = U Vᵀ``:

- ``X − UVᵀ = U diag(σ − 1) Vᵀ``, so ``‖X − polar(X)‖_2 = max_i |σ_i − 1|`` and
  ``‖X − polar(X)‖_F = sqrt(Σ_i (σ_i − 1)²)``. By Fan–Hoffman these are also the distances to the
  *nearest* matrix with orthonormal rows/columns, so they are well defined even where the polar
  factor is not unique (rank-deficient or zero ``X``: a zero matrix is at distance 1 / ``√r``).
- On the wide side (``XXᵀ`` for ``m ≤ n``, ``XᵀX`` for ``m > n``; ``r × r``) the Gram residual has
  eigenvalues ``σ_i² − 1``: ``‖G − I‖_2 = max_i |σ_i² − 1|``, ``‖G − I‖_F = sqrt(Σ_i (σ_i² − 1)²)``.

No scale is removed: normalize ``X`` first if the question is about direction only.

Example
-------
>>> import torch
>>> from matbal.kernels.metrics import orthogonality_error
>>> e = orthogonality_error(2 * torch.eye(3))
>>> float(e.spectral), float(e.gram_spectral)
(1.0, 3.0)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import numpy_io
from .svd import _Spectrum, _spectrum

__all__ = ["OrthogonalityError", "orthogonality_error"]


@dataclass(frozen=True)
class OrthogonalityError:
    """Distances to orthogonality, float64, each of shape ``batch``.

    ``spectral = ‖X − polar(X)‖_2``, ``frobenius = ‖X − polar(X)‖_F``,
    ``gram_spectral = ‖XXᵀ − I‖_2`` and ``gram_frobenius = ‖XXᵀ − I‖_F`` on the wide side.
    """

    spectral: torch.Tensor
    frobenius: torch.Tensor
    gram_spectral: torch.Tensor
    gram_frobenius: torch.Tensor


def _norm_inf_and_2(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``max|d|`` and an overflow-safe ``‖d‖_2`` over the last axis (inf stays inf, never NaN)."""
    a = d.abs()
    mx = a.amax(-1)
    safe = torch.where((mx > 0) & torch.isfinite(mx), mx, torch.ones_like(mx))
    two = torch.linalg.vector_norm(a / safe.unsqueeze(-1), 2, dim=-1) * safe
    return mx, torch.where(torch.isfinite(mx), two, mx)


def _orthogonality_error(sp: _Spectrum) -> OrthogonalityError:
    sigma = sp.sigma
    spec, fro = _norm_inf_and_2(sigma - 1)
    gspec, gfro = _norm_inf_and_2((sigma - 1) * (sigma + 1))
    return OrthogonalityError(spec, fro, gspec, gfro)


@numpy_io
def orthogonality_error(x) -> OrthogonalityError:
    """Spectral/Frobenius distance of ``x`` to its polar factor and of its wide Gram to ``I``.

    ``x``: ``(..., m, n)``. Returns an :class:`OrthogonalityError` (fields of shape ``x.shape[:-2]``,
    float64) computed from one float64 SVD: ``max|σ_i−1|``, ``sqrt(Σ(σ_i−1)²)``, ``max|σ_i²−1|``,
    ``sqrt(Σ(σ_i²−1)²)``. See the module docstring.

    >>> import torch
    >>> float(orthogonality_error(torch.eye(4, 6)).frobenius)
    0.0
    """
    return _orthogonality_error(_spectrum(x))
