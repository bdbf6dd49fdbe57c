"""What the drift benchmarks share: progress on stderr, the machine and versions a result
was measured with, and the small formatting of tables and times."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class Progress:
    """One self-overwriting stderr line per stage: ``[tag] stage 12/400 3.1 s``."""

    def __init__(self, tag: str, stage: str, total: int, every_s: float = 0.5) -> None:
        self.tag, self.stage, self.total, self.every_s = tag, stage, total, every_s
        self.started = self.last = time.perf_counter()
        self.done = 0
        self._show(force=True)

    def step(self, k: int = 1) -> None:
        self.done += k
        self._show(force=self.done >= self.total)

    def _show(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        end = "\n" if self.done >= self.total else ""
        print(
            f"\r[{self.tag}] {self.stage}: {self.done}/{self.total}  {now - self.started:6.1f} s",
            end=end,
            file=sys.stderr,
            flush=True,
        )


def log(tag: str, msg: str) -> None:
    print(f"[{tag}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """CPU model (``lscpu``), cores, memory, OS, and the load other work put on it."""
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": f"{platform.system()} {platform.release()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "threads": {v: os.environ.get(v) for v in THREAD_VARS},
    }


def versions(*dists: str) -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("driftline", "numpy", "scipy", *dists):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    out["git_commit"] = git_commit()
    return out


def git_commit() -> str | None:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def command(module: str, argv: Sequence[str]) -> str:
    return shlex.join(["python", "-m", module, *argv])


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(s: float | None) -> str:
    """A duration at a readable scale: 412 ns, 35.2 us, 4.81 ms, 12.3 s."""
    if s is None:
        return "n/a"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    if s < 100:
        return f"{s:.1f} s"
    return f"{s:.0f} s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def header_lines(meta: dict[str, Any]) -> list[str]:
    m, v = meta["machine"], meta["versions"]
    vers = ", ".join(f"{k} {val}" for k, val in v.items() if val and k != "git_commit")
    lines = []
    if meta.get("mode") == "quick":
        lines.append(
            "- **Mode: quick** (smoke run with few windows: numbers are indicative only; "
            "run without `--quick` for the standard set)"
        )
    lines += [
        f"- Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}); load average at start {m['load_average_at_start']}"
        + (f", at end {meta['load_average_at_end']}" if meta.get("load_average_at_end") else "")
        + " (other jobs shared the machine; medians are reported)",
        f"- Date: {meta['date']}; commit {v.get('git_commit')}; wall time "
        f"{meta['duration_s']:.0f} s"
        + (
            " (" + ", ".join(f"{k} {v:.0f} s" for k, v in meta["stages_s"].items()) + ")"
            if meta.get("stages_s")
            else ""
        ),
        f"- Versions: {vers}",
    ]
    if meta.get("peer_versions"):
        pv = ", ".join(f"{k} {val}" for k, val in meta["peer_versions"].items() if val)
        lines.append(f"- Peer environment (separate venv): {pv}")
    lines.append(f"- Command: `{meta['command']}`")
    return lines


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_plain) + "\n")


def _plain(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON: {type(x)}")


def pin_threads(module: str, argv: Sequence[str], threads: int = 1) -> None:
    """Re-execute ``python -m module argv`` with BLAS/OpenMP pools of ``threads`` unless set.

    Numpy reads these variables when it loads, so they are set before a fresh start: both
    driftline and the peers then run on the same number of threads, and a machine
    shared with other jobs times more steadily.
    """
    if all(os.environ.get(v) for v in THREAD_VARS):
        return
    env = {**os.environ, **{v: os.environ.get(v) or str(threads) for v in THREAD_VARS}}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)
