"""Drive the two baselines (``benchmarks/peers/feast_push.py``, ``redis_direct.py``) as
subprocesses over the same pre-serialized events: a backlog drain for throughput and
CPU, then held live rates with freshness probes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import psutil
import redis

from benchmarks.drift_report import ROOT, log
from benchmarks.pipeline_job import tree_cpu_meter
from benchmarks.pipeline_load import PacedLoad, PooledRecord, produce_backlog
from benchmarks.pipeline_phases import TAG, Sampler, as_dict, wait_until_consuming, windows_of
from benchmarks.pipeline_probe import Probes
from streams.settings import Settings
from streams.stats import group_key

PEERS = ("feast_push", "redis_direct")


def stop_key(name: str, settings: Settings) -> str:
    """Where the peer ``name`` is told to stop (and, with ``:progress``, reports): under
    the run's consumer group, so the run's cleanup removes it with the rest."""
    return group_key(settings, f"{name}-stop")


def _start(name: str, settings: Settings, expect: int | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", f"benchmarks.peers.{name}", settings.model_dump_json(),
           "--stop-key", stop_key(name, settings)]
    if expect is not None:
        cmd += ["--expect", str(expect)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(proc: subprocess.Popen, timeout_s: float) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"peer failed (rc {proc.returncode}): {err.strip()[-1500:]}")
    return json.loads(lines[-1])


def drain(name: str, settings: Settings, pool: list[PooledRecord], count: int,
          redis_proc: psutil.Process | None) -> dict[str, Any]:
    """Pre-load ``count`` events, then time the peer consuming all of them."""
    produce_backlog(settings, pool, count, events_per_s=5_000)
    meter = tree_cpu_meter(redis_proc) if redis_proc else None
    log(TAG, f"{name}: draining a backlog of {count:,} events")
    result = _result(_start(name, settings, expect=count), timeout_s=600)
    if meter is not None:
        result["redis_cpu_s"] = meter.read()
    return result


def live(name: str, settings: Settings, pool: list[PooledRecord],
         windows: list[tuple[str, float, float]], settle_s: float = 2.0) -> dict[str, Any]:
    """Hold each (label, rate, seconds) with probes running; freshness per window."""
    stop = stop_key(name, settings)
    control = redis.Redis.from_url(settings.redis_url)
    proc = _start(name, settings)
    load = PacedLoad(settings, pool).start()
    sampler = Sampler(load, lambda: int(control.hget(f"{stop}:progress", "processed") or 0),
                      tree_cpu_meter(psutil.Process(proc.pid)))
    try:
        wait_until_consuming(sampler, 200, 120, name)
        probes = Probes(settings).start()
        spans, held = [], []
        for label, rate, seconds in windows:
            start = time.time()
            held.append(sampler.hold(rate, seconds, f"{name} {label}"))
            spans.append((label, start + settle_s, time.time()))
        fresh = windows_of(probes.finish(), spans)
    finally:
        load.stop()
        control.set(stop, 1)
    summary = _result(proc, timeout_s=60)
    return {"windows": [as_dict(w) for w in held], "freshness_s": fresh,
            "samples": [s.__dict__ | {"lag": s.lag} for s in sampler.samples],
            "process": summary}
