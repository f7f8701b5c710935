"""matbal.lab.arm_stats against scipy's t-tests and hand formulas; verdict rules."""
import math

import numpy as np
import pytest
from scipy import stats

from matbal.lab.arm_stats import VerdictRule, apply_rule, compare_arms, format_comparison

RNG = np.random.default_rng(7)
A = 3.0 + 0.05 * RNG.standard_normal(6)
B = A - 0.02 + 0.01 * RNG.standard_normal(6)


def test_paired_matches_scipy_ttest_rel():
    c = compare_arms(A, B, test="paired")
    ref = stats.ttest_rel(B, A)
    assert c.test == "paired t" and c.n == 6 and c.df == 5
    assert c.t == pytest.approx(ref.statistic, rel=1e-12)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-10)
    d = B - A
    assert c.se == pytest.approx(d.std(ddof=1) / math.sqrt(6), rel=1e-12)
    ci = ref.confidence_interval(0.95)
    assert c.ci == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_welch_matches_scipy_ttest_ind():
    a, b = A[:5], B + 0.1 * RNG.standard_normal(6)
    c = compare_arms(a, b, test="welch")
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert c.test == "Welch t" and (c.n_a, c.n_b) == (5, 6)
    assert c.t == pytest.approx(ref.statistic, rel=1e-12)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert c.df == pytest.approx(ref.df, rel=1e-12)
    ci = ref.confidence_interval(0.95)
    assert c.ci == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert c.se == pytest.approx(math.sqrt(a.var(ddof=1) / 5 + b.var(ddof=1) / 6), rel=1e-12)


def test_default_test_is_paired_only_for_equal_lengths():
    assert compare_arms(A, B).test == "paired t"
    assert compare_arms(A[:4], B).test == "Welch t"


def test_paired_is_sharper_than_single_difference_spread():
    # a consistent small effect: the old rule diff > 2*sqrt(sa^2+sb^2) says nothing, the paired
    # interval excludes 0
    a = np.array([3.10, 3.20, 3.00, 3.15, 3.05])
    b = a - 0.01 + np.array([0.001, -0.001, 0.0, 0.002, -0.002])
    old_sigma = math.hypot(a.std(ddof=1), b.std(ddof=1))
    assert abs(b.mean() - a.mean()) < 2 * old_sigma
    assert apply_rule(VerdictRule("loss"), a, b)["verdict"] == "holds"
    assert apply_rule(VerdictRule("loss", test="welch"), a, b)["verdict"] == "inconclusive"


def test_bootstrap_is_reproducible_and_brackets_the_mean():
    c1 = compare_arms(A, B, interval="bootstrap", seed=3)
    c2 = compare_arms(A, B, interval="bootstrap", seed=3)
    assert c1.ci == c2.ci and c1.ci[0] < c1.diff < c1.ci[1]
    assert c1.p == compare_arms(A, B).p  # the p-value is the t-test's in both modes


def test_rule_directions_and_min_effect():
    a, b = [1.0, 1.1, 0.9, 1.05], [0.5, 0.6, 0.4, 0.55]  # b lower by 0.5, very consistent
    assert apply_rule(VerdictRule("loss", better="lower"), a, b)["verdict"] == "holds"
    assert apply_rule(VerdictRule("loss", better="higher"), a, b)["verdict"] == "fails"
    assert apply_rule(VerdictRule("loss", min_effect=0.4), a, b)["verdict"] == "holds"
    assert apply_rule(VerdictRule("loss", min_effect=0.7), a, b)["verdict"] == "fails"
    assert apply_rule(VerdictRule("loss", min_effect=0.5), a, b)["verdict"] == "inconclusive"


def test_single_seed_is_inconclusive_not_a_crash():
    r = apply_rule(VerdictRule("loss"), [1.0], [0.5])
    assert r["verdict"] == "inconclusive" and "p = n/a" in r["text"]


