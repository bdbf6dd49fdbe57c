"""Typed monitor configuration and the registry from check to statistic.

Built once at the edge (CLI, job settings) and passed in; ``extra="forbid"`` makes a
misspelt key an error instead of a silently ignored default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drift.base import DriftTest
from drift.chi2 import ChiSquare
from drift.ks import KS
from drift.mmd import MMD
from drift.psi import PSI

Statistic = Literal["psi", "ks", "chi2", "mmd"]
ColumnKind = Literal["numeric", "categorical", "embedding"]

ALLOWED: dict[str, frozenset[str]] = {
    "numeric": frozenset({"psi", "ks"}),
    "categorical": frozenset({"chi2"}),
    "embedding": frozenset({"mmd"}),
}


class ColumnCheck(BaseModel):
    """The statistics to run on one column (or one embedding group).

    The tuning fields apply to the statistic named in their prefix and are part of
    the reference id, so changing them re-versions the profile.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(min_length=1)
    kind: ColumnKind
    statistics: list[Statistic] = Field(min_length=1)
    psi_bins: int = Field(default=10, ge=2)
    ks_exact_max_cells: int = Field(default=100_000, ge=0)
    chi2_min_expected: float = Field(default=5.0, ge=0)
    mmd_features: int = Field(default=256, ge=2)
    mmd_bandwidth: float | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0, description="seeds MMD frequencies and PSI's null")

    @model_validator(mode="after")
    def _statistics_fit_kind(self) -> ColumnCheck:
        wrong = [s for s in self.statistics if s not in ALLOWED[self.kind]]
        if wrong:
            raise ValueError(
                f"{self.column}: {wrong} cannot run on a {self.kind} column "
                f"(allowed: {sorted(ALLOWED[self.kind])})"
            )
        if len(set(self.statistics)) != len(self.statistics):
            raise ValueError(f"{self.column}: statistics listed twice: {self.statistics}")
        if self.mmd_features % 2:
            raise ValueError(f"{self.column}: mmd_features must be even")
        return self

    def build(self, statistic: str) -> DriftTest:
        """The unfitted statistic this check asks for."""
        if statistic == "psi":
            return PSI(bins=self.psi_bins, seed=self.seed)
        if statistic == "ks":
            return KS(exact_max_cells=self.ks_exact_max_cells)
        if statistic == "chi2":
            return ChiSquare(min_expected=self.chi2_min_expected)
        if statistic == "mmd":
            return MMD(n_features=self.mmd_features, seed=self.seed, bandwidth=self.mmd_bandwidth)
        raise ValueError(f"unknown statistic {statistic!r}")


class MonitorConfig(BaseModel):
    """One monitor: its checks and the false-alarm rate they share.

    ``alpha`` is the declared probability that a window of stationary data raises any
    alert at all (family-wise, across every test of the monitor), held by the
    ``correction``. A rejected test whose p-value is below its corrected level times
    ``critical_factor`` is ``critical``, otherwise ``warning``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="hr_chatbot", min_length=1)
    checks: list[ColumnCheck] = Field(min_length=1)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    correction: Literal["bonferroni", "holm"] = "holm"
    min_window: int = Field(default=200, ge=1)
    critical_factor: float = Field(default=0.1, gt=0, le=1)

    @model_validator(mode="after")
    def _columns_unique(self) -> MonitorConfig:
        cols = [c.column for c in self.checks]
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise ValueError(f"columns checked twice (merge their statistics): {dup}")
        return self

    @property
    def columns(self) -> list[str]:
        return [c.column for c in self.checks]

    def tests(self) -> list[tuple[str, str]]:
        """Every (column, statistic) pair, in configuration order."""
        return [(c.column, s) for c in self.checks for s in c.statistics]


def default_monitor(**overrides: object) -> MonitorConfig:
    """The HR chatbot monitor of DESIGN.md: PSI+KS on the numeric columns, chi-square
    on intent and channel, MMD on the query embedding."""
    numeric = ["response_latency_ms", "confidence", "satisfaction"]
    checks = [ColumnCheck(column=c, kind="numeric", statistics=["psi", "ks"]) for c in numeric]
    checks += [
        ColumnCheck(column=c, kind="categorical", statistics=["chi2"])
        for c in ("intent", "channel")
    ]
    checks.append(ColumnCheck(column="embedding", kind="embedding", statistics=["mmd"]))
    return MonitorConfig.model_validate({"checks": checks, **overrides})
