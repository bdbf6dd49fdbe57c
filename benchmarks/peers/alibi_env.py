"""The separate environment that holds alibi-detect, the reference implementation.

alibi-detect 0.13.0 pins numpy<2 (driftline runs on numpy 2.1) and is under the
Business Source License 1.1, so it never enters driftline's own environment or its
runtime path: it lives in its own venv (default ``~/.cache/driftline/alibi-venv``,
``DRIFTLINE_ALIBI_VENV`` overrides) and is driven through
``benchmarks/peers/alibi_worker.py``, run by that venv's python on arrays passed as
``.npz`` files. Benchmarks and the ``alibi`` tests compare against it; nothing imports
it.

MMDDrift needs a backend; the PyTorch one is used, pinned to ``torch==2.13.0``. Where
pip's find-links hold a local ``torch-2.13.0*.whl`` (the CPU build), that file is
installed and nothing else can be chosen. Without one, torch is left out unless
``--allow-torch-download`` is given (PyPI's Linux torch pulls GBs of CUDA wheels):
KSDrift still works, MMDDrift is then reported as unavailable.

    python -m benchmarks.peers.alibi_env            # create (idempotent), print status
    python -m benchmarks.peers.alibi_env --check    # exit 1 when absent, create nothing
    python -m benchmarks.peers.alibi_env --force    # recreate from scratch
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ALIBI_VERSION = "0.13.0"
TORCH_VERSION = "2.13.0"
MARKER = "driftline-alibi.json"
WORKER = Path(__file__).with_name("alibi_worker.py")
# What the worker needs besides alibi-detect's own requirements (kept minimal: its
# KSDrift is scipy, its MMDDrift the PyTorch backend).
REQUIREMENTS = [f"alibi-detect=={ALIBI_VERSION}", "numpy<2"]


def venv_dir() -> Path:
    return Path(
        os.environ.get("DRIFTLINE_ALIBI_VENV", "~/.cache/driftline/alibi-venv")
    ).expanduser()


def venv_python(venv: Path | None = None) -> Path:
    return (venv or venv_dir()) / "bin" / "python"


def status(venv: Path | None = None) -> dict[str, Any] | None:
    """The marker of a complete environment, or None when there is none (or a partial one)."""
    venv = venv or venv_dir()
    marker = venv / MARKER
    if not (marker.is_file() and venv_python(venv).exists()):
        return None
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return info if info.get("alibi_detect") == ALIBI_VERSION else None


def missing_reason(venv: Path | None = None) -> str | None:
    """Why the alibi environment cannot be used, or None when it can."""
    venv = venv or venv_dir()
    if status(venv) is None:
        return (
            f"alibi-detect environment not found at {venv} "
            "(create it with `make alibi-env` or `python -m benchmarks.peers.alibi_env`)"
        )
    return None


def _find_links() -> list[Path]:
    """Directories pip is configured to look in for local wheels."""
    dirs: list[str] = os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith("find-links"):
            dirs += value.strip().strip("'\"").split()
    return [Path(d.removeprefix("file://")) for d in dict.fromkeys(dirs) if d]


def local_torch_wheel() -> Path | None:
    """A local ``torch-2.13.0*`` wheel for this interpreter, if pip's find-links hold one."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for d in _find_links():
        if d.is_dir():
            for wheel in sorted(d.glob(f"torch-{TORCH_VERSION}*-{tag}-*.whl")):
                return wheel
    return None


def _log(msg: str) -> None:
    print(f"[alibi-env] {msg}", file=sys.stderr, flush=True)


def ensure(*, force: bool = False, allow_torch_download: bool = False) -> dict[str, Any]:
    """Create the environment unless a complete one exists; return its marker."""
    venv = venv_dir()
    info = status(venv)
    if info is not None and not force:
        return info
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _log(f"creating {venv}")
    # Base interpreter, not this venv's python: the new venv must not see our site.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    py = str(venv_python(venv))

    wheel = local_torch_wheel()
    packages = list(REQUIREMENTS)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(f"torch=={TORCH_VERSION}\nnumpy<2\n")
        if wheel is not None:
            _log(f"torch from the local wheel {wheel.name}")
            packages.append(str(wheel))
        elif allow_torch_download:
            _log(f"no local torch {TORCH_VERSION} wheel: downloading torch=={TORCH_VERSION}")
            packages.append(f"torch=={TORCH_VERSION}")
        else:
            _log(
                f"no local torch {TORCH_VERSION} wheel in pip's find-links: installing without "
                "torch (KSDrift only; pass --allow-torch-download for MMDDrift)"
            )
        cmd = [py, "-m", "pip", "install", "--prefer-binary", "-c", str(constraints), *packages]
        _log(" ".join(cmd[2:]))
        subprocess.run(cmd, check=True)
    probe = subprocess.run(
        [py, str(WORKER), "--versions"], capture_output=True, text=True, check=True
    )
    versions = json.loads(probe.stdout)
    info = {
        "alibi_detect": versions.get("alibi_detect"),
        "versions": versions,
        "install_seconds": round(time.perf_counter() - started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch_source": wheel.name if wheel else ("pip" if allow_torch_download else None),
    }
    if info["alibi_detect"] != ALIBI_VERSION:
        raise RuntimeError(f"expected alibi-detect {ALIBI_VERSION}, got {versions}")
    (venv / MARKER).write_text(json.dumps(info, indent=2))
    _log(f"ready in {info['install_seconds']} s: {versions}")
    return info


# ---------------------------------------------------------------------------------- worker
def run_worker(job: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``job`` (see ``alibi_worker.py``) in the alibi venv and return its JSON.

    The worker's stderr (its progress lines) passes straight through to ours.
    """
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory(prefix="driftline-alibi-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job_path.write_text(json.dumps(job))
        subprocess.run(
            [str(venv_python()), str(WORKER), str(job_path), str(out_path)],
            check=True,
            timeout=timeout,
            stdout=sys.stderr,
        )
        return json.loads(out_path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if absent")
    parser.add_argument("--force", action="store_true", help="recreate even if complete")
    parser.add_argument(
        "--allow-torch-download",
        action="store_true",
        help=f"fetch torch=={TORCH_VERSION} from the index when no local wheel exists",
    )
    args = parser.parse_args(argv)
    if args.check:
        info = status()
        print(json.dumps({"venv": str(venv_dir()), "ready": info is not None, **(info or {})}))
        return 0 if info else 1
    info = ensure(force=args.force, allow_torch_download=args.allow_torch_download)
    print(json.dumps({"venv": str(venv_dir()), "ready": True, **info}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
