"""Baseline (a): pandas micro-batches written with Feast's own SDK.

``FeatureStore.write_to_online_store(view, df)`` is what ``FeatureStore.push`` calls for
each view a PushSource feeds, and what Feast's Kafka stream processor calls per
micro-batch; our repo's views read a KafkaSource, not a PushSource, so we call it
directly. Same Redis, same format, same read path as driftline.

``python -m benchmarks.peers.feast_push SETTINGS_JSON --expect N --stop-key K``
"""

from __future__ import annotations

import warnings

from benchmarks.peers.stream_features import Sink, main
from streams.settings import Settings


def feast_sink(settings: Settings) -> Sink:
    from features.feast_repo import feature_store

    warnings.simplefilter("ignore")
    store = feature_store(settings.feature_repo, settings.redis_url)

    def write(view: str, frame) -> None:
        store.write_to_online_store(view, frame)

    return write


if __name__ == "__main__":
    main("feast_push", feast_sink)
