"""The offline log's compaction, training-set inputs and the Feast yaml's address, on files.

Staged files are written here as Flink's file sink writes them (JSON lines; in-progress
and pending files hidden with a leading dot), and the Parquet read back with pyarrow.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from features.aggregations import make_aggregate
from features.feast_repo import point_online_store
from features.offline_log import compact, read_log
from features.plans import ENTITY_SEP, FeatureSpec, ViewPlan
from features.training import feature_refs, read_entity_rows
from schemas.errors import ConfigError

REPO = Path(__file__).resolve().parents[2] / "feature_repo"
H1 = 3_600_000
PLAN = ViewPlan(
    "activity", ("employee_id", "tenant_id"),
    (FeatureSpec("n_1h", "interaction_id", "count", H1, H1, make_aggregate("count"), "INT64"),
     FeatureSpec("sat", "satisfaction", "mean", H1, H1, make_aggregate("mean"), "DOUBLE"),
     FeatureSpec("last", "intent", "last", H1, H1, make_aggregate("last"), "STRING")),
    log_path="data/offline/activity")


def _stage(staging: Path, day: str, name: str, rows: list[tuple[str, int, dict]]) -> None:
    folder = staging / "feature_view=activity" / f"day={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(
        json.dumps({"entity": e, "ts_ms": ts, "feature_values": json.dumps(v)}) + "\n"
        for e, ts, v in rows))


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_compaction_types_dedups_and_skips_files_in_progress(tmp_path):
    staging, repo = tmp_path / "staging", tmp_path / "repo"
    alice, bob = f"e1{ENTITY_SEP}acme", f"e1{ENTITY_SEP}globex"  # one id, two tenants
    t1, t2 = _ms("2026-12-01T10:00:00"), _ms("2026-12-01T11:00:00")
    _stage(staging, "2026-12-01", "part-a-0-0", [
        (alice, t1, {"n_1h": 2, "sat": 4.5, "last": "leave"}),
        (bob, t1, {"n_1h": 1, "sat": None, "last": "payroll"})])
    # A replay after a restore repeated a row; an uncommitted file must not be read.
    _stage(staging, "2026-12-01", "part-b-0-0", [
        (alice, t1, {"n_1h": 2, "sat": 4.5, "last": "leave"}),
        (alice, t2, {"n_1h": 0, "sat": None, "last": None})])
    _stage(staging, "2026-12-01", ".part-c-0-0.inprogress.1", [
        (alice, _ms("2026-12-01T12:00:00"), {"n_1h": 9, "sat": 1.0, "last": "x"})])

    done = compact([PLAN], repo, [staging])
    assert [(d.day, d.rows) for d in done] == [("2026-12-01", 3)]
    table = read_log(PLAN, repo)
    assert table.schema.field("n_1h").type == pa.int64()
    assert table.schema.field("event_timestamp").type == pa.timestamp("ms", tz="UTC")
    got = sorted(table.to_pylist(), key=lambda r: (r["tenant_id"], r["event_timestamp"]))
    assert [(r["tenant_id"], r["employee_id"], r["n_1h"], r["sat"], r["last"]) for r in got] \
        == [("acme", "e1", 2, 4.5, "leave"), ("acme", "e1", 0, None, None),
            ("globex", "e1", 1, None, "payroll")]

    # Idempotent: unchanged staged files leave the day alone; a new committed file
    # rewrites it with its rows.
    assert compact([PLAN], repo, [staging]) == []
    _stage(staging, "2026-12-01", "part-d-0-0", [
        (bob, t2, {"n_1h": 0, "sat": None, "last": None})])
    assert [d.rows for d in compact([PLAN], repo, [staging])] == [4]
    assert not list((repo / PLAN.log_path).rglob(".*"))  # no partial file left behind


def test_a_day_is_one_parquet_file_feast_can_read_as_a_folder(tmp_path):
    staging, repo = tmp_path / "staging", tmp_path / "repo"
    for day in ("2026-12-01", "2026-12-02"):
        _stage(staging, day, "part-a-0-0",
               [(f"e{ENTITY_SEP}t", _ms(f"{day}T01:00:00"), {"n_1h": 1, "sat": 3, "last": "a"})])
    compact([PLAN], repo, [staging])
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.parquet"))
    assert files == ["data/offline/activity/day=2026-12-01/part-0.parquet",
                     "data/offline/activity/day=2026-12-02/part-0.parquet"]
    whole = pq.read_table(repo / PLAN.log_path)  # as Feast's dask reader does
    assert whole.num_rows == 2 and whole.column("sat").to_pylist() == [3.0, 3.0]


def test_feature_refs_expand_views_and_name_what_is_unknown():
    assert feature_refs([PLAN], ["activity"]) == ["activity:n_1h", "activity:sat",
                                                  "activity:last"]
    assert feature_refs([PLAN], ["activity:sat"]) == ["activity:sat"]
    with pytest.raises(ConfigError, match="no view 'nope'"):
        feature_refs([PLAN], ["nope"])
    with pytest.raises(ConfigError, match="has no feature 'x'"):
        feature_refs([PLAN], ["activity:x"])


def test_entity_rows_need_the_join_keys_and_a_timestamp(tmp_path):
    good = tmp_path / "rows.csv"
    good.write_text("tenant_id,employee_id,event_timestamp\nacme,e1,2026-12-01T10:00:00\n"
                    "acme,e2,2026-12-01 10:00:00.001+00:00\n")
    rows = read_entity_rows(good, [PLAN], ["activity:n_1h"])
    assert str(rows.event_timestamp.dt.tz) == "UTC"
    assert rows.event_timestamp.iloc[1].value // 1_000_000 == _ms("2026-12-01T10:00:00") + 1
    bad = tmp_path / "bad.csv"
    bad.write_text("employee_id,event_timestamp\ne1,2026-12-01T10:00:00\n")
    with pytest.raises(ConfigError, match="tenant_id"):
        read_entity_rows(bad, [PLAN], ["activity:n_1h"])


def test_apply_points_the_yaml_at_the_redis_the_job_writes(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    default = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert default["online_store"]["connection_string"] == "127.0.0.1:6379,db=0"
    assert not point_online_store(repo, "redis://127.0.0.1:6379/0")  # already so
    assert point_online_store(repo, "redis://10.0.0.5:6380/3")
    text = (repo / "feature_store.yaml").read_text()
    assert yaml.safe_load(text)["online_store"]["connection_string"] == "10.0.0.5:6380,db=3"
    assert "# Where the driftline job writes" in text  # the rest is kept as it was


def test_a_later_staging_folder_replaces_the_same_instants(tmp_path):
    """Compaction's precedence: a backfill's rows (a later folder) win over the stream's."""
    stream, backfill, repo = tmp_path / "stream", tmp_path / "backfill", tmp_path / "repo"
    at, later = _ms("2026-12-01T10:00:00"), _ms("2026-12-01T11:00:00")
    entity = f"e1{ENTITY_SEP}acme"
    _stage(stream, "2026-12-01", "part-a-0-0", [
        (entity, at, {"n_1h": 1, "sat": None, "last": "leave"}),
        (entity, later, {"n_1h": 0, "sat": None, "last": None})])
    _stage(backfill, "2026-12-01", "part-b-0-0", [
        (entity, at, {"n_1h": 1, "sat": 2.0, "last": "leave"})])
    compact([PLAN], repo, [stream, backfill])
    rows = sorted(read_log(PLAN, repo).to_pylist(), key=lambda r: r["event_timestamp"])
    assert [(r["n_1h"], r["sat"]) for r in rows] == [(1, 2.0), (0, None)]
