"""The measurements, one function each: step the offered rate until lag keeps growing,
hold a load while probing freshness, drain a backlog, profile the saturated job.

Lag is produced minus processed (the job's decode step's ``numRecordsOut``, or a peer's
own count in Redis), sampled once a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.drift_report import log
from benchmarks.pipeline_job import CpuMeter
from benchmarks.pipeline_load import PacedLoad

TAG = "pipeline"


@dataclass
class Sample:
    t: float  # seconds since the run began
    rate: float  # offered events/s
    produced: int
    processed: int
    cpu_s: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def lag(self) -> int:
        return self.produced - self.processed


@dataclass
class Window:
    """One held rate: what was offered, what was processed, lag growth, CPU per 10k."""

    label: str
    rate: float
    seconds: float
    processed_per_s: float
    lag_start: int
    lag_end: int
    lag_slope_per_s: float
    cpu_s_per_10k: float | None
    cpu_cores: float  # CPU seconds per wall second over the window
    saturated: bool
    extra: dict[str, Any] = field(default_factory=dict)


class Sampler:
    """Holds rates on a producer and samples lag and CPU every second."""

    def __init__(self, load: PacedLoad, processed: Callable[[], int], cpu: CpuMeter,
                 extra_cpu: dict[str, CpuMeter] | None = None) -> None:
        self.load, self.processed_fn, self.cpu = load, processed, cpu
        self.extra_cpu = extra_cpu or {}
        self.samples: list[Sample] = []
        self.observe: Callable[[], dict[str, float]] | None = None  # more, once a second
        self.t0 = time.monotonic()
        self._processed = 0

    def processed(self) -> int:
        try:
            self._processed = max(self._processed, self.processed_fn())
        except Exception as exc:  # noqa: BLE001 - a missed reading is retried next second
            log(TAG, f"reading progress failed once: {exc}")
        return self._processed

    def sample(self) -> Sample:
        for meter in self.extra_cpu.values():
            meter.read()
        s = Sample(time.monotonic() - self.t0, self.load.rate.value, self.load.count,
                   self.processed(), self.cpu.read())
        if self.observe is not None:
            try:
                s.extra = self.observe()
            except Exception as exc:  # noqa: BLE001 - optional detail
                log(TAG, f"observing failed once: {exc}")
        self.samples.append(s)
        return s

    def hold(self, rate: float, seconds: float, label: str,
             until: Callable[[Sample], bool] | None = None, skip: float = 1 / 3) -> Window:
        """Offer ``rate`` for ``seconds`` (or until ``until(sample)``); judge the window
        after its first ``skip`` (a share), once the change has settled."""
        self.load.set_rate(rate)
        extra0 = {k: m.read() for k, m in self.extra_cpu.items()}
        used0 = dict(self.cpu.used)
        start = time.monotonic()
        mine: list[Sample] = []
        while time.monotonic() - start < seconds:
            time.sleep(1.0)
            s = self.sample()
            mine.append(s)
            log(TAG, f"{label}: offered {rate:,.0f}/s  produced {s.produced:,}  "
                     f"processed {s.processed:,}  lag {s.lag:,}")
            if until is not None and until(s):
                break
        w = judge(label, rate, mine, skip)
        w.extra["wall_clock"] = [time.time() - (time.monotonic() - start), time.time()]
        w.extra["cpu_s_by_meter"] = {k: m.read() - extra0[k] for k, m in self.extra_cpu.items()}
        by: dict[str, float] = {}
        for pid, used in self.cpu.used.items():
            label = self.cpu.labels.get(pid, str(pid))
            by[label] = by.get(label, 0.0) + used - used0.get(pid, 0.0)
        w.extra["cpu_s_by_process"] = {k: round(v, 2) for k, v in by.items() if v > 0.05}
        w.extra["held_s"] = time.monotonic() - start
        return w

    def drain(self, label: str, timeout_s: float, slack: int = 0) -> float:
        """Stop producing until the lag is gone; return how long it took."""
        self.load.set_rate(0)
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            time.sleep(1.0)
            s = self.sample()
            log(TAG, f"{label}: draining, lag {s.lag:,}")
            if s.lag <= slack:
                break
        return time.monotonic() - start


def judge(label: str, rate: float, samples: list[Sample], skip: float = 1 / 3) -> Window:
    tail = samples[int(len(samples) * skip):] if len(samples) >= 3 else samples
    t = np.array([s.t for s in tail])
    lag = np.array([s.lag for s in tail], dtype=float)
    slope = float(np.polyfit(t, lag, 1)[0]) if len(tail) >= 3 else 0.0
    span = t[-1] - t[0] if len(tail) > 1 else 0.0
    done = tail[-1].processed - tail[0].processed if len(tail) > 1 else 0
    cpu = tail[-1].cpu_s - tail[0].cpu_s if len(tail) > 1 else 0.0
    produced = tail[-1].produced - tail[0].produced if len(tail) > 1 else 0
    end_lag = samples[-1].lag if samples else 0
    # "Keeps growing": lag rises by more than 5% of the offered rate per second, has
    # reached more than two seconds' worth of events, and the job processed less than
    # 95% of what was produced over the same span. Processed counts move in Python
    # bundles and Arrow batches of a thousand or more per subtask, so a fitted slope
    # alone flagged steps the job kept up with (2,000 processed a second of 2,000
    # offered, 2026-12-08).
    saturated = (slope > max(0.05 * rate, 50.0) and end_lag > 2 * rate
                 and done < 0.95 * produced)
    w = Window(label, rate, span, done / span if span else 0.0,
               samples[0].lag if samples else 0, end_lag, slope,
               cpu / done * 10_000 if done > 0 else None, cpu / span if span else 0.0,
               saturated)
    keys = {k for s in tail for k in s.extra}
    if keys:
        w.extra["observed_p50"] = {k: float(np.median([s.extra[k] for s in tail
                                                        if k in s.extra])) for k in keys}
    return w


def step_rates(sampler: Sampler, rates: list[float], step_s: float,
               label: str) -> list[Window]:
    """Raise the offered rate step by step; stop after the first saturated step.

    A step whose lag grew is held once more, and counts as saturated only if the lag
    grows again: a short step can meet a stall that is not the job's limit (the burst of
    work at a 5-minute boundary, a checkpoint), and would end the test early."""
    windows = []
    for rate in rates:
        for again in (False, True):
            name = f"{label} step {rate:,.0f}/s" + (", held again" if again else "")
            w = sampler.hold(rate, step_s, name)
            windows.append(w)
            log(TAG, f"{name}: processed {w.processed_per_s:,.0f}/s, lag slope "
                     f"{w.lag_slope_per_s:,.0f}/s, CPU {w.cpu_s_per_10k or 0:.2f} s/10k"
                     f"{'  -> lag grew' if w.saturated else ''}")
            if not w.saturated:
                break
            if not again:
                w.saturated, w.extra["stalled"] = False, True  # unless it grows again
        if w.saturated:
            break
    return windows


def hold_steady(sampler: Sampler, rate: float, seconds: float, label: str) -> Window:
    """``rate`` held for ``seconds``, judged on the whole span after a short settling
    hold. The shipped repo's work comes in a burst at each 5-minute boundary: a span of
    whole 5-minute periods holds one burst per period, where a short step holds one or
    none (and its CPU per event swings tenfold)."""
    sampler.hold(rate, 20, f"{label}: settling")
    return sampler.hold(rate, seconds, label, skip=0)


def max_sustained(windows: list[Window]) -> tuple[float | None, float | None]:
    """(highest offered rate that did not saturate, processing rate at saturation).

    A rate counts as sustained only if no window at it saturated: a step that stalled and
    then saturated when held again is the limit, not sustained."""
    limits = {w.rate for w in windows if w.saturated}
    ok = [w.rate for w in windows if w.rate not in limits]
    sat = [w.processed_per_s for w in windows if w.saturated]
    return (max(ok) if ok else None), (max(sat) if sat else None)


def wait_until_consuming(sampler: Sampler, rate: float, timeout_s: float, label: str) -> float:
    """Offer a trickle until the consumer has caught up with it; return the wait."""
    sampler.load.set_rate(rate)
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        time.sleep(1.0)
        s = sampler.sample()
        log(TAG, f"{label}: warming up, produced {s.produced:,} processed {s.processed:,}")
        if s.processed > 0 and s.lag <= max(2 * rate, 500):
            return time.monotonic() - start
    raise RuntimeError(f"{label}: nothing processed after {timeout_s:.0f} s")


def windows_of(probes: list[dict[str, Any]], spans: list[tuple[str, float, float]]
               ) -> dict[str, list[float | None]]:
    """Split probe results by the wall-time span (label, start, end) they were sent in."""
    out: dict[str, list[float | None]] = {label: [] for label, _, _ in spans}
    for p in probes:
        for label, start, end in spans:
            if start <= p["sent"] < end:
                out[label].append(p["freshness_s"])
    return out


def pyspy_path() -> str | None:
    """``DRIFTLINE_PYSPY``, else py-spy beside this Python (the dev extra installs it into
    the venv, which is not on PATH when run as ``.venv/bin/python``), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return os.environ.get("DRIFTLINE_PYSPY") or (str(beside) if beside.exists() else None) \
        or shutil.which("py-spy")


