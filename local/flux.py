"""A development stand-in for the cluster side of the GitOps loop. Not Flux, and not for production.

It does locally what Flux does in the cloud: watches the manifest bucket, builds each tenant's kustomization,
validates every object it would apply (Kubernetes 1.30 schemas, strict, and the Flux/Config Connector/External
Secrets API shapes), and publishes the event Flux's notification-controller would (provider `googlepubsub`) to
`provisioning-events`: `ReconciliationSucceeded`, or `ReconciliationFailed` with the reason in the message.
`LOCAL_FLUX=off make dev` turns it off, so a client can play Flux itself.

It keeps what it applied to the platform's cluster, and refuses, as Config Connector's webhook does, a change to a
field its CRD marks immutable (local.schemas.IMMUTABLE) on an object already there.

It also plays what a Kustomization with `wait: true` waits for on the cluster side of a hybrid tenant: External
Secrets Operator syncing each ExternalSecret from Secret Manager (the local stand-in) into its Secret, and Config
Connector finding each VPN tunnel's key in a Secret of its build. A key that is not in Secret Manager, or a tunnel
naming a Secret or key that nothing makes, fails the reconcile. It checks that each key's version exists and is
enabled, and never reads a key itself.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from local.schemas import InvalidManifest, immutable_changes, validate

GCP_CLUSTER = "projects/[^/]+/locations/[^/]+/clusters/[^/]+"
# (store name, secret id, version) -> None if that version exists and is enabled, else why not.
SecretLookup = Callable[[str, str, str], str | None]


def flux_event(name: str, succeeded: bool, message: str, revision: str, sequence: int) -> dict:
    """The event notification-controller publishes about Kustomization `name` (tenant-T names tenant T)."""
    return {
        "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": name,
                           "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                           "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "resourceVersion": str(sequence)},
        "severity": "info" if succeeded else "error",
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "message": message,
        "reason": "ReconciliationSucceeded" if succeeded else "ReconciliationFailed",
        "metadata": {"revision": f"sha256:{revision}"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "local-flux-stand-in",
    }


def documents(content: bytes) -> list[dict]:
    """The objects of one file: a YAML stream or JSON document, `List`s expanded."""
    found = []
    for document in yaml.safe_load_all(content):
        if isinstance(document, dict) and document.get("kind") == "List" and document.get("apiVersion") == "v1":
            found.extend(document.get("items") or [])
        elif document is not None:
            found.append(document)
    return found


def build(artifact: dict[str, bytes], path: str) -> list[dict]:
    """What kustomize builds from `path` of a source artifact {key: content}: the objects of the resources its
    kustomization.yaml lists (files, or directories with a kustomization of their own). Raises InvalidManifest."""
    path = path.removeprefix("./").rstrip("/")
    root = artifact.get(f"{path}/kustomization.yaml")
    if root is None:
        raise InvalidManifest(f"kustomization path not found: {path}")
    kustomization = yaml.safe_load(root)
    validate(kustomization)
    objects = []
    for resource in kustomization.get("resources") or []:
        key = f"{path}/{resource}"
        if f"{key}/kustomization.yaml" in artifact:
            objects.extend(build(artifact, key))
        elif key in artifact:
            objects.extend(documents(artifact[key]))
        else:
            raise InvalidManifest(f"{resource}: no such file in {path}")
    return objects


def source_revision(listing: dict[str, str], bucket: dict) -> str:
    """source-controller's revision of a Bucket: the digest of the keys and etags it lists under its prefix."""
    prefix = (bucket.get("spec") or {}).get("prefix", "")
    listed = sorted((key, etag) for key, etag in listing.items() if key.startswith(prefix))
    return hashlib.sha256(json.dumps(listed).encode()).hexdigest()


