"""What Flink's REST API says about the driftline job: state, uptime, restarts, failure.

The same API serves ``driftline run``'s mini-cluster and the standalone cluster, at
``job.rest_port``; ``driftline status`` and ``driftline run``'s progress line read it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.settings import Settings


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    name: str
    state: str
    uptime_s: float
    #: None until the JobManager's metric store has the value (it fills on first request)
    restarts: int | None
    records_in: int
    last_failure: str | None  # the root cause's first line, if the job ever failed


def rest_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.job.rest_port}"


def _get(settings: Settings, path: str, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(rest_url(settings) + path, timeout=timeout) as response:
        return json.load(response)


def last_failure(settings: Settings, job_id: str) -> str | None:
    """The newest failure's exception, in one line (its first), or None."""
    history = _get(settings, f"/jobs/{job_id}/exceptions?maxExceptions=1")
    entries = history.get("exceptionHistory", {}).get("entries", [])
    if not entries:
        return None
    text = entries[0].get("stacktrace") or entries[0].get("exceptionName") or ""
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by")]
    return (causes[-1] if causes else text.strip().splitlines()[0])[:300] if text else None


def _summed(settings: Settings, job_id: str, vertex_id: str,
            wanted: Callable[[str], bool]) -> dict[str, float]:
    """The vertex's metrics whose names ``wanted`` accepts, each summed over its subtasks."""
    base = f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics"
    names = [m["id"] for m in _get(settings, base) if wanted(m["id"])]
    if not names:
        return {}
    query = urllib.parse.quote(",".join(names), safe=",")
    return {m["id"]: float(m.get("sum", 0))
            for m in _get(settings, f"{base}?get={query}&agg=sum")}


def records_read(settings: Settings, job_id: str, vertices: list[dict]) -> int:
    """Records the raw-topic source has read, summed over its subtasks (0 if unknown)."""
    for vertex in vertices:
        if vertex["name"].startswith("Source: interactions_raw"):
            sums = _summed(settings, job_id, vertex["id"], lambda name: name.startswith(
                "Source__interactions_raw") and name.endswith(".numRecordsOut"))
            if sums:
                return int(sums[min(sums)])
    return 0


def watermarks(settings: Settings, job_id: str) -> dict[str, int]:
    """Per operator chain (its name, cut short), the lowest event-time watermark of its
    subtasks' inputs: where event time stands at each stage, to see which one holds."""
    out = {}
    for vertex in _get(settings, f"/jobs/{job_id}").get("vertices", []):
        marks = _get(settings, f"/jobs/{job_id}/vertices/{vertex['id']}/watermarks")
        values = [int(m["value"]) for m in marks if m["id"].endswith("currentInputWatermark")]
        if values:
            out[vertex["name"][:60]] = min(values)
    return out


def window_drops(settings: Settings, job_id: str) -> int:
    """Records Flink's window operators dropped as late (``numLateRecordsDropped``), summed
    over the job. The job's own late check comes before any window, so a record counted
    here was lost, not late (docs/semantics.md, "Feature windows")."""
    total = 0.0
    for vertex in _get(settings, f"/jobs/{job_id}").get("vertices", []):
        total += sum(_summed(settings, job_id, vertex["id"],
                             lambda name: name.endswith(".numLateRecordsDropped")).values())
    return int(total)


def restarted_everywhere(settings: Settings, job_id: str) -> bool:
    """Whether every subtask of the job is running again after a failure (attempt >= 1):
    a failure restarts only its pipelined region, so one restart says nothing of the
    others."""
    subtasks = [task for vertex in _get(settings, f"/jobs/{job_id}").get("vertices", [])
                for task in _get(settings, f"/jobs/{job_id}/vertices/{vertex['id']}")
                .get("subtasks", [])]
    return bool(subtasks) and all(t["status"] == "RUNNING" and t["attempt"] >= 1
                                  for t in subtasks)


def jobs(settings: Settings) -> list[JobInfo] | None:
    """Every job the cluster at ``job.rest_port`` knows (newest first), or None if no
    Flink answers there."""
    try:
        overview = _get(settings, "/jobs/overview")
    except (OSError, urllib.error.URLError, ValueError):
        return None
    out = []
    for job in sorted(overview.get("jobs", []), key=lambda j: -j.get("start-time", 0)):
        job_id = job["jid"]
        detail = _get(settings, f"/jobs/{job_id}")
        metrics = _get(settings, f"/jobs/{job_id}/metrics?get=numRestarts")
        restarts = next((int(float(m["value"])) for m in metrics if m["id"] == "numRestarts"),
                        None)
        source = records_read(settings, job_id, detail.get("vertices", []))
        end = job.get("end-time", -1)
        uptime = ((end if end > 0 else time.time() * 1000) - job["start-time"]) / 1000
        out.append(JobInfo(job_id, job["name"], job["state"], uptime, restarts, int(source),
                           last_failure(settings, job_id)))
    return out


__all__ = ["JobInfo", "jobs", "last_failure", "rest_url", "window_drops"]