def python_workers() -> list[psutil.Process]:
    """The job's Python worker processes under the Flink JVM (beam_boot starts them)."""
    from benchmarks.pipeline_job import flink_jvm

    out = []
    for p in flink_jvm().children(recursive=True):
        try:
            if p.name().startswith("python"):
                out.append(p)
        except psutil.Error:
            continue
    return out


def python_worker_pid() -> int | None:
    """The busiest Python worker so far (the decode step's, in a running job): with one
    process per operator, the first one found may be an idle branch's, which gave
    py-spy no samples (2026-12-08)."""
    def used(p: psutil.Process) -> float:
        try:
            return sum(p.cpu_times()[:2])
        except psutil.Error:
            return -1.0

    workers = python_workers()
    return max(workers, key=used).pid if workers else None


class Profiler:
    """py-spy on the job's Python worker, if py-spy is present: ``DRIFTLINE_PYSPY`` or
    ``py-spy`` on PATH (``pip install py-spy``; optional). Only samples that hold the GIL
    count (``--gil``), so shares are of Python CPU time, not of waiting."""

    def __init__(self, seconds: float) -> None:
        self.exe = pyspy_path()
        self.tmp = Path(tempfile.mkdtemp(prefix="pipeline-pyspy-"))
        self.out = self.tmp / "stacks.txt"
        pid = python_worker_pid()
        self.proc = None if self.exe is None or pid is None else subprocess.Popen(
            [self.exe, "record", "-d", str(int(seconds)), "-r", "50", "--format", "raw",
             "--gil", "--nonblocking", "-o", str(self.out), "-p", str(pid)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        try:
            said, _ = self.proc.communicate(timeout=60)
            if not self.out.exists() or not self.out.stat().st_size:
                log(TAG, f"py-spy failed (rc {self.proc.returncode}): {said.strip()[-300:]}")
                return None
            return summarize_stacks(self.out.read_text())
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


_OURS = ("streams/", "features/", "schemas/", "drift/")
_FRAMEWORK = [("pickling (cloudpickle/pickle)", ("cloudpickle", "pickle")),
              ("Row objects (pyflink.common.types)", ("pyflink/common/types",)),
              ("timer service", ("timerservice",)),
              ("keyed state", ("state_impl", "state_backend")),
              ("Beam bundle / coders", ("apache_beam",)),
              ("PyFlink operator glue", ("pyflink/",))]


def summarize_stacks(raw: str) -> dict[str, Any]:
    """py-spy raw stacks -> share of the bundle-processing thread's samples by where the
    time went: under one of our functions (inclusive: its state and timer calls too), or
    else the framework layer of the innermost frame (record conversion, coders, ...)."""
    total = bundle = 0
    split: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not n_text.isdigit():
            continue
        n = int(n_text)
        total += n
        if "process_bundle" not in stack:
            continue
        bundle += n
        frames = stack.split(";")
        where = None
        for f in frames:
            if any(f"({m}" in f or f"/{m}" in f for m in _OURS):
                where = (f"{f.split(' (')[0]} in {f.split('(')[-1].split(':')[0]} "
                         "(with the framework calls it makes)")
                break
        if where is None:
            leaf = frames[-1]
            where = next((name for name, keys in _FRAMEWORK if any(k in leaf for k in keys)),
                         "other (grpc, threading, builtins)")
        split[where] = split.get(where, 0) + n
    shares = {k: round(v / bundle, 3) for k, v in sorted(split.items(), key=lambda kv: -kv[1])}
    return {"samples": total, "bundle_thread_samples": bundle, "bundle_thread_share": shares}


def as_dict(w: Window) -> dict[str, Any]:
    return asdict(w)
