"""Each statistic against an independent oracle on the same data, plus the aggregate
contract (merge, pickle, missing values) that lets Flink hold them as state."""

from __future__ import annotations

import itertools
import math
import pickle
import time
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import cdist, pdist

from drift import KS, MMD, PSI, ChiSquare, DriftConfigError, DriftInputError
from drift.ks import exact_sf, ks_statistic
from drift.mmd import median_bandwidth
from schemas.errors import DriftlineError

# ----------------------------------------------------------------------------- KS


@pytest.mark.parametrize(
    ("n", "m", "ties"), [(200, 5000, False), (1000, 20000, True), (5000, 100_000, False)]
)
def test_ks_matches_scipy_asymptotic(n: int, m: int, ties: bool) -> None:
    rng = np.random.default_rng(n)
    ref, win = rng.normal(size=m), rng.normal(0.05, 1.1, size=n)
    if ties:
        ref, win = np.round(ref, 1), np.round(win, 1)
    res = KS(exact_max_cells=0).fit(ref).test(win, alpha=0.01)
    oracle = stats.ks_2samp(win, ref, method="asymp")
    assert res.value == pytest.approx(oracle.statistic, abs=1e-12)
    assert res.p_value == pytest.approx(oracle.pvalue, rel=1e-9, abs=1e-300)
    assert res.details["p_value_method"] == "asymptotic"


@pytest.mark.parametrize(("n", "m"), [(30, 40), (50, 50), (120, 300), (7, 13), (25, 4000)])
def test_ks_matches_scipy_exact(n: int, m: int) -> None:
    rng = np.random.default_rng(m)
    ref, win = np.round(rng.normal(size=m), 1), np.round(rng.normal(0.3, size=n), 1)
    fitted = KS().fit(ref)
    res = fitted.test(win, alpha=0.05)
    oracle = stats.ks_2samp(win, ref, method="exact")
    assert res.details["p_value_method"] == "exact"
    assert res.value == pytest.approx(oracle.statistic, abs=1e-12)
    assert res.p_value == pytest.approx(oracle.pvalue, rel=1e-7, abs=1e-12)


def test_ks_exact_null_against_path_enumeration() -> None:
    """P(D >= d) by listing every arrangement of 4 window and 6 reference ranks."""
    n, m = 4, 6
    ds = []
    for pos in itertools.combinations(range(n + m), n):
        w = np.array(pos, dtype=float)
        r = np.array(sorted(set(range(n + m)) - set(pos)), dtype=float)
        ds.append(round(ks_statistic(r, w) * n * m))
    total = math.comb(n + m, n)
    for d_int in sorted(set(ds)):
        expect = sum(x >= d_int for x in ds) / total
        assert exact_sf(n, m, d_int / (n * m)) == pytest.approx(expect, abs=1e-12)


@pytest.mark.parametrize("exact_max_cells", [0, 10**6])
def test_ks_threshold_agrees_with_p_value(exact_max_cells: int) -> None:
    rng = np.random.default_rng(3)
    fitted = KS(exact_max_cells=exact_max_cells).fit(rng.normal(size=2000))
    for shift in np.linspace(0.0, 0.4, 25):
        res = fitted.test(rng.normal(shift, size=250), alpha=0.01)
        assert (res.value >= res.threshold) == (res.p_value <= 0.01), (shift, res)


def test_ks_is_faster_than_scipy_on_a_large_reference() -> None:
    rng = np.random.default_rng(0)
    ref, win = rng.normal(size=200_000), rng.normal(size=5000)
    fitted = KS().fit(ref)

    def best(fn) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    ours = best(lambda: fitted.test(win))
    theirs = best(lambda: stats.ks_2samp(win, ref, method="asymp"))
    assert ours < theirs


def test_ks_details_report_mean_and_quantile_shift() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(10.0, 2.0, size=50_000)
    res = KS().fit(ref).test(ref[:5000] + 3.0)
    assert res.details["mean_shift"] == pytest.approx(3.0, abs=0.1)
    assert res.details["mean_shift_sd"] == pytest.approx(1.5, abs=0.05)
    for q in ("p10", "p50", "p90"):
        assert res.details["quantile_shift"][q] == pytest.approx(3.0, abs=0.15)


# ----------------------------------------------------------------------------- chi-square

CATS = np.array(["benefits", "payroll", "leave", "policy", "other"], dtype=object)


