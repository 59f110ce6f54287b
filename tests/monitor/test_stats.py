"""The monitor's statistics on synthetic data with known answers: a sample against itself
gives large p-values, a shifted one tiny p-values, and the p-values that the Bonferroni
correction relies on are valid (uniform, or conservative) under the null."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kstest

from dlworkflow.monitor import stats as S


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


# ---- KS and PSI ---------------------------------------------------------------------------
def test_ks_same_distribution_large_p_and_shift_tiny_p(rng):
    ref = rng.normal(size=2000)
    assert S.ks_test(ref, rng.normal(size=500)).p_value > 0.01
    shifted = S.ks_test(ref, rng.normal(0.5, 1, size=500))
    assert shifted.p_value < 1e-12
    assert 0.15 < shifted.effect < 0.3  # D of N(0,1) vs N(0.5,1) is 0.197
    assert S.ks_test(np.full(100, 16.0), np.full(50, 16.0)).p_value == 1.0
    assert S.ks_test(np.full(100, 16.0), np.full(50, 28.0)).p_value < 1e-12
    assert S.ks_test([np.nan, 1.0], []).p_value == 1.0  # nothing to compare


def test_psi_known_values(rng):
    ref = rng.normal(size=5000)
    assert S.psi(ref, rng.normal(size=5000)) < 0.02
    assert S.psi(ref, rng.normal(1.0, 1, size=5000)) > 0.5  # a full-sd shift: major
    # counts with a hand-computed answer: (0.5-0.25)ln2 + (0.5-0.75)ln(2/3)
    expected = 0.25 * math.log(2) - 0.25 * math.log(2 / 3)
    assert S.psi_of_counts(np.array([25, 75]), np.array([50, 50])) == pytest.approx(expected)
    # few distinct values: one bin per value, and a value the reference never had counts
    sizes = np.full(1000, 28.0)
    assert S.psi(sizes, np.full(300, 28.0)) == pytest.approx(0.0, abs=1e-9)
    assert S.psi(sizes, np.full(300, 32.0)) > 5


# ---- MMD ----------------------------------------------------------------------------------
def _mmd_direct(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * bandwidth**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def test_mmd_statistic_is_the_unbiased_estimate(rng):
    x, y = rng.normal(size=(30, 4)), rng.normal(0.3, 1, size=(20, 4))
    out = S.mmd_test(x, y, permutations=60, seed=0)
    assert out.statistic == pytest.approx(
        _mmd_direct(x, y, out.details["bandwidth"]), rel=1e-9, abs=1e-12
    )
    assert out.details["n_reference"] == 30 and out.details["n_live"] == 20


def test_mmd_same_distribution_large_p_shift_resolves_the_bonferroni_level(rng):
    ref = rng.normal(size=(2000, 32))
    same = S.mmd_test(
        ref, rng.normal(size=(1000, 32)), permutations=200, max_samples=400, resolve=0.01 / 8
    )
    assert same.p_value > 0.01
    assert same.details["permutations"] < 600  # stopped early: cannot reach the level
    shifted = S.mmd_test(
        ref,
        rng.normal(0.15, 1, size=(1000, 32)),
        permutations=200,
        max_samples=400,
        resolve=0.01 / 8,
    )
    # 200 permutations alone can never give p < 0.00125; the test runs enough of them
    assert shifted.p_value < 0.01 / 8
    assert shifted.details["permutations"] >= 2 / (0.01 / 8) - 1
    assert shifted.details["n_reference"] == 400 and shifted.details["n_live"] == 400


def test_mmd_permutation_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(11)
    p = np.array(
        [
            S.mmd_test(
                rng.standard_t(4, size=(40, 6)),
                rng.standard_t(4, size=(30, 6)),
                permutations=99,
                seed=i,
            ).p_value
            for i in range(250)
        ]
    )
    assert kstest(p, "uniform").pvalue > 1e-3
    assert 0.05 <= (p <= 0.1).mean() <= 0.16
    assert p.min() >= 1 / 100  # (1 + count) / (1 + permutations)


def test_mmd_adaptive_permutations_keep_the_level():
    """With `resolve`, P(p < level) stays <= level under the null."""
    rng = np.random.default_rng(3)
    level = 0.02
    hits = sum(
        S.mmd_test(
            rng.normal(size=(30, 3)),
            rng.normal(size=(30, 3)),
            permutations=50,
            seed=i,
            resolve=level,
        ).p_value
        < level
        for i in range(300)
    )
    assert hits <= 13  # expected <= 6; 13 is beyond the binomial 99.8% quantile


# ---- predictions and confidence -----------------------------------------------------------
def test_class_shift_same_shares_and_a_known_shift():
    ref = ["a"] * 500 + ["b"] * 500
    same = S.class_shift(ref, ["a"] * 100 + ["b"] * 100)
    assert same.p_value == pytest.approx(1.0) and same.effect == pytest.approx(0.0)
    moved = S.class_shift(ref, ["a"] * 150 + ["b"] * 50)
    assert moved.effect == pytest.approx(0.25)  # 0.5 * (|0.75-0.5| + |0.25-0.5|)
    assert moved.p_value < 1e-8
    new_class = S.class_shift(ref, ["a"] * 100 + ["c"] * 100)
    assert new_class.effect == pytest.approx(0.5) and new_class.p_value < 1e-20


def test_class_shift_pools_rare_classes():
    ref = ["a"] * 300 + ["b"] * 300 + ["r1"] * 2 + ["r2"] * 1
    out = S.class_shift(ref, ["a"] * 100 + ["b"] * 100 + ["r3"])
    assert out.details["dof"] == 2  # a, b and one pooled cell of the rare ones


def test_confidence_drop_one_sided(rng):
    ref = rng.beta(20, 1, size=2000)
    lower = S.confidence_drop(ref, rng.beta(8, 1, size=300))
    assert lower.p_value < 1e-10
    assert lower.effect == pytest.approx(20 / 21 - 8 / 9, abs=0.02)
    higher = S.confidence_drop(ref, rng.beta(60, 1, size=300))
    assert higher.p_value > 0.5 and higher.effect < 0
    assert S.confidence_drop(ref, rng.beta(20, 1, size=300)).p_value > 0.01


# ---- OOD ----------------------------------------------------------------------------------
def test_knn_distances_leave_one_out_and_queries():
    line = np.arange(10.0)[:, None]
    assert np.allclose(S.knn_distances(line, k=1), 1.0)  # each point's nearest other point
    assert np.allclose(S.knn_distances(line, k=2)[[0, 5]], [2.0, 1.0])
    queries = np.array([[4.5], [20.0]])
    assert np.allclose(S.knn_distances(line, queries, k=1), [0.5, 11.0])
    # chunks give the same answer as one block
    big = np.random.default_rng(0).normal(size=(300, 5))
    assert np.allclose(S.knn_distances(big, chunk=64), S.knn_distances(big, chunk=4096))


def test_ood_threshold_flags_the_reference_rate_and_shift_is_tiny_p(rng):
    ref = rng.normal(size=1999)
    out = S.ood_rate_test(ref, rng.normal(size=500), rate=0.05)
    assert out.details["k_top"] == 100
    assert out.details["threshold"] == pytest.approx(np.sort(ref)[-100])
    assert out.details["reference_rate"] == pytest.approx(0.05)
    assert out.p_value > 0.001
    far = S.ood_rate_test(ref, rng.normal(2.0, 1, size=500), rate=0.05)
    assert far.p_value < 1e-30 and far.effect > 0.3


def test_ood_beta_binomial_is_calibrated_where_a_binomial_test_is_not():
    """Threshold from a finite reference: the beta-binomial keeps its level."""
    from scipy.stats import binomtest

    rng = np.random.default_rng(5)
    exact, naive = [], []
    for _ in range(400):
        ref, live = rng.exponential(size=200), rng.exponential(size=1000)
        out = S.ood_rate_test(ref, live, rate=0.05)
        exact.append(out.p_value)
        naive.append(binomtest(out.details["exceeding"], 1000, 0.05, alternative="greater").pvalue)
    exact, naive = np.array(exact), np.array(naive)
    assert (exact <= 0.05).mean() <= 0.075
    assert (naive <= 0.05).mean() > 0.12  # the plain binomial false-alarms far too often


# ---- the live metric ----------------------------------------------------------------------
def test_wilson_bound_textbook_interval_and_agrees_with_its_p_value():
    out = S.wilson_bound(80, 100, floor=0.9, level=0.025)  # a 95% two-sided interval
    low, high = out.details["interval"]
    assert low == pytest.approx(0.7112, abs=1e-4) and high == pytest.approx(0.8666, abs=1e-4)
    assert out.p_value < 0.025  # 0.9 lies above the upper bound
    for floor in np.linspace(0.5, 0.99, 50):
        o = S.wilson_bound(80, 100, floor=float(floor), level=0.01)
        assert (o.details["interval"][1] < floor) == (o.p_value < 0.01)


def test_bootstrap_bound_matches_a_proportion():
    hits = np.r_[np.ones(160), np.zeros(40)]

    def accuracy(weights: np.ndarray) -> np.ndarray:
        return weights @ hits / weights.sum(axis=1)

    out = S.bootstrap_bound(accuracy, len(hits), floor=0.9, level=0.005, seed=1)
    assert out.statistic == pytest.approx(0.8)
    assert out.details["resamples"] >= 400
    low, high = out.details["interval"]
    assert 0.70 < low < 0.74 and 0.86 < high < 0.89
    assert out.p_value < 0.005
    assert S.bootstrap_bound(accuracy, len(hits), floor=0.75, level=0.005).p_value > 0.5
