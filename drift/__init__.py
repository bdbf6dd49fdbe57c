"""Pure drift statistics for driftline: PSI, KS, chi-square and RFF-MMD as mergeable
accumulators, reference profiles, multiple-testing correction, alert assembly and
calibration. No Flink, Kafka, Feast or Redis here: the adapters live in ``streams``.
"""

from drift.base import Accumulator, DriftTest, FittedTest, Score, TestResult
from drift.chi2 import ChiSquare
from drift.config import ColumnCheck, MonitorConfig, default_monitor
from drift.errors import DriftConfigError, DriftError, DriftInputError
from drift.ks import KS
from drift.mmd import MMD
from drift.monitor import MonitorEvaluator, WindowEvaluation
from drift.psi import PSI
from drift.reference import ReferenceProfile

__all__ = [
    "KS",
    "MMD",
    "PSI",
    "Accumulator",
    "ChiSquare",
    "ColumnCheck",
    "DriftConfigError",
    "DriftError",
    "DriftInputError",
    "DriftTest",
    "FittedTest",
    "MonitorConfig",
    "MonitorEvaluator",
    "ReferenceProfile",
    "Score",
    "TestResult",
    "WindowEvaluation",
    "default_monitor",
]
