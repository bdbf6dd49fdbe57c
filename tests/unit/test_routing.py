"""Partition routing into the validated topic: Kafka's murmur2, and tokens that land."""

from __future__ import annotations

import pytest

from streams.routing import murmur2, partition_tokens

# Kafka's own test vectors (clients UtilsTest.testMurmur2), as signed Java ints.
KAFKA_VECTORS = {b"21": -973932308, b"foobar": -790332482,
                 b"a-little-bit-long-string": -985981536,
                 b"a-little-bit-longer-string": -1486304829,
                 b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
                 b"abc": 479470107}


@pytest.mark.parametrize(("data", "signed"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafka(data, signed):
    assert murmur2(data) == signed & 0x7FFFFFFF  # Utils.toPositive


@pytest.mark.parametrize("partitions", [1, 2, 4, 7, 32])
def test_each_token_lands_on_its_partition(partitions):
    tokens = partition_tokens(partitions)
    assert [murmur2(t) % partitions for t in tokens] == list(range(partitions))
    assert len(set(tokens)) == partitions
