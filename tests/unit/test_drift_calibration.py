"""The declared false-alarm rate holds at the window sizes in use, and shifts are seen.

Seeded: every count below is reproducible; the tolerances are binomial, so a monitor
that alarmed at twice its declared rate would fail them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from drift import MonitorConfig, MonitorEvaluator, ReferenceProfile
from drift.calibration import (
    bootstrap_sampler,
    detection_delay,
    empirical_false_alarm_rate,
    shifted_stream,
)
from drift.config import ColumnCheck
from tests.unit.test_drift_data import hr_sample, small_monitor

N_WINDOWS = 1000


def binomial_ceiling(n: int, p: float, q: float = 0.99) -> int:
    """Alarm count a monitor whose true rate is exactly p stays at or below with prob q."""
    return int(stats.binom.ppf(q, n, p))


def population(n: int, rng: np.random.Generator) -> dict:
    return hr_sample(n, rng)


@pytest.mark.parametrize(("window", "min_window"), [(200, 100), (5000, 200)])
def test_monitor_false_alarm_rate_holds_on_fresh_stationary_windows(
    window: int, min_window: int
) -> None:
    cfg = small_monitor(min_window=min_window)
    report = empirical_false_alarm_rate(
        population, cfg, window, N_WINDOWS, np.random.default_rng(window), reference_size=100_000
    )
    assert report.skipped_windows == 0  # all 9 tests ran on every window
    assert report.n_alarmed <= binomial_ceiling(N_WINDOWS, cfg.alpha), report


def test_monitor_false_alarm_rate_holds_on_bootstrapped_windows() -> None:
    rng = np.random.default_rng(11)
    reference = hr_sample(30_000, rng)
    cfg = small_monitor(min_window=100)
    report = empirical_false_alarm_rate(reference, cfg, 200, N_WINDOWS, rng)
    assert report.n_alarmed <= binomial_ceiling(N_WINDOWS, cfg.alpha), report
    assert report.upper_bound(0.99) < 0.03


def psi_only(column: str = "response_latency_ms", **kw) -> MonitorConfig:
    return MonitorConfig(
        checks=[ColumnCheck(column=column, kind="numeric", statistics=["psi"])], **kw
    )


def test_fixed_psi_cutoffs_are_wrong_where_the_calibrated_threshold_is_right() -> None:
    """PSI's null mean is about (B-1)(1/n + 1/m): 0.18 at n=50, 0.002 at n=5000."""
    rng = np.random.default_rng(12)
    ref = hr_sample(100_000, rng)
    fitted = ReferenceProfile.fit(ref, psi_only()).test("response_latency_ms", "psi")

    def psi_values(n: int, windows: int, shift_sd: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        res = [fitted.test(hr_sample(n, rng, latency_shift_sd=shift_sd)["response_latency_ms"],
                           alpha=0.01) for _ in range(windows)]  # fmt: skip
        return np.array([r.value for r in res]), np.array([r.p_value for r in res])

    # small stationary windows: the folk 0.2 cut-off fires constantly, alpha holds
    values, p = psi_values(50, 2000)
    assert np.mean(values > 0.2) > 0.25
    assert np.sum(p <= 0.01) <= binomial_ceiling(2000, 0.01)
    # the plain chi2 formula, uncorrected, is anti-conservative at n=50 ...
    naive = stats.chi2.sf(values / (1 / 50 + 1 / 100_000), 9)
    assert np.sum(naive <= 0.01) > binomial_ceiling(2000, 0.01)
    # ... and 0.1 fires above alpha on one column even at n=200 (a monitor has several)
    values, _ = psi_values(200, 2000)
    assert np.sum(values > 0.1) > binomial_ceiling(2000, 0.01)
    # large windows: a real 0.15 sd shift stays under 0.1 yet is detected
    values, p = psi_values(5000, 20, shift_sd=0.15)
    assert np.all(values < 0.1)
    assert np.all(p <= 0.01)


def test_mmd_null_is_calibrated_alone() -> None:
    cfg = MonitorConfig(
        checks=[
            ColumnCheck(column="embedding", kind="embedding", statistics=["mmd"], mmd_features=64)
        ],  # fmt: skip
        alpha=0.05,
        min_window=1,
    )
    report = empirical_false_alarm_rate(
        population, cfg, 500, N_WINDOWS, np.random.default_rng(13), reference_size=50_000
    )
    assert report.n_alarmed <= binomial_ceiling(N_WINDOWS, 0.05), report
    assert report.n_alarmed >= int(stats.binom.ppf(0.01, N_WINDOWS, 0.05)) // 2  # not dead


def test_detection_delay_on_a_seeded_stream() -> None:
    rng = np.random.default_rng(14)
    cfg = small_monitor()
    ev = MonitorEvaluator(cfg, ReferenceProfile.fit(hr_sample(50_000, rng), cfg))

    def after(n: int, r: np.random.Generator) -> dict:
        return hr_sample(n, r, latency_shift_sd=0.5)

    at_boundary = detection_delay(
        ev, shifted_stream(population, after, 500, 20, 5000, rng), 5000,
        feature="response_latency_ms",
    )  # fmt: skip
    assert at_boundary.false_alarms_before == 0
    assert at_boundary.first_alarm_window == 10
    assert at_boundary.delay_events == 500
    assert at_boundary.features == ("response_latency_ms",)

    mid_window = detection_delay(ev, shifted_stream(population, after, 500, 20, 5250, rng), 5250)
    assert mid_window.delay_events in (250, 750)  # the straddling window or the next one

    never = detection_delay(ev, shifted_stream(population, population, 500, 10, 2500, rng), 2500)
    assert never.delay_events is None


def test_bootstrap_sampler_draws_whole_rows() -> None:
    ref = {"a": np.arange(100.0), "b": [f"r{i}" for i in range(100)]}
    draw = bootstrap_sampler(ref)(50, np.random.default_rng(0))
    assert [f"r{int(x)}" for x in draw["a"]] == list(draw["b"])


def test_detection_delay_counts_every_event_since_the_shift() -> None:
    """An alarm three windows after the shift is 1,500 events late, not one window."""
    rng = np.random.default_rng(15)
    cfg = MonitorConfig(
        checks=[ColumnCheck(column="x", kind="numeric", statistics=["ks"])], min_window=1
    )
    ev = MonitorEvaluator(cfg, ReferenceProfile.fit({"x": rng.normal(size=20_000)}, cfg))
    # events from 2,000 on count as shifted, but the data only move in window 6
    windows = [{"x": rng.normal(size=500)} for _ in range(6)] + [{"x": rng.normal(5.0, 1, 500)}]
    delay = detection_delay(ev, windows, shift_at_event=2000)
    assert delay.false_alarms_before == 0
    assert delay.first_alarm_window == 6
    assert delay.delay_events == 7 * 500 - 2000
