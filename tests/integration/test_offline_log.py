"""The offline log, training sets and plain Feast clients, against the brute-force oracle.

One seeded stream runs through the real job once (module fixture); then:
- the compacted log holds exactly the rows the oracle says the job must write;
- ``driftline training-set`` (Feast's ``get_historical_features``) returns the brute
  force as of each entity row's timestamp: random ones, before first events, on and beside
  slide boundaries, after decay, and the watermark, where the online store must agree;
- the plain Feast SDK with no configuration of ours, and ``feast serve`` over HTTP, read
  what the job wrote.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.plans import ViewPlan, load_view_plans
from streams.offline import log_committed, write_training_set
from streams.producer import produce_events, simulated_events
from streams.runner import JobHandle, free_port
from streams.settings import Settings
from tests.integration.conftest import fresh_settings, remove_keys, wait_for, wait_until_stable
from tests.integration.faults import assert_log_exact, reachable
from tests.oracle import expected_features, keyed_rows, same

pytestmark = pytest.mark.integration

MINUTE = 60_000


@dataclass(frozen=True)
class Logged:
    settings: Settings
    events: list[dict]
    frame: pd.DataFrame
    progress: dict[str, str]
    plans: list[ViewPlan]


@pytest.fixture(scope="module")
def logged(local_stack, tmp_path_factory):
    settings = fresh_settings(local_stack, tmp_path_factory.mktemp("offline"),
                              job={"checkpoint_interval_ms": 2000})
    events = simulated_events(settings, 6_000, 3.0, seed=31, employees_per_tenant=40,
                              out_of_order_ms=20_000)
    produce_events(settings, events, "mixed", quiet=True)
    frame = pd.DataFrame(events)
    job = JobHandle(settings, ["features"])
    try:
        wait_for(lambda: job.caught_up(reachable(settings, frame)), timeout_s=300,
                 what="the job to process the stream")
        progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)
        wait_for(lambda: log_committed(settings), timeout_s=90, what="the log's commit")
        yield Logged(settings, events, frame, progress, load_view_plans(settings.feature_repo))
    finally:
        job.cancel()
        remove_keys(settings)


def test_the_log_holds_every_row_the_job_wrote_once(logged):
    assert_log_exact(logged.settings, logged.frame, logged.progress)


def _declared(plan: ViewPlan) -> list[tuple[str, str, str, int, int]]:
    return [(f.name, f.column, f.function, f.window_ms, f.slide_ms) for f in plan.features]


def _entity_rows(frame: pd.DataFrame, through: int, rng: np.random.Generator) -> pd.DataFrame:
    """(tenant, employee, timestamp) rows at the instants that tell point-in-time apart."""
    pairs = [tuple(p) for p in frame[["tenant_id", "employee_id"]].drop_duplicates()
             .to_numpy().tolist()]
    other_tenant = next(t for t, _ in pairs if t != pairs[0][0])
    pairs += [(pairs[0][0], "never-seen"), (other_tenant, pairs[0][1])]  # unknown, wrong tenant
    by_entity = frame.groupby(["tenant_id", "employee_id"]).event_time
    first_seen, last_seen = by_entity.min(), by_entity.max()
    start = int(frame.event_time.min())
    rows = []
    for tenant, employee in pairs:
        times = list(rng.integers(start - 30 * MINUTE, through, 3))
        boundary = int(rng.integers(start, through)) // (5 * MINUTE) * 5 * MINUTE
        times += [boundary, boundary - 1, boundary + 1]  # on a slide boundary and beside it
        if (tenant, employee) in first_seen.index:
            seen = int(first_seen[(tenant, employee)])
            times += [seen - 1, seen + 5 * MINUTE]  # before the first event, just after
            quiet = int(last_seen[(tenant, employee)]) + 65 * MINUTE  # the 1h windows decayed
            times += [quiet] if quiet <= through else []
        rows += [(tenant, employee, t) for t in {min(int(t), through) for t in times}]
    rows.append((pairs[0][0], pairs[0][1], through))
    out = pd.DataFrame(rows, columns=["tenant_id", "employee_id", "ms"]).drop_duplicates()
    out["event_timestamp"] = pd.to_datetime(out.ms, unit="ms", utc=True)
    return out


def _null(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _as_of(frame: pd.DataFrame, plan: ViewPlan, keys: dict, ms: int) -> dict:
    """The oracle as of ``ms``: null before the entity's first row, else the brute force."""
    mine = frame
    for column, value in keys.items():
        mine = mine[mine[column] == value]
    if mine.empty or mine.event_time.min() > ms // plan.min_slide_ms * plan.min_slide_ms:
        return {f.name: None for f in plan.features}
    return expected_features(mine, {}, _declared(plan), ms)


