"""Monitor configuration, reference profiles and alert assembly."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from scipy import stats

from drift import (
    ColumnCheck,
    DriftConfigError,
    MonitorConfig,
    MonitorEvaluator,
    ReferenceProfile,
    default_monitor,
)
from drift.correction import corrected_levels
from tests.unit.test_drift_data import hr_sample, small_monitor

# The DriftAlert contract of DESIGN.md, written out here rather than imported.
DRIFT_ALERT_FIELDS = {
    "alert_id", "monitor", "tenant_id", "feature", "statistic", "value", "threshold",
    "p_value", "window_start", "window_end", "n_window", "n_reference", "reference_id",
    "severity", "detected_at", "details",
}  # fmt: skip


@pytest.fixture(scope="module")
def reference() -> dict:
    return hr_sample(20_000, np.random.default_rng(100))


@pytest.fixture(scope="module")
def profile(reference: dict) -> ReferenceProfile:
    return ReferenceProfile.fit(reference, small_monitor(), source="unit")


# ----------------------------------------------------------------------------- config


def test_default_monitor_covers_the_hr_columns() -> None:
    cfg = default_monitor()
    assert cfg.name == "hr_chatbot" and cfg.alpha == 0.01 and cfg.correction == "holm"
    assert set(cfg.tests()) == {
        ("response_latency_ms", "psi"), ("response_latency_ms", "ks"),
        ("confidence", "psi"), ("confidence", "ks"),
        ("satisfaction", "psi"), ("satisfaction", "ks"),
        ("intent", "chi2"), ("channel", "chi2"), ("embedding", "mmd"),
    }  # fmt: skip
    assert default_monitor(alpha=0.05).alpha == 0.05


@pytest.mark.parametrize(
    "bad",
    [
        {"checks": [{"column": "x", "kind": "numeric", "statistics": ["psi"], "bins": 5}]},
        {"checks": [{"column": "x", "kind": "categorical", "statistics": ["psi"]}]},
        {"checks": [{"column": "x", "kind": "embedding", "statistics": ["ks"]}]},
        {"checks": [{"column": "x", "kind": "numeric", "statistics": []}]},
        {"checks": []},
        {"checks": [{"column": "x", "kind": "numeric", "statistics": ["ks"]}], "alpha": 0},
        {"checks": [{"column": "x", "kind": "numeric", "statistics": ["ks"]}], "typo": 1},
        {
            "checks": [
                {"column": "x", "kind": "numeric", "statistics": ["ks"]},
                {"column": "x", "kind": "numeric", "statistics": ["psi"]},
            ]
        },
    ],
)
def test_invalid_configs_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        MonitorConfig.model_validate(bad)


# ----------------------------------------------------------------------------- profile


def test_reference_id_is_a_content_hash(reference: dict, profile: ReferenceProfile) -> None:
    assert re.fullmatch(r"unit:20000:[0-9a-f]{12}", profile.reference_id)
    again = ReferenceProfile.fit({k: v.copy() for k, v in reference.items()}, small_monitor(),
                                 source="unit")  # fmt: skip
    assert again.reference_id == profile.reference_id
    changed = dict(reference, confidence=reference["confidence"] * 1.0001)
    assert ReferenceProfile.fit(changed, small_monitor(), source="unit").reference_id != (
        profile.reference_id
    )
    retuned = small_monitor().model_copy(
        update={
            "checks": [
                ColumnCheck(column="confidence", kind="numeric", statistics=["psi"], psi_bins=20)
            ]
        }  # fmt: skip
    )
    one = small_monitor().model_copy(
        update={"checks": [ColumnCheck(column="confidence", kind="numeric", statistics=["psi"])]}
    )
    assert (
        ReferenceProfile.fit(reference, retuned).reference_id
        != ReferenceProfile.fit(reference, one).reference_id
    )


def test_profile_from_parquet_equals_profile_from_columns(tmp_path, reference: dict) -> None:
    n = 3000
    cols = {k: v[:n] for k, v in reference.items()}
    table = pa.table(
        {
            "response_latency_ms": pa.array(cols["response_latency_ms"]),
            "confidence": pa.array(cols["confidence"]),
            "satisfaction": pa.array(
                [None if np.isnan(s) else int(s) for s in cols["satisfaction"]], pa.int32()
            ),
            "intent": pa.array(list(cols["intent"])),
            "channel": pa.array(list(cols["channel"])),
            "embedding": pa.array([list(r) for r in cols["embedding"]], pa.list_(pa.float64())),
            "unused": pa.array(np.zeros(n)),
        }
    )
    pq.write_table(table, tmp_path / "ref.parquet")
    from_file = ReferenceProfile.from_parquet(tmp_path / "ref.parquet", small_monitor(),
                                              source="train")  # fmt: skip
    inline = ReferenceProfile.fit(cols, small_monitor(), source="train")
    assert from_file.reference_id == inline.reference_id
    win = hr_sample(500, np.random.default_rng(1))
    a = MonitorEvaluator(small_monitor(), from_file).assess(win, 0, 1, detected_at_ms=0)
    b = MonitorEvaluator(small_monitor(), inline).assess(win, 0, 1, detected_at_ms=0)
    assert [o.result.p_value for o in a.outcomes] == [o.result.p_value for o in b.outcomes]


def test_profile_from_first_n_records(reference: dict) -> None:
    rows = [{k: reference[k][i] for k in reference} for i in range(2000)]
    rows[5]["satisfaction"] = None
    del rows[6]["channel"]  # an absent key counts as missing
    prof = ReferenceProfile.from_records(rows, small_monitor(), source="first-2000")
    assert prof.reference_id.startswith("first-2000:2000:")
    assert prof.test("channel", "chi2").n_reference == 1999


def test_profile_missing_column_names_it(reference: dict) -> None:
    data = {k: v for k, v in reference.items() if k != "intent"}
    with pytest.raises(DriftConfigError) as exc:
        ReferenceProfile.fit(data, small_monitor())
    assert exc.value.column == "intent"


def test_evaluator_refuses_a_profile_without_the_tests(profile: ReferenceProfile) -> None:
    cfg = MonitorConfig(checks=[ColumnCheck(column="locale", kind="categorical",
                                            statistics=["chi2"])])  # fmt: skip
    with pytest.raises(DriftConfigError):
        MonitorEvaluator(cfg, profile)


def test_pickled_profile_and_state_give_the_same_alerts(profile: ReferenceProfile) -> None:
    ev = MonitorEvaluator(small_monitor(), profile)
    win = hr_sample(1000, np.random.default_rng(2), latency_shift_sd=0.5)
    state = ev.update(ev.init(), {k: v[:400] for k, v in win.items()})
    prof2, state2 = pickle.loads(pickle.dumps((profile, state)))
    ev2 = MonitorEvaluator(small_monitor(), prof2)
    state2 = ev2.update(state2, {k: v[400:] for k, v in win.items()})
    state = ev.update(state, {k: v[400:] for k, v in win.items()})
    assert (
        ev2.finish(state2, 0, 1, detected_at_ms=5).alerts
        == ev.finish(state, 0, 1, detected_at_ms=5).alerts
    )


# ----------------------------------------------------------------------------- alerts


def test_half_sd_latency_shift_alerts_on_latency_only(profile: ReferenceProfile) -> None:
    ev = MonitorEvaluator(small_monitor(), profile)
    win = hr_sample(1000, np.random.default_rng(3), latency_shift_sd=0.5)
    result = ev.assess(win, 60_000, 120_000, tenant_id="acme", detected_at_ms=130_000)
    assert result.alerts, "a 0.5 sd shift at n=1000 must be detected"
    assert {a["feature"] for a in result.alerts} == {"response_latency_ms"}
    assert {a["statistic"] for a in result.alerts} == {"psi", "ks"}
    others = [o for o in result.outcomes if o.column != "response_latency_ms"]
    assert all(o.result.p_value > o.level for o in others)
    ks = next(a for a in result.alerts if a["statistic"] == "ks")
    details = json.loads(ks["details"])
    assert details["mean_shift_sd"] == pytest.approx(0.5, abs=0.15)


def test_alert_payload_follows_the_contract(profile: ReferenceProfile) -> None:
    ev = MonitorEvaluator(small_monitor(), profile)
    win = hr_sample(1000, np.random.default_rng(3), latency_shift_sd=0.5)
    alerts = ev.evaluate(win, 60_000, 120_000, tenant_id="acme", detected_at_ms=130_000)
    for a in alerts:
        assert set(a) == DRIFT_ALERT_FIELDS
        assert a["monitor"] == "hr_chatbot" and a["tenant_id"] == "acme"
        assert (a["window_start"], a["window_end"], a["detected_at"]) == (60_000, 120_000, 130_000)
        assert a["reference_id"] == profile.reference_id
        assert a["n_window"] == 1000 and a["n_reference"] == 20_000
        assert a["severity"] in {"warning", "critical"}
        assert a["value"] >= a["threshold"] and 0 <= a["p_value"] <= 1
        details = json.loads(a["details"])
        assert details["correction"] == "holm" and details["n_tests"] == 9
        # the payload explains itself: severity and threshold follow from its own fields
        expect = "critical" if a["p_value"] <= details["level"] * 0.1 else "warning"
        assert a["severity"] == expect
        if a["statistic"] == "psi":  # asymptotic regime at n=1000, 10 bins
            scale = 1 / 1000 + 1 / 20_000
            assert a["threshold"] == pytest.approx(scale * stats.chi2.isf(details["level"], 9))
    assert json.loads(json.dumps(alerts)) == alerts  # plain JSON types only


def test_alert_id_is_idempotent_across_replays(profile: ReferenceProfile) -> None:
    ev = MonitorEvaluator(small_monitor(), profile)
    win = hr_sample(1000, np.random.default_rng(3), latency_shift_sd=0.5)
    first = ev.evaluate(win, 0, 60_000, detected_at_ms=1)
    replay = ev.evaluate(win, 0, 60_000, detected_at_ms=999)
    assert [a["alert_id"] for a in first] == [a["alert_id"] for a in replay]
    assert len({a["alert_id"] for a in first}) == len(first)
    other_tenant = ev.evaluate(win, 0, 60_000, tenant_id="t2", detected_at_ms=1)
    later = ev.evaluate(win, 60_000, 120_000, detected_at_ms=1)
    ids = {a["alert_id"] for a in first}
    assert ids.isdisjoint(a["alert_id"] for a in other_tenant)
    assert ids.isdisjoint(a["alert_id"] for a in later)


def test_short_columns_are_skipped_and_reported(profile: ReferenceProfile) -> None:
    ev = MonitorEvaluator(small_monitor(min_window=200), profile)
    win = hr_sample(300, np.random.default_rng(4))
    win["satisfaction"][:150] = np.nan  # ~120 valid left
    result = ev.assess(win, 0, 1, detected_at_ms=0)
    assert [s.column for s in result.skipped] == ["satisfaction"]
    skipped = result.skipped[0]
    assert skipped.statistics == ("psi", "ks")
    assert skipped.n_window == int(np.isfinite(win["satisfaction"]).sum()) < 200
    assert "min_window" in skipped.reason
    assert {o.column for o in result.outcomes} == {
        "response_latency_ms", "confidence", "intent", "channel", "embedding"
    }  # fmt: skip


def test_incremental_batches_equal_the_one_shot_window(profile: ReferenceProfile) -> None:
    ev = MonitorEvaluator(small_monitor(), profile)
    win = hr_sample(1200, np.random.default_rng(5), latency_shift_sd=0.3)
    parts = [{k: v[i : i + 400] for k, v in win.items()} for i in (0, 400, 800)]
    a = ev.update(ev.init(), parts[0])
    b = ev.update(ev.update(ev.init(), parts[1]), parts[2])
    folded = ev.finish(ev.merge(a, b), 0, 1, detected_at_ms=0)
    whole = ev.assess(win, 0, 1, detected_at_ms=0)
    assert [(o.column, o.statistic) for o in folded.outcomes] == [
        (o.column, o.statistic) for o in whole.outcomes
    ]
    for x, y in zip(folded.outcomes, whole.outcomes, strict=True):
        assert x.result.value == pytest.approx(y.result.value, rel=1e-9)
        assert x.result.p_value == pytest.approx(y.result.p_value, rel=1e-9, abs=1e-300)
    assert [x["alert_id"] for x in folded.alerts] == [x["alert_id"] for x in whole.alerts]


def test_lists_with_none_are_accepted_per_column(profile: ReferenceProfile) -> None:
    ev = MonitorEvaluator(small_monitor(min_window=50), profile)
    win = hr_sample(100, np.random.default_rng(6))
    as_lists = {k: [None if (isinstance(x, float) and np.isnan(x)) else x for x in v]
                for k, v in win.items() if k != "embedding"}  # fmt: skip
    as_lists["embedding"] = [list(r) for r in win["embedding"]] + [None]
    as_lists["intent"].append(None)
    res = ev.assess(as_lists, 0, 1, detected_at_ms=0)
    mmd = next(o for o in res.outcomes if o.statistic == "mmd")
    assert (mmd.result.n_window, mmd.result.details["n_missing"]) == (100, 1)


# ----------------------------------------------------------------------------- correction


def test_holm_and_bonferroni_on_a_worked_example() -> None:
    p = [0.04, 0.001, 0.015, 0.5, 0.004]
    levels, rej = corrected_levels(p, 0.05, "bonferroni")
    assert levels == [0.01] * 5 and rej == [False, True, False, False, True]
    # Holm: sorted .001 <= .05/5, .004 <= .05/4, .015 <= .05/3, .04 > .05/2 -> stop
    levels, rej = corrected_levels(p, 0.05, "holm")
    assert levels == pytest.approx([0.025, 0.01, 0.05 / 3, 0.05, 0.0125])
    assert rej == [False, True, True, False, True]
    # step-down stops at the first failure even if a later p is below its level
    assert corrected_levels([0.03, 0.001, 0.04], 0.05, "holm")[1] == [False, True, False]


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_correction_holds_the_family_wise_rate_under_the_null(method: str) -> None:
    rng = np.random.default_rng(7)
    any_reject = [any(corrected_levels(rng.random(9), 0.05, method)[1]) for _ in range(20_000)]
    rate = np.mean(any_reject)
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 20_000)
    assert rate > 0.04  # and is not wildly conservative for independent tests


# ------------------------------------------------------- data no reference can fit


@pytest.mark.parametrize(
    ("broken", "column", "statistics"),
    [
        ({"confidence": np.full(3000, 0.9)}, "confidence", {"psi"}),  # a constant column
        ({"embedding": [None] * 3000}, "embedding", {"mmd"}),  # traffic without embeddings
    ],
)
def test_a_test_the_reference_cannot_fit_is_skipped_with_its_reason(broken, column, statistics):
    rng = np.random.default_rng(5)
    data = {**hr_sample(3000, rng), **broken}
    with pytest.raises(DriftConfigError):
        ReferenceProfile.fit(data, small_monitor())
    profile = ReferenceProfile.fit(data, small_monitor(), tolerate_unfit=True)
    assert {s for c, s in profile.unfit if c == column} == statistics
    evaluator = MonitorEvaluator(small_monitor(), profile)
    window = {**hr_sample(500, rng, latency_shift_sd=2.0), **{
        k: (v[:500] if isinstance(v, list | np.ndarray) else v) for k, v in broken.items()}}
    evaluation = evaluator.assess(window, 0, 1000)
    skipped = {(s.column, st) for s in evaluation.skipped for st in s.statistics}
    assert {(column, st) for st in statistics} <= skipped
    assert all("no reference" in s.reason for s in evaluation.skipped if s.column == column)
    assert {a["feature"] for a in evaluation.alerts} >= {"response_latency_ms"}  # others run
    for alert in evaluation.alerts:  # each alert names the tests this window did not run
        named = json.loads(alert["details"])["skipped"]
        assert {f"{column}:{st}" for st in statistics} <= set(named)
        assert all("no reference" in named[f"{column}:{st}"] for st in statistics)
