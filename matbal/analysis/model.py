"""One call over a model's matrices: :func:`analyze_model` (what WeightWatcher's ``analyze()`` is for
heavy-tail fits, here for the quantities that decide Newton–Schulz and balancing).

Every parameter with ``ndim ≥ 2`` is read through :func:`~matbal.kernels._checks.matrix_view`, the
view matbal's optimizers orthogonalize: ``(shape[0], ∏ shape[1:])`` — a conv weight
``(128, 129, 3)`` is one ``128×387`` matrix, not a batch of 128 matrices ``129×3``. 1-D parameters
(biases, norm gains) and non-floating tensors are skipped and listed in ``skipped``.

Per matrix ``X`` (``m×n``, ``r = min(m, n)``, singular values ``σ_1 ≥ … ≥ σ_r``), one float64 SVD
(same-shape matrices stacked into batched ``torch.linalg.svdvals`` calls) gives every column:

- ``stable_rank = ‖X‖_F²/σ_1²``, ``effective_rank``, ``condition_number κ = σ_1/σ_r``,
  ``x_min = σ_r/‖X‖_F = 1/(κ√sr)`` (definitions: :mod:`matbal.kernels.metrics`);
- ``numerical_rank`` and ``at_floor``, with the Weyl bound of the storage rounding as tolerance:
  rounding every entry of ``X`` to its dtype (relative accuracy ``eps``) moves every singular value
  by at most ``eps·‖X‖_F``, so ``numerical_rank = #{i : σ_i > rtol·σ_1}`` with
  ``rtol = eps(dtype)·‖X‖_F/σ_1 = eps·√sr`` (the ``rtol`` column; :func:`matbal.numerical_rank`
  uses this rule for float16/bfloat16 and the stricter ``max(m, n)·eps`` of ``numpy.linalg.
  matrix_rank`` otherwise, which calls a 384×384 float32 Gaussian with κ = 1e5 rank-deficient), and
  ``at_floor = σ_r ≤ rtol·σ_1`` (``numerical_rank < r``). Then σ_r is within the rounding of the
  stored entries, and κ and x_min describe that rounding rather than the layer: a float32 rank-1
  matrix reports κ between ~1e9 and inf and x_min ≤ ~1e-9 (9×8: κ = 2e9; 64×128: 2.4e11; 384×384:
  inf) with ``at_floor = True``. The values are kept (not hidden, not clipped); read them as
  "κ ≳ 1/rtol, x_min below resolution";
- ``ns_error_<schedule>_<k>``: the spectral error ``max_i |1 − P_k(σ_i/‖σ‖₂)| =
  ‖NS_k(X) − polar(X)‖₂`` of ``k`` Newton–Schulz steps, predicted exactly from σ
  (:func:`matbal.predict_singular_values`, Frobenius normalization);
- ``row_cv``, ``col_cv``, ``imbalance``: the row/column 2-norm dispersion (:func:`matbal.imbalance`;
  ``imbalance`` is its ``residual``).

With ``balancings=("none", "R", "C", "RC", "RACS")`` every matrix gets one row per balancing (labels
and methods of :data:`matbal.analysis.BALANCINGS`), the same columns computed on the balanced matrix.

Embeddings and output heads are matrices like any other and are analyzed (their ``route`` column
says that the optimizers send them to AdamW); ``exclude=("*embed*",)`` leaves them out. Their
storage view is ``(vocab, d)``: σ, κ, sr and NS errors do not depend on the orientation, the
row/column imbalance columns swap. Tied weights (one tensor under two names) are analyzed once,
under the first name.

Speed: a synthetic BERT-shaped float32 state dict with 22.7 M parameters (6 layers, hidden 384, FFN
1536, a 30522×384 word embedding; 40 matrices in 5 shape groups) took 1.8 s on one CPU thread at
best and 4–5 s while the machine's 2 shared cores carried a load average of 6–7
(``python -m benchmarks.analyze_model``, Xeon); about half of it is the embedding's SVD
(``exclude=["*embeddings*"]``: 0.9 s at best).

Example
-------
>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Conv1d(4, 8, 3), nn.Flatten(), nn.Linear(8 * 6, 5))
>>> res = analyze_model(net)
>>> [(r["name"], r["m"], r["n"]) for r in res.rows]
[('0.weight', 8, 12), ('2.weight', 5, 48)]
>>> res.skipped
{'0.bias': 'ndim < 2', '2.bias': 'ndim < 2'}
"""
from __future__ import annotations

