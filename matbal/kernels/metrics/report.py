"""All spectral metrics of a (batch of) matrix from one float64 SVD: :func:`spectrum_report`.

Example
-------
>>> import torch
>>> from matbal.kernels.metrics import spectrum_report
>>> rep = spectrum_report(torch.eye(3, 4))
>>> d = rep.as_dict()
>>> round(d["stable_rank"], 12), d["condition_number"], d["numerical_rank"], d["m"], d["n"]
(3.0, 1.0, 3, 3, 4)
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import torch

from .._checks import check_positive, numpy_io
from .imbalance import imbalance
from .orthogonality import _orthogonality_error
from .ranks import _condition_number, _effective_rank, _numerical_rank, _stable_rank, _x_min
from .svd import _spectrum

__all__ = ["SpectrumReport", "spectrum_report"]


@dataclass(frozen=True)
class SpectrumReport:
    """Every spectral metric of ``X`` (tensor fields of shape ``batch``; float64 except the int64
    counts), plus the matrix shape ``m, n``. Definitions: :mod:`.ranks` (``stable_rank``,
    ``condition_number``, ``numerical_rank``, ``effective_rank``, ``x_min``), :mod:`.orthogonality`
    (``polar_error_*``, ``gram_error_*``), :mod:`.imbalance` (``imbalance_residual``, ``row_cv``,
    ``col_cv``, ``zero_rows``, ``zero_cols``; p = 2)."""

    stable_rank: torch.Tensor
    condition_number: torch.Tensor
    numerical_rank: torch.Tensor
    effective_rank: torch.Tensor
    x_min: torch.Tensor
    spectral_norm: torch.Tensor
    frobenius_norm: torch.Tensor
    polar_error_spectral: torch.Tensor
    polar_error_frobenius: torch.Tensor
    gram_error_spectral: torch.Tensor
    gram_error_frobenius: torch.Tensor
    imbalance_residual: torch.Tensor
    row_cv: torch.Tensor
    col_cv: torch.Tensor
    zero_rows: torch.Tensor
    zero_cols: torch.Tensor
    m: int
    n: int

    def _tensor_names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name not in ("m", "n")]

    def as_dict(self) -> dict:
        """Field name → Python number (unbatched input) or nested list of the batch shape."""
        out = {k: getattr(self, k).tolist() for k in self._tensor_names()}
        out.update(m=self.m, n=self.n)
        return out

    def rows(self) -> list[dict]:
        """Tidy rows: one flat dict per batch element, with its ``batch_index`` tuple (``()`` if
        unbatched) and ``m``, ``n`` — ready for ``pandas.DataFrame(report.rows())``."""
        names = self._tensor_names()
        shape = tuple(getattr(self, names[0]).shape)
        rows = []
        for idx in itertools.product(*(range(d) for d in shape)):
            row = {"batch_index": idx, "m": self.m, "n": self.n}
            row.update({k: getattr(self, k)[idx].item() for k in names})
            rows.append(row)
        return rows


@numpy_io
def spectrum_report(x, *, rtol: float | None = None) -> SpectrumReport:
    """All spectral metrics of ``x`` (``(..., m, n)``) from one float64 SVD and the row/column norms.

    ``rtol`` is passed to both ``numerical_rank`` and ``condition_number`` (``None``: each uses its
    own documented default, see :mod:`.ranks`). Every field equals the corresponding individual
    function (``stable_rank(x)``, ``orthogonality_error(x).spectral`` → ``polar_error_spectral``, ...).

    >>> import torch
    >>> r = spectrum_report(torch.randn(2, 8, 16))
    >>> r.x_min.shape, len(r.rows())
    (torch.Size([2]), 2)
    """
    if rtol is not None:
        check_positive(rtol, "rtol", allow_zero=True)
    sp = _spectrum(x)
    orth = _orthogonality_error(sp)
    imb = imbalance(x)
    return SpectrumReport(
        stable_rank=_stable_rank(sp),
        condition_number=_condition_number(sp, rtol),
        numerical_rank=_numerical_rank(sp, rtol),
        effective_rank=_effective_rank(sp),
        x_min=_x_min(sp),
        spectral_norm=sp.sigma[..., 0],
        frobenius_norm=sp.fro * sp.scale,
        polar_error_spectral=orth.spectral,
        polar_error_frobenius=orth.frobenius,
        gram_error_spectral=orth.gram_spectral,
        gram_error_frobenius=orth.gram_frobenius,
        imbalance_residual=imb.residual,
        row_cv=imb.row_cv,
        col_cv=imb.col_cv,
        zero_rows=imb.zero_rows,
        zero_cols=imb.zero_cols,
        m=sp.m,
        n=sp.n,
    )
