"""A Flink standalone session cluster on this machine, from the apache-flink wheel itself.

``driftline cluster up`` starts a JobManager and ``TASKMANAGERS`` TaskManagers (one slot
each) as separate JVMs with the wheel's own ``pyflink/bin`` scripts: ``FLINK_HOME`` is
the wheel's ``pyflink/``, the configuration a private ``config.yaml`` under
``<state_dir>/cluster/``, beside the logs and pid files. Python workers run as their own
processes (process mode) on the TaskManagers, checkpoints go to the filesystem, and
Prometheus metrics are served from ``job.metrics_port`` on (one port per process): the
deployment of docs/deploy.md, without containers. ``driftline cluster submit`` sends the
job the way compose does (``flink run --python streams/submit.py``); ``up`` again tops
the TaskManagers back up after one died; ``down`` stops what ``up`` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import yaml

from schemas.errors import DriftlineError, ServiceUnavailable
from streams.runner import free_port
from streams.settings import Settings

TASKMANAGERS = 2
#: Heartbeats fast enough that a dead TaskManager is noticed in seconds, not 50 s.
HEARTBEAT_MS = {"heartbeat.interval": 2000, "heartbeat.timeout": 10_000}


class ClusterError(DriftlineError):
    """A cluster script failed or the cluster did not come up."""


def flink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent


def cluster_dir(settings: Settings) -> Path:
    return (settings.state_dir / "cluster" / str(settings.job.rest_port)).resolve()


def _rest(settings: Settings, path: str) -> dict:
    url = f"http://127.0.0.1:{settings.job.rest_port}{path}"
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.load(response)


def write_config(settings: Settings) -> Path:
    """The cluster's ``config.yaml`` (Flink 2's format), from our settings."""
    root = cluster_dir(settings)
    conf = root / "conf"
    for folder in (conf, root / "log", root / "run"):
        folder.mkdir(parents=True, exist_ok=True)
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties"):
        source = flink_home() / "conf" / name
        if source.exists() and not (conf / name).exists():
            (conf / name).write_text(source.read_text())
    port = settings.job.metrics_port
    path = conf / "config.yaml"
    # The JobManager's RPC port stays what the running TaskManagers were told.
    previous = yaml.safe_load(path.read_text()) if path.exists() else {}
    rpc_port = previous.get("jobmanager.rpc.port") or free_port()
    config = {
        # The wheel's defaults (the JVM's module --add-opens among them), then ours.
        **_flatten(yaml.safe_load((flink_home() / "conf" / "config.yaml").read_text())),
        "jobmanager.rpc.address": "localhost", "jobmanager.rpc.port": rpc_port,
        "jobmanager.bind-host": "localhost",
        "taskmanager.bind-host": "localhost", "taskmanager.host": "localhost",
        "rest.address": "localhost", "rest.bind-address": "localhost",
        "rest.port": settings.job.rest_port,
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.memory.process.size": "1728m",
        "taskmanager.numberOfTaskSlots": 1,
        "parallelism.default": settings.job.parallelism,
        "python.executable": sys.executable, "python.client.executable": sys.executable,
        "metrics.reporter.prom.factory.class":
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": f"{port}-{port + TASKMANAGERS}",
        "env.log.dir": str(root / "log"), "env.pid.dir": str(root / "run"),
        **HEARTBEAT_MS,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    return conf


def _flatten(tree: dict, prefix: str = "") -> dict:
    """Flink's nested YAML as flat ``a.b.c`` keys (so ours override them one by one)."""
    flat: dict = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _env(settings: Settings) -> dict[str, str]:
    root = cluster_dir(settings)
    return {**os.environ, "FLINK_HOME": str(flink_home()), "FLINK_CONF_DIR": str(root / "conf"),
            "FLINK_LOG_DIR": str(root / "log"), "FLINK_PID_DIR": str(root / "run")}