import csv
import fnmatch
import math
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ..kernels._checks import matrix_view
from ..kernels.metrics import imbalance
from ..kernels.metrics.ranks import (
    _condition_number,
    _effective_rank,
    _numerical_rank,
    _stable_rank,
    _x_min,
)
from ..kernels.metrics.svd import _spectrum
from ..kernels.orthogonalize import get_schedule, predict_singular_values
from .equilibration import BALANCINGS, balance_label

__all__ = ["ModelAnalysis", "analyze_model", "load_weights", "model_figure", "CHUNK_BYTES"]

#: the float64 bytes one batched SVD call may stack (larger groups are split)
CHUNK_BYTES = 1 << 28

_CHECKPOINT_KEYS = ("model", "state_dict")


@dataclass(frozen=True)
class ModelAnalysis:
    """The result of :func:`analyze_model`.

    ``rows``: one flat dict per matrix × balancing (columns in the module docstring, plus ``name``,
    ``balancing``, ``shape`` (storage shape, e.g. ``"128x129x3"``), ``m``, ``n``, ``dtype``,
    ``numel``, ``module`` (module type, ``""`` for a state dict) and ``route`` (``"matrix"`` /
    ``"adamw"`` as :func:`matbal.optim.routing.label_params` labels it, ``""`` for a state dict or
    a frozen parameter)); ``spectra``: name → the unbalanced view's singular values (float64
    ndarray, descending); ``skipped``: name → why it was not analyzed.
    """

    rows: list[dict]
    spectra: dict[str, np.ndarray] = field(repr=False)
    skipped: dict[str, str]

    def to_csv(self, path) -> Path:
        """Write ``rows`` as CSV (header = the columns of the first row) and return the path."""
        path = Path(path)
        if not self.rows:
            raise ValueError("no rows to write (the model has no matrix parameters)")
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(self.rows[0]))
            w.writeheader()
            w.writerows(self.rows)
        return path

    def table(self, *, balancing: str | None = None) -> str:
        """A fixed-width text table of the rows of one balancing (default: the first analyzed, i.e.
        ``"none"`` unless left out); ``*`` marks ``at_floor``."""
        balancing = _first_label(self, balancing)
        ns_cols = [k for k in (self.rows[0] if self.rows else {}) if k.startswith("ns_error_")]
        head = ["name", "shape", "dtype", "stable_rank", "kappa", "x_min", "rank/r", "imbalance"]
        head += [c[len("ns_error_"):] for c in ns_cols]
        lines = []
        for r in self.rows:
            if r["balancing"] != balancing:
                continue
            star = "*" if r["at_floor"] else ""
            lines.append([r["name"], r["shape"], r["dtype"].replace("torch.", ""),
                          f"{r['stable_rank']:.3g}", f"{r['condition_number']:.3g}{star}",
                          f"{r['x_min']:.3g}{star}", f"{r['numerical_rank']}/{min(r['m'], r['n'])}",
                          f"{r['imbalance']:.3g}"] + [f"{r[c]:.3g}" for c in ns_cols])
        widths = [max(len(h), *(len(x[i]) for x in lines)) if lines else len(h)
                  for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
        out = [fmt.format(*head)] + [fmt.format(*x) for x in lines]
        if any(r["at_floor"] for r in self.rows if r["balancing"] == balancing):
            out.append("* sigma_min at the rounding floor of the dtype: kappa is a lower bound, "
                       "x_min below resolution")
        return "\n".join(out)

    def figure(self, **kwargs):
        """:func:`model_figure` of this analysis."""
        return model_figure(self, **kwargs)


def _first_label(analysis: ModelAnalysis, balancing: str | None) -> str:
    if balancing is not None:
        return balancing
    return analysis.rows[0]["balancing"] if analysis.rows else "none"


def load_weights(path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, never unpickled: ``.safetensors`` through
    ``safetensors.torch.load_file``; anything else through ``torch.load(..., weights_only=True)``
    (a state dict, or a checkpoint dict holding one under ``"model"`` or ``"state_dict"``)."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"source: no such file {str(path)!r}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an arbitrary pickle, a corrupt file, not a torch file at all
        raise ValueError(f"source: {str(path)!r} is neither .safetensors nor a torch checkpoint "
                         f"that loads with weights_only=True ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"source: {str(path)!r} holds a {type(obj).__name__}, not a state dict")
    return _state_dict_of(obj, f"source {str(path)!r}")


def _state_dict_of(obj: Mapping, where: str) -> Mapping:
    if any(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for key in _CHECKPOINT_KEYS:
        if isinstance(obj.get(key), Mapping):
            return _state_dict_of(obj[key], where)
    raise ValueError(f"{where} holds no tensors (nor a state dict under {list(_CHECKPOINT_KEYS)})")


def _named_tensors(source) -> tuple[list[tuple[str, torch.Tensor, str, str]], dict[str, str]]:
    """``[(name, tensor, module type, route)]`` and ``{name: why skipped}``, tied tensors once."""
    if isinstance(source, nn.Module):
        from ..optim.routing import label_params

        with warnings.catch_warnings():  # routing advice is for optimizers, not for a read-out
            warnings.simplefilter("ignore")
            routes = label_params(source)
        owner = {f"{mn}.{pn}" if mn else pn: type(mod).__name__
                 for mn, mod in source.named_modules() for pn, _ in mod.named_parameters(recurse=False)}
        items = [(n, p, owner.get(n, ""), str(routes.get(n, ""))) for n, p in source.named_parameters()]
    elif isinstance(source, (str, os.PathLike)):
        items = [(n, t, "", "") for n, t in load_weights(source).items()]
    elif isinstance(source, Mapping):
        items = [(str(n), t, "", "") for n, t in _state_dict_of(source, "source").items()]
    else:
        raise TypeError("source must be an nn.Module, a state dict (name -> tensor) or the path of a "
                        f".safetensors / torch checkpoint file, got {type(source).__name__}")
    kept, skipped, seen = [], {}, {}
    for name, t, mod, route in items:
        if not isinstance(t, torch.Tensor):
            skipped[name] = f"not a tensor ({type(t).__name__})"
        elif not t.is_floating_point():
            skipped[name] = f"dtype {t.dtype}"
        elif t.ndim < 2:
            skipped[name] = "ndim < 2"
        elif t.numel() == 0:
            skipped[name] = "empty"
        else:
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
            if t.device.type != "meta" and key in seen:
                skipped[name] = f"tied to {seen[key]}"
                continue
            seen[key] = name
            kept.append((name, t, mod, route))
    return kept, skipped


def _schedules(schedules) -> list[tuple[Any, int, str]]:
    out = []
    for item in schedules:
        sched, steps = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
        s = get_schedule(sched)
        k = s.resolve_steps(steps)
        out.append((s, k, f"ns_error_{s.name}_{k}"))
    return out


def _metrics(stack: torch.Tensor, scheds) -> tuple[list[dict], np.ndarray]:
    """Columns for each matrix of a ``(k, m, n)`` stack from one batched float64 SVD, and σ.

    A wide stack goes to the SVD transposed (same σ; LAPACK is 3–4× faster on the tall layout:
    6×384×1536 float64, one thread, 1.6 s against 0.4 s)."""
    sp = _spectrum(stack.mT if stack.shape[-2] < stack.shape[-1] else stack)
    s1 = sp.s[..., 0]
    rtol = torch.finfo(stack.dtype).eps * sp.fro / torch.where(s1 > 0, s1, torch.ones_like(s1))
    nrank = _numerical_rank(sp, rtol)
    cols = {
        "spectral_norm": sp.sigma[..., 0],
        "frobenius_norm": sp.fro * sp.scale,
        "stable_rank": _stable_rank(sp),
        "effective_rank": _effective_rank(sp),
        "condition_number": _condition_number(sp, None),
        "x_min": _x_min(sp),
        "numerical_rank": nrank,
        "at_floor": nrank < min(sp.m, sp.n),
        "rtol": rtol,
    }
    imb = imbalance(stack)
    cols.update(row_cv=imb.row_cv, col_cv=imb.col_cv, imbalance=imb.residual)
    sigma = sp.sigma.cpu()
    for s, k, col in scheds:
        pred = predict_singular_values(sigma, schedule=s, steps=k)
        cols[col] = (1 - pred).abs().amax(-1)
    lists = {c: v.tolist() for c, v in cols.items()}
    rows = [{c: lists[c][i] for c in cols} for i in range(stack.shape[0])]
    return rows, sigma.numpy()


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def analyze_model(
    source,
    *,
    schedules: Iterable = (("muon", 5),),
    balancings: Iterable[str] = ("none",),
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    device: torch.device | str | None = None,
) -> ModelAnalysis:
    """Spectral metrics of every matrix of a model, through the optimizers' matrix view.

    Parameters
    ----------
    source : nn.Module, state dict, or path
        A module (its ``named_parameters()``), a mapping name → tensor, or the path of a
        ``.safetensors`` file or of a torch checkpoint (loaded with ``weights_only=True``; a
        checkpoint dict may hold the state dict under ``"model"`` or ``"state_dict"``).
        Never modified.
    schedules : iterable of schedule or ``(schedule, steps)``
        Newton–Schulz schedules whose error is predicted (one ``ns_error_<name>_<k>`` column
        each); a bare schedule takes its default step count. Default: Muon's 5 steps.
    balancings : iterable of str
        Labels of :data:`matbal.analysis.BALANCINGS` (``"none"``, ``"R"``, ``"C"``, ``"RC"``,
        ``"RACS"``): one row per matrix and label, the metrics of the balanced matrix.
    include, exclude : iterables of glob patterns over parameter names
        Keep names matching some ``include`` pattern (default all), then drop those matching an
        ``exclude`` pattern (listed in ``skipped`` as ``"excluded"``).
    device : optional
        Where the SVDs run; default each tensor's own device.

    Returns
    -------
    :class:`ModelAnalysis` (rows → ``to_csv``, ``table()``, ``figure()``). Columns: see the module
    docstring. Every ``(name, balancing)`` appears once, in parameter order, then label order.

    Example
    -------
    >>> import torch
    >>> sd = {"w": torch.ones(4, 6), "b": torch.zeros(4)}   # a float32 rank-1 matrix
    >>> r = analyze_model(sd).rows[0]
    >>> r["numerical_rank"], r["at_floor"], round(r["stable_rank"], 12)
    (1, True, 1.0)
    """
    scheds = _schedules(schedules)
    labels = tuple(balancings)
    unknown = [b for b in labels if b not in BALANCINGS]
    if unknown or not labels:
        raise ValueError(f"balancings must be a non-empty selection of {list(BALANCINGS)}, got "
                         f"{list(labels)}")
    if isinstance(include, str) or isinstance(exclude, str):
        raise TypeError("include/exclude must be iterables of glob patterns, not one string")
    include = None if include is None else tuple(include)
    exclude = tuple(exclude)
    items, skipped = _named_tensors(source)
    mats = []
    for name, t, mod, route in items:
        if (include is not None and not _matches(name, include)) or _matches(name, exclude):
            skipped[name] = "excluded"
            continue
        v = matrix_view(t.detach())
        if device is not None:
            v = v.to(device)
        mats.append((name, t, mod, route, v))
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (*_, v) in enumerate(mats):
        groups[(tuple(v.shape), v.dtype, v.device)].append(i)
    found: dict[tuple[int, str], dict] = {}
    spectra: dict[str, np.ndarray] = {}
    for (shape, _, _), idx in groups.items():
        per = max(1, CHUNK_BYTES // (8 * shape[0] * shape[1]))
        for start in range(0, len(idx), per):
            chunk = idx[start:start + per]
            stack = torch.stack([mats[i][4] for i in chunk])
            for label in labels:
                try:  # the kernels refuse NaN/Inf; name the parameter(s)
                    rows, sigma = _metrics(balance_label(stack, label), scheds)
                except ValueError:
                    bad = [mats[i][0] for i in chunk if not bool(torch.isfinite(mats[i][4]).all())]
                    if bad:
                        raise ValueError(f"source: parameter(s) {bad} contain NaN or Inf") from None
                    raise
                for j, i in enumerate(chunk):
                    found[(i, label)] = rows[j]
                    if label == "none":
                        spectra[mats[i][0]] = sigma[j]
    out = []
    for i, (name, t, mod, route, v) in enumerate(mats):
        for label in labels:
            row = {"name": name, "balancing": label, "shape": "x".join(map(str, t.shape)),
                   "m": v.shape[0], "n": v.shape[1], "dtype": str(t.dtype), "numel": t.numel(),
                   "module": mod, "route": route}
            row.update(found[(i, label)])
            out.append(row)
    return ModelAnalysis(out, spectra, skipped)


def model_figure(analysis: ModelAnalysis, *, balancing: str | None = None, max_labels: int = 40):
    """A matplotlib ``Figure`` (made without pyplot; ``fig.savefig`` writes PNG/PDF): per-layer
    bars of stable rank, κ and x_min (log axes; bars whose σ_min sits at the dtype's rounding
    floor are hatched red), and the spectra — every layer's ``σ_i/σ_1`` against ``i/r`` and the
    pooled empirical spectral density of ``log10(λ/λ_max)``, ``λ = σ²`` (WeightWatcher's ESD view).
    Singular values at or below the rounding floor (``σ_i ≤ rtol·σ_1``) are rounding, not spectrum:
    they are left out of the spectra (counted in the title); a flagged bar stops at the resolution
    bound (the measured value stays in the rows).

    >>> import torch
    >>> fig = analyze_model({"a": torch.eye(4), "b": torch.ones(3, 5)}).figure()
    >>> len(fig.axes)
    5
    """
    from matplotlib.figure import Figure

    balancing = _first_label(analysis, balancing)
    rows = [r for r in analysis.rows if r["balancing"] == balancing]
    if not rows:
        raise ValueError(f"balancing: no rows labelled {balancing!r}")
    fig = Figure(figsize=(max(9.0, 0.22 * len(rows) + 4), 7.5))
    grid = fig.add_gridspec(2, 6)
    bars = [fig.add_subplot(grid[0, 2 * i:2 * i + 2]) for i in range(3)]
    x = np.arange(len(rows))
    flagged = np.array([r["at_floor"] for r in rows])
    # a flagged value is the rounding, not the layer: its bar stops at the resolution bound
    # (κ ≥ 1/rtol, x_min ≤ rtol·σ₁/‖X‖_F), hatched red; the measured value stays in the rows
    bound = {"stable_rank": lambda r: r["stable_rank"],
             "condition_number": lambda r: 1.0 / r["rtol"] if r["rtol"] > 0 else math.inf,
             "x_min": lambda r: r["rtol"] * r["spectral_norm"] / r["frobenius_norm"]
             if r["frobenius_norm"] > 0 else 0.0}
    for ax, (col, title) in zip(bars, (("stable_rank", "stable rank ‖X‖²_F/σ₁²"),
                                      ("condition_number", "κ = σ₁/σ_r"),
                                      ("x_min", "x_min = σ_r/‖X‖_F"))):
        vals = np.array([bound[col](r) if r["at_floor"] else r[col] for r in rows], dtype=float)
        ok = np.isfinite(vals) & (vals > 0)
        ax.bar(x[ok & ~flagged], vals[ok & ~flagged], color="C0")
        if (ok & flagged).any():
            ax.bar(x[ok & flagged], vals[ok & flagged], color="C3", hatch="//",
                   label="σ_min at dtype rounding floor" + ("" if col == "stable_rank"
                                                           else " (bar: resolution bound)"))
            ax.legend(fontsize=6)
        ax.set_yscale("log")
        dropped = int((~ok).sum())
        ax.set_title(title + (f"\n({dropped} inf/0 not shown)" if dropped else ""), fontsize=8)
        if len(rows) <= max_labels:
            ax.set_xticks(x)
            ax.set_xticklabels([r["name"] for r in rows], rotation=90, fontsize=5)
        else:
            ax.set_xlabel("layer (parameter order)", fontsize=7)
        ax.tick_params(labelsize=6)
    scree, esd = fig.add_subplot(grid[1, :3]), fig.add_subplot(grid[1, 3:])
    hidden, logs = 0, []
    for k, r in enumerate(rows):
        s = analysis.spectra.get(r["name"])
        if s is None or s[0] <= 0:
            continue
        keep = s > r["rtol"] * s[0]  # resolved by the data (numerical_rank of them)
        hidden += int((~keep).sum())
        t = np.arange(1, len(s) + 1) / len(s)
        scree.plot(t[keep], s[keep] / s[0], lw=0.8, color=_cmap(k / max(1, len(rows) - 1)))
        logs.append(2 * np.log10(s[keep] / s[0]))
    scree.set_yscale("log")
    scree.set_xlabel("i / r", fontsize=7)
    scree.set_title("spectra σ_i/σ₁ (colour: layer order)"
                    + (f"\n{hidden} σ at/below the rounding floor not shown" if hidden else ""),
                    fontsize=8)
    if logs:
        esd.hist(np.concatenate(logs), bins=80, density=True, color="C2")
    esd.set_yscale("log")
    esd.set_xlabel("log10(λ/λ_max), λ = σ²", fontsize=7)
    esd.set_title("empirical spectral density, all layers", fontsize=8)
    for ax in (scree, esd):
        ax.tick_params(labelsize=6)
    n_floor = int(flagged.sum())
    fig.suptitle(f"{len(rows)} matrices (balancing: {balancing})"
                 + (f"; {n_floor} with σ_min at the rounding floor" if n_floor else ""), fontsize=10)
    fig.tight_layout()
    return fig


def _cmap(t: float):
    import matplotlib

    return matplotlib.colormaps["viridis"](t)
