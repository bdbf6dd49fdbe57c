"""Where the drain's CPU goes: the job's JVM threads and each Python worker's functions.

    python -m benchmarks.profile_drain [--events N] [--branches features drift] [--parallelism P]

Runs the drain of benchmarks/drain.py (quick mode's traffic) on the real job at
parallelism 1 (or ``--parallelism``) and, during the measured drain only, samples:

- the Flink JVM with Java Flight Recorder (``jcmd JFR.start``): execution samples by
  task thread (Flink names a task's thread after its chained operators) and by the
  hottest frames;
- every Python worker with py-spy (``--nonblocking``, so the worker is not paused): the
  functions on top of its stacks.

Sampling costs CPU of its own on a 2-core machine, so the CPU figures here are a
profile's, not a benchmark's; benchmarks/drain.py gives the numbers to quote.
Writes benchmarks/results/profile_drain.md.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.drain import MODES, backlog, run_flink
from benchmarks.drift_report import (
    RESULTS,
    command,
    header_lines,
    log,
    machine,
    now_utc,
    versions,
)
from benchmarks.pipeline_job import (
    flink_jvm,
    isolated_settings,
    workspace,
)
from benchmarks.pipeline_phases import pyspy_path, python_workers

TAG = "profile"
TOP = 10
#: Frames of the worker's own plumbing, left out of the inclusive listing (every sample
#: is under them).
PLUMBING = ("threading.py", "apache_beam/", "grpc/", "thread_pool_executor")


@dataclass(frozen=True)
class Spy:
    """One py-spy recording a Python worker into ``out``."""

    pid: int
    out: Path
    proc: subprocess.Popen


@dataclass(frozen=True)
class WorkerProfile:
    """Samples per function of one worker: on top of the stack (``own``) and anywhere on
    it outside the plumbing (``total``)."""

    pid: int
    own: collections.Counter
    total: collections.Counter
    samples: int


class Sampler:
    """JFR on the JVM plus one py-spy per Python worker, between start and stop."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.jfr = work / "drain.jfr"
        self.spies: list[Spy] = []

    def start(self) -> Callable[[], None]:
        self.jvm = flink_jvm().pid
        subprocess.run(["jcmd", str(self.jvm), "JFR.start", "name=drain", "settings=profile",
                        f"filename={self.jfr}"], check=True, capture_output=True)
        spy = pyspy_path()
        if spy is None:
            raise SystemExit("py-spy not found: `make install` puts it into .venv/bin")
        for worker in python_workers():
            out = self.work / f"worker-{worker.pid}.txt"
            proc = subprocess.Popen([spy, "record", "--pid", str(worker.pid), "--rate",
                                     "25", "--nonblocking", "--format", "raw", "-o",
                                     str(out)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            self.spies.append(Spy(worker.pid, out, proc))
        return self.stop

    def stop(self) -> None:
        subprocess.run(["jcmd", str(self.jvm), "JFR.stop", "name=drain"], check=True,
                       capture_output=True)
        for spy in self.spies:
            spy.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for spy in self.spies:
            spy.proc.wait(60)


def jvm_profile(jfr: Path) -> dict[str, collections.Counter]:
    """Execution samples per task thread and per top frame (``jfr print`` text)."""
    text = subprocess.run(["jfr", "print", "--events", "jdk.ExecutionSample", str(jfr)],
                          check=True, capture_output=True, text=True).stdout
    threads: collections.Counter = collections.Counter()
    frames: collections.Counter = collections.Counter()
    for event in text.split("jdk.ExecutionSample")[1:]:
        thread = re.search(r'sampledThread = "([^"]*)"', event)
        name = re.sub(r" \(\d+/\d+\)#\d+$", "", thread.group(1)) if thread else "?"
        threads[name[:110]] += 1
        top = re.search(r"stackTrace = \[\s*\n\s*(\S[^\n]*?)\s+line:", event)
        if top:
            frames[top.group(1)] += 1
    return {"threads": threads, "frames": frames}


def python_profile(spy: Spy) -> WorkerProfile:
    """One worker's samples per function (py-spy's raw format: a stack and a count)."""
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    n = 0
    text = spy.out.read_text() if spy.out.exists() else ""
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = [re.sub(r" \(.*/(site-packages|work/[^/]+)/", " (", f)
                  for f in stack.split(";")]
        n += k
        own[frames[-1]] += k
        for f in set(frames):
            if not any(p in f for p in PLUMBING):
                total[f] += k
    return WorkerProfile(spy.pid, own, total, n)


def _share(counter: collections.Counter, n: int) -> list[str]:
    return [f"| {count / n:.0%} | `{name}` |" for name, count in counter.most_common(TOP)]


def markdown(meta: dict[str, Any], run: dict[str, Any], jvm: dict,
             workers: list[WorkerProfile]) -> str:
    lines = ["## Profile of the backlog drain", "", *header_lines(meta), "",
             f"{run['events']:,} events drained at parallelism 1 with branches "
             f"{', '.join(meta['branches'])}: {run['cpu_s_per_10k']:.3f} CPU s per 10k "
             "(sampling included), "
             f"{run['events_per_s']:,.0f} events/s.", "",
             "CPU by process: " + ", ".join(f"{k} {v:.1f} s"
                                            for k, v in run["cpu_s_by_process"].items()), ""]
    n = sum(jvm["threads"].values()) or 1
    lines += ["### JVM: samples by task thread", "", "| share | thread |", "|---|---|",
              *_share(jvm["threads"], n), "", "### JVM: hottest frames", "",
              "| share | frame |", "|---|---|", *_share(jvm["frames"], n), ""]
    for w in workers:
        if w.samples < 25:  # an idle worker: nothing to read
            continue
        lines += [f"### Python worker {w.pid}: {w.samples:,} samples", "",
                  "Inclusive (on the stack, outside Beam's and gRPC's plumbing):", "",
                  "| share | function |", "|---|---|",
                  *_share(w.total, w.samples), "", "Self (top of the stack):", "",
                  "| share | function |", "|---|---|", *_share(w.own, w.samples), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.profile_drain",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=MODES["quick"]["events"])
    ap.add_argument("--quick", action="store_true", help="half the events")
    ap.add_argument("--branches", nargs="+", default=["features", "drift"])
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.events //= 2
    if shutil.which("jcmd") is None or shutil.which("jfr") is None:
        raise SystemExit("profile_drain needs the JDK's jcmd and jfr on PATH")
    meta = {"machine": machine(), "date": now_utc(), "branches": args.branches,
            "command": command("benchmarks.profile_drain", sys.argv[1:] if argv is None
                               else argv), "versions": versions("apache-flink")}
    started = time.monotonic()
    with workspace("driftline-profile-") as work:
        repo, records, times, split = backlog(work, MODES["quick"] | {"events": args.events})
        sampler = Sampler(work)
        run = run_flink("profiled", isolated_settings(work, repo), records, split, times,
                        branches=args.branches, parallelism=args.parallelism,
                        during=sampler.start)
        meta["duration_s"] = time.monotonic() - started
        jvm = jvm_profile(sampler.jfr)
        workers = [python_profile(spy) for spy in sampler.spies]
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "profile_drain.md").write_text(markdown(meta, run, jvm, workers))
        log(TAG, f"wrote {args.out}/profile_drain.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
