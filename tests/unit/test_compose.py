"""docker-compose.yml and docker/Dockerfile, checked against the Settings model.

No Docker engine is needed: the compose file is parsed as YAML and every service's
``DRIFTLINE_*`` environment is fed to the real :class:`Settings`, so a renamed field,
a bad value or an address that names no service fails here, not in a container.
:func:`problems` returns every inconsistency as text; the mutation tests below break
one thing at a time and check that it is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from streams import assets, cli, submit
from streams.settings import PREFIX, Settings, unknown_field

ROOT = Path(__file__).resolve().parents[2]
NOT_FIELDS = {"DRIFTLINE_CONFIG"}  # names the settings file; load_settings reads it
# Fields producer, job and readers must agree on, or records go unread or undecodable.
SHARED = ("bootstrap_servers", "redis_url", "schema_registry_url", "state_dir", "topics",
          "embedding_dim", "feature_repo")


@dataclass
class Deployment:
    compose: dict[str, Any]
    root: Path = ROOT
    dockerfiles: dict[str, str] = field(default_factory=dict)  # repo path -> text

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.compose.get("services") or {}


def build_of(service: dict[str, Any]) -> tuple[str, str] | None:
    """(context, Dockerfile path), both relative to the repo root, of a built service."""
    build = service.get("build")
    if build is None:
        return None
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return context, str(Path(context) / dockerfile)


def dockerfile_of(service: dict[str, Any]) -> str | None:
    build = build_of(service)
    return build[1] if build else None


def load_deployment(root: Path = ROOT) -> Deployment:
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    found = Deployment(compose, root)
    for service in found.services.values():
        path = dockerfile_of(service)
        if path and (root / path).is_file():
            found.dockerfiles[path] = (root / path).read_text()
    return found


# --- environment -> Settings ------------------------------------------------------------

def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()}


@contextlib.contextmanager
def only_these_variables(env: dict[str, str]) -> Iterator[None]:
    """The process environment with exactly ``env`` as its DRIFTLINE_* variables."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}
    for k in saved:
        del os.environ[k]
    os.environ.update(env)
    try:
        yield
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


def settings_of(service: dict[str, Any]) -> Settings:
    env = {k: v for k, v in environment(service).items() if k.startswith(PREFIX)}
    with only_these_variables(env):
        return Settings()


# --- small readers of compose / Dockerfile syntax ----------------------------------------

def is_pinned(image: str) -> bool:
    name, _, digest = image.partition("@")
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    return bool(digest) or (bool(tag) and tag != "latest")


def base_images(dockerfile: str) -> list[str]:
    """Images a Dockerfile pulls: FROM lines (not earlier stages) and COPY --from=image."""
    stages, images = set(), []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            words = [w for w in words if not w.startswith("--")]
            if words[1] not in stages:
                images.append(words[1])
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.add(words[3])
        elif words[:1] == ["COPY"]:
            source = next((w[len("--from="):] for w in words if w.startswith("--from=")), None)
            if source and source not in stages and not source.isdigit():
                images.append(source)
    return images


def copy_sources(dockerfile: str) -> list[str]:
    sources = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from=") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume name (or host path) of a service's short-syntax volumes."""
    pairs = (str(v).split(":") for v in service.get("volumes", []) if ":" in str(v))
    return {target: source for source, target, *_ in pairs}


def listening_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    for p in service.get("ports", []):
        target = p.get("target") if isinstance(p, dict) else str(p).split(":")[-1]
        ports.add(int(str(target).split("/")[0]))
    return ports


def advertised(service: dict[str, Any]) -> set[tuple[str, int]] | None:
    text = environment(service).get("KAFKA_ADVERTISED_LISTENERS")
    if text is None:
        return None
    pairs = (urlsplit(listener.strip()) for listener in text.split(","))
    return {(u.hostname or "", u.port or 0) for u in pairs}


def depends_on(service: dict[str, Any]) -> list[str]:
    return list(service.get("depends_on") or [])


