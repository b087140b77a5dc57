"""Auth's adapters: clients and revocations in Firestore, signing keys and the operator in Secret Manager."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable

from auth.keys import KeyVersion
from energent_shared import clients, firestore, secrets
from energent_shared.clock import utcnow
from energent_shared.revocation import CLIENTS, REVOKED_TOKENS

ROTATIONS = "key_rotations"
SUCCESSORS = "key_successors"  # per newest version: which rotation adds the next one



class ClientStore:
    """`oauth_clients/{client_id}`: top level, because the token endpoint knows only the client id."""

    MAX_TENANT_HINTS = 10_000

    def __init__(self, db=None, reads: Callable[[], firestore.SharedReads] | None = None):
        self.db = db or clients.firestore()
        self.collection = self.db.collection(CLIENTS)
        self._reads = reads or clients.per_event_loop(firestore.SharedReads)
        # client id -> tenant id, learnt from earlier reads; only says which tenant record to read beside the client's
        self._tenant_hints: dict[str, str] = {}

    async def with_tenant(self, client_id: str) -> tuple[dict | None, dict | None]:
        """The client's record and its tenant's record (None for a missing one), both read afresh, in one read
        shared with concurrent requests once this instance has seen the client: a client never changes tenant,
        so its tenant id is kept as a hint, and the client's own record still says which tenant is read."""
        reads, client_path = self._reads(), f"{CLIENTS}/{client_id}"
        hint = self._tenant_hints.get(client_id)
        found = await reads.read([client_path, firestore.tenant_path(hint)] if hint else [client_path])
        record = found[client_path]
        if record is None:
            return None, None
        tenant_path = firestore.tenant_path(record["tenant_id"])
        if record["tenant_id"] != hint:
            found = await reads.read([tenant_path])
            if len(self._tenant_hints) >= self.MAX_TENANT_HINTS:
                self._tenant_hints.clear()  # a forgotten hint costs one more read, nothing else
            self._tenant_hints[client_id] = record["tenant_id"]
        return record, found[tenant_path]

    def create(self, record: dict) -> None:
        self.collection.document(record["client_id"]).create(record)

    def _active(self, tenant_id: str):
        from google.cloud.firestore_v1.base_query import FieldFilter

        # Two equality filters: served by merging single-field indexes, no composite index needed.
        return (self.collection.where(filter=FieldFilter("tenant_id", "==", tenant_id))
                .where(filter=FieldFilter("active", "==", True)))

    def active_for_tenant(self, tenant_id: str, limit: int, after: str | None = None) -> list[dict]:
        query = self._active(tenant_id).order_by("__name__").limit(limit)
        if after:
            query = query.start_after({"__name__": self.collection.document(after)})
        return [snapshot.to_dict() for snapshot in query.stream()]

    def deactivate(self, tenant_id: str, client_id: str, reason: str) -> bool:
        """Mark one active client of `tenant_id` deleted; False if there is none."""
        ref = self.collection.document(client_id)

        def deactivate(transaction) -> bool:
            snapshot = ref.get(transaction=transaction)
            if not snapshot.exists or snapshot.get("tenant_id") != tenant_id or not snapshot.get("active"):
                return False
            transaction.update(ref, {"active": False, "deleted_at": utcnow(), "deleted_reason": reason})
            return True

        return firestore.run_transaction(deactivate, db=self.db)

    def deactivate_all(self, tenant_id: str, reason: str) -> int:
        """Mark every active client of `tenant_id` deleted, in batches; safe to repeat."""
        refs = [snapshot.reference for snapshot in self._active(tenant_id).stream()]
        now = utcnow()
        batch_size = 500
        for start in range(0, len(refs), batch_size):
            batch = self.db.batch()
            for ref in refs[start:start + batch_size]:
                batch.update(ref, {"active": False, "deleted_at": now, "deleted_reason": reason})
            batch.commit()
        return len(refs)


def tenant_record(tenant_id: str, db=None) -> dict | None:
    snapshot = firestore.tenant_doc(tenant_id, db=db).get()
    return snapshot.to_dict() if snapshot.exists else None


class RevocationStore:
    """`revoked_tokens/{jti}`; `expire_at` drives a Firestore TTL policy, so the list shrinks with the tokens."""

    def __init__(self, db=None):
        self.collection = (db or clients.firestore()).collection(REVOKED_TOKENS)

    def revoke(self, jti: str, client_id: str, expires_at: datetime.datetime) -> None:
        self.collection.document(jti).set({"client_id": client_id, "expire_at": expires_at, "revoked_at": utcnow()})


class SigningKeyStore:
    """Enabled versions of the signing-key secret. The version list is cached briefly (it changes on rotation);
    a version's payload never changes, so it is cached for the life of the instance."""

    def __init__(self, secret: str, ttl_s: float, client_factory: Callable = clients.secret_manager,
                 clock: Callable[[], float] = time.monotonic):
        self.secret = secrets.secret_name(secret)
        self._ttl_s = ttl_s
        self._client_factory = client_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[KeyVersion]] | None = None
        self._payloads: dict[str, bytes] = {}

    def versions(self) -> list[KeyVersion]:
        now = self._clock()
        with self._lock:
            if self._cached and self._cached[0] > now:
                return self._cached[1]
        client = self._client_factory()
        from google.cloud.secretmanager_v1 import SecretVersion

        listed = [v for v in client.list_secret_versions(request={"parent": self.secret})
                  if v.state == SecretVersion.State.ENABLED]
        versions = []
        for version in listed:
            if version.name not in self._payloads:
                self._payloads[version.name] = client.access_secret_version(
                    request={"name": version.name}).payload.data
            versions.append(KeyVersion(version.name, version.create_time, self._payloads[version.name]))
        with self._lock:
            self._cached = (now + self._ttl_s, versions)
        return versions

    def is_fresh(self) -> bool:
        """Whether `versions()` would answer from its cache, without calling Secret Manager."""
        with self._lock:
            return self._cached is not None and self._cached[0] > self._clock()

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def add(self, pem: bytes) -> str:
        version = self._client_factory().add_secret_version(request={"parent": self.secret, "payload": {"data": pem}})
        self.invalidate()
        return version.name

    def disable(self, version_name: str) -> None:
        self._client_factory().disable_secret_version(request={"name": version_name})
        self.invalidate()


def operator_credentials(secret: str) -> tuple[str, str]:
    """(client_id, client_secret) of the operator client, from Secret Manager (cached for the TTL)."""
    if not secret:
        raise RuntimeError("OPERATOR_CLIENT_SECRET is not set for this deployment")
    document = json.loads(secrets.access(secret))
    return document["client_id"], document["client_secret"]
