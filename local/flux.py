"""A development stand-in for the cluster side of the GitOps loop. Not Flux, and not for production.

It does locally what Flux does in the cloud: watches the manifest bucket, builds each tenant's kustomization,
validates every object it would apply (Kubernetes 1.30 schemas, strict, and the Flux/Config Connector API
shapes), and publishes the event Flux's notification-controller would (provider `googlepubsub`) to
`provisioning-events`: `ReconciliationSucceeded`, or `ReconciliationFailed` with the reason in the message.
`LOCAL_FLUX=off make dev` turns it off, so a client can play Flux itself.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import signal
import sys
import threading
import uuid

import yaml

from local.schemas import InvalidManifest, validate

GENERATION_KEY = "manifest-generation"


def flux_event(tenant_id: str, succeeded: bool, message: str, revision: str, sequence: int) -> dict:
    return {
        "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": f"tenant-{tenant_id}",
                           "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tenant-{tenant_id}")),
                           "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "resourceVersion": str(sequence)},
        "severity": "info" if succeeded else "error",
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "message": message,
        "reason": "ReconciliationSucceeded" if succeeded else "ReconciliationFailed",
        "metadata": {"revision": f"sha256:{revision}"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "local-flux-stand-in",
    }


def reconcile(files: dict[str, tuple[bytes, str]], tenant_id: str) -> tuple[bool, str] | None:
    """Outcome of applying the tenant's files {path: (content, generation)}; None while a write is under way."""
    base = f"tenants/{tenant_id}/manifests/"
    root = files.get(base + "kustomization.yaml")
    sync, source = (f"tenants/{tenant_id}/sync/{name}" for name in ("flux-kustomization.yaml", "flux-source.yaml"))
    if root is None or sync not in files or source not in files:
        return None
    content, generation = root
    try:
        kustomization = yaml.safe_load(content)
        validate(kustomization)
        flux_kustomization, bucket = yaml.safe_load(files[sync][0]), yaml.safe_load(files[source][0])
        validate(flux_kustomization)
        validate(bucket)
    except (yaml.YAMLError, InvalidManifest) as error:
        return False, f"kustomization build failed: {error}"
    # Flux would find nothing to build if the Kustomization read another source, or its source another prefix.
    if flux_kustomization["spec"]["sourceRef"] != {"kind": "Bucket", "name": bucket["metadata"]["name"]}:
        return False, "kustomization build failed: the Kustomization does not read the tenant's own Bucket source"
    if bucket["spec"].get("prefix") != base:
        return False, f"source failed: the tenant's Bucket source lists {bucket['spec'].get('prefix')!r}, not {base!r}"
    applied = []
    for resource in kustomization.get("resources") or []:
        entry = files.get(base + resource)
        if entry is None or entry[1] != generation:
            return None  # the rendering is still being written
        try:
            document = yaml.safe_load(entry[0])
            validate(document)
        except (yaml.YAMLError, InvalidManifest) as error:
            return False, f"{resource} dry-run failed: {error}"
        metadata = document.get("metadata", {})
        where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
        applied.append(f"{document['kind']}/{where}{metadata.get('name')} configured")
    return True, "\n".join(applied) or "no objects: everything pruned"


class FluxStandIn:
    def __init__(self, bucket: str, topic: str, project: str, poll_s: float = 0.5):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import pubsub_v1, storage

        self.bucket = storage.Client(project=project, credentials=AnonymousCredentials()).bucket(bucket)
        self.publisher = pubsub_v1.PublisherClient()
        self.topic = self.publisher.topic_path(project, topic)
        self.poll_s = poll_s
        self.seen: dict[str, str] = {}
        self.sequence = 0

    def poll(self) -> None:
        by_tenant: dict[str, list] = {}
        for blob in self.bucket.list_blobs(prefix="tenants/"):
            by_tenant.setdefault(blob.name.split("/")[1], []).append(blob)
        for tenant_id in set(self.seen) - set(by_tenant):
            del self.seen[tenant_id]
        for tenant_id, blobs in by_tenant.items():
            revision = hashlib.sha256(json.dumps(sorted((b.name, b.generation) for b in blobs)).encode()).hexdigest()
            if self.seen.get(tenant_id) == revision:
                continue
            files = {b.name: (b.download_as_bytes(), (b.metadata or {}).get(GENERATION_KEY, "")) for b in blobs}
            outcome = reconcile(files, tenant_id)
            if outcome is None:
                continue
            self.seen[tenant_id] = revision
            self.sequence += 1
            event = flux_event(tenant_id, *outcome, revision=revision, sequence=self.sequence)
            self.publisher.publish(self.topic, json.dumps(event).encode()).result(30)
            print(f"tenant-{tenant_id}: {event['reason']}", flush=True)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as error:  # keep watching: the bucket or topic may come back
                print(f"poll failed: {error!r}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Flux stand-in (development only)")
    parser.add_argument("--bucket", default=os.environ.get("MANIFEST_BUCKET"))
    parser.add_argument("--topic", default="provisioning-events")
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    FluxStandIn(args.bucket, args.topic, os.environ["GOOGLE_CLOUD_PROJECT"]).run(stop)


if __name__ == "__main__":
    main()
