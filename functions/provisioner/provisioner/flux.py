"""Flux notification-controller events (provider `googlepubsub`): which tenant, and did its sync succeed?"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from energent_shared.events import parse_time
from energent_shared.firestore import valid_tenant_id
from provisioner.manifests import CLOUD_PREFIX, TENANT_PREFIX

SUCCEEDED = "ReconciliationSucceeded"
# Reasons Flux reports when a Kustomization cannot be applied or does not become healthy. (DependencyNotReady is
# not one: a dedicated or hybrid tenant's tenant-T waits so while its cloud objects are made, and their own
# Kustomization, cloud-tenant-T, reports whether that failed.)
FAILED = frozenset({"ReconciliationFailed", "HealthCheckFailed", "BuildFailed", "ArtifactFailed", "PruneFailed",
                    "InvalidPath", "ValidationFailed"})

MAX_MESSAGE = 2000


class Ignored(ValueError):
    """An event that says nothing about a tenant's current manifests; the reason is logged, the message acked."""


@dataclass(frozen=True)
class Outcome:
    tenant_id: str
    succeeded: bool
    message: str
    reason: str
    timestamp: datetime.datetime  # Flux's, one-second resolution


def parse(body: bytes) -> Outcome:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Ignored("not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("involvedObject"), dict):
        raise Ignored("no involvedObject")
    involved = event["involvedObject"]
    if involved.get("kind") != "Kustomization":
        raise Ignored(f"about a {involved.get('kind')!r}, not a Kustomization")
    name = involved.get("name") if isinstance(involved.get("name"), str) else ""
    cloud = name.startswith(CLOUD_PREFIX)
    prefix = CLOUD_PREFIX if cloud else TENANT_PREFIX
    tenant_id = name.removeprefix(prefix) if name.startswith(prefix) else None
    if tenant_id is None or not valid_tenant_id(tenant_id):
        raise Ignored(f"Kustomization {name[:100]!r} is not a tenant's")
    reason = event.get("reason")
    if not isinstance(reason, str):
        raise Ignored("no reason")
    if reason == SUCCEEDED:
        if cloud:
            raise Ignored("a tenant's cloud objects are ready: progress, the tenant is active when tenant-T applies")
        succeeded = True
    elif reason in FAILED or event.get("severity") == "error":
        succeeded = False
    else:
        raise Ignored(f"reason {reason!r} is progress, not an outcome")
    try:
        timestamp = parse_time(event.get("timestamp"))
    except ValueError:
        raise Ignored("timestamp is not RFC 3339") from None
    message = event.get("message")
    if not isinstance(message, str):
        message = ""
    if cloud:
        message = f"cloud objects: {message}"
    return Outcome(tenant_id, succeeded, message[:MAX_MESSAGE], reason, timestamp)


def is_stale(outcome: Outcome, manifests_changed_at: datetime.datetime) -> bool:
    """Earlier than the second in which the manifests last changed: about an older rendering."""
    return outcome.timestamp.replace(microsecond=0) < manifests_changed_at.replace(microsecond=0)
