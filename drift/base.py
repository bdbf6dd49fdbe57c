"""The narrow contract every drift statistic fills.

A :class:`DriftTest` is fitted on a reference and returns a :class:`FittedTest`. The
fitted test is an aggregate in the streaming sense: ``init`` / ``update`` / ``merge`` /
``result``, so the same object is a Flink accumulator, a batch function and the thing
a unit test checks against scipy. The base classes run the workflow (cleaning,
missing-value counting, argument checks); each statistic fills the hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from drift.errors import DriftConfigError, DriftInputError
from drift.inputs import CLEANERS, Kind


@dataclass(frozen=True)
class TestResult:
    """One statistic evaluated on one window.

    ``threshold`` is the value of the statistic at which ``p_value`` equals ``alpha``
    for this window size, so ``value > threshold`` and ``p_value < alpha`` agree.
    """

    __test__ = False  # not a pytest class

    statistic: str
    value: float
    threshold: float
    p_value: float
    alpha: float
    n_window: int
    n_reference: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.p_value <= self.alpha


@dataclass(frozen=True)
class Score:
    """What a window says before a level is chosen."""

    value: float
    p_value: float
    details: dict[str, Any]


@dataclass
class Accumulator:
    """Mergeable window state; subclasses add the statistic's payload.

    ``n`` counts the valid values folded in, ``n_missing`` the dropped ones.
    """

    n: int = 0
    n_missing: int = 0


A = TypeVar("A", bound=Accumulator)


class FittedTest(ABC, Generic[A]):
    """A statistic fitted on a reference: picklable, cheap to copy into Flink state.

    ``update`` may mutate the accumulator it is given and returns it; ``merge`` never
    mutates its arguments. Both feed only *valid* values to the hooks.
    """

    statistic: ClassVar[str]
    kind: ClassVar[Kind]

    def __init__(self, column: str | None, n_reference: int, n_reference_missing: int) -> None:
        self.column = column
        self.n_reference = n_reference
        self.n_reference_missing = n_reference_missing

    # -- workflow -------------------------------------------------------------------
    def init(self) -> A:
        return self._init()

    def clean(self, values: Any) -> tuple[np.ndarray, int]:
        """Valid values and the number dropped as missing."""
        return CLEANERS[self.kind](values, self.column)

    def update(self, acc: A, values: Any) -> A:
        clean, n_missing = self.clean(values)
        return self.update_clean(acc, clean, n_missing)

    def update_clean(self, acc: A, clean: np.ndarray, n_missing: int = 0) -> A:
        """Fold values already passed through :meth:`clean` (a monitor cleans once)."""
        acc.n_missing += int(n_missing)
        if len(clean):
            self._update(acc, clean)
            acc.n += len(clean)
        return acc

    def merge(self, a: A, b: A) -> A:
        out = self._merge(a, b)
        out.n = a.n + b.n
        out.n_missing = a.n_missing + b.n_missing
        return out

    def score(self, acc: A) -> Score:
        """Statistic, p-value and details, without a level (a monitor picks it later)."""
        if acc.n == 0:
            raise DriftInputError(self.column, f"{self.statistic}: the window holds no valid value")
        value, p_value, details = self._result(acc)
        return Score(float(value), float(min(max(p_value, 0.0), 1.0)), details)

    def judge(self, acc: A, score: Score, alpha: float) -> TestResult:
        """``score`` judged at level ``alpha``: adds the threshold at that level."""
        _check_alpha(alpha)
        return TestResult(
            statistic=self.statistic,
            value=score.value,
            threshold=float(self._threshold(acc, alpha)),
            p_value=score.p_value,
            alpha=float(alpha),
            n_window=acc.n,
            n_reference=self.n_reference,
            details={**score.details, "n_missing": acc.n_missing},
        )

    def result(self, acc: A, alpha: float) -> TestResult:
        _check_alpha(alpha)  # before the work of scoring
        return self.judge(acc, self.score(acc), alpha)

    def test(self, values: Any, alpha: float = 0.05) -> TestResult:
        """One-shot: the result of a single batch."""
        return self.result(self.update(self.init(), values), alpha)

    # -- hooks ----------------------------------------------------------------------
    @abstractmethod
    def _init(self) -> A: ...

    @abstractmethod
    def _update(self, acc: A, clean: np.ndarray) -> None:
        """Fold a non-empty batch of valid values into ``acc`` in place."""

    @abstractmethod
    def _merge(self, a: A, b: A) -> A:
        """A new accumulator holding the payload of both (counts are set by the base)."""

    @abstractmethod
    def _result(self, acc: A) -> tuple[float, float, dict[str, Any]]:
        """(value, p_value, details) for a non-empty window."""

    @abstractmethod
    def _threshold(self, acc: A, alpha: float) -> float:
        """The statistic's critical value at ``alpha`` for this window."""


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise DriftConfigError("alpha", f"must lie in (0, 1), got {alpha}")


class DriftTest(ABC):
    """Unfitted statistic: its parameters, and the fit hook."""

    statistic: ClassVar[str]
    kind: ClassVar[Kind]
    min_reference: ClassVar[int] = 2

    def fit(self, reference: Any, column: str | None = None) -> FittedTest[Any]:
        clean, n_missing = CLEANERS[self.kind](reference, column)
        if len(clean) < self.min_reference:
            raise DriftConfigError(
                f"reference[{column}]",
                f"{self.statistic} needs at least {self.min_reference} valid reference "
                f"values, got {len(clean)} ({n_missing} missing)",
                column=column,
                statistic=self.statistic,
            )
        return self._fit(clean, column, n_missing)

    @abstractmethod
    def _fit(self, reference: np.ndarray, column: str | None, n_missing: int) -> FittedTest[Any]:
        """Build the fitted test from valid reference values."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Parameters that change the fitted test; part of the reference id."""
