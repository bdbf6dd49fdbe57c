"""The decode step's per-partition watermarks (streams/event_time.py) against an oracle.

The oracle is the definition: after each record, the least over the subtask's partitions
of their newest event time, minus the bound, never moving back; unknown until every
partition the subtask owns has a record. Which partitions those are is checked against
the Kafka connector's own ``KafkaSourceEnumerator.getSplitOwner``, called in a JVM.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from schemas.errors import DriftlineError
from streams.event_time import PartitionClocks, java_string_hash, split_owner

#: Calls the connector's own (package-private) split assignment for each
#: (topic, partition, readers) triple on its command line.
_OWNER_ORACLE = """
import java.lang.reflect.Method;
import org.apache.kafka.common.TopicPartition;

public class OwnerOracle {
    public static void main(String[] args) throws Exception {
        Method owner = Class.forName(
            "org.apache.flink.connector.kafka.source.enumerator.KafkaSourceEnumerator")
            .getDeclaredMethod("getSplitOwner", TopicPartition.class, int.class);
        owner.setAccessible(true);
        for (int i = 0; i + 2 < args.length; i += 3) {
            TopicPartition tp = new TopicPartition(args[i], Integer.parseInt(args[i + 1]));
            System.out.println(owner.invoke(null, tp, Integer.parseInt(args[i + 2])));
        }
    }
}
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0), ("a", 97), ("hello", 99162322), ("polygenelubricants", 0x80000000)])
def test_java_string_hash(text, expected):
    assert java_string_hash(text) == expected  # values Java's String.hashCode gives


def test_split_owner_is_the_connector_s_own(tmp_path: Path):
    """If a connector upgrade changed the assignment, this fails."""
    import pyflink

    from streams import assets

    java = shutil.which("java")
    try:
        jars = assets.kafka_connector_jars()
    except DriftlineError:
        jars = []
    # Running a source file needs the JDK's compiler, not only a JRE.
    if not java or not shutil.which("javac") or not jars:
        pytest.skip("a JDK (java, javac) or the Kafka connector jars are not here")
    source = tmp_path / "OwnerOracle.java"
    source.write_text(_OWNER_ORACLE)
    flink_lib = Path(pyflink.__file__).parent / "lib" / "*"
    cases = [(topic, p, n) for topic in ("hr.chatbot.interactions", "t", "été", "it-3f2a.reads")
             for n in (1, 2, 3, 5) for p in range(8)]
    out = subprocess.run(
        [java, "-cp", ":".join([*map(str, jars), str(flink_lib)]), str(source),
         *[str(x) for case in cases for x in case]],
        capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert [int(o) for o in out] == [split_owner(*case) for case in cases]


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
