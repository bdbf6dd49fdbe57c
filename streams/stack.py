"""The embedded local stack: a Kafka-protocol broker, Redis and our topics.

``up`` is idempotent: a service that already answers at the configured address is
used as it is; otherwise we start one (Tansu from its PyPI wheel; ``redis-server``
from PATH) and remember its pid under ``state_dir`` so ``down`` stops only what we
started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.errors import ServiceUnavailable
from streams import assets
from streams.settings import Settings


@dataclass
class ServiceStatus:
    name: str
    address: str
    healthy: bool
    managed: bool
    detail: str = ""


def _address(settings: Settings, name: str) -> str:
    if name == "broker":
        return "{}:{}".format(*settings.broker_host_port)
    url = redis.connection.parse_url(settings.redis_url)
    return f"{url.get('host', '127.0.0.1')}:{url.get('port', 6379)}"


def _pidfile(settings: Settings, name: str) -> Path:
    """One file per service and address: ``down`` stops only what ``up`` started there."""
    return settings.state_dir / f"{name}-{_address(settings, name).replace(':', '-')}.pid"


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers})


def broker_healthy(settings: Settings, timeout: float = 2.0) -> bool:
    """A TCP probe first, so a missing broker doesn't make librdkafka retry noisily."""
    try:
        socket.create_connection(settings.broker_host_port, timeout=timeout).close()
        _admin(settings).list_topics(timeout=timeout)
        return True
    except (OSError, KafkaException):
        return False


def redis_healthy(settings: Settings) -> bool:
    try:
        return bool(redis.Redis.from_url(settings.redis_url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _wait(check, what: str, address: str, hint: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise ServiceUnavailable(what, address, hint)


def _start_detached(cmd: list[str], pidfile: Path, logfile: Path) -> None:
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    pidfile.write_text(str(proc.pid))


def ensure_broker(settings: Settings) -> str:
    if broker_healthy(settings):
        return "already running"
    host, port = settings.broker_host_port
    hint = (
        "Start a Kafka-compatible broker there, or let driftline start its own "
        "(DRIFTLINE_MANAGE_BROKER=true, the default, with a local address)."
    )
    if not settings.manage_broker or host not in ("127.0.0.1", "localhost"):
        raise ServiceUnavailable("Kafka broker", settings.bootstrap_servers, hint)
    binary = assets.broker_binary(settings.broker_binary)
    url = f"tcp://{host}:{port}"
    cmd = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
           "--storage-engine", "memory://tansu/"]
    _start_detached(cmd, _pidfile(settings, "broker"), settings.state_dir / "broker.log")
    _wait(lambda: broker_healthy(settings, 1.0), "Kafka broker", settings.bootstrap_servers,
          f"Tansu did not come up; see {settings.state_dir / 'broker.log'}.")
    return f"started Tansu (pid {_pidfile(settings, 'broker').read_text()})"


def ensure_redis(settings: Settings) -> str:
    if redis_healthy(settings):
        return "already running"
    url = redis.connection.parse_url(settings.redis_url)
    host, port = url.get("host", "127.0.0.1"), int(url.get("port", 6379))
    server = shutil.which("redis-server")
    if server is None or host not in ("127.0.0.1", "localhost"):
        raise ServiceUnavailable(
            "Redis", settings.redis_url,
            "Start Redis there (Debian: `apt-get install redis-server`), or point "
            "DRIFTLINE_REDIS_URL at a running one.",
        )
    cmd = [server, "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no"]
    _start_detached(cmd, _pidfile(settings, "redis"), settings.state_dir / "redis.log")
    _wait(lambda: redis_healthy(settings), "Redis", settings.redis_url,
          f"redis-server did not come up; see {settings.state_dir / 'redis.log'}.")
    return f"started redis-server (pid {_pidfile(settings, 'redis').read_text()})"


def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create our topics explicitly (Tansu does not auto-create); return partition counts."""
    t = settings.topics
    admin = _admin(settings)
    existing = admin.list_topics(timeout=5).topics
    _create(admin, {t.input: t.input_partitions} if t.input not in existing else {})
    wanted = {t.dead_letter: 1, t.alerts: 1}
    _create(admin, {n: p for n, p in wanted.items() if n not in existing})
    topics = admin.list_topics(timeout=5).topics
    return {name: len(topics[name].partitions) for name in (t.input, *wanted) if name in topics}


def _create(admin: AdminClient, wanted: dict[str, int]) -> None:
    new = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in wanted.items()]
    for _name, future in (admin.create_topics(new) if new else {}).items():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def up(settings: Settings) -> list[str]:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"broker  {settings.bootstrap_servers}: {ensure_broker(settings)}",
             f"redis   {settings.redis_url}: {ensure_redis(settings)}"]
    for name, parts in ensure_topics(settings).items():
        lines.append(f"topic   {name}: {parts} partition(s)")
    return lines


def _stop(pidfile: Path, binary: str) -> bool:
    """Stop the process ``pidfile`` names, if it is still the ``binary`` we started."""
    if not pidfile.exists():
        return False
    pid = int(pidfile.read_text())
    pidfile.unlink()
    try:
        if binary not in " ".join(psutil.Process(pid).cmdline()):
            return False  # the pid was reused by another process: not ours to stop
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, psutil.Error):
        return False
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    return True


def down(settings: Settings) -> list[str]:
    """Stop only what ``up`` started; leave services that were already running."""
    lines = []
    for name, binary in (("broker", "tansu"), ("redis", "redis-server")):
        stopped = _stop(_pidfile(settings, name), binary)
        where = _address(settings, name)
        lines.append(f"{name} {where}: " + ("stopped" if stopped else
                                            "not started by driftline here; left alone"))
    return lines


def status(settings: Settings) -> list[ServiceStatus]:
    result = [
        ServiceStatus("broker", settings.bootstrap_servers, broker_healthy(settings),
                      _pidfile(settings, "broker").exists()),
        ServiceStatus("redis", settings.redis_url, redis_healthy(settings),
                      _pidfile(settings, "redis").exists()),
    ]
    if result[0].healthy:
        topics = _admin(settings).list_topics(timeout=5).topics
        for name in settings.topics.names:
            parts = len(topics[name].partitions) if name in topics else 0
            result.append(ServiceStatus("topic", name, parts > 0, False, f"{parts} partition(s)"))
    return result


def delete_topics(settings: Settings, names: list[str]) -> None:
    """Remove topics a run made for itself (a backfill's); what cannot be deleted stays.

    The client is held until every future is answered: dropped at once, it is destroyed
    first, and each future fails with "handle destroyed", leaving every topic in place."""
    admin = _admin(settings)
    for _name, future in admin.delete_topics(names).items():
        with contextlib.suppress(KafkaException):
            future.result(timeout=10)