def _script(settings: Settings, name: str, *args: str) -> None:
    done = subprocess.run(["bash", str(flink_home() / "bin" / name), *args], env=_env(settings),
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ClusterError(f"{name} {' '.join(args)} failed: "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")


def processes(settings: Settings, role: str) -> list[psutil.Process]:
    """This cluster's JVMs of ``role`` ("jobmanager" / "taskmanager"), found by their
    configuration directory, so another cluster on the machine is never touched."""
    marker = "StandaloneSessionClusterEntrypoint" if role == "jobmanager" \
        else "TaskManagerRunner"
    conf = str(cluster_dir(settings) / "conf")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if marker in cmdline and conf in cmdline:
            found.append(proc)
    return found


def orphaned_workers(settings: Settings) -> list[psutil.Process]:
    """Python workers of this cluster whose TaskManager is gone (a killed TaskManager
    leaves its workers running): found by the ``FLINK_CONF_DIR`` they inherited."""
    conf = str(cluster_dir(settings) / "conf")
    found = []
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if "beam_boot" not in cmdline and "pyflink-udf-runner" not in cmdline:
            continue
        try:
            if proc.environ().get("FLINK_CONF_DIR") != conf:
                continue
            under_tm = any("TaskManagerRunner" in " ".join(p.cmdline()) for p in proc.parents())
        except psutil.Error:
            continue
        if not under_tm:
            found.append(proc)
    return found


def _reap(procs: list[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)


def overview(settings: Settings) -> dict | None:
    try:
        return _rest(settings, "/overview")
    except OSError:
        return None


def up(settings: Settings, taskmanagers: int = TASKMANAGERS) -> list[str]:
    """Start the JobManager if it is not running and TaskManagers up to ``taskmanagers``."""
    write_config(settings)
    lines = []
    orphans = orphaned_workers(settings)
    if orphans:
        _reap(orphans)
        lines.append(f"removed {len(orphans)} Python worker(s) left by a dead TaskManager")
    if not processes(settings, "jobmanager"):
        _script(settings, "jobmanager.sh", "start")
        lines.append(f"jobmanager started, REST and UI on http://127.0.0.1:"
                     f"{settings.job.rest_port}")
    else:
        lines.append("jobmanager already running")
    missing = taskmanagers - len(processes(settings, "taskmanager"))
    for _ in range(missing):
        _script(settings, "taskmanager.sh", "start")
    lines.append(f"taskmanagers: {max(missing, 0)} started, {taskmanagers} wanted")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        info = overview(settings)
        if info and info.get("taskmanagers", 0) >= taskmanagers:
            lines.append(f"cluster ready: {info['taskmanagers']} taskmanager(s), "
                         f"{info['slots-total']} slot(s); logs in {cluster_dir(settings)}/log")
            return lines
        time.sleep(1)
    raise ClusterError(f"the cluster did not register {taskmanagers} TaskManagers in 90 s; "
                       f"see the logs in {cluster_dir(settings)}/log")


def submit(settings: Settings, branches: list[str], extra_env: dict[str, str] | None = None,
           ) -> str:
    """``flink run`` the job as compose does (``streams/submit.py``); returns the job id."""
    if overview(settings) is None:
        raise ServiceUnavailable("Flink cluster", f"127.0.0.1:{settings.job.rest_port}",
                                 "Run `driftline cluster up`.")
    submit_py = Path(__file__).with_name("submit.py")
    python = sys.executable
    done = subprocess.run(
        [str(flink_home() / "bin" / "flink"), "run", "-m", f"localhost:{settings.job.rest_port}",
         "-d", "-pyclientexec", python, "-pyexec", python, "--python", str(submit_py),
         "--branches", ",".join(branches)],
        env={**_env(settings), **(extra_env or {})}, capture_output=True, text=True,
        timeout=300, cwd=Path(__file__).parent.parent)
    out = done.stdout + done.stderr
    ids = [line.rsplit("job id ", 1)[1].strip() for line in out.splitlines() if "job id " in line]
    if done.returncode != 0 or not ids:
        raise ClusterError(f"flink run failed: {out.strip()[-1500:]}")
    return ids[-1]


def down(settings: Settings) -> list[str]:
    """Stop this cluster's JVMs (found by their config directory, not by the scripts'
    pid files, which a crashed start leaves stale)."""
    lines = []
    for role in ("taskmanager", "jobmanager"):
        running = processes(settings, role)
        workers = [c for p in running for c in p.children(recursive=True)]
        for proc in running:
            proc.terminate()
        _, alive = psutil.wait_procs(running, timeout=30)
        _reap(alive + workers)
        lines.append(f"{role}: {len(running)} stopped" if running else
                     f"{role}: none running here")
    _reap(orphaned_workers(settings))
    for pidfile in (cluster_dir(settings) / "run").glob("*.pid"):
        pidfile.unlink()
    return lines


def status(settings: Settings) -> list[str]:
    info = overview(settings)
    if info is None:
        return [f"no cluster answers at 127.0.0.1:{settings.job.rest_port}"]
    return [f"flink {info.get('flink-version')}: {info['taskmanagers']} taskmanager(s), "
            f"{info['slots-available']}/{info['slots-total']} slot(s) free, "
            f"{info['jobs-running']} job(s) running"]
