"""Billing's spend events before and after they are published: `spend_outbox/{key}`.

A threshold crossing's key is (tenant, period, budget version, threshold), so the record is created once however
many checks race to it; a block change's key is (tenant, block generation), written in the transaction that
changes the block. Whoever created the record publishes it and marks it published; the sweep publishes what stayed
pending (its publisher died or failed), claiming it first so that two sweeps do not both publish it.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from billing.store.usage_counters import WRITE_TIMEOUT_S
from energent_shared import clients, firestore
from energent_shared.clock import utcnow

OUTBOX = "spend_outbox"
CLAIM = datetime.timedelta(seconds=30)


def crossing_key(tenant_id: str, period: str, version: int, threshold: int) -> str:
    return f"crossed~{tenant_id}~{period}~v{version}~{threshold}"


def event_id(key: str) -> str:
    """The CloudEvent id of the record `key`: stable, so a consumer recognises a republished event."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class SpendOutbox:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, key: str):
        return self.db.collection(OUTBOX).document(key)

    def create_once(self, key: str, tenant_id: str, event: bytes) -> bool:
        """Record the event under `key` unless it exists: True if this call created it (and publishes it)."""
        from google.api_core.exceptions import AlreadyExists

        try:
            self.ref(key).create(self.record(tenant_id, event), timeout=WRITE_TIMEOUT_S)
        except AlreadyExists:
            return False
        return True

    @staticmethod
    def record(tenant_id: str, event: bytes) -> dict:
        return {"tenant_id": tenant_id, "event": event.decode(), "pending": True, "created_at": utcnow(),
                "claimed_until": None}

    def published(self, key: str) -> None:
        self.ref(key).update({"pending": False, "published_at": utcnow()})

    def get(self, key: str) -> dict | None:
        return self.ref(key).get().to_dict()

    def stale(self, before: datetime.datetime, limit: int = 500) -> list[str]:
        """Keys of records still pending that were created before `before`."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        # Oldest first, filtered by the query (composite index in infra), as for overdue spend checks.
        found = self.db.collection(OUTBOX).where(filter=FieldFilter("pending", "==", True)).where(
            filter=FieldFilter("created_at", "<", before)).order_by("created_at").limit(limit).select([]).stream()
        return [s.id for s in found]

    def claim(self, key: str) -> bytes | None:
        """The event of a pending record, claimed for CLAIM so no other sweep publishes it meanwhile."""
        ref = self.ref(key)

        def attempt(transaction):
            record = ref.get(transaction=transaction).to_dict()
            now = utcnow()
            if not record or not record["pending"] or (record.get("claimed_until") and record["claimed_until"] > now):
                return None
            transaction.update(ref, {"claimed_until": now + CLAIM})
            return record["event"].encode()

        return firestore.run_transaction(attempt, db=self.db)

    def for_tenant(self, tenant_id: str) -> list[dict]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        return [{**json.loads(s.get("event")), "key": s.id} for s in self.db.collection(OUTBOX).where(
            filter=FieldFilter("tenant_id", "==", tenant_id)).stream(timeout=WRITE_TIMEOUT_S)]
