"""Start-up and restart rules of the job that need no running Flink: which checkpoint a
restart resumes from, how many stay, and which settings are refused before anything runs."""

from __future__ import annotations

import os
import socket
import time

import pytest

from schemas.errors import ConfigError
from streams import checkpoints
from streams.runner import with_ports
from streams.settings import load_settings


def _checkpoint(root, run: str, n: int, complete: bool = True, age_s: float = 0.0):
    path = root / run / f"chk-{n}"
    path.mkdir(parents=True)
    if complete:
        meta = path / checkpoints.METADATA
        meta.write_bytes(b"x")
        stamp = time.time() - age_s
        os.utime(meta, (stamp, stamp))
    return path


def test_a_restart_resumes_the_newest_complete_checkpoint_of_any_run(tmp_path):
    _checkpoint(tmp_path, "run-a", 7, age_s=60)
    newest = _checkpoint(tmp_path, "run-b", 3, age_s=5)
    _checkpoint(tmp_path, "run-b", 4, complete=False)  # being written when killed
    assert checkpoints.latest(tmp_path) == newest
    assert checkpoints.latest(tmp_path / "nothing-here") is None


def test_pruning_keeps_only_the_run_resumed_from(tmp_path):
    for run in ("run-a", "run-b", "run-c"):
        _checkpoint(tmp_path, run, 1)
    removed = checkpoints.prune(tmp_path, keep="run-b")
    assert sorted(p.name for p in removed) == ["run-a", "run-c"]
    assert [p.name for p in tmp_path.iterdir()] == ["run-b"]


def test_the_fingerprint_changes_with_what_the_state_means(tmp_path):
    base = load_settings(state_dir=tmp_path)
    same = checkpoints.fingerprint(base, ["features"])
    assert same == checkpoints.fingerprint(load_settings(state_dir=tmp_path), ["features"])
    other_topic = load_settings(state_dir=tmp_path, topics={"input": "elsewhere"})
    assert checkpoints.fingerprint(other_topic, ["features"]) != same
    assert checkpoints.fingerprint(base, ["features", "drift"]) != same


def test_resuming_from_committed_offsets_without_state_is_refused():
    # It would resume without the window state that belongs to those offsets.
    with pytest.raises(ConfigError, match="job.startup_mode"):
        load_settings(job={"startup_mode": "group-offsets"})


def test_fewer_shards_than_subtasks_is_refused():
    # The feature tiles' subtasks beyond the shard count would hold nothing.
    with pytest.raises(ConfigError, match=r"job.shards \(2\) is below job.parallelism \(4\)"):
        load_settings(job={"shards": 2, "parallelism": 4})
    assert load_settings(job={"shards": 4, "parallelism": 4}).job.shards == 4


def test_a_port_in_use_is_refused_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="job.rest_port.*DRIFTLINE_JOB__REST_PORT=0"):
            with_ports(load_settings(job={"rest_port": port, "metrics_port": 0}))
    chosen = with_ports(load_settings(job={"rest_port": 0, "metrics_port": 0})).job
    assert chosen.rest_port > 0 and chosen.metrics_port > 0


def test_the_cluster_config_is_private_and_follows_the_settings(tmp_path):
    import sys

    import yaml

    from streams import cluster

    settings = load_settings(state_dir=tmp_path, job={"rest_port": 18081, "metrics_port": 19249,
                                                      "parallelism": 2})
    conf = cluster.write_config(settings)
    assert conf.is_relative_to(tmp_path.resolve())
    config = yaml.safe_load((conf / "config.yaml").read_text())
    assert config["rest.port"] == 18081
    assert config["metrics.reporter.prom.port"] == f"19249-{19249 + cluster.TASKMANAGERS}"
    assert config["taskmanager.numberOfTaskSlots"] == 1
    assert config["python.executable"] == sys.executable
    assert (conf / "log4j.properties").exists()  # the daemons log to files, not stdout


def test_a_bounded_run_reads_from_the_start_and_stops_at_the_given_offsets():
    from streams.job import Bounded, _scan

    settings = load_settings(job={"startup_mode": "latest-offset"})
    streaming = _scan(settings, "g", "t")
    assert streaming["scan.startup.mode"] == "latest-offset"
    assert "scan.bounded.mode" not in streaming
    bounded = _scan(settings, "g", "t", Bounded({"t": {1: 0, 0: 42}}, 0, 1, 0))
    assert bounded["scan.startup.mode"] == "earliest-offset"
    assert bounded["scan.bounded.mode"] == "specific-offsets"
    assert bounded["scan.bounded.specific-offsets"] == "partition:0,offset:42;partition:1,offset:0"
    assert "scan.topic-partition-discovery.interval" not in bounded  # the partitions are known
