"""The numbers a probe computes on one matrix: cheap ones (every probed step), exact ones (one
float64 SVD, every ``exact_every`` steps), NS error measured and predicted, and the AdamW cosine.

Cheap (``(B, m, n)`` batch of same-shape matrices → one value per matrix; from
:func:`~matbal.kernels.metrics.quick_stats` and :func:`~matbal.kernels.metrics.imbalance`; cost
``2·power_iters + 1`` matrix-vector products, plus, if ``upper_iters ≥ 1``, one ``r×r`` Gram and
``upper_iters − 1`` ``r×r`` products, ``r = min(m, n)``):

- ``frobenius_norm`` ``‖X‖_F``, ``rms`` ``‖X‖_F/√(mn)`` (exact up to rounding);
- ``row_cv``, ``col_cv``, ``imbalance`` (= ``max(row_dev, col_dev)``): p = 2 row/column norm
  dispersion, exact (see :mod:`matbal.kernels.metrics.imbalance`);
- ``spectral_norm_lower ≤ ‖X‖_2 ≤ spectral_norm_upper`` and ``stable_rank_lower ≤ sr ≤
  stable_rank_upper``: guaranteed brackets. Typical width (documented in
  :mod:`matbal.kernels.metrics.estimators`, float64 256×256): ``power_iters = 10`` puts the lower
  norm −2.4 % (Gaussian) / −1.2 % (κ = 1e3) under ``σ_1``, so ``stable_rank_upper`` is ≈ +5 % /
  +2.4 % over ``sr``; ``upper_iters = 4`` (Schatten-32) puts the upper norm +4.1 % / +1.7 % over
  it; ``upper_iters = 0`` (the probes' default: O(mn) work only) uses ``min(‖X‖_F,
  √(‖X‖_1‖X‖_∞))``, a loose upper side.

Exact (float64 SVD via :func:`~matbal.kernels.metrics.spectrum_report`): ``stable_rank``,
``condition_number``, ``x_min = σ_r/‖X‖_F``, ``effective_rank``, ``spectral_norm``.

NS (for the ``ns_input`` kind, exact steps): ``ns_error = max_i |1 − σ_i(NS_k(X))|`` measured by
running :func:`~matbal.newton_schulz` with the chain's own settings, and ``ns_error_pred =
max_i |1 − P_k(σ_i/(s·ν+eps))|`` from :func:`~matbal.predict_singular_values` (exact; equal up
to the NS working precision). Ref: MuonEq arXiv 2603.28254 (x_min), docs/math.md §2.

AdamW cosine (REG-2, REG arXiv 2510.03691): ``cos(U, A) = ⟨U, A⟩/(‖U‖_F‖A‖_F)`` between the
chain's update ``U`` and the AdamW direction ``A = m̂/(√v̂ + ε)`` of a shadow Adam state fed the
same gradients (torch.optim.AdamW defaults β = (0.9, 0.999), ε = 1e-8; 0 when either is zero).

>>> import torch
>>> m = cheap_metrics(torch.eye(4)[None], power_iters=10, upper_iters=4)
>>> float(m["frobenius_norm"][0]), float(m["rms"][0])
(2.0, 0.5)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...kernels.metrics import imbalance, quick_stats, spectrum_report, svdvals
from ...kernels.orthogonalize import newton_schulz, predict_singular_values
from ...optim.transforms.orthogonalize import ns_dtype_for

__all__ = ["CHEAP_METRICS", "EXACT_METRICS", "NS_METRICS", "NSSpec", "cheap_metrics",
           "exact_metrics", "ns_metrics", "AdamShadow", "cosine"]

CHEAP_METRICS = ("frobenius_norm", "rms", "row_cv", "col_cv", "imbalance", "spectral_norm_lower",
                 "spectral_norm_upper", "stable_rank_lower", "stable_rank_upper")
EXACT_METRICS = ("stable_rank", "condition_number", "x_min", "effective_rank", "spectral_norm")
NS_METRICS = ("ns_error", "ns_error_pred")


def cheap_metrics(x: torch.Tensor, *, power_iters: int,
                  upper_iters: int) -> dict[str, torch.Tensor]:
    """Cheap metrics of a batch ``x`` ``(B, m, n)`` → ``{name: (B,) tensor}`` (module docstring)."""
    q = quick_stats(x, power_iters=power_iters, upper_iters=upper_iters)
    imb = imbalance(x)
    m, n = x.shape[-2:]
    return {
        "frobenius_norm": q.frobenius_norm,
        "rms": q.frobenius_norm / math.sqrt(m * n),
        "row_cv": imb.row_cv,
        "col_cv": imb.col_cv,
        "imbalance": imb.residual,
        "spectral_norm_lower": q.spectral_lower,
        "spectral_norm_upper": q.spectral_upper,
        "stable_rank_lower": q.stable_rank_lower,
        "stable_rank_upper": q.stable_rank_upper,
    }


def exact_metrics(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Exact metrics of ``x`` ``(B, m, n)`` from one float64 SVD (``spectrum_report``)."""
    rep = spectrum_report(x)
    return {k: getattr(rep, k) for k in EXACT_METRICS}


