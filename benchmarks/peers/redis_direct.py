"""Baseline (b): pandas micro-batches written straight to Redis in Feast's format.

One pipelined ``HSET`` per entity (feature fields and ``_ts:<view>``), keys and values
encoded by ``features.redis_writer`` so Feast reads them back. Plain HSET: no
newest-wins check (driftline's writer adds one, a Lua script per row).

``python -m benchmarks.peers.redis_direct SETTINGS_JSON --expect N --stop-key K``
"""

from __future__ import annotations

import math

from google.protobuf.timestamp_pb2 import Timestamp

from benchmarks.peers.stream_features import Sink, main
from streams.settings import Settings


def redis_sink(settings: Settings) -> Sink:
    from features.feast_repo import project_name
    from features.plans import ENTITY_SEP, load_view_plans
    from features.redis_writer import FeastRedisWriter, value_proto

    plans = load_view_plans(settings.feature_repo)
    writer = FeastRedisWriter(settings.redis_url, project_name(settings.feature_repo), plans)
    fields = {p.name: {f.name: (writer._views[p.name][1][f.name]) for f in p.features}
              for p in plans}
    keys = {p.name: list(p.join_keys) for p in plans}

    def write(view: str, frame) -> None:
        spec = fields[view]
        ts = Timestamp()
        ts.FromMilliseconds(int(frame["event_timestamp"].iloc[0].value // 1_000_000))
        stamp = ts.SerializeToString()
        names = list(spec)
        pipe = writer.client.pipeline(transaction=False)
        columns = [frame[n].tolist() for n in names]
        entities = frame[keys[view]].astype(str).agg(ENTITY_SEP.join, axis=1).tolist()
        for i, entity in enumerate(entities):
            mapping = {f"_ts:{view}": stamp}
            for name, col in zip(names, columns, strict=True):
                value = col[i]
                if isinstance(value, float) and math.isnan(value):
                    value = None
                field, dtype = spec[name]
                mapping[field] = value_proto(dtype, value)
            pipe.hset(writer.redis_key(view, entity), mapping=mapping)
        pipe.execute()

    return write


if __name__ == "__main__":
    main("redis_direct", redis_sink)
