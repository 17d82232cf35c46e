"""Every A/B figure against statsmodels and scipy on fixed cases (no database)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from campaigns.abtest import planner, stats

CASES = [
    (130, 2000, 100, 2010),
    (48, 1000, 30, 1000),
    (3, 250, 1, 260),
    (512, 10_000, 498, 9_950),
    (90, 400, 120, 410),
]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), CASES)
def test_z_test_matches_statsmodels_pooled_two_sided(x1: int, n1: int, x2: int, n2: int) -> None:
    expected_z, expected_p = proportions_ztest([x1, x2], [n1, n2])
    result = stats.two_proportion_ztest(x1, n1, x2, n2)
    assert result is not None
    assert result[0] == pytest.approx(expected_z, rel=1e-9)
    assert result[1] == pytest.approx(expected_p, rel=1e-9)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), CASES)
def test_difference_interval_matches_statsmodels_newcombe(
    x1: int, n1: int, x2: int, n2: int
) -> None:
    low, upp = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert stats.difference_ci_newcombe(x1, n1, x2, n2) == pytest.approx((low, upp), rel=1e-9)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), CASES)
def test_relative_lift_interval_matches_statsmodels_log_ratio(
    x1: int, n1: int, x2: int, n2: int
) -> None:
    low, upp = confint_proportions_2indep(x1, n1, x2, n2, method="log", compare="ratio")
    assert stats.relative_lift_ci(x1, n1, x2, n2) == pytest.approx((low - 1, upp - 1), rel=1e-9)


@pytest.mark.parametrize(("x", "n"), [(0, 50), (7, 120), (130, 2000), (50, 50)])
def test_wilson_interval_matches_statsmodels(x: int, n: int) -> None:
    expected = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert stats.wilson_interval(x, n) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_relative_lift_is_undefined_without_successes_in_a_group() -> None:
    assert stats.relative_lift_ci(0, 100, 5, 100) is None
    comparison = stats.compare(5, 100, 0, 100)
    assert comparison is not None
    assert comparison.relative_lift is None and comparison.relative_lift_ci is None


def test_z_test_is_none_when_no_group_varies() -> None:
    assert stats.two_proportion_ztest(0, 100, 0, 120) is None


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03, 0.2], [0.001, 0.5], [0.049], [0.02, 0.021, 0.022, 0.9, 0.0001]],
)
def test_holm_matches_statsmodels_multipletests(p_values: list[float]) -> None:
    expected = multipletests(p_values, method="holm")[1]
    assert stats.holm_adjust(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_holm_leaves_missing_p_values_out_of_the_family() -> None:
    expected = multipletests([0.01, 0.03], method="holm")[1]
    assert stats.holm_adjust([0.01, None, 0.03]) == [
        pytest.approx(expected[0]),
        None,
        pytest.approx(expected[1]),
    ]


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([5100, 4900], [1, 1]),
        ([1000, 4400, 4600], [0.1, 0.45, 0.45]),
        ([520, 1000, 1480], [1, 2, 3]),
    ],
)
def test_sample_ratio_check_matches_scipy_chisquare(
    observed: list[int], weights: list[float]
) -> None:
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    reference = sps.chisquare(observed, expected)
    result = stats.sample_ratio_mismatch(observed, weights)
    assert result is not None
    assert result.chi2 == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_sample_ratio_mismatch_warns_below_one_in_a_thousand() -> None:
    result = stats.sample_ratio_mismatch([5300, 4700], [1, 1])
    assert result is not None and result.p_value < 0.001 and result.warning
    fine = stats.sample_ratio_mismatch([5030, 4970], [1, 1])
    assert fine is not None and not fine.warning


def _exact_probability_b_beats_a(xa: int, na: int, xb: int, nb: int) -> float:
    """P(p_B > p_A) for Beta(1+x, 1+n-x) posteriors by numerical integration (scipy)."""
    a = sps.beta(1 + xa, 1 + na - xa)
    b = sps.beta(1 + xb, 1 + nb - xb)
    value, _error = integrate.quad(lambda p: b.pdf(p) * a.cdf(p), 0, 1, limit=200)
    return float(value)


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(40, 1000, 55, 1000), (12, 300, 12, 300)])
def test_probability_best_agrees_with_the_exact_integral_for_two_groups(
    xa: int, na: int, xb: int, nb: int
) -> None:
    p_a, p_b = stats.probability_best([xa, xb], [na, nb])
    exact = _exact_probability_b_beats_a(xa, na, xb, nb)
    # Monte Carlo standard error at 100,000 draws is below 0.0016.
    assert p_b == pytest.approx(exact, abs=0.006)
    assert p_a + p_b == pytest.approx(1.0)


def test_probability_best_is_reproducible_with_its_fixed_seed() -> None:
    first = stats.probability_best([30, 35, 41], [1000, 1000, 1000])
    assert stats.probability_best([30, 35, 41], [1000, 1000, 1000]) == first
    assert sum(first) == pytest.approx(1.0)
    assert int(np.argmax(first)) == 2


@pytest.mark.parametrize(
    ("baseline", "mde", "kind", "power", "alpha"),
    [
        (0.05, 0.01, "absolute", 0.8, 0.05),
        (0.02, 0.1, "relative", 0.9, 0.01),
        (0.5, -0.3, "absolute", 0.5, 0.05),
        (0.12, 0.015, "absolute", 0.8, 0.1),
    ],
)
def test_planner_matches_statsmodels_normal_ind_power(
    baseline: float, mde: float, kind: planner.MdeKind, power: float, alpha: float
) -> None:
    target = baseline + mde if kind == "absolute" else baseline * (1 + mde)
    effect = proportion_effectsize(target, baseline)
    expected = NormalIndPower().solve_power(
        effect_size=effect, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    plan = planner.sample_size(baseline=baseline, mde=mde, mde_kind=kind, power=power, alpha=alpha)
    assert plan.per_group == math.ceil(expected)
    assert plan.effect_size == pytest.approx(effect, rel=1e-12)


def test_planner_names_the_input_out_of_range() -> None:
    with pytest.raises(planner.PlannerError, match="baseline"):
        planner.sample_size(baseline=1.5, mde=0.01)
    with pytest.raises(planner.PlannerError, match="outside 0 to 1"):
        planner.sample_size(baseline=0.95, mde=0.1)
