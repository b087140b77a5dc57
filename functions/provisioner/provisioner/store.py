"""Provisioner adapters: tenant records (with their transitions and an outbox of events) in Firestore, and the
tenant's files in the GitOps bucket, written compare-and-swap so two writers never clobber each other."""

from __future__ import annotations

import base64
import datetime
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from energent_shared import clients, firestore
from energent_shared.clock import utcnow
from provisioner.manifests import OBJECTS

GENERATION_KEY = "manifest-generation"
STATE_FILE = f"/{OBJECTS}"
MAX_CAS_ATTEMPTS = 10


def _md5(data: bytes) -> str:
    """The form Cloud Storage reports an object's MD5 in."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _content_type(path: str) -> str:
    return "application/json" if path.endswith(".json") else "application/yaml"


SiteClaim = Callable[[dict[str, list[str]]], dict[str, list[str]]]


@dataclass
class Change:
    """What one transaction does to a tenant: field updates, an optional transition, events to publish."""

    updates: dict
    transition: tuple[str, str] | None = None  # (new status, reason)
    events: list[tuple[str, bytes]] = field(default_factory=list)  # (event id, structured JSON)
    retract_since: datetime.datetime | None = None  # unpublished events of changes from then on are withdrawn
    # The registry of live hybrid sites after this change (sites.claim: the tenant takes its ranges, or gives them
    # up), from the registry as it stands; raises Conflict when the ranges are another live tenant's.
    sites: SiteClaim | None = None


class TenantStore:
    """`tenants/{id}` plus `transitions/` (every status change, with time and reason) and `outbox/` (events
    written in the same transaction as the change they announce, published after it commits).

    `platform/hybrid_sites` is the registry of every live hybrid tenant's ranges, `{sites: {tenant id: [cidr]}}`,
    changed only in the transaction that changes the tenant (provisioner.sites says why one document);
    `platform/hybrid_bgp_ranges` counts the link-local /30s handed out."""

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    @property
    def sites_ref(self):
        return self.db.collection("platform").document("hybrid_sites")

    def live_sites(self) -> dict[str, list[str]]:
        return (self.sites_ref.get().to_dict() or {}).get("sites", {})

    def _claim(self, transaction, claim: SiteClaim) -> None:
        """Read the registry in `transaction` and write it as `claim` leaves it (before any other write of the
        transaction: Firestore reads come first)."""
        live = (self.sites_ref.get(transaction=transaction).to_dict() or {}).get("sites", {})
        transaction.set(self.sites_ref, {"sites": claim(live)})

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
        """Creates the record unless the id exists or ever existed (records are never deleted): False then. A hybrid
        tenant's site is claimed in the same transaction."""
        from google.api_core.exceptions import AlreadyExists

        if change.sites is not None:
            return self._create_claiming(record, change)
        batch = self.db.batch()
        batch.create(self.ref(record["tenant_id"]), record)
        firestore.put_directory_entry(batch, record["tenant_id"], record.get("deleted_at"), db=self.db)
        self._write_side_effects(batch, record["tenant_id"], None, change, record["created_at"])
        try:
            batch.commit()
        except AlreadyExists:
            return False
        return True

    def _create_claiming(self, record: dict, change: Change) -> bool:
        ref = self.ref(record["tenant_id"])
        claim = change.sites
        assert claim is not None

        def attempt(transaction):
            if ref.get(transaction=transaction).exists:
                return False
            self._claim(transaction, claim)
            transaction.create(ref, record)
            firestore.put_directory_entry(transaction, record["tenant_id"], record.get("deleted_at"), db=self.db)
            self._write_side_effects(transaction, record["tenant_id"], None, change, record["created_at"])
            return True

        return firestore.run_transaction(attempt, db=self.db)

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
            if change.sites is not None:
                self._claim(transaction, change.sites)
            if change.retract_since is not None:  # a rolled-back change must not be announced later
                from google.cloud.firestore_v1.base_query import FieldFilter

                for pending in ref.collection("outbox").where(
                        filter=FieldFilter("created_at", ">=", change.retract_since)).stream(transaction=transaction):
                    transaction.delete(pending.reference)
            transaction.update(ref, updates)
            if "deleted_at" in updates:  # the directory says what the record says, as of the same commit
                firestore.put_directory_entry(transaction, tenant_id, updates["deleted_at"], db=self.db)
            self._write_side_effects(transaction, tenant_id, before.get("status"), change, now)
            return before, {**before, **updates}

        return firestore.run_transaction(attempt, db=self.db)

    def backfill_directory(self, tenant_ids: list[str]) -> None:
        """Writes the directory entries of these tenants that are missing or differ from their records (tenants created
        before there was a directory, or changed by a release without it), from the records read in the transaction
        that writes the entries: a change racing it makes it read again. Entries that agree cost a read, no write."""
        from google.cloud.firestore_v1.field_path import FieldPath

        if not tenant_ids:
            return
        shards = {firestore.directory_shard(tenant_id): firestore.directory_doc(tenant_id, db=self.db)
                  for tenant_id in tenant_ids}
        entries: dict = {}
        for shard in self.db.get_all(list(shards.values()), field_paths=[  # only these tenants' entries
                FieldPath("tenants", tenant_id).to_api_repr() for tenant_id in tenant_ids]):
            entries.update((shard.to_dict() or {}).get("tenants", {}) if shard.exists else {})
        refs = [self.ref(tenant_id) for tenant_id in tenant_ids]
        missing = object()

        def attempt(transaction):
            records = {snapshot.id: (snapshot.to_dict() or {}).get("deleted_at")
                       for snapshot in transaction.get_all(refs) if snapshot.exists}
            firestore.put_directory_entries(transaction, {
                tenant_id: deleted_at for tenant_id, deleted_at in records.items()
                if entries.get(tenant_id, missing) != deleted_at}, db=self.db)

        firestore.run_transaction(attempt, db=self.db)

    def next_control_plane(self) -> int:
        """The next index of a dedicated cluster's control-plane range: counted in one transaction, never reused
        (a range given to a tenant that is never created is simply skipped)."""
        counter = self.db.collection("platform").document("dedicated_control_planes")

        def attempt(transaction):
            index = (counter.get(transaction=transaction).to_dict() or {}).get("next", 0)
            transaction.set(counter, {"next": index + 1})
            return index

        return firestore.run_transaction(attempt, db=self.db)

    def next_bgp_ranges(self, per_site: int) -> int:
        """The index of the first of a new site's `per_site` link-local /30s: counted in one transaction, never
        handed out again (a tenant that is never created, or is deleted, keeps its /30s retired)."""
        counter = self.db.collection("platform").document("hybrid_bgp_ranges")

        def attempt(transaction):
            index = (counter.get(transaction=transaction).to_dict() or {}).get("next", 0)
            transaction.set(counter, {"next": index + per_site})
            return index

        return firestore.run_transaction(attempt, db=self.db)

    def release_site(self, tenant_id: str) -> None:
        """Take an undone tenant's ranges out of the registry."""
        firestore.run_transaction(lambda transaction: self._claim(transaction, lambda live: {
            tenant: ranges for tenant, ranges in live.items() if tenant != tenant_id}), db=self.db)

    def erase(self, tenant_id: str) -> None:
        """Undo a create that could not finish: the record, its transitions and its outbox."""
        ref = self.ref(tenant_id)
        batch = self.db.batch()
        for sub in ("transitions", "outbox"):
            for snapshot in ref.collection(sub).stream():
                batch.delete(snapshot.reference)
        batch.delete(ref)
        firestore.drop_directory_entry(batch, tenant_id, db=self.db)
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

    def ids(self, after: str, limit: int, through: str | None = None) -> list[str]:
        """The next `limit` tenant ids after `after` (up to `through` included, if given), in id order, reading no
        record (a key-only query)."""
        query = self.db.collection("tenants").select([]).order_by("__name__").limit(limit)
        if after:
            query = query.start_after({"__name__": self.ref(after)})
        if through:
            query = query.end_at({"__name__": self.ref(through)})
        return [snapshot.id for snapshot in query.stream()]

    def pending_events(self, tenant_id: str) -> list[tuple[Any, bytes]]:
        outbox = self.ref(tenant_id).collection("outbox").order_by("created_at")
        return [(snapshot.reference, snapshot.get("event").encode()) for snapshot in outbox.stream()]

    def transitions(self, tenant_id: str) -> list[dict]:
        return [s.to_dict() for s in self.ref(tenant_id).collection("transitions").order_by("at").stream()]