def synced_secrets(objects: list[dict], lookup: SecretLookup | None) -> tuple[dict[tuple[str, str], set[str]], str]:
    """What External Secrets Operator makes of the build's ExternalSecrets: {(namespace, Secret name): its keys}, or
    why one cannot sync (a store without a lookup, a key or version Secret Manager does not have)."""
    secrets: dict[tuple[str, str], set[str]] = {}
    for document in objects:
        if document.get("kind") != "ExternalSecret":
            continue
        metadata, spec = document["metadata"], document["spec"]
        store = (spec.get("secretStoreRef") or {}).get("name", "")
        for item in spec.get("data") or []:
            remote = item["remoteRef"]
            problem = (f"no SecretStore {store!r}" if lookup is None else
                       lookup(store, remote["key"], remote.get("version", "latest")))
            if problem:
                where = f"{metadata.get('namespace')}/{metadata['name']}"
                return {}, f"ExternalSecret/{where}: SecretSyncedError: {problem}"
        target = (spec.get("target") or {}).get("name") or metadata["name"]
        secrets[(metadata.get("namespace", ""), target)] = {item["secretKey"] for item in spec.get("data") or []}
    return secrets, ""


def keys_found(objects: list[dict], secrets: dict[tuple[str, str], set[str]]) -> str:
    """Why a VPN tunnel of the build would not become ready: its key names a Secret or key nothing makes."""
    for document in objects:
        if document.get("kind") != "ComputeVPNTunnel":
            continue
        reference = ((document["spec"].get("sharedSecret") or {}).get("valueFrom") or {}).get("secretKeyRef")
        if reference is None:
            continue
        namespace = document["metadata"].get("namespace", "")
        if reference["key"] not in secrets.get((namespace, reference["name"]), set()):
            return (f"ComputeVPNTunnel/{namespace}/{document['metadata']['name']}: DependencyNotFound: key "
                    f"{reference['key']!r} of Secret {reference['name']!r} not found")
    return ""


ObjectKey = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)


def object_key(document: dict) -> ObjectKey:
    metadata = document.get("metadata") or {}
    return document["apiVersion"], document["kind"], metadata.get("namespace", ""), metadata.get("name", "")


@dataclass
class Cluster:
    """What the Kustomizations applied to the platform's cluster: each object as last applied, and which
    Kustomization owns it (pruned with it)."""

    live: dict[ObjectKey, dict] = field(default_factory=dict)
    owned: dict[str, set[ObjectKey]] = field(default_factory=dict)

    def refused(self, objects: list[dict]) -> str:
        """Why the API server would refuse applying `objects`: a change Config Connector's webhook denies."""
        for document in objects:
            live = self.live.get(object_key(document))
            changed = immutable_changes(live, document) if live is not None else []
            if changed:
                return (f"{document['kind']}/{document['metadata'].get('namespace', '')}/"
                        f"{document['metadata']['name']} dry-run failed: admission webhook "
                        f"\"deny-immutable-field-updates.cnrm.cloud.google.com\" denied the request: the following "
                        f"fields are immutable: [{', '.join(changed)}]")
        return ""

    def apply(self, kustomization: str, objects: list[dict]) -> None:
        """Apply `objects` and prune what `kustomization` applied before and no longer builds."""
        keys = {object_key(document) for document in objects}
        for gone in self.owned.get(kustomization, set()) - keys:
            self.live.pop(gone, None)
        for document in objects:
            self.live[object_key(document)] = document
        self.owned[kustomization] = keys


