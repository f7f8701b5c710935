"""Property/fuzz pass over every public kernel and metric, sampled and derandomized.

Corpus: shapes 1×1, 1×n, m×1, square, wide, tall; every float dtype (float16, bfloat16, float32,
float64); Gaussian, 1e±30-scaled, column/row scales spanning 1e±30, dead rows and columns,
inputs balanced up to a scalar (7·sign, 100·I, 0.01·orthogonal), and batches mixing extreme and
plain matrices. A matrix whose cast to the dtype is not finite (1e30 in float16) is not an input.

Each kernel call must end in exactly one of:

- a **refusal**: ``TypeError``/``ValueError``/``FloatingPointError`` whose message starts with
  the name of the matrix argument (``x``; ``b`` for ``sinkhorn_knopp``);
- a **finite result** (inf only where documented: condition numbers of singular matrices) that
  matches a float64 reference within the kernel family's tolerance for the dtype (``TOL``), and
  for the balancing kernels a returned matrix whose float64-measured residual is within ``rtol``
  (plus the rounding of a half-precision result) whenever ``converged`` is claimed;

and in every case: the input is not modified, no NaN appears silently, and a batch equals the
loop over its elements (within the same tolerance). The float64 reference is the same kernel on
the float64 copy of the (already cast) input, except where an independent formula is cheap
(row/column normalization, polar factor, imbalance).

``python tests/test_kernel_fuzz.py --totals`` runs the whole corpus and prints the totals
(inputs tried, refusals, correct results, failures); the test below runs a fixed sample of it.
"""
from __future__ import annotations

import dataclasses
import math
import random
import sys
import warnings

import numpy as np
import torch

import matbal
from matbal.kernels.metrics import row_col_norms

F64 = torch.float64
DTYPES = (torch.float16, torch.bfloat16, torch.float32, F64)
SHAPES = ((1, 1), (1, 6), (6, 1), (4, 4), (5, 8), (9, 4))
SEED = 20261203
SAMPLE = 0.35  # fraction of (kernel, input) pairs the test runs; --totals runs all

# Tolerances (normwise relative, per batch element) by kernel family and dtype. "exact": the
# kernel computes in float64 whatever the input (metrics, polar), so only the reference's own
# rounding separates the two. "one-shot": a few roundings in the working dtype, then the cast to
# the input dtype (half precisions: 2^-8 / 2^-11 relative per entry). "balance": as one-shot plus
# the iteration's rtol = 1e-6 (two converged solutions differ by a small multiple of it).
# "ns": 5 Newton-Schulz steps in the input's working dtype (bf16 GEMMs for bf16 input).
TOL = {
    "exact": {torch.float16: 1e-9, torch.bfloat16: 1e-9, torch.float32: 1e-9, F64: 1e-9},
    "one-shot": {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 1e-6, F64: 1e-12},
    "balance": {torch.float16: 4e-3, torch.bfloat16: 3e-2, torch.float32: 1e-4, F64: 1e-4},
    "ns": {torch.float16: 3e-2, torch.bfloat16: 1.5e-1, torch.float32: 1e-4, F64: 1e-9},
}
RTOL = 1e-6  # the balancing kernels' default


# ---------------------------------------------------------------------------------------------
# corpus

