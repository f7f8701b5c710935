"""Spectral effects of equilibration: κ, stable rank, x_min and NS error before and after balancing.

For each matrix ``X`` and each balancing ``B`` (none, R, C, RC, RACS), one tidy row with the spectrum
of ``B(X)`` and how well a finite NS iteration orthogonalizes it:

- ``ns_error``: measured ``‖NS_k(B(X)) − polar(B(X))‖₂ = max_i |1 − σ_i(NS_k(B(X)))|`` (NS keeps
  the singular vectors, so the polar factor of the output is that of the input);
- ``ns_error_pred``: the same number predicted exactly from ``σ(B(X))`` by the scalar composition
  ``P_k`` (:func:`matbal.predict_singular_values`); the two agree to the NS working precision.

Example
-------
>>> import matbal.synthetic as syn
>>> rows = equilibration_rows({"g": syn.prescribed_spectrum(16, 32, [1.0] * 16)}, methods=("none", "R"))
>>> [r["balancing"] for r in rows]
['none', 'R']

References: MuonEq arXiv 2603.28254 (x_min = 1/(κ√sr)); REG arXiv 2510.03691 (RACS).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch

from ..kernels.balancing import balance
from ..kernels.metrics import spectrum_report, svdvals
from ..kernels.orthogonalize import newton_schulz, predict_singular_values

__all__ = ["BALANCINGS", "balance_label", "equilibration_rows"]

#: short label -> (method, options) for :func:`matbal.balance`; ``None`` = unbalanced.
BALANCINGS: dict[str, tuple[str, dict] | None] = {
    "none": None,
    "R": ("rows", {}),
    "C": ("cols", {}),
    "RC": ("rc", {}),
    "RACS": ("racs", {"p": 2, "max_iter": 200, "rtol": 1e-6}),
}


def balance_label(x: torch.Tensor, label: str) -> torch.Tensor:
    """``x`` balanced by the method a :data:`BALANCINGS` label names (``"none"``: ``x`` itself)."""
    if label not in BALANCINGS:
        raise ValueError(f"label must be one of {list(BALANCINGS)}, got {label!r}")
    spec = BALANCINGS[label]
    if spec is None:
        return x
    method, opts = spec
    return balance(x, method=method, **opts).matrix


def equilibration_rows(
    matrices: Mapping[str, torch.Tensor],
    *,
    methods: Iterable[str] = tuple(BALANCINGS),
    schedule="muon",
    steps: int | None = 5,
    ns_dtype: torch.dtype | None = None,
) -> list[dict]:
    """Tidy rows ``{matrix, balancing, m, n, condition_number, stable_rank, effective_rank, x_min,
    imbalance, ns_error, ns_error_pred}`` for every matrix × balancing.

    ``matrices``: name → tensor ``(m, n)``; ``methods``: labels from :data:`BALANCINGS`.
    """
    methods = tuple(methods)
    unknown = [m for m in methods if m not in BALANCINGS]
    if unknown:
        raise ValueError(f"methods must be among {list(BALANCINGS)}, got {unknown}")
    rows = []
    for name, x in matrices.items():
        for label in methods:
            xb = balance_label(x, label)
            rep = spectrum_report(xb).as_dict()
            out = newton_schulz(xb, schedule=schedule, steps=steps, dtype=ns_dtype)
            measured = float((1 - svdvals(out)).abs().max())
            pred = predict_singular_values(svdvals(xb), schedule=schedule, steps=steps)
            rows.append({
                "matrix": name,
                "balancing": label,
                "m": x.shape[-2],
                "n": x.shape[-1],
                "condition_number": rep["condition_number"],
                "stable_rank": rep["stable_rank"],
                "effective_rank": rep["effective_rank"],
                "x_min": rep["x_min"],
                "imbalance": rep["imbalance_residual"],
                "ns_error": measured,
                "ns_error_pred": float((1 - pred).abs().max()),
            })
    return rows
