"""Comparing two training arms the way a referee reads it: effect, standard error, interval, test.

A training claim ("arm B reaches a lower final loss than arm A") is settled on a handful of seeds.
What the verdict needs is the **mean difference** ``Δ = mean(B) − mean(A)`` with the **standard
error of that mean** and a confidence interval — not the spread of a single difference:

- **paired** (the default when both arms ran the same seeds, so seed ``i`` of A and B saw the
  same data order and initialisation): ``d_i = b_i − a_i``, ``SE = s_d / √n``, ``df = n − 1``;
- **Welch** (independent samples): ``SE = √(s_a²/n_a + s_b²/n_b)``, ``df`` by Welch–Satterthwaite
  ``(s_a²/n_a + s_b²/n_b)² / [(s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1)]``.

``t = Δ / SE``, a two-sided p-value from Student's t with ``df`` degrees of freedom, and a
``1 − alpha`` interval ``Δ ± t_{1−α/2, df} · SE``; or, with ``interval="bootstrap"``, the percentile
interval of ``Δ`` over resamples (of the pairs when paired), with a fixed seed so the number is
reproducible. The earlier rule of this project, ``Δ > 2·√(s_a² + s_b²)``, compares Δ with the spread
of *one* difference and under-states an effect that is consistent across seeds.

:class:`VerdictRule` is the pre-registered rule, written in an experiment's config **before** it
runs: which metric, which direction is better, the test, ``alpha`` and an optional minimum effect.
:func:`apply_rule` turns a :class:`Comparison` into ``"holds"`` (the interval lies entirely on the
claimed side, beyond ``min_effect``), ``"fails"`` (the interval lies entirely on the other side) or
``"inconclusive"`` (the interval contains 0: the seeds cannot tell).

>>> a = [3.10, 3.05, 3.12, 3.08, 3.11]          # final val loss of arm A, seeds 0..4
>>> b = [3.07, 3.02, 3.10, 3.05, 3.07]          # arm B, same seeds
>>> c = compare_arms(a, b)
>>> c.test, c.n, round(c.diff, 3), round(c.se, 4)
('paired t', 5, -0.03, 0.0032)
>>> c.ci[1] < 0 < 0.05 > c.p
True
>>> rule = VerdictRule(metric="final_val_loss", better="lower", test="paired")
>>> apply_rule(rule, a, b)["verdict"]
'holds'
>>> format_comparison(c)
'Δ = -0.0300 ± 0.0032 SE (95% CI [-0.0388, -0.0212]), paired t, n = 5 seeds, p = 0.0007'

References: B. L. Welch, "The generalization of Student's problem when several different population
variances are involved", Biometrika 34 (1947); B. Efron & R. Tibshirani, *An Introduction to the
Bootstrap* (1993), ch. 13 (percentile intervals).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np

__all__ = ["Comparison", "compare_arms", "VerdictRule", "apply_rule", "format_comparison",
           "RULE_VERDICTS"]

#: What :func:`apply_rule` can conclude.
RULE_VERDICTS = ("holds", "fails", "inconclusive")
_TESTS = ("paired", "welch")
_INTERVALS = ("t", "bootstrap")


@dataclass(frozen=True)
class Comparison:
    """Arm B against arm A: ``diff = mean(B) − mean(A)`` with its standard error, interval and test.

    ``ci`` is the ``1 − alpha`` interval of ``diff``; ``p`` the two-sided t-test p-value (reported
    with either interval kind); ``df`` the t degrees of freedom (``nan`` with a single seed)."""

    test: str
    n: int
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    se: float
    df: float
    t: float
    p: float
    ci: tuple[float, float]
    alpha: float
    interval: str

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d


def _as_sample(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one value (one per seed), got none")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds a non-finite value: {arr.tolist()}")
    return arr


def _t_parts(diff: float, se: float, df: float, alpha: float) -> tuple[float, float, tuple]:
    from scipy import stats

    if not (df > 0) or not math.isfinite(df):
        return math.nan, math.nan, (math.nan, math.nan)
    if se == 0.0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return t, (1.0 if diff == 0 else 0.0), (diff, diff)
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return t, p, (diff - half, diff + half)


def _bootstrap_ci(a: np.ndarray, b: np.ndarray, paired: bool, alpha: float, resamples: int,
                  seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    if paired:
        d = b - a
        idx = rng.integers(0, d.size, size=(resamples, d.size))
        stats_ = d[idx].mean(axis=1)
    else:
        ia = rng.integers(0, a.size, size=(resamples, a.size))
        ib = rng.integers(0, b.size, size=(resamples, b.size))
        stats_ = b[ib].mean(axis=1) - a[ia].mean(axis=1)
    lo, hi = np.quantile(stats_, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def compare_arms(a: Sequence[float], b: Sequence[float], *, test: str | None = None,
                 alpha: float = 0.05, interval: str = "t", resamples: int = 10_000,
                 seed: int = 0) -> Comparison:
    """Compare arm ``b`` with arm ``a`` (one value per seed each): ``diff = mean(b) − mean(a)``.

    Parameters
    ----------
    a, b : sequences of floats
        The metric per seed. With ``test="paired"`` they must have equal length and ``a[i]``,
        ``b[i]`` must come from the same seed (same data order).
    test : {"paired", "welch", None}
        ``None`` (default): paired when the lengths are equal, Welch otherwise.
    alpha : float in (0, 1)
        The interval is ``1 − alpha`` (0.05 → 95 %).
    interval : {"t", "bootstrap"}
        Student-t interval, or the percentile bootstrap (``resamples`` draws, generator ``seed``).

    Returns
    -------
    Comparison

    >>> c = compare_arms([1.0, 2.0, 3.0], [1.5, 2.4, 3.6], test="welch")
    >>> c.test, round(c.diff, 3), round(c.df, 2)
    ('Welch t', 0.5, 3.99)
    """
    a_arr, b_arr = _as_sample(a, "a"), _as_sample(b, "b")
    if test is None:
        test = "paired" if a_arr.size == b_arr.size else "welch"
    if test not in _TESTS:
        raise ValueError(f"test must be one of {list(_TESTS)} or None, got {test!r}")
    if interval not in _INTERVALS:
        raise ValueError(f"interval must be one of {list(_INTERVALS)}, got {interval!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if not (isinstance(resamples, int) and resamples >= 100):
        raise ValueError(f"resamples must be an int ≥ 100, got {resamples!r}")
    paired = test == "paired"
    if paired:
        if a_arr.size != b_arr.size:
            raise ValueError(f"test='paired' needs one value per seed in both arms; got "
                             f"len(a)={a_arr.size}, len(b)={b_arr.size}")
        d = b_arr - a_arr
        n = int(d.size)
        diff = float(d.mean())
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        df = float(n - 1) if n > 1 else math.nan
    else:
        n = int(min(a_arr.size, b_arr.size))
        diff = float(b_arr.mean() - a_arr.mean())
        va = a_arr.var(ddof=1) / a_arr.size if a_arr.size > 1 else math.nan
        vb = b_arr.var(ddof=1) / b_arr.size if b_arr.size > 1 else math.nan
        se = float(math.sqrt(va + vb))
        den = (va**2 / (a_arr.size - 1) if a_arr.size > 1 else math.nan) + \
              (vb**2 / (b_arr.size - 1) if b_arr.size > 1 else math.nan)
        df = float((va + vb) ** 2 / den) if den > 0 else (math.inf if va + vb == 0 else math.nan)
        if va + vb == 0 and a_arr.size > 1 and b_arr.size > 1:
            df = float(a_arr.size + b_arr.size - 2)
    t, p, ci = _t_parts(diff, se, df, alpha)
    if interval == "bootstrap":
        ci = _bootstrap_ci(a_arr, b_arr, paired, alpha, resamples, seed)
    return Comparison(test="paired t" if paired else "Welch t", n=n, n_a=int(a_arr.size),
                      n_b=int(b_arr.size), mean_a=float(a_arr.mean()), mean_b=float(b_arr.mean()),
                      diff=diff, se=se, df=df, t=t, p=p, ci=(float(ci[0]), float(ci[1])),
                      alpha=float(alpha), interval=interval)


@dataclass(frozen=True)
class VerdictRule:
    """A pre-registered decision rule: write it in the experiment's config before any run.

    ``better``: ``"lower"`` (losses) or ``"higher"`` (accuracies) is the direction the claim says
    arm B improves on arm A. ``min_effect`` (≥ 0, in the metric's units): the claimed improvement
    must exceed it for ``"holds"``; ``test``/``interval``/``alpha`` as in :func:`compare_arms`.

    >>> VerdictRule("final_val_loss", better="lower").as_dict()["test"]
    'paired'
    """

    metric: str
    better: str = "lower"
    test: str = "paired"
    interval: str = "t"
    alpha: float = 0.05
    min_effect: float = 0.0
    notes: str = field(default="", compare=False)

    def __post_init__(self):
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"metric must be a non-empty string, got {self.metric!r}")
        if self.better not in ("lower", "higher"):
            raise ValueError(f"better must be 'lower' or 'higher', got {self.better!r}")
        if self.test not in _TESTS:
            raise ValueError(f"test must be one of {list(_TESTS)}, got {self.test!r}")
        if self.interval not in _INTERVALS:
            raise ValueError(f"interval must be one of {list(_INTERVALS)}, got {self.interval!r}")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
            raise ValueError(f"alpha must be a number in (0, 1), got {self.alpha!r}")
        if not (isinstance(self.min_effect, (int, float)) and self.min_effect >= 0):
            raise ValueError(f"min_effect must be a number ≥ 0, got {self.min_effect!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "VerdictRule":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown VerdictRule field(s): {sorted(unknown)}")
        return cls(**d)


def apply_rule(rule: VerdictRule, a: Sequence[float], b: Sequence[float]) -> dict:
    """Decide the claim "arm ``b`` is better than arm ``a`` on ``rule.metric``".

    Returns ``{"verdict", "comparison", "rule", "text"}``: ``"holds"`` when the whole interval of
    the improvement lies beyond ``rule.min_effect``; ``"fails"`` when the whole interval lies on the
    side of *no improvement* (``b`` worse, or the improvement is surely below ``min_effect``);
    ``"inconclusive"`` otherwise.

    >>> rule = VerdictRule("acc", better="higher", test="welch")
    >>> apply_rule(rule, [0.80, 0.81, 0.79], [0.70, 0.71, 0.69])["verdict"]
    'fails'
    >>> apply_rule(rule, [0.80, 0.85, 0.75], [0.81, 0.74, 0.86])["verdict"]
    'inconclusive'
    """
    c = compare_arms(a, b, test=rule.test, alpha=rule.alpha, interval=rule.interval)
    sign = -1.0 if rule.better == "lower" else 1.0
    lo, hi = sorted((sign * c.ci[0], sign * c.ci[1]))  # interval of the improvement
    if not (math.isfinite(lo) and math.isfinite(hi)):
        verdict = "inconclusive"
    elif lo > rule.min_effect:
        verdict = "holds"
    elif hi < rule.min_effect if rule.min_effect > 0 else hi < 0:
        verdict = "fails"
    else:
        verdict = "inconclusive"
    return {"verdict": verdict, "comparison": c.as_dict(), "rule": rule.as_dict(),
            "text": format_comparison(c)}


def format_comparison(c: Comparison, *, digits: int = 4) -> str:
    """One line for CLAIMS.md: effect ± SE, interval, the test, n seeds, p."""
    f = f"{{:.{digits}f}}"
    level = round(100 * (1 - c.alpha))
    kind = "" if c.interval == "t" else ", bootstrap"
    n = f"n = {c.n} seeds" if c.test.startswith("paired") else f"n = {c.n_a}/{c.n_b} seeds"
    p = "p = n/a" if math.isnan(c.p) else (f"p = {c.p:.4f}" if c.p >= 1e-4 else f"p = {c.p:.1e}")
    return (f"Δ = {f.format(c.diff)} ± {f.format(c.se)} SE ({level}% CI{kind} "
            f"[{f.format(c.ci[0])}, {f.format(c.ci[1])}]), {c.test}, {n}, {p}")