class RerenderRuns:
    """`rerenders/{run_id}`: a re-render of every tenant, and `chunks/{n}`, one per chunk of tenant ids.

    A chunk's document is created by the step before it (for chunk 0, by the start) with the id the chunk starts
    after, before that step is published: a step is carried out only if its document says so, so a stray or
    forged step does nothing. The document records whether the step was published (a failed publish is abandoned
    and published again by the next delivery; one lost in a crash, after `REPUBLISH_AFTER`) and, once, the
    chunk's tally. Totals are summed from the
    chunks when asked, so concurrent chunks never contend for one document.
    """

    REPUBLISH_AFTER = datetime.timedelta(seconds=60)  # a claim this old and still unpublished was lost in a crash
    MAX_FAILED_LISTED = 100
    TALLY = ("tenants", "rerendered", "unchanged", "failed")

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, run_id: str):
        return self.db.collection("rerenders").document(run_id)

    def chunk(self, run_id: str, index: int):
        return self.ref(run_id).collection("chunks").document(str(index))

    def start(self, run_id: str, reason: str) -> dict:
        run = {"run_id": run_id, "reason": reason, "started_at": utcnow(), "chunks_total": None}
        batch = self.db.batch()
        batch.create(self.ref(run_id), run)
        batch.create(self.chunk(run_id, 0), {"after": "", "published": False, "claimed_at": run["started_at"]})
        batch.commit()
        return run

    def discard(self, run_id: str) -> None:
        """A run whose first step could not be published: as if never started."""
        batch = self.db.batch()
        batch.delete(self.chunk(run_id, 0))
        batch.delete(self.ref(run_id))
        batch.commit()

    def step(self, run_id: str, index: int) -> tuple[dict | None, dict | None]:
        """(the run, chunk `index`'s document), None where missing."""
        run, chunk = self.ref(run_id).get(), self.chunk(run_id, index).get()
        return (run.to_dict() if run.exists else None), (chunk.to_dict() if chunk.exists else None)

    def cut(self, run_id: str, index: int, last: bool, through: str) -> tuple[bool, str]:
        """Chunk `index`'s extent, fixed by its first delivery: (is it the last chunk, the id it ends at). Later
        deliveries get what was recorded, whatever tenants came or went since."""
        chunk = self.chunk(run_id, index)

        def attempt(transaction):
            found = chunk.get(transaction=transaction).to_dict() or {}
            if "through" in found:
                return found["last"], found["through"]
            transaction.update(chunk, {"last": last, "through": through})
            return last, through

        return firestore.run_transaction(attempt, db=self.db)

    def claim_successor(self, run_id: str, index: int, after: str) -> tuple[str, str]:
        """Who publishes step `index`, and the id it starts after (the first claim's, should a later delivery
        list other ids): "mine" (this delivery made its document just now, or found it unpublished and
        abandoned), "done" (published already) or "pending" (another delivery is publishing it right now)."""
        from google.api_core.exceptions import AlreadyExists

        successor = self.chunk(run_id, index)
        try:
            successor.create({"after": after, "published": False, "claimed_at": utcnow()})
            return "mine", after
        except AlreadyExists:
            found = successor.get().to_dict() or {}
        if found.get("published"):
            return "done", found["after"]
        return ("mine" if found["claimed_at"] < utcnow() - self.REPUBLISH_AFTER else "pending"), found["after"]

    def abandon(self, run_id: str, index: int) -> None:
        """Publishing step `index` failed: the next delivery of its predecessor publishes it."""
        self.chunk(run_id, index).update({"claimed_at": datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)})

    def published(self, run_id: str, index: int) -> None:
        self.chunk(run_id, index).update({"published": True})

    def count(self, run_id: str, index: int, tally: dict[str, int], failed: list[str], last: bool) -> None:
        """Record chunk `index`'s tally once; the last chunk also records how many chunks the run has."""
        chunk = self.chunk(run_id, index)

        def attempt(transaction):
            if (chunk.get(transaction=transaction).to_dict() or {}).get("counted"):
                return
            transaction.update(chunk, {"counted": True, "counted_at": utcnow(),
                                       **{key: tally.get(key, 0) for key in self.TALLY},
                                       "failed_tenants": failed[:self.MAX_FAILED_LISTED]})
            if last:
                transaction.update(self.ref(run_id), {"chunks_total": index + 1})

        firestore.run_transaction(attempt, db=self.db)

    def progress(self, run_id: str) -> dict | None:
        """The run with its totals so far; `status` is done once every chunk up to the last is counted."""
        run = self.ref(run_id).get()
        if not run.exists:
            return None
        run = run.to_dict()
        chunks = (c.to_dict() for c in self.ref(run_id).collection("chunks").stream())
        counted = [c for c in chunks if c.get("counted")]
        totals = {key: sum(c[key] for c in counted) for key in self.TALLY}
        failed = [t for c in sorted(counted, key=lambda c: c["counted_at"]) for t in c["failed_tenants"]]
        done = run["chunks_total"] is not None and len(counted) >= run["chunks_total"]
        return {**run, **totals, "failed_tenants": failed[:self.MAX_FAILED_LISTED],
                "status": "done" if done else "running",
                "finished_at": max(c["counted_at"] for c in counted) if done else None}