def _families(m: int, n: int, g: torch.Generator) -> dict:
    gauss = torch.randn(m, n, generator=g, dtype=F64)
    dead = gauss.clone()
    if m > 1:
        dead[m // 2] = 0
    if n > 1:
        dead[:, 0] = 0
    sign = torch.where(torch.randn(m, n, generator=g, dtype=F64) > 0, 1.0, -1.0).to(F64)
    q, _ = torch.linalg.qr(torch.randn(max(m, n), max(m, n), generator=g, dtype=F64))
    fam = {
        "gauss": gauss,
        "1e30": 1e30 * gauss,
        "1e-30": 1e-30 * gauss,
        "cols1e±30": gauss * torch.logspace(-30, 30, n, dtype=F64),
        "rows1e±15": gauss * torch.logspace(-15, 15, m, dtype=F64)[:, None],
        "dead": dead,
        "7sign": 7 * sign,
        "0.01orth": 0.01 * q[:m, :n],
        "zero": torch.zeros(m, n, dtype=F64),
        "batch-mixed": torch.stack([gauss, 1e30 * gauss, 1e-30 * dead, 7 * sign]),
    }
    if m == n:
        fam["100eye"] = 100 * torch.eye(m, dtype=F64)
    return fam


def corpus():
    """[(label, x)] with x already in its dtype and finite."""
    g = torch.Generator().manual_seed(SEED)
    out = []
    for m, n in SHAPES:
        for fam, x64 in _families(m, n, g).items():
            for dt in DTYPES:
                x = x64.to(dt)
                if bool(torch.isfinite(x).all()):
                    out.append((f"{fam} {m}x{n} {str(dt)[6:]}", x))
    return out + refusals()


def refusals():
    """Inputs every kernel must refuse, naming the argument: NaN, Inf (every dtype), and dtypes
    the kernels do not compute with (float8, integer, complex)."""
    g = torch.Generator().manual_seed(SEED + 1)
    out = []
    for m, n in ((3, 4), (1, 1)):
        base = torch.randn(m, n, generator=g, dtype=F64)
        for dt in DTYPES:
            for bad in (math.nan, math.inf, -math.inf):
                x = base.clone()
                x[0, -1] = bad
                out.append((f"{bad} {m}x{n} {str(dt)[6:]}", x.to(dt)))
    x = torch.randn(3, 4, generator=g)
    out += [("float8_e4m3fn", x.to(torch.float8_e4m3fn)), ("float8_e5m2", x.to(torch.float8_e5m2)),
            ("int64", x.round().long()), ("complex64", x.to(torch.complex64))]
    return out


# ---------------------------------------------------------------------------------------------
# kernels: name -> (call, float64 reference, family, extra property check or None)

def _orthogonal_ref(x64):
    u, s, vh = torch.linalg.svd(x64, full_matrices=False)
    keep = s > max(x64.shape[-2:]) * torch.finfo(F64).eps * s[..., :1]
    return (u * keep.unsqueeze(-2)) @ vh


def _normalized(x64, dim, eps=1e-8):
    """x / ||x|| along dim; rows (columns) with norm <= eps * the largest are dead: zeros."""
    nrm = x64.norm(dim=dim, keepdim=True)
    live = (nrm > eps * nrm.amax(dim=-1 if dim == -2 else -2, keepdim=True)) & (nrm > 0)
    return torch.where(live, x64 / torch.where(live, nrm, 1), 0)


def _target_dev(y, p=2.0):
    y = y.double()
    m, n = y.shape[-2:]
    live_r, live_c = (y != 0).any(-1), (y != 0).any(-2)
    nl, ml = live_c.sum(-1, keepdim=True), live_r.sum(-1, keepdim=True)
    rows = torch.linalg.vector_norm(y, p, dim=-1) / nl ** (1 / p)
    cols = torch.linalg.vector_norm(y, p, dim=-2) / ml ** (1 / p)
    dr = torch.where(live_r, (rows - 1).abs(), 0).amax(-1)
    dc = torch.where(live_c, (cols - 1).abs(), 0).amax(-1)
    return torch.maximum(dr, dc)


def _claims_hold(p=2.0, *, sk=False):
    """Balancing property: ``converged`` claims a returned matrix within rtol of the targets."""

    def check(x, res):
        if not res.converged:
            return
        y = res.matrix.double()
        dev = _target_dev(y.sqrt() if sk else y, 2.0 if sk else p)  # sinkhorn: sums = norms^2
        slack = 0.0 if x.dtype in (torch.float32, F64) else 4 * torch.finfo(x.dtype).eps
        assert float(dev.amax()) <= RTOL * (2 if sk else 1) + slack, f"claimed converged, {dev}"

    return check


def _kernels():
    K = {
        "normalize_rows": (matbal.normalize_rows, lambda y: _normalized(y, -1), "one-shot", None),
        "normalize_cols": (matbal.normalize_cols, lambda y: _normalized(y, -2), "one-shot", None),
        "rc_scale": (matbal.rc_scale, None, "one-shot", None),
        "aol": (matbal.aol, None, "one-shot", None),
        "newton_schulz": (matbal.newton_schulz, None, "ns", None),
        "newton_schulz schatten8 gram": (
            lambda x: matbal.newton_schulz(x, normalize="schatten8", form="gram"), None, "ns", None),
        "newton_schulz spectral polar_express": (
            lambda x: matbal.newton_schulz(x, normalize="spectral", schedule="polar_express",
                                           steps=8), None, "ns", None),
        "polar": (matbal.polar, _orthogonal_ref, "exact", None),
        "svdvals": (matbal.svdvals, None, "exact", None),
        "frobenius_norm": (matbal.frobenius_norm, None, "exact", None),
        "stable_rank": (matbal.stable_rank, None, "exact", None),
        "condition_number": (matbal.condition_number, None, "exact", None),
        "effective_rank": (matbal.effective_rank, None, "exact", None),
        "x_min": (matbal.x_min, None, "exact", None),
        "orthogonality_error": (matbal.orthogonality_error, None, "exact", None),
        "imbalance": (matbal.imbalance, None, "one-shot", None),
        "row_col_norms": (row_col_norms, None, "one-shot", None),
        "spectrum_report": (matbal.spectrum_report, None, "one-shot", None),
        "spectral_norm_estimate": (
            lambda x: matbal.spectral_norm_estimate(x, iters=4, kind="lower"), None, "ns", None),
        "spectral_norm_upper": (
            lambda x: matbal.spectral_norm_estimate(x, iters=3, kind="upper"), None, "ns", None),
        "stable_rank_estimate": (lambda x: matbal.stable_rank_estimate(x, iters=4), None, "ns", None),
        "quick_stats": (matbal.quick_stats, None, "ns", None),
    }
    for p in (1, 2, math.inf):
        K[f"racs p={p}"] = (lambda x, p=p: matbal.racs(x, p=p, warn=False), None, "balance",
                            _claims_hold(p))
    K["racs steps=5"] = (lambda x: matbal.racs(x, steps=5), None, "balance", _claims_hold())
    K["sinkhorn_knopp"] = (  # nonnegative input: |x| where abs is defined
        lambda x: matbal.sinkhorn_knopp(x.abs() if x.dtype in DTYPES else x, warn=False), None,
        "balance", _claims_hold(sk=True))
    K["ruiz"] = (lambda x: matbal.ruiz(x, warn=False), None, "balance", _claims_hold(math.inf))
    K["knight_ruiz"] = (lambda x: matbal.knight_ruiz(x, warn=False), None, "balance", _claims_hold())
    for method in ("racs", "sinkhorn", "ruiz", "knight_ruiz"):
        K[f"balance {method}"] = (  # the iterative methods through the front door
            lambda x, m=method: matbal.balance(
                x.abs() if m == "sinkhorn" and x.dtype in DTYPES else x, method=m, warn=False),
            None, "balance", _claims_hold(sk=True) if method == "sinkhorn" else (
                _claims_hold(math.inf) if method == "ruiz" else _claims_hold()))
    for method in ("rows", "cols", "rc", "aol"):
        K[f"balance {method}"] = (lambda x, m=method: matbal.balance(x, method=m), None,
                                  "one-shot", None)
    return K


# ---------------------------------------------------------------------------------------------
# checking one call

ALLOWED_INF = {"condition_number", "spectral_norm_upper", "spectrum_report", "quick_stats",
               "stable_rank_estimate"}
SKIP_FIELDS = {"history", "iterations", "matvecs", "method", "converged", "residual"}


def _fields(out) -> dict:
    """The tensors of a result (dataclass fields, or the tensor itself)."""
    if isinstance(out, torch.Tensor):
        return {"": out}
    if dataclasses.is_dataclass(out):
        return {f.name: getattr(out, f.name) for f in dataclasses.fields(out)
                if isinstance(getattr(out, f.name), torch.Tensor) and f.name not in SKIP_FIELDS}
    if isinstance(out, tuple):
        return {str(i): t for i, t in enumerate(out)}
    raise AssertionError(f"unexpected result type {type(out).__name__}")


def _close(a: torch.Tensor, b: torch.Tensor, tol: float, what: str, absolute=False) -> None:
    a, b = a.double(), b.double()
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
    if a.dtype == torch.bool or not a.is_floating_point():
        assert torch.equal(a, b), f"{what}: {a} vs {b}"
        return
    both_inf = torch.isinf(a) & torch.isinf(b) & (a.sign() == b.sign())
    a, b = torch.where(both_inf, 0, a), torch.where(both_inf, 0, b)
    assert bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all()), f"{what}: inf mismatch"
    if a.ndim >= 1:  # normwise per leading element (a batch element, or the whole vector)
        scale = b.abs().reshape(b.shape[0], -1).amax(-1) if b.ndim >= 2 else b.abs().amax()
        err = (a - b).abs().reshape(a.shape[0], -1).amax(-1) if a.ndim >= 2 else (a - b).abs().amax()
    else:
        scale, err = b.abs(), (a - b).abs()
    if absolute:
        scale = torch.ones_like(scale)
    bad = err > tol * scale + 1e-300
    assert not bool(bad.any()), f"{what}: error {err.max():.3g} > {tol:g} x {scale.max():.3g}"


