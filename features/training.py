"""Point-in-time training sets: Feast's own ``get_historical_features`` over the offline log.

No join of our own: the views' batch sources are the log (features/offline_log.py), so
Feast's point-in-time join returns, per entity row, the latest logged row at or before its
``event_timestamp`` and within the view's TTL, which is what the online store held then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from features.offline_log import TIMESTAMP
from features.plans import ViewPlan
from schemas.errors import ConfigError

CHUNK_ROWS = 10_000


def feature_refs(plans: Sequence[ViewPlan], wanted: Iterable[str]) -> list[str]:
    """``view`` (all its features) or ``view:feature`` -> Feast feature references."""
    by_name = {p.name: p for p in plans}
    refs: list[str] = []
    for item in wanted:
        view, _, feature = item.partition(":")
        plan = by_name.get(view)
        if plan is None:
            raise ConfigError("--features", f"no view {view!r} (views: {', '.join(by_name)})")
        names = [f.name for f in plan.features]
        if feature and feature not in names:
            raise ConfigError("--features", f"{view} has no feature {feature!r} "
                                            f"(features: {', '.join(names)})")
        refs += [f"{view}:{n}" for n in ([feature] if feature else names)]
    return refs


def read_entity_rows(path: Path, plans: Sequence[ViewPlan], refs: Sequence[str]) -> pd.DataFrame:
    """Entity rows from Parquet or CSV: the join keys of the requested views and an
    ``event_timestamp`` (UTC if it has no zone)."""
    if path.suffix == ".parquet":
        rows = pd.read_parquet(path)
    elif path.suffix == ".csv":
        rows = pd.read_csv(path, dtype=str)
    else:
        raise ConfigError("--entities", f"{path}: give a .parquet or .csv file")
    views = {r.partition(":")[0] for r in refs}
    needed = sorted({k for p in plans if p.name in views for k in p.join_keys} | {TIMESTAMP})
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise ConfigError("--entities", f"{path} lacks column(s) {missing} (needs {needed})")
    rows[TIMESTAMP] = pd.to_datetime(rows[TIMESTAMP], utc=True, format="ISO8601")
    return rows


def historical_features(store, plans: Sequence[ViewPlan], entity_rows: pd.DataFrame,
                        refs: Sequence[str],
                        progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """``store.get_historical_features`` for every entity row, in its order, in chunks
    (Feast's file store joins a chunk against the whole log in memory), reporting rows done.

    One Feast call per view, its answer joined back on the view's keys and timestamp:
    Feast's file store leaves out an entity row that has log rows, none of them within
    ``[t - ttl, t]`` (a row before the entity's first event), where the answer is null,
    and with several views in one call that would take the other views' values with it.
    """
    by_view: dict[str, list[str]] = {}
    for ref in refs:
        by_view.setdefault(ref.partition(":")[0], []).append(ref)
    keys = {p.name: [*p.join_keys, TIMESTAMP] for p in plans}
    parts = []
    for start in range(0, len(entity_rows), CHUNK_ROWS):
        chunk = entity_rows.iloc[start:start + CHUNK_ROWS]
        for view, view_refs in by_view.items():
            asked = chunk[keys[view]].drop_duplicates()
            answer = store.get_historical_features(entity_df=asked, features=view_refs).to_df()
            names = [r.partition(":")[2] for r in view_refs]
            chunk = chunk.merge(answer[keys[view] + names], on=keys[view], how="left")
        parts.append(chunk)
        if progress is not None:
            progress(start + len(chunk), len(entity_rows))
    return pd.concat(parts, ignore_index=True) if parts else entity_rows.iloc[:0]
