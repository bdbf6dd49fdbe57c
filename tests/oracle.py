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


def expected_log(events: pd.DataFrame, join_keys: list[str],
                 features: list[tuple[str, str, str, int, int]], min_slide_ms: int,
                 through_ms: int) -> dict[tuple, dict]:
    """Every row the offline log must hold up to ``through_ms``, from the raw events:
    {(join key values..., boundary): feature values}. An entity has a row at each
    ``min_slide_ms`` boundary from its first event on where some feature differs from the
    boundary before (its first boundary always), so the last row before a quiet spell
    is its decay to 0 and null."""
    out: dict[tuple, dict] = {}
    for key, mine in events.groupby(join_keys):
        key = key if isinstance(key, tuple) else (key,)
        mine = mine.sort_values("event_time", kind="stable")
        times = mine.event_time.to_numpy()
        previous = None
        first = -(-int(times[0]) // min_slide_ms) * min_slide_ms
        for boundary in range(first, through_ms + 1, min_slide_ms):
            values = {}
            for name, column, function, window_ms, slide_ms in features:
                at = boundary // slide_ms * slide_ms
                lo, hi = np.searchsorted(times, [at - window_ms, at], side="right")
                values[name] = _aggregate(mine.iloc[lo:hi], column, function)
            if values != previous:
                out[(*key, boundary)] = values
            previous = values
    return out


def keyed_rows(table, join_keys: list[str]) -> dict[tuple, dict]:
    """A log table (pyarrow) as {(join key values..., boundary ms): feature values}."""
    out = {}
    for row in table.to_pylist():
        keys = tuple(row.pop(k) for k in join_keys)
        out[(*keys, int(row.pop("event_timestamp").timestamp() * 1000))] = row
    return out


def compare_log(settings, frame: pd.DataFrame, progress: dict[str, str]):
    """The compacted offline log of every view, up to the watermark ``progress`` reports,
    against :func:`expected_log`. Returns (rows compared, [problems...])."""
    from features.offline_log import TIMESTAMP, read_log
    from features.plans import load_view_plans

    compared, problems = 0, []
    for plan in load_view_plans(settings.feature_repo):
        through = int(progress[plan.name])
        declared = [(f.name, f.column, f.function, f.window_ms, f.slide_ms)
                    for f in plan.features]
        want = expected_log(frame, list(plan.join_keys), declared, plan.min_slide_ms, through)
        log = read_log(plan, settings.feature_repo).to_pylist()
        got: dict[tuple, dict] = {}
        for row in log:
            ts = int(row.pop(TIMESTAMP).timestamp() * 1000)
            if ts <= through:
                key = (*(row.pop(k) for k in plan.join_keys), ts)
                if key in got:
                    problems.append((plan.name, "twice", key))
                got[key] = row
        problems += [(plan.name, "missing", k) for k in sorted(want.keys() - got.keys())][:20]
        problems += [(plan.name, "extra", k) for k in sorted(got.keys() - want.keys())][:20]
        for key in want.keys() & got.keys():
            compared += 1
            bad = {n: (got[key][n], v) for n, v in want[key].items() if not same(got[key][n], v)}
            if bad:
                problems.append((plan.name, "differs", key, bad))
    return compared, problems
