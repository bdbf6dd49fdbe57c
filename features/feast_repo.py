"""The Feast side of the house: apply the repo and read features back through the SDK.

Reading goes through the plain ``FeatureStore.get_online_features`` on purpose: it
is what every model service does, so it is the check that what we wrote is
really Feast's format.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from redis.connection import parse_url

from schemas.errors import DriftlineError


class FeastError(DriftlineError):
    """``feast apply`` failed or the repo is unusable."""


def feast_connection_string(redis_url: str) -> str:
    """redis://host:port/db -> Feast's ``host:port,db=N`` form."""
    url = parse_url(redis_url)
    text = f"{url.get('host', '127.0.0.1')}:{url.get('port', 6379)},db={url.get('db', 0)}"
    if url.get("password"):
        text += f",password={url['password']}"
    return text


def _yaml(repo_path: Path | str) -> Path:
    return Path(repo_path) / "feature_store.yaml"


def project_name(repo_path: Path | str) -> str:
    return str(yaml.safe_load(_yaml(repo_path).read_text())["project"])


_CONNECTION_LINE = re.compile(r"^(\s+connection_string:\s*).*$", re.MULTILINE)


def point_online_store(repo_path: Path | str, redis_url: str) -> bool:
    """Make the repo's ``feature_store.yaml`` name ``redis_url`` as its online store, so
    plain Feast clients read where the job writes; True if the line changed."""
    path = _yaml(repo_path)
    text = path.read_text()
    config = yaml.safe_load(text)
    if (config.get("online_store") or {}).get("type") != "redis":
        raise FeastError(f"{path}: driftline writes Feast's Redis online store; "
                         "online_store.type must be redis")
    wanted = feast_connection_string(redis_url)
    if config["online_store"].get("connection_string") == wanted:
        return False
    updated, n = _CONNECTION_LINE.subn(lambda m: f'{m.group(1)}"{wanted}"', text, count=1)
    if n != 1:
        raise FeastError(f"{path}: no online_store connection_string line to set")
    path.write_text(updated)
    return True


def feature_store(repo_path: Path | str, redis_url: str):
    """The repo's Feast ``FeatureStore``, its online store at ``redis_url`` whatever the
    yaml says (it may name another Redis, e.g. before ``driftline apply``)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    # Feast warns on every StreamFeatureView it loads; we use them on purpose.
    warnings.filterwarnings("ignore", message="Stream feature views are experimental")
    repo = Path(repo_path).resolve()
    raw = yaml.safe_load(os.path.expandvars(_yaml(repo).read_text()))
    raw["online_store"] = {**raw["online_store"],
                           "connection_string": feast_connection_string(redis_url)}
    config = RepoConfig(**raw)
    config.repo_path = repo
    return FeatureStore(repo_path=str(repo), config=config)


def apply(repo_path: Path | str, redis_url: str) -> str:
    """Run ``feast apply`` on the repo (registers entities, sources and views), its
    online store pointed at ``redis_url`` first."""
    point_online_store(repo_path, redis_url)
    feast_cli = Path(sys.executable).with_name("feast")
    done = subprocess.run([str(feast_cli), "apply"], cwd=repo_path, capture_output=True,
                          text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise FeastError(f"feast apply failed in {repo_path}: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


class OnlineReader:
    """A Feast ``FeatureStore`` over the repo, reading every feature of a view."""

    def __init__(self, repo_path: Path | str, redis_url: str) -> None:
        self.store = feature_store(repo_path, redis_url)

    def features_of(self, view: str) -> list[str]:
        fv = self.store.get_stream_feature_view(view)
        return [f"{view}:{f.name}" for f in fv.features]

    def read(self, view: str, entity_rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """Every feature of ``view`` for each entity row ({join key: value, ...})."""
        response = self.store.get_online_features(
            features=self.features_of(view), entity_rows=[dict(r) for r in entity_rows])
        columns = response.to_dict()
        return [{k: v[i] for k, v in columns.items()} for i in range(len(entity_rows))]
