"""Run the Flink job on a local mini-cluster, with progress, until stopped."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import cast

import redis

from schemas.errors import ConfigError, ServiceUnavailable
from streams import stack
from streams.settings import Settings
from streams.stats import progress_key, stats_key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_ports(settings: Settings) -> Settings:
    """Settings whose REST and metrics ports are concrete and free (0 = pick one), so
    that what we print is where the job really is."""
    chosen = {}
    for field in ("rest_port", "metrics_port"):
        port = getattr(settings.job, field) or free_port()
        with socket.socket() as probe:
            # As servers bind: a port whose old connections linger (TIME_WAIT, after a
            # restart) is free; only one something still listens on is taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                probe.listen()
            except OSError:
                raise ConfigError(f"job.{field}", f"port {port} is in use (another "
                                  "`driftline run`, or a Flink cluster?); set "
                                  f"DRIFTLINE_JOB__{field.upper()}=0 for a free one") from None
        chosen[field] = port
    return settings.model_copy(update={"job": settings.job.model_copy(update=chosen)})


def require_stack(settings: Settings, broker: bool = True, redis_: bool = True) -> None:
    """Fail early, in one line naming the service and how to start it."""
    if broker and not stack.broker_healthy(settings):
        raise ServiceUnavailable("Kafka broker", settings.bootstrap_servers,
                                 "Run `driftline up` (or start your own broker).")
    if redis_ and not stack.redis_healthy(settings):
        raise ServiceUnavailable("Redis", settings.redis_url,
                                 "Run `driftline up` (or start redis-server).")


class JobHandle:
    """A submitted job: poll its progress, cancel it."""

    def __init__(self, settings: Settings, branches: Iterable[str],
                 extra_config: Mapping[str, str] | None = None,
                 pipeline: Callable[..., None] | None = None, resume: bool = True) -> None:
        """``pipeline(env, settings, branches)`` builds the job (default: the real one;
        the benchmarks pass a decode-only floor). ``resume``: restore the newest
        checkpoint of this same job, if any (streams/checkpoints.py)."""
        from features.plans import load_view_plans
        from streams.job import build_pipeline, create_environment

        branches = list(branches)
        #: The feature views whose progress :meth:`caught_up` waits for.
        self.views = ([p.name for p in load_view_plans(settings.feature_repo)]
                      if "features" in branches else [])
        self.shards = settings.job.shards
        require_stack(settings)
        #: The settings the job runs with (concrete ports: :func:`with_ports`).
        self.settings = settings = with_ports(settings)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        # Progress and counters describe this run.
        self.progress_key, self.stats_key = progress_key(settings), stats_key(settings)
        self.redis.delete(self.progress_key, self.stats_key)
        env = create_environment(settings, extra_config, branches, resume=resume)
        (pipeline or build_pipeline)(env, settings, branches)
        self.client = env.execute_async("driftline")
        self.started = time.monotonic()

    def progress(self) -> dict[str, str]:
        """Per view, the event time through which every row is in Redis (epoch millis),
        and ``updated_at``; a view appears once all of its shards have reported."""
        return view_progress(cast(dict[str, str], self.redis.hgetall(self.progress_key)),
                             self.views, self.shards)

    def stats(self) -> dict[str, str]:
        return cast(dict[str, str], self.redis.hgetall(self.stats_key))

    def status(self) -> str:
        """``RUNNING``, ``FAILED``, ``CANCELED``, ``FINISHED``, ... (Flink's JobStatus name)."""
        return self.client.get_job_status().result().name

    def caught_up(self, event_time_ms: int) -> bool:
        """Has every feature view written everything up to ``event_time_ms``?"""
        progress = self.progress()
        return all(int(progress.get(v, -1)) >= event_time_ms for v in self.views)

    def cancel(self) -> None:
        try:
            self.client.cancel().result()
        except Exception as exc:  # noqa: BLE001 - a job that already ended is fine to cancel
            if "not found" not in str(exc).lower():
                raise


def progress_of(settings: Settings, views: Iterable[str]) -> dict[str, str]:
    """:meth:`JobHandle.progress` of the job these settings name, from outside it."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    raw = cast(dict[str, str], client.hgetall(progress_key(settings)))
    return view_progress(raw, views, settings.job.shards)


def view_progress(raw: dict[str, str], views: Iterable[str], shards: int) -> dict[str, str]:
    """``<view>/<shard>`` fields -> per view, the minimum over all ``shards`` of it."""
    out = {}
    for view in views:
        marks = [raw.get(f"{view}/{s}") for s in range(shards)]
        if all(m is not None for m in marks):
            out[view] = str(min(int(m) for m in marks if m is not None))
    if "updated_at" in raw:
        out["updated_at"] = raw["updated_at"]
    return out


def describe(progress: dict[str, str], stats: dict[str, str]) -> str:
    views = ", ".join(f"{v} @ {time.strftime('%m-%d %H:%M', time.gmtime(int(ms) / 1000))}"
                      for v, ms in sorted(progress.items()) if v != "updated_at")
    counters = ", ".join(f"{k}={v}" for k, v in sorted(stats.items()))
    return f"event time: {views or 'waiting for data'}" + (f" | {counters}" if counters else "")


def run_jobs(settings: Settings, branches: Iterable[str], duration_s: float | None,
             resume: bool = True) -> None:
    from streams.flink_rest import last_failure, rest_url

    job = JobHandle(settings, branches, resume=resume)
    ports = job.settings.job
    print(f"[driftline] Flink job submitted ({', '.join(branches)}); Ctrl-C stops it\n"
          f"[driftline] Flink UI {rest_url(job.settings)}, Prometheus metrics "
          f"http://127.0.0.1:{ports.metrics_port}/metrics", flush=True)
    job_id, reported = str(job.client.get_job_id()), None
    compacted = time.monotonic()
    try:
        while duration_s is None or time.monotonic() - job.started < duration_s:
            time.sleep(5)
            if settings.offline.enabled and \
                    time.monotonic() - compacted >= settings.offline.compact_every_s:
                _compact(job.settings)
                compacted = time.monotonic()
            state = job.status()
            print(f"[driftline] {state}: {describe(job.progress(), job.stats())}", flush=True)
            failure = _failure(last_failure, job.settings, job_id)
            if failure and failure != reported:
                print(f"[driftline] last failure: {failure}", flush=True)
                reported = failure
            if state in ("FAILED", "FINISHED", "CANCELED"):
                break
    except KeyboardInterrupt:
        print("\n[driftline] stopping", flush=True)
    finally:
        job.cancel()
        print("[driftline] job cancelled", flush=True)
        if settings.offline.enabled:
            _compact(job.settings)


def _compact(settings: Settings) -> None:
    from streams.offline import compact_log

    days = compact_log(settings)
    if days:
        rows = sum(d.rows for d in days)
        print(f"[driftline] offline log: {len(days)} day(s) compacted, {rows:,} rows",
              flush=True)


def _failure(read: Callable[[Settings, str], str | None], settings: Settings,
             job_id: str) -> str | None:
    try:
        return read(settings, job_id)
    except OSError:  # the REST endpoint is down while the job restarts: next time
        return None