class ManifestStore:
    """The tenant's files under `tenants/{id}/`, written compare-and-swap (`if_generation_match`).

    Every file carries the manifest generation of the rendering that last wrote it and is never overwritten by an
    older rendering. `objects.json` (the tenant's objects, the state) is written for every newer generation, so
    concurrent renderings converge on the newest. The other files depend on the tenant's id and the platform's
    settings only and are written when their content differs, so a change rewrites one object; one unchanged
    keeps its older stamp (rewriting it would make a new Flux revision of every tenant's sync files), which a
    rendering under other platform settings could still overwrite while two deploys race. One listing tells all.
    """

    def __init__(self, bucket: str, client_factory: Callable = clients.storage):
        self.bucket_name = bucket
        self._client_factory = client_factory

    @property
    def bucket(self):
        return self._client_factory().bucket(self.bucket_name)

    @staticmethod
    def _stamp(blob) -> int:
        return int((blob.metadata or {}).get(GENERATION_KEY, 0))

    def _put(self, path: str, data: bytes, generation: int, current) -> None:
        from google.api_core.exceptions import PreconditionFailed

        for _ in range(MAX_CAS_ATTEMPTS):
            if current is not None:
                if self._stamp(current) >= generation:
                    return  # a newer (or this same) rendering is already there
                if not path.endswith(STATE_FILE) and current.md5_hash == _md5(data):
                    return  # unchanged: no new revision for Flux
            blob = self.bucket.blob(path)
            blob.metadata = {GENERATION_KEY: str(generation)}
            try:
                blob.upload_from_string(data, content_type=_content_type(path),
                                        if_generation_match=current.generation if current else 0)
                return
            except PreconditionFailed:
                current = self.bucket.get_blob(path)
        raise RuntimeError(f"gave up writing {path}: it kept changing underneath")

    def _remove(self, blob, below_generation: int | None) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        if below_generation is not None and self._stamp(blob) >= below_generation:
            return
        try:
            blob.delete(if_generation_match=blob.generation)
        except (NotFound, PreconditionFailed):
            pass  # gone already, or rewritten by a newer rendering that owns it now

    def apply(self, tenant_id: str, files: dict[str, bytes], generation: int) -> None:
        """Write what changed of `files`, objects first and the Flux objects that read them last, then remove the
        tenant's files the rendering no longer has."""
        prefix = f"tenants/{tenant_id}/"
        if not all(path.startswith(prefix) for path in files):
            raise ValueError(f"every file must lie under {prefix}")
        listed = {blob.name: blob for blob in self.bucket.list_blobs(prefix=prefix)}
        for path in sorted(files, key=lambda p: ("/sync/" in p, p.endswith("kustomization.yaml"), p)):
            self._put(path, files[path], generation, listed.get(path))
        for path in sorted(set(listed) - set(files)):
            self._remove(listed[path], generation)

    def remove_all(self, tenant_id: str) -> None:
        for blob in self.bucket.list_blobs(prefix=f"tenants/{tenant_id}/"):
            self._remove(blob, None)

    def read(self, tenant_id: str) -> dict[str, bytes]:
        return {blob.name: blob.download_as_bytes() for blob in self.bucket.list_blobs(prefix=f"tenants/{tenant_id}/")}