def test_training_set_is_point_in_time_correct(logged, tmp_path):
    settings, frame = logged.settings, logged.frame
    through = min(int(v) for k, v in logged.progress.items() if k != "updated_at")
    rows = _entity_rows(frame, through, np.random.default_rng(5))
    entities = tmp_path / "entities.csv"
    rows.drop(columns="ms").to_csv(entities, index=False)
    out = tmp_path / "training.parquet"
    said: list[str] = []
    written = write_training_set(settings, entities, [], out, say=said.append)
    assert written == len(rows) and any("joined" in line for line in said)

    got = pd.read_parquet(out).merge(rows[["tenant_id", "employee_id", "event_timestamp", "ms"]])
    assert len(got) == len(rows)
    compared, wrong = 0, []
    for record in got.to_dict("records"):
        for plan in logged.plans:
            keys = {k: record[k] for k in plan.join_keys}
            for name, want in _as_of(frame, plan, keys, record["ms"]).items():
                value = None if _null(record[name]) else record[name]
                compared += 1
                if not (value is None and want is None) and not same(value, want):
                    wrong.append((plan.name, keys, record["ms"], name, value, want))
    assert not wrong, f"{len(wrong)} of {compared} differ, e.g. {wrong[:5]}"
    assert compared > 5_000


def _plain_feast_rows(repo: Path, plan: ViewPlan, entity_rows: list[dict]) -> list[dict]:
    """Through ``FeatureStore(repo_path=...)`` as any model service would: no settings,
    no environment of ours, only the repo's feature_store.yaml."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    features = [f"{plan.name}:{f.name}" for f in plan.features]
    columns = store.get_online_features(features=features, entity_rows=entity_rows).to_dict()
    return [{k: v[i] for k, v in columns.items()} for i in range(len(entity_rows))]


def _oracle_rows(logged: Logged, plan: ViewPlan, entity_rows: list[dict]) -> list[dict]:
    return [_as_of(logged.frame, plan, keys, int(logged.progress[plan.name]))
            for keys in entity_rows]


def _some_entities(logged: Logged, plan: ViewPlan, n: int = 40) -> list[dict]:
    keys = list(plan.join_keys)
    seen = logged.frame[keys].drop_duplicates().head(n).to_dict("records")
    return [*seen, {k: f"never-seen-{k}" for k in keys}]


def _assert_same(got: list[dict], want: list[dict]) -> None:
    wrong = [(g, w) for g, w in zip(got, want, strict=True)
             for name in w if not (g[name] is None and w[name] is None)
             and not same(g[name], w[name])]
    assert not wrong, wrong[:3]


def test_plain_feast_sdk_reads_the_job_rows_with_no_configuration(logged):
    for plan in logged.plans:
        entity_rows = _some_entities(logged, plan)
        _assert_same(_plain_feast_rows(logged.settings.feature_repo, plan, entity_rows),
                     _oracle_rows(logged, plan, entity_rows))


def test_feast_http_feature_server_reads_the_job_rows(logged, tmp_path):
    port = free_port()
    log = (tmp_path / "feast-serve.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).with_name("feast")), "serve",
                               "--host", "127.0.0.1", "--port", str(port)],
                              cwd=logged.settings.feature_repo, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert server.poll() is None, (tmp_path / "feast-serve.log").read_text()[-2000:]
        try:
            return urllib.request.urlopen(f"{url}/health", timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout_s=90, what="feast serve to answer")
        for plan in logged.plans:
            entity_rows = _some_entities(logged, plan)
            body = {"features": [f"{plan.name}:{f.name}" for f in plan.features],
                    "entities": {k: [r[k] for r in entity_rows] for k in plan.join_keys}}
            request = urllib.request.Request(f"{url}/get-online-features",
                                             data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            answer = json.load(urllib.request.urlopen(request, timeout=30))
            names = answer["metadata"]["feature_names"]
            columns = {n: r["values"] for n, r in zip(names, answer["results"], strict=True)}
            got = [{n: columns[n][i] for n in columns} for i in range(len(entity_rows))]
            _assert_same(got, _oracle_rows(logged, plan, entity_rows))
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_a_backfill_from_a_file_equals_the_streaming_log(logged, tmp_path):
    """The same events as a JSONL file, backfilled (bounded Flink runs of the same job):
    the rows the streaming job logged, and the rest up to the range's end, as the oracle
    says; a line that is no interaction is a dead letter."""
    from features.offline_log import read_staged
    from streams.backfill import backfill
    from streams.ingest import interaction_serializer
    from tests.oracle import expected_log

    settings, frame = logged.settings, logged.frame
    to_json = interaction_serializer(settings, "json")
    events = tmp_path / "events.jsonl"
    # Shuffled: a file is in no particular order; the backfill sorts it by event time.
    shuffled = [logged.events[i] for i in np.random.default_rng(2).permutation(len(frame))]
    events.write_bytes(b"".join(to_json(e) + b"\n" for e in shuffled) + b"not json\n")
    start, end = int(frame.event_time.min()) - 3_600_000, int(frame.event_time.max()) + 1
    report = backfill(settings, events, start, end, say=print)
    assert report.records == len(frame) + 1 and report.dead_letters == 1

    staged = settings.offline_staging_dir.parent / report.run
    for plan in logged.plans:
        keys = list(plan.join_keys)
        # The input ends: every boundary up to the range's end is logged (the streaming job
        # stops short of the last ones, whose windows its watermark has not closed).
        want = expected_log(frame, keys, _declared(plan), plan.min_slide_ms, end)
        table = read_staged(plan, staged)
        got = keyed_rows(table, keys)
        assert len(got) == table.num_rows == len(want), (plan.name, table.num_rows, len(want))
        wrong = [(k, got.get(k), v) for k, v in want.items()
                 if k not in got or any(not same(got[k][n], x) for n, x in v.items())]
        assert not wrong, f"{plan.name}: {len(wrong)} of {len(want)} rows differ: {wrong[:3]}"

        # The streaming job's log, up to its watermark, is the backfill's.
        cut = int(logged.progress[plan.name])
        streamed = keyed_rows(read_staged(plan, settings.offline_staging_dir), keys)
        assert {k for k in streamed if k[-1] <= cut} == {k for k in got if k[-1] <= cut}
        assert all(same(got[k][n], v) for k, row in streamed.items() if k[-1] <= cut
                   for n, v in row.items())


def test_a_backfill_of_a_range_from_the_input_topic_logs_only_that_range(logged):
    """From the input topic as it stands, an hour in the middle of the stream: its rows are
    the oracle's, windows whole from its first boundary on (the warm-up before the range is
    read, not logged), and nothing outside the range is logged."""
    from features.offline_log import read_staged
    from streams.backfill import backfill
    from tests.oracle import expected_log

    settings, frame = logged.settings, logged.frame
    hour = 3_600_000
    start = int(frame.event_time.min()) // hour * hour + hour
    end = start + hour
    report = backfill(settings, None, start, end, say=print)
    staged = settings.offline_staging_dir.parent / report.run
    for plan in logged.plans:
        keys = list(plan.join_keys)
        want = {k: v for k, v in expected_log(frame, keys, _declared(plan), plan.min_slide_ms,
                                              end).items() if k[-1] >= start}
        got = keyed_rows(read_staged(plan, staged), keys)
        assert got and all(start <= k[-1] <= end for k in got)
        # The warm-up (a max window before the range) is read, so the range's rows are the
        # stream's own: the same instants, the same values.
        assert set(got) == set(want), (plan.name, len(got), len(want))
        wrong = [(k, got[k], v) for k, v in want.items()
                 if any(not same(got[k][n], x) for n, x in v.items())]
        assert not wrong, wrong[:3]
