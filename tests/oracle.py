"""Brute-force pandas recomputation of features straight from raw events.

Independent of ``features/``: it reads only the declared (name, column, function,
window, slide) of each feature and recomputes the trailing window
(B - window, B] from the raw events, where B is the feature's last slide boundary
at or before the watermark the pipeline reports.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _aggregate(frame: pd.DataFrame, column: str, function: str):
    values = frame[column]
    if function == "count":
        return int(values.notna().sum())
    non_null = values.dropna()
    if function == "mean":
        return float(non_null.astype(float).mean()) if len(non_null) else None
    if function == "sum":
        return float(non_null.astype(float).sum())
    if function == "min":
        return float(non_null.min()) if len(non_null) else None
    if function == "max":
        return float(non_null.max()) if len(non_null) else None
    if function == "count_distinct":
        return int(non_null.nunique())
    if function == "last":
        ordered = frame.dropna(subset=[column]).sort_values("event_time", kind="stable")
        return ordered[column].iloc[-1] if len(ordered) else None
    if function.startswith("p"):
        return float(np.percentile(non_null.astype(float), float(function[1:]))) \
            if len(non_null) else None
    raise ValueError(function)


def expected_features(events: pd.DataFrame, keys: dict[str, str],
                      features: list[tuple[str, str, str, int, int]], watermark_ms: int) -> dict:
    """The features of the entity ``keys`` ({join key: value}, e.g. tenant and employee)
    from the raw events; features: (name, column, function, window_ms, slide_ms)."""
    mine = events
    for column, value in keys.items():
        mine = mine[mine[column] == value]
    out = {}
    for name, column, function, window_ms, slide_ms in features:
        boundary = (watermark_ms // slide_ms) * slide_ms
        in_window = mine[(mine.event_time > boundary - window_ms) & (mine.event_time <= boundary)]
        out[name] = _aggregate(in_window, column, function)
    return out


def same(a, b, rel: float = 1e-9) -> bool:
    """Equality for feature values: exact, except floats to a relative tolerance."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
    return a == b


def compare_online(settings, frame: pd.DataFrame, progress: dict[str, str]):
    """Every feature of every entity in ``frame`` (plus one never seen) read through the
    Feast SDK, against the brute force at the watermark ``progress`` reports per view.

    Returns (values compared, [(view, entity, feature, got, expected, watermark)...]).
    An entity whose first event is after the first boundary reads null in Feast, so
    those values are not compared.
    """
    from features.feast_repo import OnlineReader
    from features.plans import load_view_plans

    reader = OnlineReader(settings.feature_repo, settings.redis_url)
    compared, wrong = 0, []
    for plan in load_view_plans(settings.feature_repo):
        watermark = int(progress[plan.name])
        declared = [(f.name, f.column, f.function, f.window_ms, f.slide_ms)
                    for f in plan.features]
        keys = list(plan.join_keys)
        first_seen = frame.groupby(keys).event_time.min()
        # Every entity seen, plus one never seen; a composite key also in the wrong tenant.
        entities = [tuple(e) if len(keys) > 1 else (e,) for e in first_seen.index]
        entities.append(tuple(f"never-seen-{k}" for k in keys))
        if len(keys) > 1:
            entities.append((entities[0][0], *(e for e in entities[-2][1:])))
        first = {e: first_seen.get(e if len(keys) > 1 else e[0]) for e in entities}
        boundary = watermark // plan.min_slide_ms * plan.min_slide_ms
        rows = [dict(zip(keys, e, strict=True)) for e in entities]
        for entity, row in zip(rows, reader.read(plan.name, rows), strict=True):
            want = expected_features(frame, entity, declared, watermark)
            key = tuple(entity.values())
            for name, expected in want.items():
                got = row[name]
                seen = first[key]
                if got is None and (seen is None or seen > boundary):
                    continue  # no event up to the first boundary yet: Feast's answer is null
                compared += 1
                if not same(got, expected):
                    wrong.append((plan.name, key, name, got, expected, watermark))
    return compared, wrong
