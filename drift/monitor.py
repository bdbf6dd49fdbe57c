"""Evaluate a monitor on a window and assemble ``DriftAlert`` payloads.

The evaluator is the mergeable aggregate a stream operator folds batches into
(``init`` / ``update`` / ``merge`` / ``finish``), with ``evaluate`` as the one-shot
form. Every test of the monitor that has enough data is run; the multiple-testing
correction turns the monitor's ``alpha`` into a level per test so that a stationary
window raises any alert with probability at most ``alpha``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drift.base import Accumulator, Score, TestResult
from drift.config import ColumnCheck, MonitorConfig, default_monitor
from drift.correction import corrected_levels
from drift.errors import DriftConfigError
from drift.reference import ReferenceProfile

__all__ = [
    "ColumnCheck",
    "MonitorConfig",
    "default_monitor",
    "MonitorEvaluator",
    "WindowState",
    "TestOutcome",
    "SkippedCheck",
    "WindowEvaluation",
    "alert_id",
]


@dataclass
class WindowState:
    """Accumulators of one window, keyed by (column, statistic). Picklable."""

    accs: dict[tuple[str, str], Accumulator] = field(default_factory=dict)


@dataclass(frozen=True)
class TestOutcome:
    """One test of the window, judged at its corrected ``level``."""

    __test__ = False

    column: str
    statistic: str
    result: TestResult
    level: float
    rejected: bool
    severity: str | None


@dataclass(frozen=True)
class SkippedCheck:
    """A column whose tests did not run on this window, and why."""

    column: str
    statistics: tuple[str, ...]
    n_window: int
    n_missing: int
    reason: str


@dataclass(frozen=True)
class WindowEvaluation:
    alerts: list[dict[str, Any]]
    outcomes: list[TestOutcome]
    skipped: list[SkippedCheck]

    @property
    def drifted(self) -> bool:
        return bool(self.alerts)


def alert_id(
    monitor: str,
    tenant_id: str | None,
    feature: str,
    statistic: str,
    window_start_ms: int,
    reference_id: str,
) -> str:
    """Deterministic id: a replayed window yields the same id, so sinks can dedupe."""
    key = json.dumps([monitor, tenant_id, feature, statistic, int(window_start_ms), reference_id])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class MonitorEvaluator:
    """A monitor bound to its reference profile.

    Raises :class:`DriftConfigError` if the profile lacks a test the config asks for.
    """

    def __init__(self, config: MonitorConfig, profile: ReferenceProfile) -> None:
        missing = profile.missing(config)
        if missing:
            raise DriftConfigError(
                "profile",
                f"reference {profile.reference_id} lacks fitted tests for {missing}; "
                "fit the profile with this monitor's checks",
            )
        self.config = config
        self.profile = profile
        #: per check, the statistics the reference could fit (the others are skipped)
        self._active: dict[str, list[str]] = {
            c.column: [s for s in c.statistics if (c.column, s) in profile.tests]
            for c in config.checks
        }
        self._pairs = [(c, s) for c, stats in self._active.items() for s in stats]

    # -- incremental ----------------------------------------------------------------
    def init(self) -> WindowState:
        return WindowState({pair: self.profile.test(*pair).init() for pair in self._pairs})

    def update(self, state: WindowState, batch: Mapping[str, Any]) -> WindowState:
        """Fold a batch of column values; columns absent from ``batch`` add nothing.

        Each column is cleaned once and the clean values fed to all its statistics.
        """
        for column, statistics in self._active.items():
            if column not in batch or not statistics:
                continue
            tests = [self.profile.test(column, s) for s in statistics]
            clean, n_missing = tests[0].clean(batch[column])
            for stat, test in zip(statistics, tests, strict=True):
                key = (column, stat)
                state.accs[key] = test.update_clean(state.accs[key], clean, n_missing)
        return state

    def merge(self, a: WindowState, b: WindowState) -> WindowState:
        return WindowState(
            {
                pair: self.profile.test(*pair).merge(a.accs[pair], b.accs[pair])
                for pair in self._pairs
            }
        )

    def finish(
        self,
        state: WindowState,
        window_start_ms: int,
        window_end_ms: int,
        *,
        tenant_id: str | None = None,
        detected_at_ms: int | None = None,
    ) -> WindowEvaluation:
        """Run the tests, correct across them, and assemble alerts for the rejections."""
        cfg = self.config
        skipped: list[SkippedCheck] = []
        run: list[tuple[str, str, Score]] = []
        for check in cfg.checks:
            active = self._active[check.column]
            for statistic in check.statistics:
                reason = self.profile.unfit.get((check.column, statistic))
                if reason is not None:
                    skipped.append(SkippedCheck(check.column, (statistic,), 0, 0,
                                                f"no reference: {reason}"))
            if not active:
                continue
            first = state.accs[(check.column, active[0])]
            if first.n < cfg.min_window:
                skipped.append(
                    SkippedCheck(
                        column=check.column,
                        statistics=tuple(active),
                        n_window=first.n,
                        n_missing=first.n_missing,
                        reason=f"{first.n} valid values < min_window {cfg.min_window}",
                    )
                )
                continue
            for name in active:
                test = self.profile.test(check.column, name)
                score = test.score(state.accs[(check.column, name)])
                run.append((check.column, name, score))

        levels, rejected = corrected_levels(
            [r.p_value for _, _, r in run], cfg.alpha, cfg.correction
        )
        detected = int(time.time() * 1000) if detected_at_ms is None else int(detected_at_ms)
        outcomes: list[TestOutcome] = []
        alerts: list[dict[str, Any]] = []
        for (column, stat, score), level, rej in zip(run, levels, rejected, strict=True):
            res = self.profile.test(column, stat).judge(state.accs[(column, stat)], score, level)
            severity = None
            if rej:
                severity = "critical" if res.p_value <= level * cfg.critical_factor else "warning"
            outcome = TestOutcome(column, stat, res, level, rej, severity)
            outcomes.append(outcome)
            if rej:
                alerts.append(
                    self._alert(
                        outcome, len(run), window_start_ms, window_end_ms, tenant_id, detected,
                        skipped,
                    )
                )
        return WindowEvaluation(alerts=alerts, outcomes=outcomes, skipped=skipped)

    # -- one shot -------------------------------------------------------------------
    def assess(
        self,
        window: Mapping[str, Any],
        window_start_ms: int,
        window_end_ms: int,
        *,
        tenant_id: str | None = None,
        detected_at_ms: int | None = None,
    ) -> WindowEvaluation:
        """Alerts, every test's outcome and the skipped checks of one whole window."""
        state = self.update(self.init(), window)
        return self.finish(
            state,
            window_start_ms,
            window_end_ms,
            tenant_id=tenant_id,
            detected_at_ms=detected_at_ms,
        )

    def evaluate(
        self,
        window: Mapping[str, Any],
        window_start_ms: int,
        window_end_ms: int,
        *,
        tenant_id: str | None = None,
        detected_at_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """The ``DriftAlert`` dicts of one whole window (empty when nothing moved)."""
        return self.assess(
            window,
            window_start_ms,
            window_end_ms,
            tenant_id=tenant_id,
            detected_at_ms=detected_at_ms,
        ).alerts

    # -- payload --------------------------------------------------------------------
    def _alert(
        self,
        outcome: TestOutcome,
        n_tests: int,
        window_start_ms: int,
        window_end_ms: int,
        tenant_id: str | None,
        detected_at_ms: int,
        skipped: list[SkippedCheck],
    ) -> dict[str, Any]:
        cfg, res = self.config, outcome.result
        details = {
            **res.details,
            "monitor_alpha": cfg.alpha,
            "level": outcome.level,
            "correction": cfg.correction,
            "n_tests": n_tests,
        }
        if skipped:
            # The tests this window did not run: a consumer must not read their absence
            # as "no drift there".
            details["skipped"] = {
                f"{s.column}:{stat}": s.reason for s in skipped for stat in s.statistics
            }
        return {
            "alert_id": alert_id(
                cfg.name,
                tenant_id,
                outcome.column,
                outcome.statistic,
                window_start_ms,
                self.profile.reference_id,
            ),
            "monitor": cfg.name,
            "tenant_id": tenant_id,
            "feature": outcome.column,
            "statistic": outcome.statistic,
            "value": res.value,
            "threshold": res.threshold,
            "p_value": res.p_value,
            "window_start": int(window_start_ms),
            "window_end": int(window_end_ms),
            "n_window": res.n_window,
            "n_reference": res.n_reference,
            "reference_id": self.profile.reference_id,
            "severity": outcome.severity,
            "detected_at": detected_at_ms,
            "details": details_json(details),
        }


def details_json(details: Mapping[str, Any]) -> str:
    """Compact, key-sorted, strict JSON (numpy scalars unwrapped, NaN/inf as null)."""
    return json.dumps(_plain(details), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
