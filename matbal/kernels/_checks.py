"""Input validation and the numpy/torch edge shared by every kernel.

Conventions (see docs/architecture.md): kernels take torch tensors of shape ``(..., m, n)`` where leading
dimensions are a batch; numpy arrays in give numpy arrays out; bad input is refused with an error
that names the argument and what was wrong; reductions accumulate in float32 or better.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, TypeVar

import numpy as np
import torch

__all__ = [
    "ConvergenceWarning",
    "as_matrix",
    "accum_dtype",
    "numpy_io",
    "check_positive",
    "check_choice",
    "matrix_view",
    "check_bool",
    "check_dtype",
    "FLOAT_DTYPES",
]

#: the floating dtypes the kernels compute with (float8 and numpy's longdouble are refused)
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_NP_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

F = TypeVar("F", bound=Callable[..., Any])


class ConvergenceWarning(UserWarning):
    """An iterative kernel stopped at ``max_iter`` before reaching its tolerance."""


def accum_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype for reductions: float32 for half precisions, the dtype itself otherwise.

    >>> accum_dtype(torch.bfloat16)
    torch.float32
    """
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def matrix_view(t: torch.Tensor) -> torch.Tensor:
    """The matrix a parameter (or its gradient) of ``ndim ≥ 2`` is seen as by matbal's optimizers
    and :func:`matbal.analyze_model`: ``(shape[0], ∏ shape[1:])``. A conv weight ``(out, in, *k)``
    is one matrix ``(out, in·∏k)`` (never a batch of ``out`` matrices); a view when the storage
    allows it (``reshape``), never a modification.

    >>> tuple(matrix_view(torch.zeros(128, 129, 3)).shape)
    (128, 387)
    """
    if not isinstance(t, torch.Tensor) or t.ndim < 2:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"t must be a tensor with at least 2 dimensions, got {shape}")
    return t.reshape(t.shape[0], -1)


def as_matrix(x: Any, name: str = "x", *, finite: bool = True, min_dims: int = 2) -> torch.Tensor:
    """Validate ``x`` as a real floating tensor of shape ``(..., m, n)`` and return it as torch.

    Refuses, with an error naming ``name``: non-tensor/non-array input, fewer than ``min_dims``
    dimensions, an empty matrix, complex or integer/bool dtypes, and (when ``finite``) NaN or Inf.
    numpy input is converted with ``torch.from_numpy`` (no copy).
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=_np_dtype(x, name)))
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if x.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {x.dtype}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype} (convert with .float())")
    check_dtype(x, name)
    if x.ndim < min_dims:
        raise ValueError(
            f"{name} must have at least {min_dims} dimensions (..., m, n), got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return x


def check_dtype(x: torch.Tensor, name: str = "x") -> None:
    """Refuse a floating dtype the kernels cannot compute with (float8 variants, …), naming
    ``name``; only :data:`FLOAT_DTYPES` pass."""
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} has dtype {x.dtype}, which the kernels cannot compute with; use one of "
            f"float16, bfloat16, float32, float64 (e.g. {name}.float())"
        )


def _np_dtype(x: np.ndarray, name: str) -> np.dtype:
    """The numpy dtype of ``x`` if torch computes with it (float16/32/64), else a TypeError
    naming ``name`` (complex, integer, bool, longdouble, …)."""
    if x.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {x.dtype}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{name} must have a floating dtype, got {x.dtype} (convert with .astype(float))"
        )
    if x.dtype not in _NP_FLOATS:
        raise TypeError(
            f"{name} has dtype {x.dtype}, which torch cannot compute with; use float16, float32 "
            f"or float64 (e.g. {name}.astype(np.float64))"
        )
    return x.dtype


def _to_numpy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        if obj.dtype == torch.bfloat16:
            obj = obj.float()
        return obj.detach().cpu().numpy()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: _to_numpy(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if isinstance(getattr(obj, f.name), torch.Tensor)
        }
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, tuple):
        return type(obj)(_to_numpy(o) for o in obj)
    if isinstance(obj, list):
        return [_to_numpy(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    return obj


def numpy_io(fn: F) -> F:
    """Decorator: when the first positional argument is a numpy array, convert it to torch, call
    ``fn`` and convert every tensor in the result (tensors, tuples, lists, dicts, dataclass fields)
    back to numpy. Torch input passes through untouched."""

    @functools.wraps(fn)
    def wrapper(x, *args, **kwargs):
        if isinstance(x, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=_np_dtype(x, "x")))
            return _to_numpy(fn(t, *args, **kwargs))
        return fn(x, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_positive(value: Any, name: str, *, allow_zero: bool = False, integer: bool = False) -> None:
    """Refuse a non-positive (or, with ``integer``, non-integer) hyperparameter, naming it."""
    if integer:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")


def check_bool(value: Any, name: str, *, allow_none: bool = False) -> None:
    """Refuse anything but ``True``/``False`` (and ``None`` with ``allow_none``), naming ``name``:
    a string such as ``"no"`` is truthy and would silently mean True.

    >>> check_bool("no", "warn")
    Traceback (most recent call last):
    ...
    TypeError: warn must be True or False, got 'no'
    """
    if value is None and allow_none:
        return
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True, False or None" if allow_none else "True or False"
        raise TypeError(f"{name} must be {allowed}, got {value!r}")


def check_choice(value: Any, name: str, choices) -> None:
    """Refuse a value outside ``choices``, listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(str, choices))}, got {value!r}")
