"""Measure what the declared false-alarm rate promises, and how fast shifts are seen.

Used by tests and benchmarks: draw stationary windows (a bootstrap of the reference
rows, or fresh draws from a generator), count the windows that raise any alert, and
for a stream with a shift, count the events between the shift and the first alarm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from drift.config import MonitorConfig
from drift.monitor import MonitorEvaluator
from drift.reference import ReferenceProfile

Columns = Mapping[str, Any]
Sampler = Callable[[int, np.random.Generator], Columns]
"""``sampler(n, rng)`` returns n rows as columns (numpy arrays or lists)."""


def _take(values: Any, idx: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[idx]
    if isinstance(values, pd.Series):
        return values.to_numpy()[idx]
    return [values[i] for i in idx]


def bootstrap_sampler(reference: Columns) -> Sampler:
    """Rows drawn with replacement from ``reference``, jointly across columns.

    Windows drawn from the reference's own empirical distribution vary less than
    windows from the population (the reference is then the truth), so rates measured
    this way are a little conservative; use a generator for the exact null.
    """
    cols = {k: (v.to_numpy() if isinstance(v, pd.Series) else v) for k, v in reference.items()}
    n_rows = min(len(v) for v in cols.values())

    def sample(n: int, rng: np.random.Generator) -> Columns:
        idx = rng.integers(0, n_rows, size=n)
        return {k: _take(v, idx) for k, v in cols.items()}

    return sample


@dataclass(frozen=True)
class FalseAlarmReport:
    """Stationary windows that raised any alert, and which tests raised them."""

    window_size: int
    n_windows: int
    n_alarmed: int
    alpha: float
    by_test: dict[str, int]
    skipped_windows: int

    @property
    def rate(self) -> float:
        return self.n_alarmed / self.n_windows

    def upper_bound(self, confidence: float = 0.99) -> float:
        """One-sided Clopper-Pearson upper bound on the true alarm rate."""
        if self.n_alarmed == self.n_windows:
            return 1.0
        return float(
            stats.beta.ppf(confidence, self.n_alarmed + 1, self.n_windows - self.n_alarmed)
        )


def empirical_false_alarm_rate(
    reference: Columns | Sampler,
    config: MonitorConfig,
    window_size: int,
    n_windows: int,
    rng: np.random.Generator,
    *,
    profile: ReferenceProfile | None = None,
    reference_size: int = 20_000,
) -> FalseAlarmReport:
    """Fraction of stationary windows of ``window_size`` rows that raise any alert.

    ``reference`` is either the reference columns (windows are bootstrapped from its
    rows) or a sampler of the stationary population. Without ``profile``, one is fitted
    on the columns, or on ``reference_size`` rows drawn from the sampler.
    """
    if callable(reference):
        sampler = reference
        if profile is None:
            profile = ReferenceProfile.fit(
                sampler(reference_size, rng), config, source="calibration"
            )
    else:
        sampler = bootstrap_sampler(reference)
        if profile is None:
            profile = ReferenceProfile.fit(reference, config, source="calibration")
    evaluator = MonitorEvaluator(config, profile)
    alarmed, skipped = 0, 0
    by_test: Counter[str] = Counter()
    for k in range(n_windows):
        ev = evaluator.assess(sampler(window_size, rng), k, k + 1, detected_at_ms=0)
        alarmed += bool(ev.alerts)
        skipped += bool(ev.skipped)
        by_test.update(f"{a['feature']}:{a['statistic']}" for a in ev.alerts)
    return FalseAlarmReport(window_size, n_windows, alarmed, config.alpha, dict(by_test), skipped)


@dataclass(frozen=True)
class DetectionDelay:
    """How a monitor met a shift in a stream of consecutive windows.

    ``delay_events`` counts events from the first shifted one to the end of the first
    alarmed window that contains shifted events (None: never detected);
    ``false_alarms_before`` counts alarmed windows made only of pre-shift events.
    """

    delay_events: int | None
    first_alarm_window: int | None
    false_alarms_before: int
    features: tuple[str, ...]


def _length(window: Columns) -> int:
    return max(len(v) for v in window.values())


def detection_delay(
    evaluator: MonitorEvaluator,
    windows: Iterable[Columns],
    shift_at_event: int,
    *,
    feature: str | None = None,
) -> DetectionDelay:
    """Walk ``windows`` in order (event ``i`` of the stream is in the window holding it)
    and report when the monitor first alarmed after the shift. With ``feature``, only
    alerts on that feature count as detection."""
    seen, false_alarms = 0, 0
    for k, window in enumerate(windows):
        seen += _length(window)
        alerts = evaluator.evaluate(window, k, k + 1, detected_at_ms=0)
        if feature is not None:
            alerts = [a for a in alerts if a["feature"] == feature]
        if seen <= shift_at_event:
            false_alarms += bool(alerts)
        elif alerts:
            feats = tuple(sorted({a["feature"] for a in alerts}))
            return DetectionDelay(seen - shift_at_event, k, false_alarms, feats)
    return DetectionDelay(None, None, false_alarms, ())


def shifted_stream(
    before: Sampler,
    after: Sampler,
    window_size: int,
    n_windows: int,
    shift_at_event: int,
    rng: np.random.Generator,
) -> Iterator[Columns]:
    """Consecutive windows whose events come from ``before`` until ``shift_at_event``
    and from ``after`` from then on (the window straddling the shift holds both)."""
    for k in range(n_windows):
        start = k * window_size
        n_before = min(max(shift_at_event - start, 0), window_size)
        parts = []
        if n_before:
            parts.append(before(n_before, rng))
        if window_size - n_before:
            parts.append(after(window_size - n_before, rng))
        yield _concat(parts)


def _concat(parts: list[Columns]) -> Columns:
    if len(parts) == 1:
        return parts[0]
    out: dict[str, Any] = {}
    for key in parts[0]:
        vals = [p[key] for p in parts]
        if all(isinstance(v, np.ndarray) for v in vals):
            out[key] = np.concatenate(vals)
        else:
            out[key] = [x for v in vals for x in v]
    return out
