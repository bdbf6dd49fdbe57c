"""Write feature rows in Feast's own Redis online format, newest-wins, atomically.

Layout (the one Feast's ``RedisOnlineStore`` reads, see docs/semantics.md):
key = ``serialize_entity_key(entity, v3) + project``; one hash field per feature,
``mmh3("<view>:<feature>")`` (4 bytes), holding a serialized ``ValueProto`` of the type
the feature's Feast ``Field`` declares; and ``_ts:<view>`` holding a serialized protobuf
``Timestamp``. We add one field, ``_driftline_ts:<view>`` (epoch millis as text), so a Lua
script can refuse a write older than what is stored: a replay or a late write never wins
over a newer value. Feast reads only the fields it asks for, so the extra field is inert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import redis
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from features.plans import ViewPlan
from features.tiles import FeatureRow

__all__ = ["FeastRedisWriter", "FeatureRow"]

# KEYS[1]: entity hash. ARGV[1]: our ts field, ARGV[2]: new ts (ms), ARGV[3..]: field, value...
_NEWEST_WINS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cur) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], unpack(ARGV, 3))
return 1
"""


def _bool(value: Any) -> bool:
    return value.upper() == "TRUE" if isinstance(value, str) else bool(value)


#: Feast ValueType name -> (Value field, conversion). ``last`` hands over text.
_PROTO_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "INT64": ("int64_val", lambda v: int(float(v)) if isinstance(v, str) else int(round(v))),
    "INT32": ("int32_val", lambda v: int(float(v)) if isinstance(v, str) else int(round(v))),
    "DOUBLE": ("double_val", float),
    "FLOAT": ("float_val", float),
    "STRING": ("string_val", str),
    "BOOL": ("bool_val", _bool),
}


def typed_value(value_type: str, value: Any) -> Any:
    """``value`` as the Python value of the declared Feast type (None stays None)."""
    return None if value is None else _PROTO_FIELDS[value_type][1](value)


def value_proto(value_type: str, value: Any) -> bytes:
    """A serialized Feast ``Value`` of the declared type; None is an empty Value (null)."""
    if value is None:
        return Value().SerializeToString()
    return Value(**{_PROTO_FIELDS[value_type][0]: typed_value(value_type, value)}) \
        .SerializeToString()


class FeastRedisWriter:
    """Pipelined, newest-wins writer for the views of one Feast project."""

    def __init__(self, redis_url: str, project: str, plans: Iterable[ViewPlan],
                 entity_key_serialization_version: int = 3,
                 client: redis.Redis | None = None) -> None:
        self.client = client or redis.Redis.from_url(redis_url)
        self.project = project.encode()
        self.version = entity_key_serialization_version
        self._script = self.client.register_script(_NEWEST_WINS)
        self._views = {}
        for plan in plans:
            fields = {f.name: (_mmh3(f"{plan.name}:{f.name}"), f.value_type)
                      for f in plan.features}
            self._views[plan.name] = (plan, fields)

    def redis_key(self, view: str, entity_value: str) -> bytes:
        keys = self._views[view][0].entity_values(entity_value)
        entity = EntityKey(join_keys=list(keys),
                           entity_values=[Value(string_val=v) for v in keys.values()])
        return serialize_entity_key(entity, entity_key_serialization_version=self.version) + \
            self.project

    def queue(self, pipe: Any, rows: Iterable[FeatureRow]) -> int:
        """Add the newest-wins writes of ``rows`` to ``pipe``; return how many. Each
        write's reply is 1 if applied, 0 if refused as older than what is stored."""
        n = 0
        for row in rows:
            _, fields = self._views[row.view]
            ts = Timestamp()
            ts.FromMilliseconds(row.ts_ms)
            args: list[Any] = [f"_driftline_ts:{row.view}", row.ts_ms,
                               f"_ts:{row.view}", ts.SerializeToString()]
            for name, value in row.values.items():
                field, value_type = fields[name]
                args += [field, value_proto(value_type, value)]
            self._script(keys=[self.redis_key(row.view, row.entity_value)], args=args,
                         client=pipe)
            n += 1
        return n

    def write(self, rows: Iterable[FeatureRow]) -> tuple[int, int]:
        """Write rows in one pipeline; return (applied, refused as older than stored)."""
        pipe = self.client.pipeline(transaction=False)
        n = self.queue(pipe, rows)
        if not n:
            return 0, 0
        applied = sum(pipe.execute())
        return applied, n - applied
