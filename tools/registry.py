"""Reads and checks `functions/registry.yaml`, the one list of deployments."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "functions" / "registry.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
_ENTRY_POINT = re.compile(r"^[a-z_][a-z0-9_]*$")


class RegistryError(ValueError):
    pass


@dataclass(frozen=True)
class Deployment:
    name: str
    source: str  # folder relative to the repo root, holding main.py and requirements.txt
    entry_point: str
    topic: str | None = None  # None: an HTTP deployment
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # registry secret keys it may read; each is set as env KEY=projects/P/secrets/ID
    buckets: tuple[str, ...] = ()  # registry bucket keys it may use; each is set as env KEY=<bucket name>
    memory: str = "256Mi"
    timeout_s: int = 60
    min_instances: int = 0
    max_instances: int = 20
    # Requests one instance serves at once: functions-framework's 8 threads; > 1 needs a whole vCPU.
    concurrency: int = 8
    firestore: bool = True  # whether its account may read and write Firestore (roles/datastore.user)

    @property
    def is_http(self) -> bool:
        return self.topic is None

    @property
    def signature_type(self) -> str:
        return "http" if self.is_http else "cloudevent"

    def cloud_name(self, environment: str) -> str:
        return f"energent-{self.name}-{environment}"


@dataclass(frozen=True)
class Schedule:
    """A Cloud Scheduler job publishing a CloudEvent of `type` (data `{}`) to `topic` on a cron `schedule` (UTC)."""

    name: str
    schedule: str
    topic: str
    type: str

    def cloud_name(self, environment: str) -> str:
        return f"energent-{self.name}-{environment}"

    def event(self) -> dict:
        """The message body as Terraform's job publishes it (attribute content-type application/cloudevents+json)."""
        return {"specversion": "1.0", "type": self.type, "id": self.name, "datacontenttype": "application/json",
                "source": f"//cloudscheduler.googleapis.com/energent-{self.name}", "data": {}}


@dataclass(frozen=True)
class Registry:
    topics: tuple[str, ...]
    buckets: dict[str, str]
    secrets: dict[str, str]
    deployments: tuple[Deployment, ...]
    schedules: tuple[Schedule, ...] = ()

    def deployment(self, name: str) -> Deployment:
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        raise KeyError(name)


def _mapping(value, where: str) -> dict[str, str]:
    value = value or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (str, int)) for k, v in
                                              value.items()):
        raise RegistryError(f"{where} must be a map of strings")
    return {k: str(v) for k, v in value.items()}


def parse(document: dict, root: Path = ROOT) -> Registry:
    if not isinstance(document, dict):
        raise RegistryError("the registry must be a YAML mapping")
    topics = tuple(document.get("topics") or ())
    for topic in topics:
        if not isinstance(topic, str) or not re.fullmatch(r"[a-z][a-z0-9-]{2,254}", topic):
            raise RegistryError(f"invalid topic name {topic!r}")
    buckets = _mapping(document.get("buckets"), "buckets")
    secrets = _mapping(document.get("secrets"), "secrets")
    deployments = []
    for index, entry in enumerate(document.get("deployments") or ()):
        where = f"deployments[{index}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where} must be a mapping")
        unknown = set(entry) - {"name", "source", "entry_point", "topic", "env", "secrets", "memory", "timeout_s",
                                "min_instances", "max_instances", "buckets", "concurrency", "firestore"}
        if unknown:
            raise RegistryError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(f"{where}.name {name!r} must match {_NAME.pattern}")
        where = f"deployment {name}"
        source = entry.get("source")
        if not isinstance(source, str) or not (root / source / "main.py").is_file() or not (
                root / source / "requirements.txt").is_file():
            raise RegistryError(f"{where}: source {source!r} needs main.py and requirements.txt")
        entry_point = entry.get("entry_point")
        if not isinstance(entry_point, str) or not _ENTRY_POINT.match(entry_point):
            raise RegistryError(f"{where}: entry_point {entry_point!r} is not a Python function name")
        topic = entry.get("topic")
        if topic is not None and topic not in topics:
            raise RegistryError(f"{where}: topic {topic!r} is not in the registry's topics")
        deployment_secrets = tuple(entry.get("secrets") or ())
        for key in deployment_secrets:
            if key not in secrets:
                raise RegistryError(f"{where}: secret {key!r} is not in the registry's secrets")
        uses_firestore = entry.get("firestore", True)
        if not isinstance(uses_firestore, bool):
            raise RegistryError(f"{where}: firestore must be true or false")
        deployment_buckets = tuple(entry.get("buckets") or ())
        for key in deployment_buckets:
            if key not in buckets:
                raise RegistryError(f"{where}: bucket {key!r} is not in the registry's buckets")
        deployments.append(Deployment(
            name=name, source=source, entry_point=entry_point, topic=topic,
            env=_mapping(entry.get("env"), f"{where}.env"), secrets=deployment_secrets, buckets=deployment_buckets,
            memory=str(entry.get("memory", "256Mi")), timeout_s=int(entry.get("timeout_s", 60)),
            min_instances=int(entry.get("min_instances", 0)), max_instances=int(entry.get("max_instances", 20)),
            concurrency=int(entry.get("concurrency", 8)), firestore=uses_firestore))
    names = [d.name for d in deployments]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RegistryError(f"duplicate deployment names: {', '.join(sorted(duplicates))}")
    return Registry(topics, buckets, secrets, tuple(deployments), _schedules(document.get("schedules"), topics))


_CRON_FIELD = re.compile(r"^(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?(,[0-9]{1,2}(-[0-9]{1,2})?)*$")


def _schedules(entries, topics: tuple[str, ...]) -> tuple[Schedule, ...]:
    found = []
    for index, entry in enumerate(entries or ()):
        if not isinstance(entry, dict) or set(entry) != {"name", "schedule", "topic", "type"}:
            raise RegistryError(f"schedules[{index}] must have exactly name, schedule, topic and type")
        name, cron, topic, type_ = (entry[k] for k in ("name", "schedule", "topic", "type"))
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(f"schedules[{index}].name {name!r} must match {_NAME.pattern}")
        fields = cron.split() if isinstance(cron, str) else []
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise RegistryError(f"schedule {name}: {cron!r} is not a five-field cron expression")
        if topic not in topics:
            raise RegistryError(f"schedule {name}: topic {topic!r} is not in the registry's topics")
        if not isinstance(type_, str) or not re.fullmatch(r"[a-z0-9.]+\.v[0-9]+", type_):
            raise RegistryError(f"schedule {name}: type {type_!r} is not a CloudEvent type such as a.b.c.v1")
        found.append(Schedule(name, cron, topic, type_))
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise RegistryError("duplicate schedule names")
    return tuple(found)


@cache
def load(path: Path = REGISTRY) -> Registry:
    return parse(yaml.safe_load(path.read_text()), path.parent.parent)
