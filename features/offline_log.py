"""The offline feature log: every row the job writes online, as Parquet by view and day.

It is kept in two steps, so that it follows the job's checkpoints:

1. **Staged by the job.** Each :class:`FeatureRow` also goes, as one JSON line (see
   :func:`staged_values`), to a Flink filesystem sink partitioned by view and day
   (streams/job.py). Flink makes a file visible only once the checkpoint after it has
   completed; a restore truncates the file in progress to its checkpointed length and
   replays from there. So the visible lines hold every row, and a row twice only where
   at-least-once checkpoints let a replay repeat it, with the same values.
2. **Compacted to Parquet** (:func:`compact`): each day's visible lines, of every job
   that logs for the repo (the streaming job, backfills), become one Parquet
   file in the view's Feast batch source folder (``<repo>/<log_path>/day=<date>/``), one
   row per (entity, timestamp), typed as the view's ``Field``s declare, with the join keys
   as columns and ``event_timestamp`` (the window boundary the row is as of).

``get_historical_features`` then joins it point-in-time: the latest row at or before the
entity row's timestamp (within the TTL) is what the online store held at that event time.
A day is rewritten whenever its staged files change, so compacting is idempotent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from features.plans import ViewPlan
from features.redis_writer import typed_value
from features.tiles import FeatureRow

#: A staged row as the tiles emit it (Flink SQL types).
ROW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("feature_view", "STRING"), ("entity", "STRING"), ("ts_ms", "BIGINT"),
    ("feature_values", "STRING"))
#: The sink adds the UTC day of ``ts_ms``; it and the view name the folders, not the lines.
STAGED_COLUMNS = (*ROW_COLUMNS, ("day", "STRING"))
PARTITION_COLUMNS = ("feature_view", "day")
TIMESTAMP = "event_timestamp"
_SOURCES_KEY = b"driftline.staged_files"

_ARROW_TYPES = {"INT64": pa.int64(), "INT32": pa.int32(), "DOUBLE": pa.float64(),
                "FLOAT": pa.float32(), "STRING": pa.string(), "BOOL": pa.bool_()}


def staged_values(row: FeatureRow) -> str:
    """A row's feature values as the staged JSON text."""
    return json.dumps(row.values, separators=(",", ":"))


def arrow_schema(plan: ViewPlan) -> pa.Schema:
    """The Parquet schema of a view's log: join keys, event_timestamp, features."""
    return pa.schema(
        [pa.field(k, pa.string(), nullable=False) for k in plan.join_keys]
        + [pa.field(TIMESTAMP, pa.timestamp("ms", tz="UTC"), nullable=False)]
        + [pa.field(f.name, _ARROW_TYPES[f.value_type]) for f in plan.features])


@dataclass(frozen=True)
class CompactedDay:
    view: str
    day: str
    rows: int
    path: Path


def _visible(folder: Path) -> list[Path]:
    """The files Flink has committed (in-progress and pending ones are hidden: '.')."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith((".", "_")))


def _fingerprint(files: Sequence[Path]) -> bytes:
    return json.dumps([[str(p), p.stat().st_size] for p in files]).encode()


def _table(plan: ViewPlan, files: Sequence[Path]) -> pa.Table:
    """One row per (entity, timestamp) of the staged lines, typed as declared; where
    several files hold a row, the last file's."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for path in files:
        with path.open() as lines:
            for line in lines:
                if line.strip():
                    staged = json.loads(line)
                    rows[(staged["entity"], int(staged["ts_ms"]))] = json.loads(
                        staged["feature_values"])
    ordered = sorted(rows)
    columns: dict[str, list[Any]] = {k: [] for k in plan.join_keys}
    for entity, _ in ordered:
        for key, value in plan.entity_values(entity).items():
            columns[key].append(value)
    columns[TIMESTAMP] = [ts for _, ts in ordered]
    for spec in plan.features:
        columns[spec.name] = [typed_value(spec.value_type, rows[k].get(spec.name))
                              for k in ordered]
    schema = arrow_schema(plan)
    return pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema},
                    schema=schema)


def compact(plans: Iterable[ViewPlan], repo_path: Path,
            staging: Sequence[Path]) -> list[CompactedDay]:
    """Rewrite every day whose staged files changed since it was last compacted.

    ``staging``: the staging folders of the jobs that write this log (the streaming job,
    backfills), in order of precedence: a row staged in a later folder replaces the same
    (entity, timestamp) from an earlier one.
    """
    done = []
    for plan in plans:
        if plan.log_path is None:
            continue
        view = f"feature_view={plan.name}"
        days = sorted({d.name for folder in staging for d in folder.glob(f"{view}/day=*")})
        for day in days:
            files = [f for folder in staging if (folder / view / day).is_dir()
                     for f in _visible(folder / view / day)]
            target = repo_path / plan.log_path / day / "part-0.parquet"
            fingerprint = _fingerprint(files)
            if not files or (target.exists() and (pq.read_schema(target).metadata or {})
                             .get(_SOURCES_KEY) == fingerprint):
                continue
            table = _table(plan, files)
            table = table.replace_schema_metadata({_SOURCES_KEY: fingerprint})
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")  # hidden from readers
            pq.write_table(table, partial)
            os.replace(partial, target)
            done.append(CompactedDay(plan.name, day.removeprefix("day="), table.num_rows,
                                     target))
    return done


def read_staged(plan: ViewPlan, staging: Path) -> pa.Table:
    """What one job staged for a view, as a log table (to compare two runs' rows)."""
    files = [f for day in sorted(staging.glob(f"feature_view={plan.name}/day=*"))
             for f in _visible(day)]
    return _table(plan, files) if files else arrow_schema(plan).empty_table()


def read_log(plan: ViewPlan, repo_path: Path) -> pa.Table:
    """A view's whole compacted log (for checks and tools; Feast reads it itself)."""
    folder = repo_path / (plan.log_path or "")
    files = sorted(folder.glob("day=*/part-0.parquet"))
    if not files:
        return arrow_schema(plan).empty_table()
    return pa.concat_tables(pq.read_table(f, schema=arrow_schema(plan)) for f in files)
