"""Provisioner adapters: tenant records (with their transitions and an outbox of events) in Firestore, and the
tenant's files in the GitOps bucket, written compare-and-swap so two writers never clobber each other."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from energent_shared import clients, firestore
from energent_shared.clock import utcnow

GENERATION_KEY = "manifest-generation"
MAX_CAS_ATTEMPTS = 10



@dataclass
class Change:
    """What one transaction does to a tenant: field updates, an optional transition, events to publish."""

    updates: dict
    transition: tuple[str, str] | None = None  # (new status, reason)
    events: list[tuple[str, bytes]] = field(default_factory=list)  # (event id, structured JSON)
    retract_since: datetime.datetime | None = None  # unpublished events of changes from then on are withdrawn


class TenantStore:
    """`tenants/{id}` plus `transitions/` (every status change, with time and reason) and `outbox/` (events
    written in the same transaction as the change they announce, published after it commits)."""

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, tenant_id: str):
        return firestore.tenant_doc(tenant_id, db=self.db)

    def get(self, tenant_id: str) -> dict | None:
        snapshot = self.ref(tenant_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def _write_side_effects(self, writer, tenant_id: str, previous: str | None, change: Change, at) -> None:
        ref = self.ref(tenant_id)
        if change.transition:
            status, reason = change.transition
            writer.set(ref.collection("transitions").document(f"{at.strftime('%Y%m%dT%H%M%S.%f')}-{uuid.uuid4().hex[:6]}"),
                       {"from": previous, "to": status, "at": at, "reason": reason})
        for event_id, payload in change.events:
            writer.set(ref.collection("outbox").document(event_id), {"event": payload.decode(), "created_at": at})

    def create(self, record: dict, change: Change) -> bool:
        """Creates the record unless the id exists or ever existed (records are never deleted): False then."""
        from google.api_core.exceptions import AlreadyExists

        batch = self.db.batch()
        batch.create(self.ref(record["tenant_id"]), record)
        self._write_side_effects(batch, record["tenant_id"], None, change, record["created_at"])
        try:
            batch.commit()
        except AlreadyExists:
            return False
        return True

    def update(self, tenant_id: str, decide: Callable[[dict | None], Change | None]) -> tuple[dict | None, dict | None]:
        """Read-decide-write in one transaction; `decide` sees the current record and may return no change.
        Returns (before, after)."""
        ref = self.ref(tenant_id)

        def attempt(transaction):
            snapshot = ref.get(transaction=transaction)
            before = snapshot.to_dict() if snapshot.exists else None
            change = decide(before)
            if change is None or before is None:
                return before, before
            now = utcnow()
            updates = {**change.updates, "updated_at": now}
            if change.retract_since is not None:  # a rolled-back change must not be announced later
                from google.cloud.firestore_v1.base_query import FieldFilter

                for pending in ref.collection("outbox").where(
                        filter=FieldFilter("created_at", ">=", change.retract_since)).stream(transaction=transaction):
                    transaction.delete(pending.reference)
            transaction.update(ref, updates)
            self._write_side_effects(transaction, tenant_id, before.get("status"), change, now)
            return before, {**before, **updates}

        return firestore.run_transaction(attempt, db=self.db)

    def next_control_plane(self) -> int:
        """The next index of a dedicated cluster's control-plane range: counted in one transaction, never reused
        (a range given to a tenant that is never created is simply skipped)."""
        counter = self.db.collection("platform").document("dedicated_control_planes")

        def attempt(transaction):
            index = (counter.get(transaction=transaction).to_dict() or {}).get("next", 0)
            transaction.set(counter, {"next": index + 1})
            return index

        return firestore.run_transaction(attempt, db=self.db)

    def erase(self, tenant_id: str) -> None:
        """Undo a create that could not finish: the record, its transitions and its outbox."""
        ref = self.ref(tenant_id)
        batch = self.db.batch()
        for sub in ("transitions", "outbox"):
            for snapshot in ref.collection(sub).stream():
                batch.delete(snapshot.reference)
        batch.delete(ref)
        batch.commit()

    def page(self, page_size: int, after: str | None, status: str | None = None) -> list[dict]:
        """A page of tenant records in id order; only those in `status` when given (an equality on one field
        orders by id from its single-field index: no composite index, and no record outside the page is read)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.db.collection("tenants")
        if status is not None:
            query = query.where(filter=FieldFilter("status", "==", status))
        query = query.order_by("__name__").limit(page_size)
        if after:
            query = query.start_after({"__name__": self.ref(after)})
        return [snapshot.to_dict() for snapshot in query.stream()]

    def pending_events(self, tenant_id: str) -> list[tuple[object, bytes]]:
        outbox = self.ref(tenant_id).collection("outbox").order_by("created_at")
        return [(snapshot.reference, snapshot.get("event").encode()) for snapshot in outbox.stream()]

    def transitions(self, tenant_id: str) -> list[dict]:
        return [s.to_dict() for s in self.ref(tenant_id).collection("transitions").order_by("at").stream()]


