"""A seeded, HR-chatbot-shaped population for the drift tests (no streams import).

Columns follow DESIGN.md: response_latency_ms (lognormal), confidence (beta),
satisfaction (1..5, often missing), intent and channel (categorical), embedding (n x d).
``shift`` moves one column by a stated amount so tests can pin what must alarm.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drift.config import ColumnCheck, MonitorConfig

INTENTS = ["benefits", "payroll", "leave", "performance_review", "onboarding", "it_access",
           "policy", "other"]  # fmt: skip
INTENT_P = np.array([0.2, 0.18, 0.17, 0.1, 0.08, 0.12, 0.1, 0.05])
CHANNELS = ["web", "slack", "teams", "email", "phone"]
CHANNEL_P = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
SAT_P = np.array([0.05, 0.1, 0.2, 0.35, 0.3])
LAT_MU, LAT_SIGMA = 6.0, 0.5
LATENCY_SD = float(np.sqrt((np.exp(LAT_SIGMA**2) - 1) * np.exp(2 * LAT_MU + LAT_SIGMA**2)))
DIM = 4


def hr_sample(
    n: int,
    rng: np.random.Generator,
    *,
    latency_shift_sd: float = 0.0,
    satisfaction_missing: float = 0.2,
    dim: int = DIM,
) -> dict[str, Any]:
    """n interactions as columns; ``latency_shift_sd`` adds that many latency sds."""
    sat = rng.choice(np.arange(1, 6), size=n, p=SAT_P).astype(np.float64)
    sat[rng.random(n) < satisfaction_missing] = np.nan
    return {
        "response_latency_ms": rng.lognormal(LAT_MU, LAT_SIGMA, n) + latency_shift_sd * LATENCY_SD,
        "confidence": rng.beta(5.0, 2.0, n),
        "satisfaction": sat,
        "intent": rng.choice(INTENTS, size=n, p=INTENT_P).astype(object),
        "channel": rng.choice(CHANNELS, size=n, p=CHANNEL_P).astype(object),
        "embedding": rng.normal(size=(n, dim)),
    }


def small_monitor(**overrides: Any) -> MonitorConfig:
    """The default HR monitor with a cheaper MMD (64 features) for many-window tests."""
    checks = [
        ColumnCheck(column=c, kind="numeric", statistics=["psi", "ks"])
        for c in ("response_latency_ms", "confidence", "satisfaction")
    ]
    checks += [
        ColumnCheck(column=c, kind="categorical", statistics=["chi2"])
        for c in ("intent", "channel")
    ]
    checks.append(
        ColumnCheck(column="embedding", kind="embedding", statistics=["mmd"], mmd_features=64)
    )
    return MonitorConfig.model_validate({"checks": checks, **overrides})


def test_sample_is_seeded_and_shaped() -> None:
    a = hr_sample(500, np.random.default_rng(7))
    b = hr_sample(500, np.random.default_rng(7))
    assert set(a) == {"response_latency_ms", "confidence", "satisfaction", "intent", "channel",
                      "embedding"}  # fmt: skip
    assert all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype != object) for k in a)
    assert a["embedding"].shape == (500, DIM)
    big = hr_sample(200_000, np.random.default_rng(1))["response_latency_ms"]
    assert abs(big.std() - LATENCY_SD) / LATENCY_SD < 0.02  # the sd the shift is stated in
