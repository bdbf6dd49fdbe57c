"""Pipeline benchmark: ingest throughput, freshness and online lookups of the real
driftline job (features + drift), against two baselines on the same events.

    python -m benchmarks.pipeline [--quick]

Needs the local stack (``driftline up``). Writes benchmarks/results/pipeline.{json,md}
and PNG plots; progress goes to stderr. What is measured and why is in the .md it
writes (see ``benchmarks/pipeline_report.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.drift_report import RESULTS, ROOT, command, log, machine, now_utc, versions
from benchmarks.pipeline_baselines import PEERS, drain, live
from benchmarks.pipeline_job import (
    MeasuredJob,
    apply_repo,
    broker_process,
    copy_repo,
    isolated_settings,
    job_cpu_meter,
    redis_process,
    tree_cpu_meter,
    watermark_lags,
    workspace,
)
from benchmarks.pipeline_load import PacedLoad, build_pool
from benchmarks.pipeline_phases import (
    TAG,
    Profiler,
    Sampler,
    Window,
    as_dict,
    hold_steady,
    max_sustained,
    step_rates,
    wait_until_consuming,
    windows_of,
)
from benchmarks.pipeline_probe import Probes, lookups
from benchmarks.pipeline_report import floor_split, write_report
from features.feast_repo import project_name

FIXED_LOAD = 5_000.0
STEADY_RATE = 1_000.0  # the steady-rate target: CPU per event at most 2x the drain's
LOW_LATENCY = {"slide_s": 1, "max_out_of_orderness_ms": 200, "python_bundle_ms": 100,
               "network_buffer_ms": 10, "watermark_interval_ms": 50}
MODES = {
    "quick": {"pool": 20_000, "steps": [600, 1200, 2400, 4800], "step_s": 8, "idle_s": 4,
              "steady_s": 20,
              "warm_s": 10,
              "fresh_s": 10, "step_b": False, "drain": 20_000, "lookups": 50, "profile_s": 0},
    "standard": {"pool": 40_000,
                 "steps": [500, 1000, 1500, 2000, 3000, 4000, 6000, 9000, 12000],
                 "warm_s": 45, "step_s": 30, "idle_s": 6, "steady_s": 300, "fresh_s": 20,
                 "step_b": True, "drain": 80_000,
                 "lookups": 300, "profile_s": 10},
}


def run_job(settings, pool, redis_proc, label: str, body,
            parallelism: int | None = None) -> dict[str, Any]:
    """Submit the job, wait for it to consume, run ``body(sampler, job)``, cancel."""
    t = time.monotonic()
    job = MeasuredJob(settings, ["features", "drift"], parallelism=parallelism)
    submitted = time.monotonic() - t
    load = PacedLoad(settings, pool).start()
    extra = {"redis": tree_cpu_meter(redis_proc)} if redis_proc else {}
    broker = broker_process()
    if broker is not None:
        extra["broker"] = tree_cpu_meter(broker)
    sampler = Sampler(load, job.processed, job_cpu_meter(), extra)
    try:
        warm = wait_until_consuming(sampler, 200, 180, label)
        out = body(sampler, job)
        out["cpu_s_by_process"] = sampler.cpu.by_process()
    finally:
        load.stop()
        job.cancel()
    out |= {"submit_s": submitted, "warmup_s": warm, "stats": job.stats(),
            "samples": [s.__dict__ | {"lag": s.lag} for s in sampler.samples]}
    return out


def throughput_phase(mode: dict, settings, pool, redis_proc,
                     parallelism: int | None = None) -> dict[str, Any]:
    def body(sampler: Sampler, job: MeasuredJob) -> dict[str, Any]:
        # A fresh JVM spends its first minute compiling (JIT); steps measure after it.
        sampler.hold(1000, mode["warm_s"], "warm-up (not reported)")
        sampler.drain("warm-up", 60)
        idle = sampler.hold(0, mode["idle_s"], "idle (no input)")
        steady = hold_steady(sampler, STEADY_RATE, mode["steady_s"],
                             f"steady {STEADY_RATE:,.0f}/s")
        windows = step_rates(sampler, mode["steps"], mode["step_s"], "shipped repo")
        out: dict[str, Any] = {"windows": [as_dict(w) for w in windows], "idle": as_dict(idle),
                               "steady": as_dict(steady)}
        if mode["profile_s"] and windows[-1].saturated:
            log(TAG, f"profiling the saturated job for {mode['profile_s']} s")
            prof = Profiler(mode["profile_s"])
            w = sampler.hold(windows[-1].rate, mode["profile_s"] + 1, "profile")
            out["profile"] = prof.finish()
            out["profile_window"] = as_dict(w)
        return out

    return run_job(settings, pool, redis_proc, "throughput", body, parallelism)


def freshness_phase(mode: dict, settings, pool, redis_proc, max_a: float) -> dict[str, Any]:
    def body(sampler: Sampler, job: MeasuredJob) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if mode["step_b"]:
            rates = [round(max_a * f, -1) for f in (0.25, 0.5, 0.75, 1.0)]
            windows = step_rates(sampler, rates, mode["step_s"], "low-latency repo")
            out["windows"] = [as_dict(w) for w in windows]
            ok, sat = max_sustained(windows)
            # The maximum: the highest sustained step, else (if even the first step
            # saturated) the rate it processed at while saturated.
            top = ok or sat or 0.25 * max_a
            out["max_sustained"], out["saturated_rate"], out["max_used"] = ok, sat, top
            out["drain_s"] = sampler.drain("low-latency repo", 90, slack=200)
            load_80 = round(0.8 * top, -1)
            label_80 = "80% of max"
            plan = [("20% of max", round(0.2 * top, -1), mode["fresh_s"])]
        else:
            load_80 = round(0.4 * max_a, -1)
            label_80 = "40% of shipped max (quick)"
            plan = []
        plan.append((label_80, load_80, mode["fresh_s"]))
        if mode["step_b"]:
            plan.append((f"{FIXED_LOAD:,.0f}/s", FIXED_LOAD,
                         mode["fresh_s"] if load_80 / 0.8 >= FIXED_LOAD else 12))
        probes = Probes(settings).start()
        sampler.observe = lambda: watermark_lags(job)
        spans, held = [], []
        for label, rate, seconds in plan:
            start = time.time()
            held.append(sampler.hold(rate, seconds, f"freshness {label}"))
            spans.append((label, start + 2.0, time.time()))
        raw = probes.finish()
        out["freshness_s"] = windows_of(raw, spans)
        _, start, end = spans[0]
        first = [p for p in raw if start <= p["sent"] < end]
        out["freshness_split"] = floor_split(
            [p["freshness_s"] for p in first], [p["sent"] for p in first],
            LOW_LATENCY["slide_s"], LOW_LATENCY["max_out_of_orderness_ms"] / 1000)
        out["freshness_windows"] = [as_dict(w) for w in held]
        out["plan"] = plan
        return out

    return run_job(settings, pool, redis_proc, "freshness", body)


def _quiet_cancelled(args: threading.ExceptHookArgs) -> None:
    """The Python worker's gRPC reader threads die with CANCELLED when a job is cancelled."""
    if "StatusCode.CANCELLED" not in repr(args.exc_value):
        threading.__excepthook__(args)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.pipeline", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 2-3 minutes; coarse")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args(argv)
    mode_name = "quick" if args.quick else "standard"
    mode = MODES[mode_name]
    started = time.monotonic()
    meta = {"machine": machine(), "date": now_utc(), "mode": mode_name, "settings": mode,
            "command": command("benchmarks.pipeline", sys.argv[1:] if argv is None else argv),
            "versions": versions("apache-flink", "feast", "redis", "confluent-kafka", "pandas")}
    # Cancelling a job closes the Python workers' data channel mid-bundle; Beam logs that
    # as an error with a traceback. It is the expected end of a run here.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    threading.excepthook = _quiet_cancelled
    stages: dict[str, float] = {}
    mark = time.monotonic()

    def stage(name: str) -> None:
        nonlocal mark
        stages[name] = time.monotonic() - mark
        mark = time.monotonic()

    results: dict[str, Any] = {"meta": meta, "low_latency": LOW_LATENCY}
    with workspace("driftline-pipeline-") as work:
        repo_a = copy_repo(ROOT / "feature_repo", work / "repo-shipped")
        settings_a = isolated_settings(work, repo_a)
        log(TAG, f"{mode_name} mode; feast apply on a private copy of feature_repo")
        apply_repo(settings_a)
        # Same views and project, so it can share the applied registry; slides differ.
        repo_b = copy_repo(ROOT / "feature_repo", work / "repo-low-latency",
                           slide_s=LOW_LATENCY["slide_s"], project=project_name(repo_a))
        shutil.copytree(repo_a / "data", repo_b / "data")
        pool = build_pool(settings_a, mode["pool"])
        redis_proc = redis_process(settings_a)
        stage("setup")

        log(TAG, "driftline, shipped feature repo: stepping the offered rate")
        results["driftline_throughput"] = a = throughput_phase(mode, settings_a, pool,
                                                               redis_proc)
        ok, sat = max_sustained([Window(**w) for w in a["windows"]])
        a["max_sustained"], a["saturated_rate"] = ok, sat
        max_a = ok or sat or 1000.0
        stage("throughput")
        if not args.quick:
            log(TAG, "driftline at parallelism 2: stepping the offered rate")
            p2 = throughput_phase(mode, isolated_settings(work, repo_a), pool, redis_proc,
                                  parallelism=2)
            p2["max_sustained"], p2["saturated_rate"] = max_sustained(
                [Window(**w) for w in p2["windows"]])
            results["driftline_throughput_p2"] = p2
            stage("throughput_p2")

        log(TAG, "driftline, low-latency variant: freshness")
        settings_b = isolated_settings(
            work, repo_b, **{k: v for k, v in LOW_LATENCY.items() if k != "slide_s"})
        results["driftline_freshness"] = b = freshness_phase(mode, settings_b, pool,
                                                             redis_proc, max_a)
        stage("freshness")
        ids = sorted({(r.tenant_id, r.key.decode()) for r in pool})
        log(TAG, f"online lookups: {mode['lookups']} calls each of 1 and 100 entities")
        results["lookups_s"] = lookups(settings_b, ids, mode["lookups"])
        stage("lookups")

        if not args.no_baselines:
            windows = [(label, rate, mode["fresh_s"]) for label, rate, _ in b["plan"]]
            for name in PEERS:
                peer: dict[str, Any] = {}
                peer["drain"] = drain(name, isolated_settings(work, repo_a), pool,
                                      mode["drain"], redis_proc)
                peer["live"] = live(name, isolated_settings(work, repo_a), pool, windows)
                results[name] = peer
            stage("baselines")
    meta["duration_s"] = time.monotonic() - started
    meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["stages_s"] = stages
    write_report(results, args.out)
    log(TAG, f"done in {meta['duration_s']:.0f} s; wrote {args.out}/pipeline.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