class ManifestStore:
    """The tenant's files under `tenants/{id}/`, each stamped with the tenant's manifest generation.

    A write succeeds only against the object generation it read (`if_generation_match`), and never replaces a
    file stamped with a newer manifest generation, so concurrent renderings converge on the newest one.
    """

    def __init__(self, bucket: str, client_factory: Callable = clients.storage):
        self.bucket_name = bucket
        self._client_factory = client_factory

    @property
    def bucket(self):
        return self._client_factory().bucket(self.bucket_name)

    def _put(self, path: str, data: bytes, generation: int) -> None:
        from google.api_core.exceptions import PreconditionFailed

        for _ in range(MAX_CAS_ATTEMPTS):
            current = self.bucket.get_blob(path)
            if current is not None and int((current.metadata or {}).get(GENERATION_KEY, 0)) >= generation:
                return  # a newer (or this same) rendering is already there
            blob = self.bucket.blob(path)
            blob.metadata = {GENERATION_KEY: str(generation)}
            try:
                blob.upload_from_string(data, content_type="application/yaml",
                                        if_generation_match=current.generation if current else 0)
                return
            except PreconditionFailed:
                continue
        raise RuntimeError(f"gave up writing {path}: it kept changing underneath")

    def _remove(self, blob, below_generation: int | None) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        if below_generation is not None and int((blob.metadata or {}).get(GENERATION_KEY, 0)) >= below_generation:
            return
        try:
            blob.delete(if_generation_match=blob.generation)
        except (NotFound, PreconditionFailed):
            pass  # gone already, or rewritten by a newer rendering that owns it now

    def apply(self, tenant_id: str, files: dict[str, bytes], generation: int,
              previous: Collection[str] | None = None) -> None:
        """Write `files`, the kustomization last of all, then remove the tenant's files it no longer has: those
        of `previous` (the paths the last rendering wrote), or, when that is unknown, whatever a listing finds."""
        prefix = f"tenants/{tenant_id}/"
        if not all(path.startswith(prefix) for path in files):
            raise ValueError(f"every file must lie under {prefix}")
        for path in sorted(files, key=lambda p: (p.endswith("kustomization.yaml"), "/sync/" in p, p)):
            self._put(path, files[path], generation)
        if previous is None:
            stale = [blob for blob in self.bucket.list_blobs(prefix=prefix) if blob.name not in files]
        else:
            stale = [blob for path in sorted(set(previous) - set(files)) if (blob := self.bucket.get_blob(path))]
        for blob in stale:
            self._remove(blob, generation)

    def remove_all(self, tenant_id: str) -> None:
        for blob in self.bucket.list_blobs(prefix=f"tenants/{tenant_id}/"):
            self._remove(blob, None)

    def read(self, tenant_id: str) -> dict[str, bytes]:
        return {blob.name: blob.download_as_bytes() for blob in self.bucket.list_blobs(prefix=f"tenants/{tenant_id}/")}