def needs(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    """Every service ``name`` waits for, directly or through others."""
    seen: set[str] = set()
    todo = depends_on(services[name])
    while todo:
        dep = todo.pop()
        if dep in services and dep not in seen:
            seen.add(dep)
            todo += depends_on(services[dep])
    return seen


def commands(service: dict[str, Any]) -> list[list[str]]:
    """The simple commands a service runs (``sh -c`` scripts split on ; && || |)."""
    command = service.get("command")
    if command is None:
        return []
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if words[:1] in (["sh"], ["bash"]) and "-c" in words:
        script = words[words.index("-c") + 1]
    else:
        script = shlex.join(words)
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    result, current = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            result.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in [*result, current] if c]


def argparse_error(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(args)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1]
    return None


def command_problem(root: Path, words: list[str]) -> str | None:
    program, args = words[0], words[1:]
    if program == "driftline":
        return argparse_error(cli.build_parser(), args)
    if program == "flink" and args[:1] == ["run"]:
        for flag in ("--python", "-py"):
            if flag in args:
                script = args[args.index(flag) + 1]
                if not (root / script).is_file():
                    return f"{script} does not exist in the repo"
                if script == "streams/submit.py":
                    return argparse_error(submit.build_parser(), args[args.index(flag) + 2:])
                return None
        return "flink run without --python: nothing of ours to run"
    if program in ("python", "python3") and args[:1] == ["-m"]:
        try:
            return None if importlib.util.find_spec(args[1]) else f"no module {args[1]}"
        except ModuleNotFoundError:
            return f"no module {args[1]}"
    return None


# --- the checks -----------------------------------------------------------------------------

def env_problems(dep: Deployment) -> list[str]:
    out = []
    for name, service in dep.services.items():
        keys = [k for k in environment(service) if k.startswith(PREFIX) and k not in NOT_FIELDS]
        unknown = [f"{name}: {why}" for k in keys if (why := unknown_field(k))]
        out += unknown
        if keys and not unknown:
            try:
                settings_of(service)
            except ValidationError as exc:
                first = exc.errors()[0]
                out.append(f"{name}: invalid {'.'.join(map(str, first['loc']))}: {first['msg']}")
    return out


def driftline_services(dep: Deployment) -> list[str]:
    """Services built from this repo's Dockerfile run driftline code."""
    return [n for n, s in dep.services.items() if dockerfile_of(s) in dep.dockerfiles]


def address_problems(dep: Deployment, name: str, settings: Settings) -> list[str]:
    services, env, out = dep.services, environment(dep.services[name]), []
    for key in ("DRIFTLINE_BOOTSTRAP_SERVERS", "DRIFTLINE_REDIS_URL"):
        if key not in env:
            out.append(f"{name}: {key} not set (the default points at 127.0.0.1)")
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        target = services.get(host)
        listeners = advertised(target) if target else None
        if not port.isdigit():
            out.append(f"{name}: bootstrap server {server} has no port")
        elif target is None:
            out.append(f"{name}: bootstrap server {server} names no service")
        elif listeners is None:
            out.append(f"{name}: bootstrap server {server} is not a Kafka broker")
        elif (host, int(port)) not in listeners or int(port) not in listening_ports(target):
            out.append(f"{name}: {server} is not an exposed, advertised listener of {host}")
    url = urlsplit(settings.redis_url)
    target = services.get(url.hostname or "")
    if target is None or "redis" not in str(target.get("image", "")):
        out.append(f"{name}: redis_url {settings.redis_url} names no Redis service")
    elif (url.port or 6379) not in listening_ports(target):
        out.append(f"{name}: redis_url port {url.port or 6379} is not exposed by {url.hostname}")
    if settings.manage_broker:
        out.append(f"{name}: DRIFTLINE_MANAGE_BROKER must be false (the broker is a service)")
    return out


def volume_and_jar_problems(dep: Deployment, name: str, settings: Settings) -> list[str]:
    out, service = [], dep.services[name]
    state = mounts(service).get(str(settings.state_dir))
    if state is None or state not in (dep.compose.get("volumes") or {}):
        out.append(f"{name}: state_dir {settings.state_dir} is not on a named volume")
    jars = settings.kafka_connector_jars
    wanted = sorted(Path(m).name for m in assets.CONNECTOR_MEMBERS)
    text = dep.dockerfiles[dockerfile_of(service)]
    if sorted(p.name for p in jars) != wanted:
        out.append(f"{name}: kafka_connector_jars should name {wanted}, got {jars}")
    elif any(str(p.parent) not in text for p in jars) or "streams.assets" not in text:
        out.append(f"{name}: the Dockerfile does not put the jars from streams.assets there")
    return out


