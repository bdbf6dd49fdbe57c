"""Hold back while a service is away, instead of failing the job.

A Redis write that cannot reach Redis is retried with a growing pause, so the operator
blocks and Flink's backpressure slows everything upstream; nothing is dropped and,
because our writes are idempotent (newest-wins), nothing is counted twice when the
service is back. Only an outage longer than ``give_up_s`` fails the task, and then Flink
restores from the last checkpoint, which is just as exact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger("driftline.retry")
T = TypeVar("T")
#: Redis errors that mean "not reachable right now" (a refused or broken connection,
#: a timeout), as opposed to a bad command.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError)


def redis_client(url: str) -> redis.Redis:
    """A client whose calls fail (and so retry) within seconds when Redis is away, instead
    of hanging on a dead socket."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                health_check_interval=15)


def until_done(action: Callable[[], T], what: str, give_up_s: float = 600.0,
               first_pause_s: float = 0.2, longest_pause_s: float = 5.0) -> T:
    """``action()``, retried while it raises a transient Redis error."""
    started = time.monotonic()
    pause, failures = first_pause_s, 0
    while True:
        try:
            result = action()
        except TRANSIENT as exc:
            failures += 1
            waited = time.monotonic() - started
            if waited > give_up_s:
                raise
            if failures == 1 or failures % 20 == 0:
                log.warning("%s: Redis not reachable (%s); retrying for %.0f s so far",
                            what, exc, waited)
            time.sleep(pause)
            pause = min(pause * 2, longest_pause_s)
            continue
        if failures:
            log.warning("%s: Redis is back after %.1f s", what, time.monotonic() - started)
        return result
