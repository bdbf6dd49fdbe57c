"""The traffic simulator: contract fields, determinism, load shape, ordering, drift."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from schemas.errors import ConfigError, DriftlineError
from streams.simulator import (
    CHANNELS,
    EMBEDDING_NOISE,
    INTENTS,
    SESSION_GAP_MS,
    DriftInjection,
    SimulatorConfig,
    TrafficSimulator,
    iban_check_digits,
    luhn_check_digit,
)

TUESDAY = int(datetime(2024, 3, 12, tzinfo=UTC).timestamp() * 1000)
SATURDAY = int(datetime(2024, 3, 16, tzinfo=UTC).timestamp() * 1000)
MONTH_END = int(datetime(2024, 3, 29, tzinfo=UTC).timestamp() * 1000)
DAY = 86_400_000
FIELDS = {
    "interaction_id",
    "tenant_id",
    "employee_id",
    "session_id",
    "event_time",
    "channel",
    "locale",
    "jurisdiction",
    "intent",
    "query_text",
    "response_latency_ms",
    "model_version",
    "confidence",
    "resolved",
    "escalated",
    "satisfaction",
    "embedding",
}


def sim(**kw) -> TrafficSimulator:
    base = {"start_ms": TUESDAY, "events_per_hour": 3000.0, "seed": 11}
    return TrafficSimulator(SimulatorConfig(**(base | kw)))


def col(events: list[dict], name: str) -> np.ndarray:
    return np.array([e[name] for e in events])


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return list(sim().events(n=20_000))


def test_same_seed_same_events_and_prefix_stable():
    a = list(sim().events(n=3000))
    assert a == list(sim().events(n=3000))
    assert list(sim().events(n=500)) == a[:500]
    b = list(sim(seed=12).events(n=3000))
    assert not {e["interaction_id"] for e in a} & {e["interaction_id"] for e in b}
    assert col(a, "response_latency_ms").tolist() != col(b, "response_latency_ms").tolist()


def test_fields_types_and_ranges(sample):
    for e in sample:
        assert set(e) == FIELDS
    assert all(isinstance(e["event_time"], int) for e in sample)
    assert all(
        isinstance(e[f], str)
        for e in sample
        for f in (
            "interaction_id",
            "tenant_id",
            "employee_id",
            "session_id",
            "locale",
            "jurisdiction",
            "intent",
            "model_version",
            "query_text",
        )
    )
    assert all(type(e["resolved"]) is bool and type(e["escalated"]) is bool for e in sample)
    assert not any(e["resolved"] and e["escalated"] for e in sample)
    conf, lat = col(sample, "confidence"), col(sample, "response_latency_ms")
    assert conf.dtype == float and conf.min() >= 0 and conf.max() <= 1
    assert lat.dtype == float and lat.min() >= 0
    sat = [e["satisfaction"] for e in sample]
    assert {type(s) for s in sat} == {int, type(None)}
    assert {s for s in sat if s is not None} == {1, 2, 3, 4, 5}
    assert 0.35 < sat.count(None) / len(sat) < 0.45
    assert set(col(sample, "channel")) == set(CHANNELS)
    assert set(col(sample, "intent")) == set(INTENTS)
    assert all(len(e["embedding"]) == 16 and isinstance(e["embedding"][0], float) for e in sample)
    assert all(e["locale"].split("-")[1] == e["jurisdiction"] for e in sample)
    assert all(re.fullmatch(r"emp-\d{6}", e["employee_id"]) for e in sample)
    assert len(set(col(sample, "interaction_id"))) == len(sample)
    t = col(sample, "event_time")
    assert t.min() >= TUESDAY and (np.diff(t) >= 0).all()


def test_employee_belongs_to_one_tenant_and_activity_is_skewed(sample):
    owner: dict[str, str] = {}
    for e in sample:
        assert owner.setdefault(e["employee_id"], e["tenant_id"]) == e["tenant_id"]
    _, counts = np.unique(col(sample, "employee_id"), return_counts=True)
    counts = np.sort(counts)[::-1]
    assert counts[: len(counts) // 10].sum() > 0.35 * len(sample)  # heavy users
    assert np.median(counts) < 0.2 * counts[0]  # many occasional ones


def test_sessions_split_on_quiet_gaps(sample):
    by_emp: dict[str, list[dict]] = {}
    for e in sample:
        by_emp.setdefault(e["employee_id"], []).append(e)
    splits = 0
    for evs in by_emp.values():
        for a, b in zip(evs, evs[1:], strict=False):
            new = a["session_id"] != b["session_id"]
            assert new == (b["event_time"] - a["event_time"] > SESSION_GAP_MS)
            splits += new
    assert splits > 100
    assert len({e["session_id"] for e in sample}) == len(
        {(e["employee_id"], e["session_id"]) for e in sample}
    )


def test_diurnal_and_weekly_shape():
    day = list(sim(events_per_hour=1000.0).events(until_ms=TUESDAY + DAY))
    hours = (col(day, "event_time") - TUESDAY) // 3_600_000
    assert (hours == 14).sum() > 1.5 * (hours == 3).sum()
    weekend = list(sim(events_per_hour=1000.0, start_ms=SATURDAY).events(until_ms=SATURDAY + DAY))
    assert len(weekend) < 0.5 * len(day)
    week = list(sim(events_per_hour=200.0).events(until_ms=TUESDAY + 7 * DAY))
    assert abs(len(week) / (7 * 24 * 200.0) - 1) < 0.1  # events_per_hour is the weekly mean


def test_payroll_peaks_at_month_end():
    mid = col(list(sim().events(n=10_000)), "intent")
    end = col(list(sim(start_ms=MONTH_END).events(n=10_000)), "intent")
    assert (end == "payroll").mean() > 1.8 * (mid == "payroll").mean()


def test_embeddings_cluster_by_intent(sample):
    emb, intent = col(sample, "embedding"), col(sample, "intent")
    centres = np.stack([emb[intent == i].mean(0) for i in INTENTS])
    nearest = np.argmin(((emb[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert (np.array(INTENTS)[nearest] == intent).mean() > 0.8


def test_until_ms_bounds_event_time():
    until = TUESDAY + 2 * 3_600_000
    evs = list(sim().events(until_ms=until))
    t = col(evs, "event_time")
    assert len(evs) > 100 and t.max() < until and t.max() > until - 60_000


def test_out_of_order_is_bounded_and_only_reorders():
    until = TUESDAY + 6 * 3_600_000
    late = list(sim(out_of_order_ms=2000).events(until_ms=until))
    t = col(late, "event_time")
    lateness = np.maximum.accumulate(t) - t
    assert lateness.max() <= 2000 and (lateness > 0).mean() > 0.05
    ordered = list(sim().events(until_ms=until))
    assert sorted(late, key=lambda e: e["interaction_id"]) == ordered
    assert list(sim(out_of_order_ms=2000).events(n=300)) == late[:300]


def test_pii_is_injected_at_the_configured_rate():
    evs = list(sim(pii_rate=0.25).events(n=4000))
    texts = col(evs, "query_text")
    has = np.array([bool(re.search(r"@|\+\d|IBAN|card \d", q)) for q in texts])
    assert 0.22 < has.mean() < 0.28
    cards = [m.replace(" ", "") for q in texts for m in re.findall(r"card ((?:\d{4} ){3}\d{4})", q)]
    ibans = [m.replace(" ", "") for q in texts for m in re.findall(r"IBAN ([A-Z0-9 ]+)\.", q)]
    assert len(cards) > 50 and len(ibans) > 50
    assert all(int(c[-1]) == luhn_check_digit(c[:-1]) for c in cards)
    assert all(i[2:4] == iban_check_digits(i[:2], i[4:]) for i in ibans)
    default = col(list(sim().events(n=20_000)), "query_text")
    assert 0.01 < np.mean([bool(re.search(r"@|\+\d|IBAN|card \d", q)) for q in default]) < 0.03


def drifted(start: int = 10_000, n: int = 20_000, **drift) -> tuple[list, list, TrafficSimulator]:
    d = DriftInjection(start_count=start, **drift)
    s = sim(drift=d)
    return list(sim().events(n=n)), list(s.events(n=n)), s


def assert_untouched(clean: list[dict], dirty: list[dict], changed: set[str]) -> None:
    for name in FIELDS - changed:
        assert [e[name] for e in clean] == [e[name] for e in dirty], name


def test_mean_shift_moves_only_its_column_by_magnitude_times_std():
    clean, dirty, s = drifted(column="response_latency_ms", kind="mean_shift", magnitude=1.0)
    std = s.reference_moments["response_latency_ms"][1]
    lat = col(dirty, "response_latency_ms")
    assert abs((lat[10_000:].mean() - lat[:10_000].mean()) / std - 1.0) < 0.15
    delta = lat - col(clean, "response_latency_ms")
    assert (delta[:10_000] == 0).all() and np.allclose(delta[10_000:], std, atol=0.11)
    assert_untouched(clean, dirty, {"response_latency_ms"})
    conf = col(dirty, "confidence")
    assert stats.ks_2samp(conf[:10_000], conf[10_000:]).pvalue > 0.001


def test_mean_shift_keeps_ranges_valid():
    clean, dirty, s = drifted(column="confidence", kind="mean_shift", magnitude=-0.5)
    conf, std = col(dirty, "confidence"), s.reference_moments["confidence"][1]
    assert conf.min() >= 0 and abs((conf[10_000:].mean() - conf[:10_000].mean()) / std + 0.5) < 0.1
    assert_untouched(clean, dirty, {"confidence"})
    clean, dirty, _ = drifted(column="satisfaction", kind="mean_shift", magnitude=-1.0)
    before = [e["satisfaction"] for e in clean]
    after = [e["satisfaction"] for e in dirty]
    assert [a is None for a in after] == [b is None for b in before]
    assert {a for a in after if a is not None} <= {1, 2, 3, 4, 5}
    tail = np.array([a for a in after[10_000:] if a is not None])
    ref = np.array([b for b in before[10_000:] if b is not None])
    assert tail.mean() < ref.mean() - 0.7
    lat = col(dirty, "response_latency_ms")
    assert stats.ks_2samp(lat[:10_000], lat[10_000:]).pvalue > 0.001


def test_variance_change_scales_spread():
    clean, dirty, _ = drifted(column="response_latency_ms", kind="variance_change", magnitude=0.5)
    lat, ref = col(dirty, "response_latency_ms"), col(clean, "response_latency_ms")
    assert abs(lat[10_000:].std() / ref[10_000:].std() - 0.5) < 0.05
    assert abs(lat[10_000:].mean() / ref[10_000:].mean() - 1) < 0.05
    _, dirty, _ = drifted(column="confidence", kind="variance_change", magnitude=2.0)
    conf = col(dirty, "confidence")
    assert conf.max() <= 1 and conf[10_000:].std() > 1.5 * conf[:10_000].std()


def test_drift_for_one_tenant_from_an_event_time():
    start = TUESDAY + 3 * 3_600_000
    d = DriftInjection(
        column="response_latency_ms",
        kind="mean_shift",
        magnitude=2.0,
        start_ms=start,
        tenant_id="acme-emea",
    )
    clean, dirty = list(sim().events(n=20_000)), list(sim(drift=d).events(n=20_000))
    changed = np.array(
        [
            a != b
            for a, b in zip(
                col(clean, "response_latency_ms"), col(dirty, "response_latency_ms"), strict=True
            )
        ]
    )
    hit = (col(clean, "tenant_id") == "acme-emea") & (col(clean, "event_time") >= start)
    assert hit.sum() > 1000 and (changed == hit).all()


def test_category_mix_moves_mass_and_intent_dependents_follow():
    clean, dirty, _ = drifted(column="intent", kind="category_mix", magnitude=0.3)
    intent, ref = col(dirty, "intent"), col(clean, "intent")
    assert (intent[:10_000] == ref[:10_000]).all()
    share = (intent[10_000:] == "onboarding").mean()  # the rarest intent
    assert abs(share - (0.7 * (ref[10_000:] == "onboarding").mean() + 0.3)) < 0.02
    assert_untouched(
        clean,
        dirty,
        {
            "intent",
            "query_text",
            "response_latency_ms",
            "confidence",
            "resolved",
            "escalated",
            "satisfaction",
            "embedding",
        },
    )
    same = intent == ref  # per-column streams: rows whose intent stayed keep their draws
    assert (col(dirty, "embedding")[same] == col(clean, "embedding")[same]).all()
    assert not (col(dirty, "embedding")[~same] == col(clean, "embedding")[~same]).all()


def test_category_mix_on_channel_with_named_target():
    clean, dirty, _ = drifted(
        column="channel",
        kind="category_mix",
        magnitude=0.5,
        target="email",
        tenant_id="initech-apac",
    )
    ch, ref, tenant = col(dirty, "channel"), col(clean, "channel"), col(clean, "tenant_id")
    tail = np.arange(len(ch)) >= 10_000
    other = tail & (tenant != "initech-apac")
    assert (ch[other] == ref[other]).all()
    ours = tail & (tenant == "initech-apac")
    expected = 0.5 * (ref[ours] == "email").mean() + 0.5
    assert ours.sum() > 500
    assert abs((ch[ours] == "email").mean() - expected) < 4 * np.sqrt(0.25 / ours.sum())


def test_embedding_shift_adds_a_fixed_direction():
    clean, dirty, _ = drifted(column="embedding", kind="embedding_shift", magnitude=2.0)
    delta = col(dirty, "embedding") - col(clean, "embedding")
    assert np.abs(delta[:10_000]).max() == 0
    assert np.allclose(delta[10_000:], delta[10_000], atol=2e-4)
    assert abs(np.linalg.norm(delta[10_000]) - 2.0 * EMBEDDING_NOISE) < 1e-3
    assert_untouched(clean, dirty, {"embedding"})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"column": "intent", "kind": "mean_shift", "magnitude": 1, "start_count": 0}, "kind"),
        ({"column": "embedding", "kind": "variance_change", "magnitude": 2, "start_ms": 0}, "kind"),
        (
            {"column": "confidence", "kind": "embedding_shift", "magnitude": 1, "start_ms": 0},
            "kind",
        ),
        (
            {"column": "tenant_id", "kind": "category_mix", "magnitude": 0.5, "start_ms": 0},
            "column",
        ),
        ({"column": "confidence", "kind": "mean_shift", "magnitude": 1}, "start_ms"),
        (
            {
                "column": "confidence",
                "kind": "mean_shift",
                "magnitude": 1,
                "start_ms": 0,
                "start_count": 0,
            },
            "start_ms",
        ),
        (
            {"column": "intent", "kind": "category_mix", "magnitude": 1.5, "start_ms": 0},
            "magnitude",
        ),
        (
            {"column": "confidence", "kind": "variance_change", "magnitude": 0, "start_ms": 0},
            "magnitude",
        ),
        (
            {
                "column": "intent",
                "kind": "category_mix",
                "magnitude": 0.5,
                "start_ms": 0,
                "target": "fax",
            },
            "target",
        ),
        ({"column": "confidence", "kind": "bogus", "magnitude": 1, "start_ms": 0}, "kind"),
        (
            {
                "column": "confidence",
                "kind": "mean_shift",
                "magnitude": 1,
                "start_ms": 0,
                "extra": 1,
            },
            "extra",
        ),
    ],
)
def test_invalid_injection_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        DriftInjection(**kwargs)
    assert err.value.field == field
    assert isinstance(err.value, DriftlineError)


def test_invalid_simulator_config_names_the_field():
    bad_kind = {"column": "embedding", "kind": "mean_shift", "magnitude": 1, "start_ms": 0}
    cases = [
        ({"drift": bad_kind}, "drift.kind"),
        (
            {"drift": {**bad_kind, "kind": "embedding_shift", "tenant_id": "nope"}},
            "drift.tenant_id",
        ),
        ({"events_per_hour": 0}, "events_per_hour"),
        ({"pii_rate": 2}, "pii_rate"),
        ({"out_of_order_ms": -1}, "out_of_order_ms"),
        ({"topic": "x"}, "topic"),
    ]
    for kw, field in cases:
        with pytest.raises(ConfigError) as err:
            SimulatorConfig(**({"start_ms": TUESDAY, "events_per_hour": 10.0} | kw))
        assert err.value.field == field