def ordering_problems(dep: Deployment, name: str, settings: Settings) -> list[str]:
    """The submitter fits the slots and waits for the cluster; users of Kafka/Redis wait too."""
    services, out, runs = dep.services, [], commands(dep.services[name])
    if any(c[:2] == ["flink", "run"] for c in runs):
        slots = sum(int(environment(s).get("TASK_MANAGER_NUMBER_OF_TASK_SLOTS", 1))
                    * int((s.get("deploy") or {}).get("replicas", 1))
                    for s in services.values() if s.get("command") == "taskmanager")
        if settings.job.parallelism > slots:
            out.append(f"{name}: job parallelism {settings.job.parallelism} > {slots} slots")
        if "jobmanager" not in needs(services, name):
            out.append(f"{name}: submits a job but does not wait for the jobmanager")
    if any(c[:1] in (["driftline"], ["flink"]) for c in runs):
        hosts = {s.rpartition(":")[0] for s in settings.bootstrap_servers.split(",")}
        hosts.add(urlsplit(settings.redis_url).hostname or "")
        if missing := sorted((hosts & set(services)) - needs(services, name)):
            out.append(f"{name}: does not wait for {missing}")
    return out


def deployment_problems(dep: Deployment) -> list[str]:
    built = driftline_services(dep)
    settings = {n: settings_of(dep.services[n]) for n in built}
    out = []
    for n in built:
        out += address_problems(dep, n, settings[n])
        out += volume_and_jar_problems(dep, n, settings[n])
        out += ordering_problems(dep, n, settings[n])
        out += [f"{n} and {built[0]} disagree on {f}" for f in SHARED
                if getattr(settings[n], f) != getattr(settings[built[0]], f)]
    states = {mounts(dep.services[n]).get(str(settings[n].state_dir)) for n in built} - {None}
    if len(states) > 1:
        out.append(f"state_dir is on different volumes: {sorted(states)}")
    return out


def image_problems(dep: Deployment) -> list[str]:
    out = []
    for name, service in dep.services.items():
        image = service.get("image")
        if image is None and "build" not in service:
            out.append(f"{name}: neither image nor build")
        elif image is not None and not is_pinned(image):
            out.append(f"{name}: image {image} is not pinned")
        path = dockerfile_of(service)
        if path and path not in dep.dockerfiles:
            out.append(f"{name}: Dockerfile {path} does not exist")
        out += [f"{name}: depends on unknown service {d}" for d in depends_on(service)
                if d not in dep.services]
        out += [f"{name}: volume {v} is not declared" for v in mounts(service).values()
                if not v.startswith(("/", ".", "~", "$"))
                and v not in (dep.compose.get("volumes") or {})]
        build = build_of(service)
        if build and build[1] in dep.dockerfiles:
            context = dep.root / build[0]
            out += [f"{name}: COPY source {s} does not exist in {build[0]}"
                    for s in copy_sources(dep.dockerfiles[build[1]]) if not list(context.glob(s))]
    flink = version("apache-flink")
    for path, text in dep.dockerfiles.items():
        images = base_images(text)
        out += [f"{path}: base image {i} is not pinned" for i in images if not is_pinned(i)]
        for image in images:
            repo, _, tag = image.partition("@")[0].rpartition(":")
            if repo == "flink" and (tag.split("-")[0] != flink or "java17" not in tag):
                out.append(f"{path}: {image} is not Flink {flink} (java17) as installed")
        if not any(i.partition(":")[0] == "flink" for i in images):
            out.append(f"{path}: not built on the official flink image")
    return sorted(set(out), key=out.index)


def command_problems(dep: Deployment) -> list[str]:
    return [f"{name}: {' '.join(words)}: {why}"
            for name, service in dep.services.items() for words in commands(service)
            if (why := command_problem(dep.root, words))]


def problems(dep: Deployment) -> list[str]:
    found = env_problems(dep) + image_problems(dep) + command_problems(dep)
    # Settings-derived checks need every environment to validate first.
    return found or deployment_problems(dep)


# --- tests -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return load_deployment()


def test_compose_and_dockerfile_are_consistent(deployment):
    assert problems(deployment) == []