def test_chi2_matches_chi2_contingency() -> None:
    rng = np.random.default_rng(5)
    ref = rng.choice(CATS, size=3000, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    win = rng.choice(CATS, size=400, p=[0.25, 0.25, 0.2, 0.2, 0.1])
    res = ChiSquare(min_expected=0).fit(ref).test(list(win), alpha=0.05)
    rc, wc = Counter(ref), Counter(win)
    table = np.array([[rc[c] for c in CATS], [wc[c] for c in CATS]])
    oracle = stats.chi2_contingency(table, correction=False)
    assert res.value == pytest.approx(oracle.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert res.threshold == pytest.approx(stats.chi2.isf(0.05, oracle.dof))


def test_chi2_unseen_categories_go_to_other() -> None:
    rng = np.random.default_rng(6)
    ref = rng.choice(CATS[:4], size=2000)
    win = list(rng.choice(CATS[:4], size=300)) + ["relocation"] * 20 + ["visa"] * 10
    res = ChiSquare(min_expected=0).fit(ref).test(win)
    rc, wc = Counter(ref), Counter(win)
    table = np.array(
        [
            [rc[c] for c in CATS[:4]] + [0],
            [wc[c] for c in CATS[:4]] + [wc["relocation"] + wc["visa"]],
        ]
    )
    oracle = stats.chi2_contingency(table, correction=False)
    assert res.value == pytest.approx(oracle.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(oracle.pvalue, rel=1e-9, abs=1e-300)
    assert res.details["window_other_share"] == pytest.approx(30 / 330)
    assert res.details["top_categories"][0]["category"] == "__other__"


def test_chi2_pools_rare_categories_before_testing() -> None:
    """One occurrence of a one-in-5000 category must not be an alarm on its own."""
    ref = np.array(["a"] * 2500 + ["b"] * 2499 + ["rare"], dtype=object)
    win = ["a"] * 100 + ["b"] * 99 + ["rare"]
    unpooled = ChiSquare(min_expected=0).fit(ref).test(win)
    pooled = ChiSquare(min_expected=5).fit(ref).test(win)
    assert unpooled.p_value < 0.01  # what Cochran's rule protects against
    # oracle: "rare" alone is still expected < 5 times, so the next-smallest
    # category, "b", joins it
    oracle = stats.chi2_contingency(np.array([[2500, 2500], [100, 100]]), correction=False)
    assert pooled.value == pytest.approx(oracle.statistic, abs=1e-12)
    assert pooled.p_value == pytest.approx(oracle.pvalue)
    assert set(pooled.details["pooled"]) == {"b", "rare"}


def test_chi2_pooling_keeps_a_flood_of_new_categories_visible() -> None:
    ref = np.array(["a"] * 3000 + ["b"] * 2000, dtype=object)
    win = ["a"] * 150 + ["b"] * 100 + ["new_intent"] * 50
    res = ChiSquare(min_expected=5).fit(ref).test(win)
    table = np.array([[3000, 2000, 0], [150, 100, 50]])
    oracle = stats.chi2_contingency(table, correction=False)
    assert res.value == pytest.approx(oracle.statistic)  # __other__ is never pooled away
    assert res.p_value < 1e-10


# ----------------------------------------------------------------------------- MMD


def exact_biased_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * bandwidth**2))

    return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())


@pytest.mark.parametrize("shift", [0.3, 0.8])
def test_mmd_rff_matches_exact_kernel_mmd(shift: float) -> None:
    rng = np.random.default_rng(8)
    ref, win = rng.normal(size=(600, 5)), rng.normal(size=(400, 5))
    win[:, 0] += shift
    fitted = MMD(n_features=4096, seed=1).fit(ref)
    res = fitted.test(win)
    exact = exact_biased_mmd2(ref, win, fitted.bandwidth)
    assert res.value == pytest.approx(exact, rel=0.1, abs=2e-3)


def test_mmd_bandwidth_is_the_median_pairwise_distance() -> None:
    ref = np.random.default_rng(9).normal(size=(500, 3))
    assert median_bandwidth(ref, np.random.default_rng(0)) == pytest.approx(
        float(np.median(pdist(ref)))
    )
    assert MMD().fit(ref).bandwidth == pytest.approx(float(np.median(pdist(ref))))


def test_mmd_same_seed_same_features_and_details() -> None:
    rng = np.random.default_rng(10)
    ref, win = rng.normal(size=(2000, 4)), rng.normal(size=(300, 4)) + 0.5
    a, b = MMD(seed=3).fit(ref), MMD(seed=3).fit(ref)
    assert np.array_equal(a.freqs, b.freqs)
    res = a.test(win)
    assert res.details["mean_shift_norm"] == pytest.approx(
        float(np.linalg.norm(win.mean(0) - ref.mean(0)))
    )
    assert res.drifted


