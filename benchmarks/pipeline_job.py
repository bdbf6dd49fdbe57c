"""The real driftline job under measurement: isolated settings, progress counters, CPU.

The job is the one ``driftline run`` starts (``streams.runner.JobHandle``), with two
observability settings added before submission: a known REST port and a 1 s metric
refresh (Flink's default is 10 s), so "events processed" can be read from Flink's own
``numRecordsOut`` of the decode step every second. Every record leaves that step exactly
once, so produced minus that count is the consumer lag (Tansu's reported high watermark
cannot be used; see DESIGN.md).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import redis

from features.feast_repo import apply
from features.plans import load_view_plans
from streams import stack
from streams.runner import JobHandle
from streams.settings import Settings, load_settings
from tests.integration.conftest import private_repo, remove_keys

#: The decode step (streams/job.py): what it has handed on is what the windows take in.
DECODE = "PythonCalc"
#: Where the decoded records get their event time, once per query that reads them.
WATERMARK_ASSIGNER = "WatermarkAssigner"


def isolated_settings(work: Path, repo: Path, **job: object) -> Settings:
    """Fresh topics and consumer group, in the Redis database the settings name, with
    ``repo``'s Feast rows from an earlier run removed (nothing else there is touched).
    The state dir (and so the local schema registry the pre-serialized events refer to)
    is shared by a run."""
    run = uuid.uuid4().hex[:8]
    settings = load_settings(
        topics={"input": f"bench-{run}.interactions", "dead_letter": f"bench-{run}.dlq",
                "alerts": f"bench-{run}.alerts"},
        state_dir=work / "state", feature_repo=repo,
        job={"consumer_group": f"bench-{run}", **job})
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    remove_keys(settings)
    _MADE.append(settings)
    stack.ensure_topics(settings)
    return settings


_MADE: list[Settings] = []


@contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A scratch folder for one benchmark run; when it ends, the folder, every key the
    run's jobs and peers wrote to Redis and the run's topics are removed. (The local
    broker keeps every topic in memory: a session's benchmarks had left 139 of them,
    4.4 GB, on 2026-12-08.)"""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        for settings in _MADE:
            if stack.redis_healthy(settings):
                remove_keys(settings)
            if stack.broker_healthy(settings):
                stack.delete_topics(settings, list(settings.topics.names))
        _MADE.clear()
        shutil.rmtree(work, ignore_errors=True)


def copy_repo(src: Path, dest: Path, slide_s: int | None = None,
              project: str | None = None) -> Path:
    """A private copy of the Feast repo (own registry, own project: a fresh one unless
    ``project`` is named), optionally with every ``slide_interval`` set to ``slide_s``
    seconds: the low-latency variant."""
    if dest.exists():
        shutil.rmtree(dest)
    private_repo(src, dest, project or f"bench_{uuid.uuid4().hex[:8]}")
    if slide_s is not None:
        for path in dest.glob("*.py"):
            text = re.sub(r"slide_interval=(timedelta\([^)]*\)|\w+)",
                          f"slide_interval=timedelta(seconds={slide_s})", path.read_text())
            path.write_text(text)
        slides = {f.slide_ms for p in load_view_plans(dest) for f in p.features}
        if slides != {slide_s * 1000}:
            raise RuntimeError(f"could not set every slide to {slide_s} s: {slides}")
    return dest


def apply_repo(settings: Settings) -> None:
    apply(settings.feature_repo, settings.redis_url)


class MeasuredJob(JobHandle):
    """``JobHandle`` plus a REST port and 1 s metric refresh; reads Flink's metrics."""

    def __init__(self, settings: Settings, branches: list[str],
                 pipeline: Callable[..., None] | None = None,
                 parallelism: int | None = None,
                 flink_config: dict[str, str] | None = None) -> None:
        job: dict[str, int] = {"rest_port": 0, "metrics_port": 0}  # free ones
        if parallelism is not None:
            job["parallelism"] = parallelism
        settings = settings.model_copy(update={"job": settings.job.model_copy(update=job)})
        super().__init__(settings, branches, pipeline=pipeline,
                         extra_config={"metrics.fetcher.update-interval": "1000",
                                       **(flink_config or {})})
        self.port = self.settings.job.rest_port
        self.job_id = str(self.client.get_job_id())
        self._found: dict[str, list[tuple[str, str]]] = {}

    def _get(self, path: str):
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)

    def metric_ids(self) -> dict[str, list[str]]:
        """Vertex id -> its metric ids (operator metrics are named per chained operator)."""
        if not hasattr(self, "_metric_ids"):
            self._metric_ids = {
                v["id"]: [m["id"] for m in self._get(
                    f"/jobs/{self.job_id}/vertices/{v['id']}/metrics")]
                for v in self._get(f"/jobs/{self.job_id}")["vertices"]}
        return self._metric_ids

    def find_metric(self, operator: str, name: str) -> list[tuple[str, str]]:
        """(vertex, metric id) of every subtask's ``name`` on operators whose name
        contains ``operator``, whatever the chaining."""
        return [(v, m) for v, ids in self.metric_ids().items() for m in ids
                if m.endswith(f".{name}") and operator in m.split(".", 1)[-1][:-len(name)]]

    def read_metrics(self, found: list[tuple[str, str]]) -> list[float]:
        out = []
        for vertex in {v for v, _ in found}:
            names = ",".join(m for v, m in found if v == vertex)
            got = self._get(f"/jobs/{self.job_id}/vertices/{vertex}/metrics?get={names}")
            out += [float(g["value"]) for g in got]
        return out

    def counter(self, operator: str, name: str) -> int:
        """A metric summed over subtasks (-1 until the operator has registered it)."""
        key = f"{operator}.{name}"
        # Subtasks register their metrics as they start: until every one has, look again
        # (a sum over the first subtask alone would never reach the total).
        if len(self._found.get(key, ())) < self.settings.job.parallelism:
            self.__dict__.pop("_metric_ids", None)
            found = self.find_metric(operator, name)
            if not found:
                return -1
            self._found[key] = found
        return int(sum(self.read_metrics(self._found[key])))

    def processed(self) -> int:
        """Events decoded and handed to the windows (-1 before they run)."""
        return self.counter(DECODE, "numRecordsOut")