# dimensionless fields near 0 (deviations of a balanced matrix): compared absolutely
ABSOLUTE = {"row_dev", "col_dev", "row_cv", "col_cv", "residual", "imbalance_residual"}
# numerical_rank's default cut is max(m, n)·eps(x.dtype): it depends on the dtype by design
DTYPE_DEPENDENT = {"numerical_rank"}


def _match(out, ref, tol, name) -> None:
    fo, fr = _fields(out), _fields(ref)
    for k, v in fo.items():
        if k in DTYPE_DEPENDENT:
            continue
        _close(v, fr[k], tol, f"{name}.{k}" if k else name, absolute=k in ABSOLUTE)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (NaN == NaN), any dtype."""
    return torch.equal(a.flatten().clone().view(torch.uint8), b.flatten().clone().view(torch.uint8))


def check_call(name: str, x: torch.Tensor) -> str:
    """Run kernel ``name`` on ``x``; return "refused" or "correct", raise AssertionError else."""
    fn, ref_fn, fam, prop = _kernels()[name]
    keep = x.clone()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(x)
    except (TypeError, ValueError, FloatingPointError) as e:
        msg = str(e)
        assert _same(x, keep), "input mutated before the refusal"
        # the matrix argument is x (b for sinkhorn_knopp); the message starts with its name
        assert msg.startswith(("x ", "b ")), f"refusal does not name the argument: {msg}"
        return "refused"
    assert _same(x, keep), "input mutated"
    for k, v in _fields(out).items():
        if v.is_floating_point():
            assert not bool(torch.isnan(v).any()), f"silent NaN in {name}.{k}"
            if name not in ALLOWED_INF:
                assert bool(torch.isfinite(v).all()), f"inf in {name}.{k}"
    tol = TOL[fam][x.dtype]
    x64 = x.double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ref_fn(x64) if ref_fn is not None else fn(x64)
    _match(out, ref, tol, name)
    if prop is not None:
        prop(x, out)
    if x.ndim == 3:  # batch == loop
        for i in range(x.shape[0]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                one = fn(x[i])
            for k, v in _fields(one).items():
                _close(_fields(out)[k][i], v, tol, f"{name}.{k}[{i}] batch vs alone",
                       absolute=k in ABSOLUTE)
    return "correct"


def run(sample: float | None = None, verbose: bool = False) -> dict:
    """Run the corpus (a derandomized ``sample`` fraction of the (kernel, input) pairs, or all)."""
    rng = random.Random(SEED)
    totals = {"inputs": 0, "calls": 0, "refused": 0, "correct": 0, "failed": 0}
    failures = []
    inputs = corpus()
    totals["inputs"] = len(inputs)
    for name in _kernels():
        for label, x in inputs:
            if sample is not None and rng.random() > sample:
                continue
            totals["calls"] += 1
            try:
                totals[check_call(name, x)] += 1
            except AssertionError as e:
                totals["failed"] += 1
                failures.append(f"{name} on {label}: {str(e)[:200]}")
            except Exception as e:  # noqa: BLE001 - an unexpected exception is a failure
                totals["failed"] += 1
                failures.append(f"{name} on {label}: {type(e).__name__}: {str(e)[:200]}")
    totals["failures"] = failures
    if verbose:
        for f in failures:
            print("FAIL", f)
    return totals


def test_kernel_fuzz_sample():
    totals = run(SAMPLE)
    assert totals["calls"] > 500
    assert not totals["failures"], "\n".join(totals["failures"][:20])
    assert totals["correct"] + totals["refused"] == totals["calls"]


if __name__ == "__main__":
    if "--totals" in sys.argv:
        t = run(None, verbose="-v" in sys.argv)
        print(f"inputs {t['inputs']} (matrix x dtype), kernel calls {t['calls']}: "
              f"refused (clear error naming the argument) {t['refused']}, correct {t['correct']}, "
              f"failed {t['failed']}")
        sys.exit(1 if t["failed"] else 0)