@dataclass(frozen=True)
class NSSpec:
    """The Newton–Schulz settings a chain's ``orthogonalize`` step uses (``hypothetical`` when the
    chain has none and a default schedule is assumed)."""

    schedule: object = "muon"
    steps: int | None = 5
    normalize: str = "frobenius"
    eps: float = 1e-7
    dtype: torch.dtype | str | None = None
    hypothetical: bool = False
    form: str = "standard"
    restart_every: int | None = 3

    @classmethod
    def from_transform(cls, t) -> "NSSpec | None":
        """Settings of an ``Orthogonalize`` transform (``None`` for the exact polar variant)."""
        if t.exact:
            return None
        return cls(t.schedule, t.steps, t.normalize, t.eps, t.dtype, form=t.form,
                   restart_every=t.restart_every)


def ns_metrics(x: torch.Tensor, spec: NSSpec) -> dict[str, torch.Tensor]:
    """``ns_error`` (measured) and ``ns_error_pred`` (from the spectrum) of ``x`` ``(B, m, n)``."""
    out = newton_schulz(x, schedule=spec.schedule, steps=spec.steps, normalize=spec.normalize,
                        eps=spec.eps, dtype=ns_dtype_for(spec.dtype, x.device), form=spec.form,
                        restart_every=spec.restart_every)
    res = {"ns_error": (1 - svdvals(out)).abs().amax(-1)}
    if spec.normalize != "spectral":  # depends on singular vectors: no spectrum-only predictor
        pred = predict_singular_values(svdvals(x), schedule=spec.schedule, steps=spec.steps,
                                       normalize=spec.normalize, eps=spec.eps)
        res["ns_error_pred"] = (1 - pred).abs().amax(-1)
    return res


def cosine(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``⟨u, a⟩/(‖u‖‖a‖)`` accumulated in float64, as a 0-d tensor on ``u``'s device (no host
    sync: the probes read all of a step's numbers in one transfer); 0 when either is zero."""
    u, a = u.detach().double(), a.detach().double()
    den = torch.linalg.vector_norm(u) * torch.linalg.vector_norm(a)
    return torch.where(den > 0, (u * a).sum() / torch.where(den > 0, den, 1.0), 0.0)


class AdamShadow:
    """Adam moments ``m, v`` per key, fed the same gradients as the optimizer, never applied.

    ``m ← lerp(m, g, 1−β₁)``, ``v ← β₂v + (1−β₂)g²``, direction ``(m/(1−β₁ᵗ))/(√v/√(1−β₂ᵗ) + ε)``
    — the operations of torch.optim.AdamW (and ``scale_by_adam``) in the same order; ``t`` counts
    this shadow's own updates. State is float32 or wider, on the gradient's device.

    >>> import torch
    >>> s = AdamShadow(); s.update("w", torch.ones(2, 2))
    >>> round(float(s.direction("w")[0, 0]), 6)  # m̂ = g, √v̂ = |g|
    1.0
    """

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)
        self.state: dict[str, list] = {}

    def update(self, key: str, g: torch.Tensor) -> None:
        """One Adam moment update of ``key`` with gradient ``g``."""
        self.update_many([key], [g])

    def update_many(self, keys: list[str], grads: list[torch.Tensor]) -> None:
        """:meth:`update` for several keys at once (``torch._foreach_*``: 3 fused calls)."""
        ms, vs, gs = [], [], []
        for key, g in zip(keys, grads):
            g = g.detach()
            st = self.state.get(key)
            if st is None or st[0].shape != g.shape or st[0].device != g.device:
                dt = torch.promote_types(g.dtype, torch.float32)
                st = self.state[key] = [torch.zeros_like(g, dtype=dt),
                                        torch.zeros_like(g, dtype=dt), 0]
            st[2] += 1
            ms.append(st[0])
            vs.append(st[1])
            gs.append(g.to(st[0].dtype))
        if not ms:
            return
        b1, b2 = self.betas
        torch._foreach_lerp_(ms, gs, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)

    def direction(self, key: str) -> torch.Tensor | None:
        st = self.state.get(key)
        if st is None:
            return None
        m, v, t = st
        b1, b2 = self.betas
        denom = (v.sqrt() / (1 - b2**t) ** 0.5).add_(self.eps)
        return m.div(denom).div_(1 - b1**t)
