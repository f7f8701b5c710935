"""One call for your recorded matrices: the designed schedule for their measured ``x_min``.

Newton–Schulz starts from ``X₀ = X/‖X‖_F``, whose singular values lie in ``[x_min, 1]`` with
``x_min = σ_min/‖X‖_F = 1/(κ√sr)`` (MuonEq, arXiv 2603.28254). :func:`schedule_for` measures
``x_min`` on every matrix you give it (or takes the values you measured), takes ``lo`` = a chosen
quantile of them, and returns :func:`~matbal.kernels.orthogonalize.design.design_schedule`\\ ``(lo,
hi, steps)``: the greedy minimax schedule of Polar Express (arXiv 2505.16932, Thm. 4.1) / CANS
(arXiv 2506.10935) for ``[lo, hi]``. With ``max_error`` it returns the *shortest* designed
schedule (at most ``steps`` steps) whose worst-case error ``max_{x∈[lo,hi]} |1 − P(x)|`` is at most
``max_error`` — e.g. Muon NS5's own worst-case error on the same interval, to save steps at equal
accuracy.

The guarantee is for singular values in ``[lo, hi]`` only: with ``quantile = q > 0`` about a
fraction ``q`` of the matrices have ``x_min < lo``, and their smallest singular values are mapped
below ``1 − worst_error`` (how far below: :func:`~matbal.kernels.orthogonalize.analysis.
predict_singular_values`). ``quantile = 0`` (the default) designs for the smallest measured value.

Example
-------
>>> import torch
>>> import matbal
>>> from matbal.kernels.orthogonalize import schedule_for, worst_case_error
>>> g = torch.Generator().manual_seed(0)
>>> momenta = [torch.randn(64, 256, generator=g) for _ in range(4)]
>>> s = schedule_for(momenta, steps=5)                 # designed for the smallest x_min
>>> s.lo == min(float(matbal.x_min(m.double())) for m in momenta)
True
>>> muon5 = worst_case_error("muon", 5, s.lo)
>>> short = schedule_for(momenta, steps=8, max_error=muon5)  # fewest steps as good as Muon NS5
>>> short.default_steps < 5, short.worst_error <= muon5
(True, True)
>>> schedule_for([1e-4], steps=5).worst_error < worst_case_error("muon", 5, 1e-4)
True
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import numpy as np
import torch

from .._checks import check_positive, matrix_view
from ..metrics import x_min as _x_min
from .design import DesignedSchedule, design_schedule

__all__ = ["schedule_for", "measured_x_min"]


def _is_matrix(v: Any) -> bool:
    return isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim >= 2


def _model_matrices(x: Any) -> list[torch.Tensor] | None:
    """A state dict's / module's floating tensors with ``ndim ≥ 2`` in the optimizers' matrix view
    (``None`` when ``x`` is neither)."""
    if isinstance(x, torch.nn.Module):
        x = dict(x.named_parameters())
    if not isinstance(x, Mapping):
        return None
    return [matrix_view(t.detach()) for t in x.values()
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.ndim >= 2]


def measured_x_min(x: Any) -> np.ndarray:
    """The ``x_min`` values :func:`schedule_for` designs for, as a 1-D float64 array.

    ``x``: a tensor or array of shape ``(..., m, n)`` (one matrix or a batch), a sequence of such
    matrices (shapes may differ), ``x_min`` values (a number or a 1-D sequence/array, each in
    ``(0, 1]``), or a model: an ``nn.Module`` (its parameters) or a state dict (name → tensor),
    whose floating tensors with ``ndim ≥ 2`` are read as the matrices matbal's optimizers
    orthogonalize (:func:`~matbal.kernels._checks.matrix_view`: ``(shape[0], ∏ shape[1:])``, as
    :func:`matbal.analyze_model` does); 1-D parameters (biases, norm gains) and integer buffers are
    skipped. Embeddings count like any matrix: leave them out of the mapping if your optimizer
    sends them to AdamW. All-zero matrices are left out: Newton–Schulz maps them to zero whatever
    the schedule, so they constrain nothing.

    >>> import torch
    >>> measured_x_min([torch.eye(4), torch.zeros(3, 3)]).tolist()
    [0.5]
    >>> measured_x_min(torch.nn.Linear(4, 4, bias=True)).shape    # the weight; the bias is skipped
    (1,)
    """
    model = _model_matrices(x)
    if model is not None:
        if not model:
            raise ValueError("x (a model or state dict) holds no floating tensor with ndim >= 2")
        x = model
    items = list(x) if isinstance(x, (list, tuple)) else [x]
    if not items:
        raise ValueError("x must hold at least one matrix or x_min value, got an empty sequence")
    mats = [_is_matrix(v) for v in items]
    if any(mats) and not all(mats):
        raise TypeError("x must be matrices or x_min values, not a mix of both")
    if all(mats):
        vals = []
        for v in items:
            t = torch.as_tensor(v)
            if t.is_complex() or not t.is_floating_point():
                raise TypeError(f"x must hold real floating matrices, got dtype {t.dtype}")
            if t.numel() == 0:
                raise ValueError(f"x holds an empty matrix of shape {tuple(t.shape)}")
            if not bool(torch.isfinite(t).all()):
                raise ValueError("x holds a matrix with NaN or Inf entries")
            t = t.reshape(-1, *t.shape[-2:])
            keep = t.flatten(1).abs().amax(dim=1) > 0
            if not bool(keep.any()):
                continue
            vals.append(np.asarray(_x_min(t[keep].double()), dtype=np.float64).reshape(-1))
        if not vals:
            raise ValueError("x holds no nonzero matrix: there is no x_min to design for")
        return np.concatenate(vals)
    if not all(isinstance(v, (int, float, np.number, np.ndarray, torch.Tensor, list, tuple))
               for v in items):
        raise TypeError("x must be matrices, x_min values, a state dict or an nn.Module, got "
                        f"{type(x).__name__} of {sorted({type(v).__name__ for v in items})}")
    arr = np.asarray(items[0] if len(items) == 1 and np.ndim(items[0]) == 1 else items)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or arr.ndim > 1:
        raise TypeError(f"x must be matrices or a 1-D sequence of x_min values, got "
                        f"{type(x).__name__} of shape {arr.shape} and dtype {arr.dtype}")
    arr = arr.astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"x_min values must be finite and in [0, 1], got {arr.tolist()}")
    return arr


def schedule_for(
    x: Any,
    *,
    steps: int = 5,
    quantile: float = 0.0,
    max_error: float | None = None,
    hi: float = 1.0,
    degree: int = 5,
    safety: float = 1.0,
    normalization_margin: float = 1.0,
    cushion: float = 0.0,
) -> DesignedSchedule:
    """The designed schedule for the measured ``x_min`` of ``x`` (module docstring).

    Parameters
    ----------
    x : matrices, x_min values or a model
        See :func:`measured_x_min`: tensors/arrays ``(..., m, n)``, a list of them, numbers, an
        ``nn.Module`` or a state dict (its matrices with ``ndim ≥ 2``).
    steps : int
        The schedule's number of steps; with ``max_error``, the most steps allowed.
    quantile : float in [0, 1]
        ``lo = `` this quantile of the measured values (``numpy.quantile(..., method="lower")``:
        always one of the measured values); 0 = the smallest.
    max_error : float > 0, optional
        Return the shortest schedule (1 … ``steps`` steps) with ``worst_error ≤ max_error`` on
        ``[lo, hi]``; ``ValueError`` if even ``steps`` steps do not reach it.
    hi, degree, safety, normalization_margin, cushion
        Passed to :func:`~matbal.kernels.orthogonalize.design.design_schedule`.

    Returns
    -------
    DesignedSchedule
        ``lo`` is the measured quantile, ``worst_error`` the exact worst-case error on
        ``[lo, hi]`` (from the predictor); pass it as ``newton_schulz(x, schedule=s)``.
    """
    if isinstance(quantile, bool) or not isinstance(quantile, numbers.Real) or not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be a number in [0, 1], got {quantile!r}")
    check_positive(steps, "steps", integer=True)
    if max_error is not None:
        check_positive(max_error, "max_error")
    vals = measured_x_min(x)
    lo = float(np.quantile(vals, quantile, method="lower"))
    if lo <= 0:
        raise ValueError(f"the {quantile:g} quantile of x's x_min is 0 (a rank-deficient matrix): no "
                         "polynomial maps 0 to 1; use a larger quantile or drop that matrix")
    opts = dict(hi=hi, degree=degree, safety=safety, normalization_margin=normalization_margin,
                cushion=cushion)
    if max_error is None:
        return design_schedule(lo, steps=int(steps), **opts)
    best = math.inf
    for k in range(1, int(steps) + 1):
        s = design_schedule(lo, steps=k, **opts)
        if s.worst_error <= max_error:
            return s
        best = s.worst_error
    raise ValueError(f"no designed schedule of at most steps={steps} reaches max_error="
                     f"{max_error:g} on [{lo:g}, {hi:g}] (best: {best:.4g} at {steps} steps)")
