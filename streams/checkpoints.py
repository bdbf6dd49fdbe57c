"""Where a job's checkpoints live, which one a restart resumes from, and how many stay.

Checkpoints go to ``<state_dir>/checkpoints/<fingerprint>/<job id>/chk-<n>``. The
fingerprint hashes what the state belongs to (the job's layout, the topics, the consumer
group, the compiled feature plans, the drift settings), so a restart resumes only the job
it was taken of: a changed feature repo or topic starts from scratch instead of restoring
state that means something else. Flink keeps the newest ``RETAINED`` checkpoints of a
running job and leaves them when the job is cancelled or killed; a restart resumes from
the newest and removes every other run's folder, so at most two runs' checkpoints exist
at any time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from streams.settings import Settings

RETAINED = 2
METADATA = "_metadata"  # written last: a chk folder without it is incomplete
#: The shape of the job's operator graph and of its SQL state, bumped whenever either
#: changes: Flink cannot map a checkpoint onto a different graph (the SQL operators' ids
#: hash their place in it) nor restore an aggregate's state into another type, so a job
#: of a new shape starts afresh instead of failing to restore. 3: drift slices by column;
#: 4: the feature tiles as running windows, their panes in a MapState; 5: no validated
#: topic, the windows on the decode step's watermarks; 6: tick rows counted from the
#: events, not from the panes; 7: the JVM's event time 1 ms behind the payload's, windows
#: without an offset; 8: the DataStream round trips carry Flink's internal rows.
JOB_LAYOUT = 8


def fingerprint(settings: Settings, branches: list[str]) -> str:
    from features.plans import load_view_plans
    from features.sql import panes_sql

    plans = load_view_plans(settings.feature_repo) if "features" in branches else []
    what = {"layout": JOB_LAYOUT, "topics": settings.topics.model_dump(),
            "group": settings.job.consumer_group,
            "shards": settings.job.shards, "branches": sorted(branches),
            "drift": settings.drift.model_dump(mode="json"),
            "views": [panes_sql(p, "events", "event_time", "source_offset") for p in plans]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def folder(settings: Settings, branches: list[str]) -> Path:
    return (settings.state_dir / "checkpoints" / fingerprint(settings, branches)).resolve()


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (any run), or None."""
    done = [m.parent for m in root.glob(f"*/chk-*/{METADATA}")]
    return max(done, key=lambda p: p.joinpath(METADATA).stat().st_mtime, default=None)


def prune(root: Path, keep: str) -> list[Path]:
    """Remove every run's folder but ``keep`` (the run a restart resumes from); what a
    new run writes goes to its own folder beside it. Returns what was removed."""
    old = [p for p in root.iterdir() if p.is_dir() and p.name != keep] if root.exists() else []
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old
