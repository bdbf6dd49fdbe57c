"""The JVM-to-Python batch rows: SQL interval literals, and rows -> typed records."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from drift.errors import DriftInputError
from drift.inputs import clean_embedding
from drift.monitor import default_monitor
from drift.slices import slice_ms
from features.plans import load_view_plans
from features.sql import SLOT_TYPES, interval, layout
from schemas.validated import pack_floats, unpack_floats
from streams.batches import DRIFT, LATE, DriftSlice, LateRecords, RecordBuilder

END = datetime(2026, 12, 1, 10, 5, 0, 1000)  # a pane ending 10:05:00.000, plus 1 ms


def _column(name: str, kind: str, values: list) -> tuple:
    """A column item of a drift or late row as the JVM sends it (features.sql.ITEM_TYPE)."""
    return (name, *(values if k == kind else None for k in SLOT_TYPES))


@pytest.mark.parametrize(("ms", "sql"), [
    (300_000, "INTERVAL '5' MINUTE"), (3_600_000, "INTERVAL '1' HOUR"),
    (86_400_000, "INTERVAL '1' DAY"), (604_800_000, "INTERVAL '7' DAY"),
    (90_000, "INTERVAL '90' SECOND(2)"), (6_000_000, "INTERVAL '6000' SECOND(4)"),
    (500, "INTERVAL '0.500' SECOND(2, 3)"),
    (1, "INTERVAL '0.001' SECOND(2, 3)"),
])
def test_interval_literals_use_a_unit_the_planner_accepts(ms, sql):
    assert interval(ms) == sql


def test_a_pane_row_becomes_a_batch_of_per_entity_partials():
    plan = next(p for p in load_view_plans("feature_repo") if p.name == "tenant_load")
    lay = layout(plan)
    slots = {kind: [] for kind in SLOT_TYPES}
    values = {"interactions_5m": (7,), "p95_latency_ms_5m": ([10.0, 30.0, 20.0],),
              "escalation_rate_1h": (2.0, 8)}
    for spec, cells in zip(plan.features, lay.slots, strict=True):
        for (kind, index), value in zip(cells, values[spec.name], strict=True):
            assert len(slots[kind]) == index
            slots[kind].append(value)
    item = ("acme", *(slots[k] or None for k in SLOT_TYPES))
    batch = RecordBuilder([plan], None, 900_000)(("pane", plan.name, "3", END, [item]))
    assert batch.shard == 3 and batch.entities == ("acme",)
    assert batch.pane_end == int(END.timestamp() * 1000)
    got = dict(zip((f.name for f in plan.features), batch.partials[0], strict=True))
    assert got == {"interactions_5m": 7, "p95_latency_ms_5m": (10.0, 30.0, 20.0),
                   "escalation_rate_1h": (2.0, 8)}


def test_drift_and_late_rows_become_slices_and_counts():
    monitor = default_monitor()
    builder = RecordBuilder([], monitor, 900_000)
    packed = pack_floats([0.1, 0.2])
    items = [_column(c, "double", v) for c, v in (
        ("response_latency_ms", [100.0, 100.0]), ("confidence", [0.5, 0.5]),
        ("satisfaction", [None, None]))]
    items += [_column(c, "string", v) for c, v in (
        ("intent", ["leave", "leave"]), ("channel", ["web", "web"]),
        ("embedding", [packed, packed]))]
    piece = builder((DRIFT, monitor.name, "acme", END, items))
    assert isinstance(piece, DriftSlice) and piece.key == "acme" and piece.n == 2
    assert piece.columns["satisfaction"] == [None, None]
    assert piece.columns["channel"] == ["web", "web"]
    np.testing.assert_array_equal(piece.columns["embedding"],
                                  np.array([[0.1, 0.2], [0.1, 0.2]], dtype=np.float32))
    assert piece.end_ms - piece.start_ms == slice_ms(900_000)
    late = builder((LATE, LATE, LATE, END, [_column("n", "long", [12])]))
    assert late == LateRecords(12)


@pytest.mark.parametrize("rows", [
    [[0.1, 0.2, 0.3], None, [1.5, -2.0, 1e-3], None],  # some records without one
    [None, None],  # traffic without embeddings
    [[0.1, 0.2], [0.1, 0.2, 0.3], None],  # the model changed mid-slice
    [[0.5, float("nan")], [0.25, 0.75]],  # a non-finite value
    [],
])
def test_packed_embeddings_clean_as_the_raw_lists_do(rows):
    """What the drift statistics get from packed arrays equals what they got from the
    lists themselves (float32, as the contract declares), missing rows counted alike."""
    packed = unpack_floats([pack_floats(r) for r in rows])
    as_float32 = [None if r is None else np.float32(r).tolist() for r in rows]
    try:
        want = clean_embedding(as_float32)
    except DriftInputError as exc:
        with pytest.raises(DriftInputError, match="differ in length"):
            clean_embedding(packed)
        assert "differ in length" in str(exc)
        return
    got = clean_embedding(packed)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1]


def test_what_is_not_a_packed_array_counts_as_missing():
    """A record written before arrays were packed (a JSON list as text) or a damaged one
    (3 bytes) is a missing row, not a crash."""
    rows = [[0.5, 0.25], [1.0, 2.0]]
    matrix, missing = clean_embedding(unpack_floats(
        [pack_floats(rows[0]), "[0.1, 0.2]", "AAAA", pack_floats(rows[1])]))
    np.testing.assert_array_equal(matrix, np.array(rows))
    assert missing == 2