def reconcile(kustomization: dict, artifact: dict[str, bytes], config_maps: dict[str, dict],
              secret_lookup: SecretLookup | None = None, cluster: Cluster | None = None) -> tuple[bool, str]:
    """The outcome of applying one Flux Kustomization: every object it builds validated, no immutable field of an
    object on the cluster changed, its target cluster known, its ExternalSecrets synced and its tunnels' keys
    found; on success its objects are on `cluster` (remote clusters' objects are not tracked)."""
    try:
        objects = build(artifact, kustomization["spec"].get("path", "./"))
        for document in objects:
            validate(document)
    except (yaml.YAMLError, InvalidManifest) as error:
        return False, f"kustomization build failed: {error}"
    local = cluster is not None and not kustomization["spec"].get("kubeConfig")
    refused = cluster.refused(objects) if cluster is not None and local else ""
    if refused:
        return False, refused
    secrets, problem = synced_secrets(objects, secret_lookup)
    problem = problem or keys_found(objects, secrets)
    if problem:
        return False, f"health check failed: {problem}"
    where = ""
    remote = kustomization["spec"].get("kubeConfig")
    if remote:
        access = config_maps.get((remote.get("configMapRef") or {}).get("name", ""))
        data = (access or {}).get("data") or {}
        if data.get("provider") != "gcp" or not re.fullmatch(GCP_CLUSTER, data.get("cluster", "")):
            return False, "kubeconfig failed: the ConfigMap naming the target GKE cluster is missing or incomplete"
        where = f" on {data['cluster']}"
    applied = []
    for document in objects:
        metadata = document.get("metadata", {})
        namespace = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
        applied.append(f"{document['kind']}/{namespace}{metadata.get('name')} configured{where}")
    applied += [f"Secret/{namespace}/{name} synced" for namespace, name in sorted(secrets)]
    if cluster is not None and local:
        cluster.apply(kustomization["metadata"]["name"], objects)
    return True, "\n".join(applied) or "no objects: everything pruned"


def platform_store() -> str:
    """The name of the SecretStore the platform's cluster has (infra/external-secrets/secret-store.yaml)."""
    store = yaml.safe_load((Path(__file__).resolve().parent.parent / "infra" / "external-secrets" /
                            "secret-store.yaml").read_text())
    return store["metadata"]["name"]


def secret_manager_lookup(host: str, stores: dict[str, str]) -> SecretLookup:
    """Looks keys up in the Secret Manager stand-in at `host`, through the stores {name: project} the platform
    has (infra/external-secrets); only a version's state is read, never its payload."""
    from energent_shared.clients import secret_manager_at

    client = secret_manager_at(host)

    def lookup(store: str, key: str, version: str) -> str | None:
        from google.api_core.exceptions import GoogleAPICallError

        if store not in stores:
            return f"no SecretStore {store!r} in energent-infra"
        name = f"projects/{stores[store]}/secrets/{key}/versions/{version}"
        try:
            found = client.get_secret_version(request={"name": name})
        except GoogleAPICallError as error:
            return f"could not get secret data from provider: {key} version {version}: {error.message}"
        return None if found.state.name == "ENABLED" else f"{key} version {version} is {found.state.name}"

    return lookup


