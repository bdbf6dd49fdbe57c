"""The decode step's per-partition watermarks (streams/event_time.py) against an oracle.

The oracle is the definition: after each record, the least over the subtask's partitions
of their newest event time, minus the bound, never moving back; unknown until every
partition the subtask owns has a record. Which partitions those are is checked against
the Kafka connector's own assignment, read from its jar by ``javap`` where Java is here.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess

import pytest

from schemas.errors import DriftlineError
from streams.event_time import PartitionClocks, java_string_hash, split_owner


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0), ("a", 97), ("hr.chatbot.interactions", None), ("été", None)])
def test_java_string_hash(text, expected):
    signed = 0
    for ch in text:  # the JLS definition, on UTF-16 code units (BMP here)
        signed = (31 * signed + ord(ch)) & 0xFFFFFFFF
    assert java_string_hash(text) == (expected if expected is not None else signed)


def test_each_subtask_owns_a_share_of_the_partitions_and_every_partition_an_owner():
    for readers in (1, 2, 3, 5):
        owners = [split_owner("hr.chatbot.interactions", p, readers) for p in range(12)]
        counts = [owners.count(r) for r in range(readers)]
        assert max(counts) - min(counts) <= 1
        # round robin from partition 0's owner, as the connector documents
        assert all((owners[p + 1] - owners[p]) % readers == 1 % readers for p in range(11))


def test_split_owner_follows_the_connector_jar():
    """The connector's getSplitOwner, disassembled: it multiplies the topic's hashCode by
    31, masks it with 0x7FFFFFFF, takes it modulo the readers, adds the partition, and
    takes that modulo the readers. If a connector upgrade changed it, this fails."""
    from streams import assets

    javap = shutil.which("javap")
    try:
        jars = [p for p in assets.kafka_connector_jars() if "connector" in p.name]
    except DriftlineError:
        jars = []
    if not javap or not jars:
        pytest.skip("javap or the Kafka connector jar is not here (make install)")
    out = subprocess.run(
        [javap, "-c", "-classpath", str(jars[0]),
         "org.apache.flink.connector.kafka.source.enumerator.KafkaSourceEnumerator"],
        capture_output=True, text=True, check=True).stdout
    body = out.split("getSplitOwner(")[1].split("\n\n")[0]
    ops = [m.groups() for line in body.splitlines()
           if (m := re.match(r"\s*\d+: (\w+)[ \t]*(\S*)", line))]
    names = [op for op, _ in ops]
    assert names == ["aload_0", "invokevirtual", "invokevirtual", "bipush", "imul", "ldc",
                     "iand", "iload_1", "irem", "istore_2", "iload_2", "aload_0",
                     "invokevirtual", "iadd", "iload_1", "irem", "ireturn"], body
    assert ops[3][1] == "31" and "2147483647" in body and "hashCode" in body


def _oracle(owned, bound, seen):
    newest = {}
    best = None
    out = []
    for p, t in seen:
        newest[p] = max(newest.get(p, t), t)
        if all(q in newest for q in owned):
            w = min(newest[q] for q in owned) - bound
            best = w if best is None else max(best, w)
        out.append(best)
    return out


@pytest.mark.parametrize("readers", [1, 2, 3])
def test_watermarks_follow_each_partition(readers):
    rng = random.Random(readers)
    topic, partitions, bound = "events", 6, 1_000
    for subtask in range(readers):
        owned = [p for p in range(partitions) if split_owner(topic, p, readers) == subtask]
        # each partition in its own event-time order (out of order within the bound),
        # the partitions far apart in time and read interleaved, as a backlog is
        clocks_per_partition = {p: rng.randrange(0, 10**7) for p in owned}
        seen = []
        for _ in range(2_000):
            p = rng.choice(owned)
            clocks_per_partition[p] += rng.randrange(0, 200)
            seen.append((p, clocks_per_partition[p] - rng.randrange(0, bound)))
        clocks = PartitionClocks(topic, partitions, readers, bound)
        got = [clocks.observe(p, t, now_ms=0) for p, t in seen]
        assert got == _oracle(owned, bound, seen)
        late = [t for (p, t), w in zip(seen, [None, *got[:-1]], strict=True)
                if w is not None and t <= w]
        assert not late  # within the bound, nothing is late whatever the interleaving


def test_a_silent_partition_holds_the_watermark_until_it_counts_as_idle():
    clocks = PartitionClocks("t", 2, 1, bound_ms=0, idle_ms=5_000)
    assert clocks.observe(0, 100, now_ms=0) is None  # partition 1 not heard from yet
    assert clocks.observe(0, 200, now_ms=4_999) is None
    assert clocks.observe(0, 300, now_ms=5_000) == 300  # partition 1 idle since the start
    assert clocks.observe(1, 50, now_ms=5_001) == 300  # back, behind: never moves back
    assert clocks.observe(0, 400, now_ms=5_002) == 300  # min(400, 50) is behind
    assert clocks.observe(1, 350, now_ms=5_003) == 350
    never_idle = PartitionClocks("t", 2, 1, bound_ms=0)
    assert never_idle.observe(0, 100, now_ms=10**9) is None


def test_a_partition_added_while_running_joins_its_owner():
    readers, topic = 2, "t"
    added = next(p for p in range(2, 10) if split_owner(topic, p, readers)
                 == split_owner(topic, 0, readers))
    clocks = PartitionClocks(topic, 2, readers, bound_ms=0)
    owned = [p for p in range(2) if split_owner(topic, p, readers)
             == split_owner(topic, 0, readers)]
    for p in owned:
        clocks.observe(p, 1_000, now_ms=0)
    assert clocks.current(0) == 1_000
    assert clocks.observe(added, 2_000, now_ms=0) == 1_000
    assert added in clocks.owned
