"""Recovery after each fault: how long the job takes to come back, and what it lost or
counted twice, against the brute-force oracle.

    python -m benchmarks.recovery [--quick]    # four faults (two), about 12 minutes here

Each fault strikes the stream of ``tests/integration/test_recovery.py`` (10,000 events
over 4 h, 320 employees) once its first half is processed and checkpointed; the second
half follows at once. Measured per fault:

- *back after*: from the fault (for an outage, from the service's return; for a killed
  ``driftline run``, from its restart) until feature progress passes where it stood
  before the fault;
- *caught up after*: until every feature the second half makes is in Redis;
- every feature value of every employee compared with the oracle; *events lost* and
  *double counted* are the 24 h counts below and above it, summed over employees.

The integration tests assert the same outcomes (0 wrong); this measures the times.
Writes benchmarks/results/recovery.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.drift_report import (
    RESULTS,
    command,
    header_lines,
    log,
    machine,
    now_utc,
    table,
    versions,
    write_json,
)
from features.plans import load_view_plans
from streams import cluster, stack
from streams.runner import JobHandle, progress_of, with_ports
from streams.settings import Settings, load_settings
from tests.integration.conftest import (
    fresh_settings,
    remove_keys,
    settings_env,
    start_redis,
    stop_redis,
    wait_for,
    wait_until_stable,
)
from tests.integration.faults import (
    checkpointed_after,
    produce,
    python_workers,
    reachable,
    stream,
)
from tests.oracle import compare_online

TAG = "recovery"
COUNT_FEATURE = "interactions_24h"  # its window covers the whole stream


class Scenario:
    """One fault against one job: ``start`` the job, ``strike`` (returns the moment from
    which recovery counts), ``stop``."""

    name = ""
    branches = ["features"]

    def __init__(self, settings: Settings, work: Path) -> None:
        self.settings, self.work = settings, work

    def start(self) -> None:
        self.job = JobHandle(self.settings, self.branches)
        self.settings = self.job.settings

    def strike(self, second: list[dict]) -> float:
        raise NotImplementedError

    def stop(self) -> None:
        self.job.cancel()


class WorkerKilled(Scenario):
    name = "Python worker SIGKILLed (task failure)"

    def strike(self, second):
        python_workers()[0].kill()
        at = time.monotonic()
        produce(self.settings, second)
        return at


class RedisOutage(Scenario):
    name = "Redis unreachable for 30 s (SIGSTOP)"

    def __init__(self, settings, work):
        url, self.server = start_redis(work)
        super().__init__(settings.model_copy(update={"redis_url": url}), work)

    def strike(self, second):
        self.server.send_signal(signal.SIGSTOP)
        produce(self.settings, second)
        time.sleep(30)
        self.server.send_signal(signal.SIGCONT)
        return time.monotonic()

    def stop(self):
        super().stop()
        stop_redis(self.server)


class RunKilled(Scenario):
    name = "`driftline run` SIGKILLed, then restarted"

    def start(self):
        self.settings = with_ports(self.settings)
        self.proc = self._run()

    def _run(self) -> subprocess.Popen:
        env = {**os.environ, **settings_env(self.settings)}
        return subprocess.Popen([sys.executable, "-m", "streams.cli", "run", "--branches",
                                 ",".join(self.branches)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def strike(self, second):
        family = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        psutil.wait_procs(family, timeout=30)  # its JVM and workers go with it
        produce(self.settings, second)
        at = time.monotonic()
        self.proc = self._run()
        return at

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class TaskManagerKilled(Scenario):
    name = "TaskManager SIGKILLed (standalone cluster, parallelism 2)"

    def __init__(self, settings, work):
        job = settings.job.model_copy(update={"parallelism": 2})
        super().__init__(with_ports(settings.model_copy(update={"job": job})), work)

    def start(self):
        cluster.up(self.settings)
        cluster.submit(self.settings, self.branches, extra_env=settings_env(self.settings))

    def strike(self, second):
        cluster.processes(self.settings, "taskmanager")[0].kill()
        at = time.monotonic()
        produce(self.settings, second)
        cluster.up(self.settings)  # the replacement a supervisor would start
        return at

    def stop(self):
        cluster.down(self.settings)


SCENARIOS: list[type[Scenario]] = [WorkerKilled, RedisOutage, RunKilled, TaskManagerKilled]


def run_scenario(kind: type[Scenario], base: Settings, work: Path) -> dict[str, Any]:
    settings = fresh_settings(base, work, job={"checkpoint_interval_ms": 2000})
    scenario = kind(settings, work)
    first, second, frame = stream(scenario.settings)
    views = [p.name for p in load_view_plans(settings.feature_repo)]

    def front() -> int:
        progress = progress_of(scenario.settings, views)
        return min((int(progress.get(v, -1)) for v in views), default=-1)

    produce(scenario.settings, first)
    scenario.start()
    try:
        wait_for(lambda: front() >= reachable(settings, first), 300, "the first half")
        since = time.time()
        wait_for(lambda: checkpointed_after(scenario.settings, scenario.branches, since), 60,
                 "a checkpoint after the first half")
        mark = front()
        log(TAG, f"{kind.name}: striking at event time {mark}")
        at = scenario.strike(second)
        wait_for(lambda: front() > mark, 600, "progress past the fault")
        back_s = time.monotonic() - at
        wait_for(lambda: front() >= reachable(settings, frame), 600, "the whole stream")
        caught_up_s = time.monotonic() - at
        progress = wait_until_stable(lambda: progress_of(scenario.settings, views), 5, 60)
        compared, wrong = compare_online(scenario.settings, frame, progress)
    finally:
        scenario.stop()
        if stack.redis_healthy(scenario.settings):
            remove_keys(scenario.settings)
    counts = [(got or 0) - (want or 0) for _, _, f, got, want, _ in wrong if f == COUNT_FEATURE]
    out = {"fault": kind.name, "back_s": back_s, "caught_up_s": caught_up_s,
           "values_compared": compared, "values_wrong": len(wrong),
           "events_lost": -sum(c for c in counts if c < 0),
           "double_counted": sum(c for c in counts if c > 0), "wrong_examples": wrong[:3]}
    log(TAG, f"{kind.name}: back after {back_s:.1f} s, caught up after {caught_up_s:.1f} s, "
             f"{len(wrong)} of {compared} values wrong")
    return out


def markdown(r: dict[str, Any]) -> str:
    rows = [[o["fault"], f"{o['back_s']:.1f}", f"{o['caught_up_s']:.1f}",
             f"{o['values_wrong']} of {o['values_compared']:,}", str(o["events_lost"]),
             str(o["double_counted"])] for o in r["outcomes"]]
    return "\n".join([
        "## Recovery after faults", "", *header_lines(r["meta"]), "",
        "10,000 events over 4 h of event time; the fault strikes once the first half is "
        "processed and checkpointed (every 2 s), the second half follows at once. *Back "
        "after*: until feature progress passes where it stood (for the outage: counted "
        "from Redis's return; for `driftline run`: from its restart). *Caught up*: until "
        "the second half's features are all in Redis. Target: 0 lost, 0 double counted.",
        "", table(["fault", "back after (s)", "caught up after (s)", "values wrong",
                   "events lost", "double counted"], rows), ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.recovery", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--quick", action="store_true", help="the first two faults only")
    args = ap.parse_args(argv)
    meta = {"machine": machine(), "date": now_utc(), "mode": "quick" if args.quick else "standard",
            "command": command("benchmarks.recovery", sys.argv[1:] if argv is None else argv),
            "versions": versions("apache-flink", "confluent-kafka")}
    started = time.monotonic()
    base = load_settings()
    for line in stack.up(base):
        log(TAG, line)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="driftline-recovery-") as work:
        for kind in SCENARIOS[:2] if args.quick else SCENARIOS:
            outcomes.append(run_scenario(kind, base, Path(work)))
    meta["duration_s"] = time.monotonic() - started
    result = {"meta": meta, "outcomes": outcomes}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "recovery.json", result)
    (args.out / "recovery.md").write_text(markdown(result))
    log(TAG, f"done in {meta['duration_s']:.0f} s; wrote {args.out}/recovery.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

