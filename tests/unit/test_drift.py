"""The drift statistics of monitors (mlmake.ml.drift) against scipy on known distributions, the
test Evidently's default picks for each column, and identical samples never drifting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import spatial, stats

from mlmake.ml import drift

RNG = np.random.default_rng(0)
NORMAL = RNG.normal(0.0, 1.0, 500)
SHIFTED = RNG.normal(1.0, 1.0, 500)
SAME = RNG.normal(0.0, 1.0, 500)


def test_ks_is_scipys_two_sample_p_value() -> None:
    assert drift.ks(NORMAL, SHIFTED) == stats.ks_2samp(NORMAL, SHIFTED).pvalue
    assert drift.ks(NORMAL, SHIFTED) < 1e-10
    assert drift.ks(NORMAL, SAME) > 0.05


def test_wasserstein_is_scipys_distance_in_reference_standard_deviations() -> None:
    expected = stats.wasserstein_distance(NORMAL, SHIFTED) / np.std(NORMAL)
    assert drift.wasserstein(NORMAL, SHIFTED) == pytest.approx(expected, rel=1e-12)
    # two normals one standard deviation apart are about one unit apart
    assert drift.wasserstein(NORMAL, SHIFTED) == pytest.approx(1.0, abs=0.15)


def test_chi2_is_scipys_contingency_test_of_the_counts() -> None:
    reference = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = np.array(["a"] * 20 + ["b"] * 30 + ["c"] * 50)
    expected = stats.chi2_contingency(np.array([[50, 30, 20], [20, 30, 50]])).pvalue
    assert drift.chi2(reference, current) == pytest.approx(expected, rel=1e-12)
    assert drift.chi2(reference, current) < 0.05


def test_chi2_counts_a_category_only_one_sample_has() -> None:
    expected = stats.chi2_contingency(np.array([[10, 10, 0], [10, 5, 5]])).pvalue
    assert drift.chi2(np.array(["a"] * 10 + ["b"] * 10), np.array(["a"] * 10 + ["b"] * 5 + ["c"] * 5)) == \
        pytest.approx(expected, rel=1e-12)


def test_jensenshannon_is_scipys_base_2_distance_of_the_shares() -> None:
    reference = np.array(["x"] * 75 + ["y"] * 25)
    current = np.array(["x"] * 25 + ["y"] * 75)
    expected = spatial.distance.jensenshannon([0.75, 0.25], [0.25, 0.75], base=2)
    assert drift.jensenshannon(reference, current) == pytest.approx(expected, rel=1e-12)


def test_psi_of_categories_is_the_symmetric_kl_divergence() -> None:
    reference = np.array(["x"] * 75 + ["y"] * 25)
    current = np.array(["x"] * 25 + ["y"] * 75)
    p, q = np.array([0.75, 0.25]), np.array([0.25, 0.75])
    assert drift.psi(reference, current, numeric=False) == pytest.approx(
        stats.entropy(q, p) + stats.entropy(p, q), rel=1e-12)


def test_psi_of_a_numeric_column_bins_by_the_reference_deciles() -> None:
    assert drift.psi(NORMAL, NORMAL, numeric=True) == 0.0
    assert drift.psi(NORMAL, SAME, numeric=True) < 0.1  # the usual "no change" band
    assert drift.psi(NORMAL, SHIFTED, numeric=True) > 0.25  # the usual "significant change" band


@pytest.mark.parametrize(("reference", "numeric", "test", "threshold"), [
    (RNG.normal(size=1000), True, "ks", 0.05),  # a small reference: a significance test
    (RNG.normal(size=1001), True, "wasserstein", 0.1),  # a larger one: a distance
    (RNG.integers(0, 5, 1000), True, "chi2", 0.05),  # five values or fewer: categorical
    (RNG.integers(0, 5, 5000), True, "jensenshannon", 0.1),
    (np.array(["a", "b"] * 100), False, "chi2", 0.05),
    (np.array(["a", "b"] * 1000), False, "jensenshannon", 0.1),
])
def test_the_test_is_picked_as_evidentlys_default(reference: np.ndarray, numeric: bool, test: str,
                                                  threshold: float) -> None:
    result = drift.column_drift("c", reference, reference[:100], numeric)
    assert (result.test, result.threshold) == (test, threshold)
    assert result.kind == ("numeric" if test in ("ks", "wasserstein") else "categorical")


def test_a_shifted_column_drifts_and_a_resampled_one_does_not() -> None:
    assert drift.column_drift("tenure", NORMAL, SHIFTED, True).drifted
    assert not drift.column_drift("tenure", NORMAL, SAME, True).drifted
    big = RNG.normal(0, 1, 5000)
    assert drift.column_drift("tenure", big, big[:2000] + 1.0, True).drifted
    assert not drift.column_drift("tenure", big, RNG.normal(0, 1, 2000), True).drifted


def test_a_column_drift_reads_as_plain_data() -> None:
    result = drift.column_drift("plan", np.array(["a", "b"] * 10), np.array(["a", "b"] * 10), False)
    assert result.plain() == {"column": "plan", "kind": "categorical", "test": "chi2", "value": 1.0,
                              "threshold": 0.05, "drifted": False, "psi": 0.0}


numbers = st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=300)
words = st.lists(st.sampled_from(["basic", "pro", "team", "north", "south", "1", ""]), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(values=numbers, times=st.integers(1, 5))
def test_identical_numeric_samples_never_drift(values: list[float], times: int) -> None:
    reference = np.array(values * times)
    result = drift.column_drift("x", reference, reference.copy(), True)
    assert not result.drifted
    assert result.psi == 0.0


@settings(max_examples=150, deadline=None)
@given(values=words, times=st.integers(1, 5))
def test_identical_categorical_samples_never_drift(values: list[str], times: int) -> None:
    reference = np.array(values * times)
    result = drift.column_drift("x", reference, reference.copy(), False)
    assert not result.drifted
    assert result.psi == 0.0