def test_identical_arms_have_zero_effect():
    c = compare_arms([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert c.diff == 0 and c.p == 1.0 and c.ci == (0.0, 0.0)


@pytest.mark.parametrize("kwargs, word", [
    (dict(test="student"), "test"), (dict(alpha=1.5), "alpha"), (dict(interval="bca"), "interval"),
    (dict(resamples=5), "resamples")])
def test_bad_options_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        compare_arms(A, B, **kwargs)


def test_bad_samples_name_the_argument():
    with pytest.raises(ValueError, match="a must"):
        compare_arms([], [1.0])
    with pytest.raises(ValueError, match="b holds a non-finite"):
        compare_arms([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(ValueError, match="len\\(a\\)=2, len\\(b\\)=3"):
        compare_arms([1.0, 2.0], [1.0, 2.0, 3.0], test="paired")


def test_rule_round_trips_and_validates():
    r = VerdictRule("final_val_loss", better="lower", min_effect=0.01, notes="EQ-5")
    assert VerdictRule.from_dict(r.as_dict()) == r
    with pytest.raises(ValueError, match="better"):
        VerdictRule("x", better="smaller")
    with pytest.raises(ValueError, match="unknown VerdictRule field"):
        VerdictRule.from_dict({"metric": "x", "k": 2})


def test_format_names_the_test_and_the_seeds():
    s = format_comparison(compare_arms(A[:4], B, test="welch"))
    assert "Welch t" in s and "n = 4/6 seeds" in s and "95% CI" in s


# ---- the learning-rate protocol (matbal.lab.lr_protocol) -------------------------------------
from matbal.lab.lr_protocol import choose_lr, lr_grid, plot_lr_sweep, sweep_lr  # noqa: E402


def test_lr_grid_is_geometric_and_validated():
    assert lr_grid(1e-3, 1e-2, factor=10 ** 0.25) == pytest.approx(
        [1e-3 * 10 ** (k / 4) for k in range(5)], rel=1e-11)
    with pytest.raises(ValueError, match="factor"):
        lr_grid(1e-3, 1e-2, factor=1.0)
    with pytest.raises(ValueError, match="hi"):
        lr_grid(1e-2, 1e-3)


def _bowl(opt):
    return lambda lr, seed: (math.log2(lr) - math.log2(opt)) ** 2 + 0.1 * seed


@pytest.mark.parametrize("grid, opt", [([0.001, 0.002, 0.004], 0.05), ([0.1, 0.2, 0.4], 0.01),
                                       ([0.01, 0.02, 0.04, 0.08], 0.03)])
def test_sweep_extends_until_the_optimum_is_interior(grid, opt):
    calls = []

    def run(lr, seed):
        calls.append((lr, seed))
        return _bowl(opt)(lr, seed)

    c = sweep_lr(run, grid, seeds=(0, 1), progress=False, max_extensions=10)
    assert c.interior and c.edge is None
    lrs = [t["lr"] for t in c.table]
    i = lrs.index(c.best_lr)
    assert 0 < i < len(lrs) - 1
    assert abs(math.log2(c.best_lr / opt)) <= 0.5 + 1e-9  # within half a grid step of the optimum
    assert len(calls) == len(set(calls)) == 2 * len(lrs)  # each (lr, seed) run exactly once
    assert all(t["n"] == 2 for t in c.table)


def test_sweep_reports_an_edge_when_extensions_run_out():
    c = sweep_lr(_bowl(10.0), [0.001, 0.002], seeds=(0, 1), progress=False, max_extensions=2)
    assert not c.interior and c.edge == "high" and c.extensions == 2


def test_diverged_runs_score_worst_and_single_seed_is_refused():
    rows = [{"lr": 0.1, "seed": s, "value": v} for s, v in [(0, 1.0), (1, float("nan"))]]
    rows += [{"lr": 0.05, "seed": s, "value": 2.0} for s in (0, 1)]
    rows += [{"lr": 0.025, "seed": s, "value": 2.5} for s in (0, 1)]
    assert choose_lr(rows).best_lr == 0.05
    with pytest.raises(ValueError, match="needs ≥ 2"):
        choose_lr(rows[:1] + rows[2:3])
    with pytest.raises(ValueError, match="seeds"):
        sweep_lr(_bowl(0.1), [0.1, 0.2], seeds=(0,), progress=False)


def test_plot_lr_sweep_draws_every_arm(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    choices = {"muon": sweep_lr(_bowl(0.02), [0.01, 0.02, 0.04], progress=False),
               "adamw": sweep_lr(_bowl(0.001), [0.004, 0.008], progress=False, max_extensions=0)}
    ax = plot_lr_sweep(choices)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["muon", "adamw (edge)"]
    ax.figure.savefig(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 1000
