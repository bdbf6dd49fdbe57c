"""Compile the Feast repo's StreamFeatureViews into the plans the feature job runs.

The job has no list of features of its own: it reads ``feature_repo/``'s
``StreamFeatureView`` aggregations and turns each into a :class:`FeatureSpec`. A view's
pane is the gcd of its windows and slides, so every window is a whole number of panes
and every slide boundary is a pane boundary. Each feature's declared Feast ``Field``
type is checked against what its aggregation produces over its column, so a ``sum``
declared ``Int64`` over a double column fails here, naming the feature.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

from features.aggregations import Aggregate, make_aggregate
from schemas.errors import ConfigError
from schemas.validated import column_types


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    column: str
    function: str
    window_ms: int
    slide_ms: int
    aggregate: Aggregate
    #: The declared Feast value type (``ValueType`` name: INT64, DOUBLE, STRING, ...).
    value_type: str


#: Joins the values of a composite entity key into the one string the windows key by.
ENTITY_SEP = "\x1f"


@dataclass(frozen=True)
class ViewPlan:
    name: str
    #: The join keys of the view's entities, sorted (as Feast serializes entity keys):
    #: ``("employee_id", "tenant_id")`` scopes an employee's features to the tenant.
    join_keys: tuple[str, ...]
    features: tuple[FeatureSpec, ...]
    #: The view's offline feature log (its Feast batch source's path, relative to the
    #: repo): a folder of Parquet by day (features/offline_log.py). None: no log.
    log_path: str | None = None
    #: The view's Feast TTL: how far back ``get_historical_features`` looks for a row.
    ttl_ms: int = 0

    def entity_values(self, entity: str) -> dict[str, str]:
        """The one string the windows key by -> {join key: value}."""
        return dict(zip(self.join_keys, entity.split(ENTITY_SEP), strict=True))

    @property
    def pane_ms(self) -> int:
        return reduce(math.gcd, [v for f in self.features for v in (f.window_ms, f.slide_ms)])

    @property
    def min_slide_ms(self) -> int:
        return min(f.slide_ms for f in self.features)

    @property
    def max_window_ms(self) -> int:
        return max(f.window_ms for f in self.features)


def _load_repo_objects(repo_path: Path) -> list[object]:
    """Import every definitions module of the repo (as ``feast apply`` would)."""
    objects: list[object] = []
    files = sorted(p for p in repo_path.glob("*.py") if not p.name.startswith("_"))
    if not files:
        raise ConfigError("feature_repo", f"no Feast definitions (*.py) in {repo_path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "stream feature views are alpha"
        for path in files:
            name = f"_driftline_repo_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            objects.extend(vars(module).values())
    return objects


def _ms(td, what: str) -> int:
    if td is None or td.total_seconds() <= 0:
        raise ConfigError(what, "must be a positive timedelta")
    return int(td.total_seconds() * 1000)


def _feature(agg, where: str, declared: dict) -> FeatureSpec:
    name = agg.resolved_name(agg.time_window)
    field = f"{where}.aggregations[{name}]"
    if name not in declared:
        raise ConfigError(field, f"feature {name!r} is not in the view's schema")
    columns = column_types()
    if agg.column not in columns:
        raise ConfigError(f"{field}.column", f"{agg.column!r} is not a column of the validated "
                                             f"stream (known: {', '.join(columns)})")
    aggregate = make_aggregate(agg.function, f"{field}.function")
    column_type = columns[agg.column]
    if aggregate.accepts is not None and column_type not in aggregate.accepts:
        raise ConfigError(f"{field}.function", f"{agg.function} cannot aggregate "
                                               f"{agg.column!r} ({column_type})")
    value_type = declared[name].dtype.to_value_type().name
    allowed = aggregate.output_types(column_type)
    if value_type not in allowed:
        raise ConfigError(f"{where}.schema[{name}]",
                          f"declared {declared[name].dtype}, but {agg.function} over "
                          f"{agg.column!r} ({column_type}) gives {' or '.join(sorted(allowed))}")
    return FeatureSpec(name=name, column=agg.column, function=agg.function,
                       window_ms=_ms(agg.time_window, f"{field}.time_window"),
                       slide_ms=_ms(agg.slide_interval, f"{field}.slide_interval"),
                       aggregate=aggregate, value_type=value_type)


def compile_view(sfv, join_keys: dict[str, str]) -> ViewPlan:
    """One Feast StreamFeatureView -> one plan; every problem names the offending field.

    ``join_keys`` maps entity names to their join key (from the repo's Entities). A view
    of several entities (tenant and employee) is keyed by all their join keys.
    """
    where = f"feature_repo.{sfv.name}"
    unknown = [e for e in sfv.entities if e not in join_keys]
    if not sfv.entities or unknown:
        raise ConfigError(f"{where}.entities", "driftline needs the view's entities defined "
                                               f"in the repo (unknown: {unknown or 'none given'})")
    declared = {f.name: f for f in sfv.features}
    specs = [_feature(agg, where, declared) for agg in sfv.aggregations]
    if not specs:
        raise ConfigError(f"{where}.aggregations", "a stream feature view needs aggregations")
    missing = set(declared) - {s.name for s in specs}
    if missing:
        raise ConfigError(f"{where}.schema", f"features without an aggregation: {sorted(missing)}")
    keys = tuple(sorted(join_keys[e] for e in sfv.entities))
    for key in keys:
        if key not in column_types():
            raise ConfigError(f"{where}.entities", f"join key {key!r} is not a column")
    return ViewPlan(sfv.name, keys, tuple(specs), log_path=_log_path(sfv, where),
                    ttl_ms=int(sfv.ttl.total_seconds() * 1000) if sfv.ttl else 0)


def _log_path(sfv, where: str) -> str:
    from feast import FileSource

    source = sfv.batch_source
    if not isinstance(source, FileSource) or source.path.endswith(".parquet"):
        raise ConfigError(f"{where}.source.batch_source", "the view's offline log: a Feast "
                          "FileSource whose path is a folder (the job writes Parquet by "
                          "day into it), e.g. FileSource(path='data/offline/<view>', "
                          "timestamp_field='event_timestamp')")
    if source.timestamp_field != "event_timestamp":
        raise ConfigError(f"{where}.source.batch_source.timestamp_field",
                          "must be 'event_timestamp', the column the offline log writes")
    return str(source.path)


def load_view_plans(repo_path: Path | str) -> list[ViewPlan]:
    from feast import Entity, StreamFeatureView  # kept out of import time

    repo = Path(repo_path).resolve()
    objects = _load_repo_objects(repo)
    views = {id(o): o for o in objects if isinstance(o, StreamFeatureView)}
    if not views:
        raise ConfigError("feature_repo", f"no StreamFeatureView found in {repo}")
    join_keys = {o.name: o.join_key for o in objects if isinstance(o, Entity)}
    return [compile_view(v, join_keys) for v in sorted(views.values(), key=lambda v: v.name)]
