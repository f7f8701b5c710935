"""Matrix balancing (equilibration): scale rows and columns of ``X (..., m, n)``.

=================== ======================================================= ==================
kernel              what it does                                            returns
=================== ======================================================= ==================
normalize_rows      R(X): unit row 2-norms (MuonEq R, RMNP)                  Tensor
normalize_cols      C(X): unit column 2-norms                                Tensor
rc_scale            MuonEq one-shot RC, D_r^e X D_c^e from the same input    Tensor
aol                 AOL column scaling, spectral norm <= 1                   Tensor
racs                equal row / equal column p-norms (Sinkhorn; = SinkGD)   BalanceResult
racs_matrix         racs's matrix alone; lean fixed-steps path (optimizers)  Tensor
sinkhorn_knopp      nonnegative matrix to prescribed marginals (log-domain)  BalanceResult
ruiz                Ruiz simultaneous inf-norm equilibration                 BalanceResult
knight_ruiz         Newton–CG for the racs / Sinkhorn fixed point            BalanceResult
balance             front door: ``balance(x, method=...)``                   BalanceResult
=================== ======================================================= ==================

Shared conventions (details in ``_result.py``): torch in/torch out, numpy in/numpy out; inputs
never modified; every option keyword-only; float32 iterates in float32, float64 in float64,
bf16/fp16 in float32; zero (or sub-eps) rows/columns are *dead*: scale 0, output 0, reported in
``zero_rows``/``zero_cols``, never NaN; ``history`` holds the residual per iteration (max
relative deviation of the row/column norms from their targets, max over the batch); batched calls
equal a loop over the batch (each element freezes when it converges); ``converged=True`` holds for
the returned matrix (checked near the rounding floor, except with fixed ``steps``);
non-convergence warns :class:`~matbal.kernels._checks.ConvergenceWarning`.

Example
-------
>>> import torch
>>> from matbal.kernels.balancing import balance
>>> x = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
>>> res = balance(x, method="racs")
>>> res.converged, float(res.history[-1]) <= 1e-6
(True, True)
"""
from ._result import BalanceResult
from .aol import aol
from .balance import METHODS, balance
from .knight_ruiz import knight_ruiz
from .normalize import normalize_cols, normalize_rows
from .racs import racs, racs_matrix
from .rc import rc_scale
from .ruiz import ruiz
from .sinkhorn import sinkhorn_knopp

__all__ = [
    "BalanceResult",
    "METHODS",
    "aol",
    "balance",
    "knight_ruiz",
    "normalize_cols",
    "normalize_rows",
    "racs",
    "racs_matrix",
    "rc_scale",
    "ruiz",
    "sinkhorn_knopp",
]
