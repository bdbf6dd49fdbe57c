"""The Feast side of the house: apply the repo and read features back through the SDK.

Reading goes through the plain ``FeatureStore.get_online_features`` on purpose: it
is what every model service does, so it is the check that what we wrote is
really Feast's format.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from redis.connection import parse_url

from schemas.errors import DriftlineError

REDIS_ENV = "DRIFTLINE_FEAST_REDIS"  # substituted into feature_store.yaml


class FeastError(DriftlineError):
    """``feast apply`` failed or the repo is unusable."""


def feast_connection_string(redis_url: str) -> str:
    """redis://host:port/db -> Feast's ``host:port,db=N`` form."""
    url = parse_url(redis_url)
    text = f"{url.get('host', '127.0.0.1')}:{url.get('port', 6379)},db={url.get('db', 0)}"
    if url.get("password"):
        text += f",password={url['password']}"
    return text


def project_name(repo_path: Path | str) -> str:
    config = yaml.safe_load((Path(repo_path) / "feature_store.yaml").read_text())
    return str(config["project"])


def _export(redis_url: str) -> None:
    # The edge of the program: Feast reads its online store address from its yaml,
    # which takes it from this variable.
    os.environ[REDIS_ENV] = feast_connection_string(redis_url)


def apply(repo_path: Path | str, redis_url: str) -> str:
    """Run ``feast apply`` on the repo (registers entities, sources and views)."""
    _export(redis_url)
    feast_cli = Path(sys.executable).with_name("feast")
    done = subprocess.run([str(feast_cli), "apply"], cwd=repo_path, capture_output=True,
                          text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise FeastError(f"feast apply failed in {repo_path}: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


class OnlineReader:
    """A Feast ``FeatureStore`` over the repo, reading every feature of a view."""

    def __init__(self, repo_path: Path | str, redis_url: str) -> None:
        from feast import FeatureStore

        # Feast warns on every StreamFeatureView it loads; we use them on purpose.
        warnings.filterwarnings("ignore", message="Stream feature views are experimental")
        _export(redis_url)
        self.store = FeatureStore(repo_path=str(repo_path))

    def features_of(self, view: str) -> list[str]:
        fv = self.store.get_stream_feature_view(view)
        return [f"{view}:{f.name}" for f in fv.features]

    def read(self, view: str, entity_rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """Every feature of ``view`` for each entity row ({join key: value, ...})."""
        response = self.store.get_online_features(
            features=self.features_of(view), entity_rows=[dict(r) for r in entity_rows])
        columns = response.to_dict()
        return [{k: v[i] for k, v in columns.items()} for i in range(len(entity_rows))]
