"""Drop repeated interactions (producer retries, replays) within a bounded event-time window.

At-least-once producers resend; counting a resent interaction twice would inflate
every count feature. Remembering every id forever is unbounded, so ids are kept
for ``window_ms`` of event time behind the newest event seen: memory follows the
event rate times the window, not the stream length. A record older than the
window (``event_time < max_seen - window_ms``) cannot be judged and is let through
uncounted in memory (``too_old_to_check`` counts them); a hard ``max_ids`` cap
evicts the oldest ids early if a burst would exceed it (``evicted_early`` counts
them). Plain attributes only, so the object pickles into Flink state or a test.
"""

from __future__ import annotations

import heapq

from schemas.errors import RecordRejected


class Deduplicator:
    """``check`` passes the first sighting of an ``interaction_id`` and rejects repeats."""

    def __init__(self, window_ms: int, *, max_ids: int = 5_000_000) -> None:
        if window_ms < 0:
            raise ValueError("window_ms must be >= 0")
        if max_ids < 1:
            raise ValueError("max_ids must be >= 1")
        self.window_ms = window_ms
        self.max_ids = max_ids
        self.max_seen_ms: int | None = None
        self._seen: dict[str, int] = {}  # id -> event time of its first sighting
        self._heap: list[tuple[int, str]] = []  # (event time, id), oldest first
        self.duplicates = 0
        self.too_old_to_check = 0
        self.evicted_early = 0

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, interaction_id: str, event_time_ms: int) -> None:
        """Remember ``interaction_id``; raise ``RecordRejected("duplicate")`` if it is known.

        Every record, duplicate or not, advances the newest event time first, so the
        window is always (newest - window_ms, newest] including this record.
        """
        newest = self.max_seen_ms
        if newest is None or event_time_ms > newest:
            newest = self.max_seen_ms = event_time_ms
            self._evict(newest - self.window_ms)
        first = self._seen.get(interaction_id)
        if first is not None:
            self.duplicates += 1
            raise RecordRejected(
                "duplicate", f"interaction_id seen {event_time_ms - first} ms of event time "
                             f"earlier (window {self.window_ms} ms)", "interaction_id")
        if event_time_ms < newest - self.window_ms:
            self.too_old_to_check += 1
            return
        self._seen[interaction_id] = event_time_ms
        heapq.heappush(self._heap, (event_time_ms, interaction_id))
        while len(self._seen) > self.max_ids:
            _, old = heapq.heappop(self._heap)
            self._seen.pop(old, None)
            self.evicted_early += 1

    def _evict(self, horizon_ms: int) -> None:
        heap, seen = self._heap, self._seen
        while heap and heap[0][0] < horizon_ms:
            _, old = heapq.heappop(heap)
            seen.pop(old, None)