def test_every_driftline_service_is_configured_by_driftline_variables(deployment):
    built = driftline_services(deployment)
    assert {"jobmanager", "taskmanager", "init", "simulator"} <= set(built)
    for name in built:
        settings = settings_of(deployment.services[name])
        assert (settings.bootstrap_servers, settings.redis_url) == (
            "kafka:9092", "redis://redis:6379/0"), name
        assert all(p.suffix == ".jar" and p.is_absolute() for p in settings.kafka_connector_jars)


def test_the_job_is_submitted_once_with_both_branches(deployment):
    runs = [c for service in deployment.services.values() for c in commands(service)
            if c[:2] == ["flink", "run"]]
    assert len(runs) == 1
    args = submit.build_parser().parse_args(runs[0][runs[0].index("--python") + 2:])
    assert args.branches == ["features", "drift"]


def _with_env(dep: Deployment, service: str, **changes: str | None) -> Deployment:
    broken = copy.deepcopy(dep)
    env = {**environment(broken.services[service]), **changes}
    broken.services[service]["environment"] = {k: v for k, v in env.items() if v is not None}
    return broken


def _with(dep: Deployment, service: str, key: str, value: Any) -> Deployment:
    broken = copy.deepcopy(dep)
    broken.services[service] = {**broken.services[service], key: value}
    return broken


def _with_volume(dep: Deployment, volume: str) -> Deployment:
    broken = copy.deepcopy(dep)
    broken.compose["volumes"] = {**broken.compose["volumes"], volume: None}
    return broken


def _with_dockerfile(dep: Deployment, old: str, new: str) -> Deployment:
    broken = copy.deepcopy(dep)
    path = next(iter(broken.dockerfiles))
    assert old in broken.dockerfiles[path]
    broken.dockerfiles[path] = broken.dockerfiles[path].replace(old, new)
    return broken