class FluxStandIn:
    """Plays source-controller and kustomize-controller over the tenants' files: the Flux objects come from every
    tenants/*/sync/ file (as the platform's `tenants` Kustomization applies them); each Bucket source has a
    revision; a Kustomization reconciles, and reports one event, when its source's revision or its own spec
    changed and the Kustomizations it depends on are ready."""

    def __init__(self, bucket: str, topic: str, project: str, poll_s: float = 0.5,
                 secret_lookup: SecretLookup | None = None, retry_s: float = 5.0):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import pubsub_v1, storage

        self.secret_lookup = secret_lookup
        self.retry_s = retry_s
        self.attempted: dict[str, float] = {}  # Kustomization -> when it last reconciled (monotonic)
        self.bucket = storage.Client(project=project, credentials=AnonymousCredentials()).bucket(bucket)
        self.publisher = pubsub_v1.PublisherClient()
        self.topic = self.publisher.topic_path(project, topic)
        self.poll_s = poll_s
        self.applied: dict[str, tuple[str, str]] = {}  # Kustomization -> (source revision, spec digest) applied
        self.ready: dict[str, tuple[bool, str]] = {}  # Kustomization -> (succeeded, at source revision)
        self.contents: dict[tuple[str, str], bytes] = {}  # (key, etag) -> content, as source-controller caches
        self.sequence = 0
        self.published = 0
        self.cluster = Cluster()  # the platform cluster's objects, as Config Connector's webhook sees them

    def _content(self, blob) -> bytes:
        key = (blob.name, blob.etag)
        if key not in self.contents:
            self.contents[key] = blob.download_as_bytes()
        return self.contents[key]

    def poll(self) -> None:
        blobs = {blob.name: blob for blob in self.bucket.list_blobs(prefix="tenants/")}
        listing = {name: blob.etag for name, blob in blobs.items()}
        flux_objects = []
        for name, blob in blobs.items():
            if name.split("/")[2:3] == ["sync"]:
                try:
                    flux_objects.extend(documents(self._content(blob)))
                except yaml.YAMLError as error:
                    print(f"{name}: not applied: {error}", file=sys.stderr, flush=True)
        kinds: dict[str, dict[str, dict]] = {"Bucket": {}, "Kustomization": {}, "ConfigMap": {}}
        for document in flux_objects:
            if isinstance(document, dict) and document.get("kind") in kinds:
                kinds[document["kind"]][(document.get("metadata") or {}).get("name", "")] = document
        for gone in set(self.applied) - set(kinds["Kustomization"]):
            del self.applied[gone]
            self.ready.pop(gone, None)
            self.cluster.apply(gone, [])  # a Kustomization deleted prunes what it applied (prune: true)
        revisions = {name: source_revision(listing, bucket) for name, bucket in kinds["Bucket"].items()}
        sources = {name: (k.get("spec") or {}).get("sourceRef") for name, k in kinds["Kustomization"].items()}
        for name, kustomization in sorted(kinds["Kustomization"].items()):
            self._consider(name, kustomization, kinds, blobs, revisions, sources)

    def _consider(self, name: str, kustomization: dict, kinds: dict, blobs: dict, revisions: dict[str, str],
                  sources: dict[str, dict]) -> None:
        try:
            validate(kustomization)
        except InvalidManifest as error:
            print(f"{name}: not applied: {error}", file=sys.stderr, flush=True)
            return
        spec = kustomization["spec"]
        bucket = kinds["Bucket"].get(spec["sourceRef"]["name"]) if spec["sourceRef"]["kind"] == "Bucket" else None
        if bucket is None:
            return  # Flux waits for the source to exist
        revision = revisions[spec["sourceRef"]["name"]]
        applying = (revision, hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest())
        failed = not self.ready.get(name, (True, None))[0]
        if self.applied.get(name) == applying and not (
                failed and time.monotonic() - self.attempted.get(name, 0.0) >= self.retry_s):
            return
        # As kustomize-controller: a dependency on the same source must be ready at this very revision.
        for dependency in spec.get("dependsOn") or []:
            ready, at = self.ready.get(dependency["name"], (False, None))
            if not ready or (sources.get(dependency["name"]) == spec["sourceRef"] and at != revision):
                return  # dependency not ready: retried on a later poll
        prefix = bucket["spec"].get("prefix", "")
        artifact = {key: self._content(blob) for key, blob in blobs.items() if key.startswith(prefix)}
        succeeded, message = reconcile(kustomization, artifact, kinds["ConfigMap"], self.secret_lookup, self.cluster)
        self.applied[name], self.ready[name] = applying, (succeeded, revision)
        self.attempted[name] = time.monotonic()
        self.sequence += 1
        event = flux_event(name, succeeded, message, revision=revision, sequence=self.sequence)
        self.publisher.publish(self.topic, json.dumps(event).encode()).result(30)
        self.published += 1
        print(f"{name}: {event['reason']}", flush=True)

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
    parser.add_argument("--secrets-project", default=os.environ.get("TENANTS_PROJECT")
                        or os.environ.get("GOOGLE_CLOUD_PROJECT"),
                        help="where the SecretStore hybrid-psks reads (the tenants' project)")
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    host = os.environ.get("SECRET_MANAGER_EMULATOR_HOST")
    lookup = secret_manager_lookup(host, {platform_store(): args.secrets_project}) if host else None
    FluxStandIn(args.bucket, args.topic, os.environ["GOOGLE_CLOUD_PROJECT"], secret_lookup=lookup).run(stop)


if __name__ == "__main__":
    main()
