"""The offline log's commands: compact what the job staged, write a training set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from features.offline_log import CompactedDay, compact
from features.plans import load_view_plans
from streams.settings import Settings

BACKFILL_PREFIX = "backfill-"


def staging_folders(settings: Settings) -> list[Path]:
    """Every job's staging folder under this state dir, in precedence: streaming jobs'
    first, then backfills, oldest first (their names start with the UTC time they ran),
    so a backfill's rows replace what an earlier run logged for the same instants."""
    root = settings.offline_staging_dir.parent
    folders = [p for p in root.iterdir() if p.is_dir()] if root.exists() else []
    return sorted(folders, key=lambda p: (p.name.startswith(BACKFILL_PREFIX), p.name))


def compact_log(settings: Settings) -> list[CompactedDay]:
    """Turn the jobs' committed staged rows into the views' Parquet (idempotent)."""
    return compact(load_view_plans(settings.feature_repo), settings.feature_repo.resolve(),
                   staging_folders(settings))


def log_committed(settings: Settings) -> bool:
    """Has Flink committed every row it staged so far (no file in progress or pending:
    Flink names those with a leading dot)? Rows are then all in what :func:`compact_log`
    reads."""
    staging = settings.offline_staging_dir
    files = [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []
    return bool(files) and not any(p.name.startswith(".") for p in files)


def write_training_set(settings: Settings, entities: Path, features: Sequence[str],
                       out: Path, say: Callable[[str], None] = print) -> int:
    """Compact, then join ``entities`` point-in-time through Feast into ``out`` (Parquet),
    telling ``say`` how far it got; returns the rows written."""
    from features.feast_repo import feature_store
    from features.training import feature_refs, historical_features, read_entity_rows

    days = compact_log(settings)
    say(f"compacted {len(days)} day(s) of the offline log")
    plans = load_view_plans(settings.feature_repo)
    refs = feature_refs(plans, features or [p.name for p in plans])
    rows = read_entity_rows(entities, plans, refs)
    say(f"{len(rows):,} entity rows from {entities}; {len(refs)} features")
    table = historical_features(
        feature_store(settings.feature_repo, settings.redis_url), plans, rows, refs,
        progress=lambda n, total: say(f"joined {n:,} / {total:,} rows"))
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out, index=False)
    say(f"wrote {len(table):,} rows x {len(table.columns)} columns to {out}")
    return len(table)