def test_mmd_null_mean_matches_trace_of_feature_covariance() -> None:
    """E[MMD^2] under H0 = (1/n + 1/m) tr(S); tr(S) = 1 - |mean phi|^2 for RFF."""
    rng = np.random.default_rng(11)
    fitted = MMD(n_features=128).fit(rng.normal(size=(20_000, 3)))
    n = 500
    values = [fitted.test(rng.normal(size=(n, 3))).value for _ in range(400)]
    expected = (1 / n + 1 / 20_000) * (1 - fitted.mu_ref @ fitted.mu_ref)
    assert np.mean(values) == pytest.approx(expected, rel=0.1)
    assert fitted.cumulants[0] == pytest.approx(1 - fitted.mu_ref @ fitted.mu_ref, rel=1e-6)


def test_mmd_rejects_other_dimension() -> None:
    fitted = MMD().fit(np.random.default_rng(0).normal(size=(100, 4)))
    with pytest.raises(DriftInputError):
        fitted.test(np.zeros((10, 5)))
    with pytest.raises(DriftInputError):
        fitted.test([[0.0] * 5] * 10)


# ----------------------------------------------------------------------------- PSI


def test_psi_discrete_column_gets_one_bin_per_value() -> None:
    rng = np.random.default_rng(12)
    ref = rng.choice([1, 2, 3, 4, 5], size=10_000, p=[0.15, 0.15, 0.2, 0.25, 0.25])
    win = rng.choice([1, 2, 3, 4, 5], size=700, p=[0.1, 0.1, 0.2, 0.3, 0.3])
    fitted = PSI().fit(ref)
    assert fitted.n_bins == 5
    r = pd.Series(ref).value_counts(normalize=True).sort_index().to_numpy()
    w = pd.Series(win).value_counts(normalize=True).sort_index().to_numpy()
    assert fitted.test(win).value == pytest.approx(float(((w - r) * np.log(w / r)).sum()))


def test_psi_discrete_value_below_one_bin_of_mass_joins_its_neighbour() -> None:
    ref = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], [50, 100, 200, 350, 300])
    fitted = PSI(bins=10).fit(ref)
    assert fitted.edges.tolist() == [2.0, 3.0, 4.0]  # 1 (5%) shares the bin (-inf, 2]
    assert fitted.ref_share.tolist() == [0.15, 0.2, 0.35, 0.3]


def test_psi_continuous_matches_numpy_recomputation() -> None:
    rng = np.random.default_rng(13)
    ref, win = rng.gamma(2.0, size=20_000), rng.gamma(2.3, size=3000)
    fitted = PSI(bins=10).fit(ref)
    qs = np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf")
    r = np.bincount(np.digitize(ref, qs, right=True), minlength=10) / ref.size
    w = np.bincount(np.digitize(win, qs, right=True), minlength=10) / win.size
    assert np.allclose(r, 0.1, atol=1e-3)  # quantile bins hold equal reference mass
    res = fitted.test(win)
    assert res.value == pytest.approx(float(((w - r) * np.log(w / r)).sum()), rel=1e-12)


def test_psi_smooths_empty_bins_with_half_a_count() -> None:
    ref = np.arange(1000, dtype=float)
    win = np.full(300, 10.0)  # every value in the first decile
    res = PSI(bins=10).fit(ref).test(win)
    counts = np.array([300] + [0.5] * 9)
    w, r = counts / counts.sum(), np.full(10, 0.1)
    assert res.value == pytest.approx(float(((w - r) * np.log(w / r)).sum()))
    assert res.details["empty_window_bins"] == 9
    assert res.details["top_bins"][0]["upper"] == 99.0


def test_psi_uses_the_chi2_formula_for_large_windows() -> None:
    rng = np.random.default_rng(14)
    ref, win = rng.normal(size=50_000), rng.normal(0.02, size=5000)
    res = PSI().fit(ref).test(win, alpha=0.01)
    scale = 1 / 5000 + 1 / 50_000
    assert res.threshold == pytest.approx(scale * stats.chi2.ppf(0.99, 9))
    assert res.p_value == pytest.approx(stats.chi2.sf(res.value / scale, 9))


def test_psi_threshold_shrinks_with_window_size() -> None:
    fitted = PSI().fit(np.random.default_rng(15).normal(size=50_000))
    thr = [fitted.result(fitted.update(fitted.init(), np.linspace(-2, 2, n)), 0.01).threshold
           for n in (50, 200, 1000, 5000)]  # fmt: skip
    assert thr == sorted(thr, reverse=True)
    assert thr[0] > 0.2 > 0.1 > thr[-1]  # neither folk cut-off is right at both ends


def test_psi_rejects_constant_reference() -> None:
    with pytest.raises(DriftConfigError) as exc:
        PSI().fit(np.ones(100), column="satisfaction")
    assert exc.value.column == "satisfaction"
    assert isinstance(exc.value, DriftlineError)