BREAKAGES = {
    "unknown field": (lambda d: _with_env(d, "simulator", DRIFTLINE_TOPICS__INPUTS="x"),
                      "topics.inputs is not a setting"),
    "Feast's address is derived, not set": (
        lambda d: _with_env(d, "init", DRIFTLINE_FEAST_REDIS="redis:6379,db=0"),
        "feast_redis is not a setting"),
    "nested under a scalar": (lambda d: _with_env(d, "init", DRIFTLINE_REDIS_URL__DB="1"),
                              "redis_url has no nested settings"),
    "invalid value": (lambda d: _with_env(d, "taskmanager", DRIFTLINE_JOB__PARALLELISM="0"),
                      "invalid job.parallelism"),
    "bootstrap names no service": (
        lambda d: _with_env(d, "simulator", DRIFTLINE_BOOTSTRAP_SERVERS="broker:9092"),
        "names no service"),
    "bootstrap on the controller port": (
        lambda d: _with_env(d, "simulator", DRIFTLINE_BOOTSTRAP_SERVERS="kafka:9093"),
        "not an exposed, advertised listener"),
    "bootstrap at Redis": (
        lambda d: _with_env(d, "simulator", DRIFTLINE_BOOTSTRAP_SERVERS="redis:6379"),
        "is not a Kafka broker"),
    "redis on a wrong port": (
        lambda d: _with_env(d, "init", DRIFTLINE_REDIS_URL="redis://redis:6380/0"),
        "port 6380 is not exposed"),
    "redis url left at its default": (
        lambda d: _with_env(d, "taskmanager", DRIFTLINE_REDIS_URL=None),
        "DRIFTLINE_REDIS_URL not set"),
    "producer and job on different topics": (
        lambda d: _with_env(d, "simulator", DRIFTLINE_TOPICS__INPUT="other"),
        "disagree on topics"),
    "embedded broker in a container": (
        lambda d: _with_env(d, "init", DRIFTLINE_MANAGE_BROKER="true"),
        "MANAGE_BROKER must be false"),
    "jars not from the image": (
        lambda d: _with_env(d, "init", DRIFTLINE_KAFKA_CONNECTOR_JARS='["/opt/x/a.jar"]'),
        "kafka_connector_jars should name"),
    "more parallelism than slots": (
        lambda d: _with_env(d, "init", DRIFTLINE_JOB__PARALLELISM="4"),
        "> 2 slots"),
    "state dir not shared": (lambda d: _with(d, "taskmanager", "volumes", []),
                             "taskmanager: state_dir /var/lib/driftline is not on a named volume"),
    "state dir on another volume": (
        lambda d: _with(_with_volume(d, "other"), "simulator", "volumes",
                        ["other:/var/lib/driftline"]),
        "state_dir is on different volumes: ['driftline-state', 'other']"),
    "unpinned image": (lambda d: _with(d, "redis", "image", "redis:latest"), "not pinned"),
    "untagged image": (lambda d: _with(d, "kafka", "image", "apache/kafka"), "not pinned"),
    "missing Dockerfile": (
        lambda d: _with(d, "simulator", "build", {"context": ".", "dockerfile": "docker/Nope"}),
        "Dockerfile docker/Nope does not exist"),
    "unknown dependency": (lambda d: _with(d, "simulator", "depends_on", ["kafak"]),
                           "depends on unknown service kafak"),
    "no wait for the broker": (lambda d: _with(d, "init", "depends_on", ["jobmanager"]),
                               "does not wait for ['kafka', 'redis']"),
    "missing entry script": (
        lambda d: _with(d, "init", "command", ["flink", "run", "--python", "streams/submitt.py"]),
        "streams/submitt.py does not exist"),
    "unknown CLI command": (lambda d: _with(d, "simulator", "command", ["driftline", "produse"]),
                            "invalid choice: 'produse'"),
    "bad CLI option": (lambda d: _with(d, "simulator", "command",
                                       "sh -c 'driftline up && driftline produce --speed 5'"),
                       "unrecognized arguments: --speed 5"),
    "unknown branch": (
        lambda d: _with(d, "init", "command",
                        ["flink", "run", "--python", "streams/submit.py", "--branches", "featurs"]),
        "got 'featurs'"),
    "missing module": (lambda d: _with(d, "simulator", "command", ["python", "-m", "streams.nope"]),
                       "no module streams.nope"),
    "missing package": (lambda d: _with(d, "simulator", "command", ["python", "-m", "nope.x"]),
                        "no module nope.x"),
    "Flink version mismatch": (lambda d: _with_dockerfile(d, "flink:2.0.2-java17",
                                                          "flink:1.20.1-java17"),
                               "is not Flink"),
    "Flink on another Java": (lambda d: _with_dockerfile(d, "flink:2.0.2-java17",
                                                         "flink:2.0.2-java11"), "(java17)"),
    "unpinned build stage": (lambda d: _with_dockerfile(d, "uv:0.9.28", "uv:latest"),
                             "not pinned"),
    "COPY of a missing path": (lambda d: _with_dockerfile(d, "COPY streams streams",
                                                          "COPY stream streams"),
                               "COPY source stream does not exist"),
    "jars not fetched by streams.assets": (
        lambda d: _with_dockerfile(d, "streams.assets", "somewhere.else"),
        "does not put the jars from streams.assets"),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_a_broken_deployment_is_reported(deployment, name):
    breakage, expected = BREAKAGES[name]
    found = problems(breakage(deployment))
    assert any(expected in p for p in found), found


def test_reading_environments_leaves_the_process_environment_alone(deployment):
    before = {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}
    for service in deployment.services.values():
        settings_of(service)
    assert {k: v for k, v in os.environ.items() if k.startswith(PREFIX)} == before


def test_is_pinned():
    assert is_pinned("apache/kafka:3.9.1") and is_pinned("localhost:5000/x:1")
    assert is_pinned("redis@sha256:" + "0" * 64)
    assert not any(map(is_pinned, ["redis", "redis:latest", "localhost:5000/x"]))


def test_commands_split_shell_scripts():
    service = {"command": ["sh", "-c", "set -e; a 'b; c' && d | e || f"]}
    assert commands(service) == [["set", "-e"], ["a", "b; c"], ["d"], ["e"], ["f"]]


@pytest.mark.parametrize("line", ["FROM flink:2.0.2-java17 AS base", "FROM --platform=x flink:2"])
def test_base_images(line):
    assert base_images(f"{line}\nFROM base\nCOPY --from=base /a /b\n")[0].startswith("flink:")
    assert re.fullmatch(r"flink:[\w.-]+", base_images(line)[0])