WATERMARK_STAGES = (  # (label, operator, metric name), in pipeline order
    ("event time assigned", WATERMARK_ASSIGNER, "currentOutputWatermark"),
    ("pane records in", "pane-records", "currentInputWatermark"),
    ("feature tiles in", "feature-tiles", "currentInputWatermark"),
)


def watermark_lags(job: MeasuredJob) -> dict[str, float]:
    """Wall clock minus each stage's event-time watermark (ms), from Flink's metrics.

    Readings are up to one metric refresh (1 s) old, equally for every stage, so the
    differences between stages are what each adds."""
    if not getattr(job, "_wm_ids", None):
        job.__dict__.pop("_metric_ids", None)  # gauges register late: list them afresh
        ids = {}
        for label, operator, name in WATERMARK_STAGES:
            found = job.find_metric(operator, name)
            if found:
                ids[label] = found
        job._wm_tries = getattr(job, "_wm_tries", 0) + 1
        job._wm_ids = ids if len(ids) == len(WATERMARK_STAGES) or job._wm_tries > 5 else {}
        if not job._wm_ids:
            return {}
    now = time.time() * 1000
    return {label: now - min(job.read_metrics(found))
            for label, found in job._wm_ids.items()}


class CpuMeter:
    """CPU seconds (user + system) of a changing set of processes.

    Per-pid deltas from the first time a pid is seen, so processes that come and go
    (the Flink JVM's Python workers) count from their start. ``by_process`` splits the
    total by process, for the profile.
    """

    def __init__(self, processes: Callable[[], list[psutil.Process]]) -> None:
        self.processes = processes
        self.last: dict[int, float] = {}
        self.used: dict[int, float] = {}
        self.labels: dict[int, str] = {}
        self.read()
        self.used = {pid: 0.0 for pid in self.used}

    def read(self) -> float:
        for p in self.processes():
            try:
                t = p.cpu_times()
                if p.pid not in self.labels:
                    self.labels[p.pid] = _label(p)
            except psutil.Error:
                continue
            now = t.user + t.system
            self.used[p.pid] = self.used.get(p.pid, 0.0) + now - self.last.get(p.pid, 0.0)
            self.last[p.pid] = now
        return self.total

    @property
    def total(self) -> float:
        return sum(self.used.values())

    def by_process(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, used in self.used.items():
            if used > 0.05:
                label = self.labels.get(pid, str(pid))
                out[label] = out.get(label, 0.0) + used
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _label(p: psutil.Process) -> str:
    cmd = p.cmdline()
    if "java" in p.name():
        return "flink-jvm"
    ident = next((c.split("=", 1)[1] for c in cmd if c.startswith("--id=")), None)
    if ident and "beam_boot" in " ".join(cmd):
        return f"python-worker-{ident}"
    return f"{p.name()}-{p.pid}"


def flink_jvm() -> psutil.Process:
    """The PyFlink gateway JVM this process launched (it runs the mini-cluster)."""
    for child in psutil.Process().children(recursive=False):
        try:
            if "java" in child.name():
                return child
        except psutil.Error:
            continue
    raise RuntimeError("no Flink JVM under this process; submit a job first")


def job_cpu_meter() -> CpuMeter:
    """The job's CPU: the JVM (the mini-cluster) and its Python worker processes."""
    jvm = flink_jvm()

    def processes() -> list[psutil.Process]:
        try:
            return [jvm, *jvm.children(recursive=True)]
        except psutil.Error:
            return []

    return CpuMeter(processes)


def tree_cpu_meter(root: psutil.Process) -> CpuMeter:
    def processes() -> list[psutil.Process]:
        try:
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    return CpuMeter(processes)


def redis_process(settings: Settings) -> psutil.Process | None:
    try:
        pid = int(redis.Redis.from_url(settings.redis_url).info("server")["process_id"])
        return psutil.Process(pid)
    except (psutil.Error, redis.RedisError, KeyError):
        return None


def broker_process() -> psutil.Process | None:
    """The local Tansu broker, when it runs on this machine (its CPU is not the job's,
    but it shares the machine's cores)."""
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == "tansu":
            return p
    return None