# ----------------------------------------------------------------------------- contract


def _fitted_and_halves():
    rng = np.random.default_rng(16)
    num_ref, num_win = rng.normal(size=4000), rng.normal(0.1, size=900)
    cat_ref = rng.choice(CATS, size=4000)
    cat_win = np.array(list(rng.choice(CATS, size=880)) + ["new"] * 20, dtype=object)
    emb_ref, emb_win = rng.normal(size=(4000, 3)), rng.normal(size=(900, 3))
    return [
        (PSI().fit(num_ref), num_win),
        (KS().fit(num_ref), num_win),
        (KS(exact_max_cells=0).fit(num_ref), num_win),
        (ChiSquare().fit(cat_ref), cat_win),
        (MMD(n_features=64).fit(emb_ref), emb_win),
    ]


@pytest.mark.parametrize("case", range(5))
def test_merge_equals_update_on_the_union(case: int) -> None:
    fitted, win = _fitted_and_halves()[case]
    order = np.random.default_rng(case).permutation(len(win))
    a, b = win[order[:333]], win[order[333:]]
    merged = fitted.merge(fitted.update(fitted.init(), a), fitted.update(fitted.init(), b))
    whole = fitted.update(fitted.init(), win)
    r1, r2 = fitted.result(merged, 0.01), fitted.result(whole, 0.01)
    assert (r1.n_window, r1.n_reference) == (r2.n_window, r2.n_reference) == (len(win), 4000)
    assert r1.value == pytest.approx(r2.value, rel=1e-9, abs=1e-15)
    assert r1.p_value == pytest.approx(r2.p_value, rel=1e-9, abs=1e-300)
    assert r1.threshold == pytest.approx(r2.threshold, rel=1e-12)


@pytest.mark.parametrize("case", range(5))
def test_merge_does_not_mutate_its_arguments(case: int) -> None:
    fitted, win = _fitted_and_halves()[case]
    a = fitted.update(fitted.init(), win[:100])
    before = pickle.dumps(a)
    fitted.merge(a, fitted.update(fitted.init(), win[100:]))
    assert pickle.dumps(a) == before


@pytest.mark.parametrize("case", range(5))
def test_pickle_round_trip_of_fitted_tests_and_accumulators(case: int) -> None:
    fitted, win = _fitted_and_halves()[case]
    acc = fitted.update(fitted.init(), win[:400])
    fitted2, acc2 = pickle.loads(pickle.dumps((fitted, acc)))
    acc2 = fitted2.update(acc2, win[400:])
    acc = fitted.update(acc, win[400:])
    assert fitted2.result(acc2, 0.01) == fitted.result(acc, 0.01)


def test_missing_values_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(17)
    ref = rng.normal(size=2000)
    values = [1.0, None, float("nan"), 0.5, pd.NA, -0.2, float("inf")]
    for fitted in (PSI().fit(ref), KS().fit(ref)):
        res = fitted.test(values)
        assert res.n_window == 3
        assert res.details["n_missing"] == 4
        assert res.value == pytest.approx(fitted.test([1.0, 0.5, -0.2]).value)
    cats = ChiSquare().fit(rng.choice(CATS, size=500)).test(["leave", None, np.nan, "payroll"])
    assert (cats.n_window, cats.details["n_missing"]) == (2, 2)
    mmd = MMD(n_features=16).fit(rng.normal(size=(200, 2)))
    res = mmd.test([[0.1, 0.2], None, [np.nan, 1.0], [0.3, -0.1]])
    assert (res.n_window, res.details["n_missing"]) == (2, 2)


def test_inputs_from_pandas_and_pyarrow_read_like_numpy() -> None:
    rng = np.random.default_rng(18)
    ref, win = rng.normal(size=3000), rng.normal(size=500)
    fitted = KS().fit(pd.Series(ref))
    expect = fitted.test(win).value
    assert fitted.test(pd.Series(win)).value == expect
    assert fitted.test(pa.array(win)).value == expect
    assert fitted.test(pa.chunked_array([win[:200], win[200:]])).value == expect
    cats = rng.choice(CATS, size=300)
    chi = ChiSquare().fit(rng.choice(CATS, size=3000))
    assert chi.test(pa.array(list(cats))).value == chi.test(cats).value


def test_empty_window_and_bad_alpha_are_errors() -> None:
    fitted = KS().fit(np.arange(10.0))
    with pytest.raises(DriftInputError):
        fitted.test([None, float("nan")])
    with pytest.raises(DriftConfigError):
        fitted.test([1.0, 2.0], alpha=1.5)
    with pytest.raises(DriftInputError):
        fitted.test(["a", "b"])
    with pytest.raises(DriftConfigError):
        KS().fit([1.0])
