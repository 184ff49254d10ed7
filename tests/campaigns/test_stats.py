"""analytics/stats.py against statsmodels and SciPy on known data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from jifen.analytics import stats


def test_welch_difference_of_means_matches_statsmodels_and_scipy():
    rng = np.random.default_rng(7)
    treated, control = rng.gamma(2.0, 60.0, 300), rng.gamma(2.0, 50.0, 280)
    got = stats.compare_means(treated, control)
    cm = CompareMeans(DescrStatsW(treated), DescrStatsW(control))
    low, high = cm.tconfint_diff(usevar="unequal")
    assert got.difference == pytest.approx(treated.mean() - control.mean())
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))
    assert got.p_value == pytest.approx(sp.ttest_ind(treated, control, equal_var=False).pvalue)
    assert got.n_treatment == 300 and got.n_control == 280


def test_two_proportions_match_statsmodels():
    got = stats.compare_proportions(130, 1000, 100, 1000)
    z, p = proportions_ztest([130, 100], [1000, 1000])
    low, high = confint_proportions_2indep(130, 1000, 100, 1000, method="wald", compare="diff")
    assert got.difference == pytest.approx(0.03)
    assert got.p_value == pytest.approx(p)
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))
    assert got.view()["significant"] is True and got.view()["relative"] == pytest.approx(0.3)


def test_sample_size_and_mde_match_statsmodels_power():
    n = stats.sample_size_proportion(0.10, 0.02)
    expected = NormalIndPower().solve_power(effect_size=proportion_effectsize(0.12, 0.10), alpha=0.05, power=0.8)
    assert n == math.ceil(expected)
    lift = stats.mde_proportion(0.10, n)
    assert lift == pytest.approx(0.02, abs=1e-4)  # the size found for +2 points detects +2 points
    assert stats.sample_size_mean(sd=80, lift=10) == math.ceil(NormalIndPower().solve_power(effect_size=10 / 80,
                                                                                             alpha=0.05, power=0.8))
    assert stats.mde_mean(sd=80, n_per_arm=stats.sample_size_mean(80, 10)) == pytest.approx(10, rel=2e-3)


def test_bad_input_is_refused():
    for call in (lambda: stats.compare_means([1.0], [1.0, 2.0]), lambda: stats.compare_proportions(5, 3, 1, 3),
                 lambda: stats.sample_size_proportion(0.99, 0.02), lambda: stats.sample_size_mean(0, 1)):
        with pytest.raises(ValueError):
            call()
