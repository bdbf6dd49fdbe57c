"""Duplicate interactions within a bounded event-time window are dropped and counted."""

from __future__ import annotations

import pickle
import random

import pytest

from schemas.dedup import Deduplicator
from schemas.errors import RecordRejected

HOUR = 3_600_000


def _passes(d: Deduplicator, iid: str, t: int) -> bool:
    try:
        d.check(iid, t)
    except RecordRejected as exc:
        assert exc.kind == "duplicate" and exc.field == "interaction_id"
        return False
    return True


def test_repeat_within_window_is_rejected_and_counted():
    d = Deduplicator(HOUR)
    assert _passes(d, "a", 1_000)
    assert not _passes(d, "a", 1_000)
    assert not _passes(d, "a", 1_000 + HOUR - 1)  # same id, later event time: still a repeat
    assert _passes(d, "b", 2_000)
    assert d.duplicates == 2


def test_memory_is_bounded_by_event_time():
    d = Deduplicator(HOUR)
    for i in range(1000):
        d.check(f"id{i}", i * 60_000)  # one a minute for 1000 minutes
    assert len(d) == 61  # ids within (max - 1h) .. max
    # an id older than the window was forgotten: it passes again ...
    assert _passes(d, "id0", 999 * 60_000)
    # ... but a record whose own time is older than the window cannot be judged
    assert _passes(d, "never-seen", 0) and d.too_old_to_check == 1
    assert not _passes(d, "id998", 0)  # a known id is a duplicate whatever its time


def test_matches_a_brute_force_oracle_on_a_random_out_of_order_stream():
    rng = random.Random(5)
    window = 10_000
    d = Deduplicator(window)
    events = []
    t = 0
    for _ in range(5000):
        t += rng.randint(0, 200)
        events.append((f"id{rng.randint(0, 400)}", t + rng.randint(-12_000, 0)))
    # Oracle, stated from the documented rule: each record first advances the newest
    # event time; a repeat is caught while its accepted sighting lies in
    # [newest - window, newest]; a record older than that is let through, not remembered.
    kept: dict[str, int] = {}
    newest = None
    for iid, et in events:
        newest = et if newest is None else max(newest, et)
        horizon = newest - window
        first = kept.get(iid)
        duplicate = first is not None and first >= horizon
        assert _passes(d, iid, et) == (not duplicate), (iid, et)
        if not duplicate and et >= horizon:
            kept[iid] = et
    assert d.duplicates > 100 and d.too_old_to_check > 0  # the stream exercised both


def test_max_ids_caps_memory():
    d = Deduplicator(HOUR, max_ids=10)
    for i in range(25):
        d.check(f"id{i}", 1_000)
    assert len(d) == 10 and d.evicted_early == 15


def test_pickle_round_trip_keeps_state():
    d = Deduplicator(HOUR)
    for i in range(10):
        d.check(f"id{i}", i)
    restored = pickle.loads(pickle.dumps(d))
    assert not _passes(restored, "id3", 20)
    assert _passes(restored, "id10", 20)
    assert restored.duplicates == 1 and len(restored) == 11


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        Deduplicator(-1)
    with pytest.raises(ValueError):
        Deduplicator(HOUR, max_ids=0)
