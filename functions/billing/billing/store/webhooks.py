"""Webhooks and their deliveries in Firestore.

    tenants/{T}/webhooks/{id}                        {webhook_id, url, events, secret (sealed, secret_box.py),
                                                      created_at, active}
    webhook_deliveries/{T}~{webhook id}~{event id}   one per event and webhook: {event, type, attempts, status,
                                                      last_status_code, next_attempt_at, due_at?, lease_until}

A delivery is created once per event and webhook, however often the event arrives. Each attempt claims the delivery
for its attempt number in a transaction (with a lease longer than an attempt can take), so a step delivered twice
makes one attempt. `due_at` is set only while the next attempt waits for the minute's tick.
"""

from __future__ import annotations

import datetime
import hashlib
import re

from energent_shared import clients, firestore

DELIVERIES = "webhook_deliveries"
LEASE = datetime.timedelta(seconds=30)
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def delivery_key(tenant_id: str, webhook_id: str, event_id: str) -> str:
    safe = event_id if _SAFE_ID.fullmatch(event_id) else hashlib.sha256(event_id.encode()).hexdigest()
    return f"{tenant_id}~{webhook_id}~{safe}"


class Webhooks:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def collection(self, tenant_id: str):
        return firestore.tenant_collection(tenant_id, "webhooks", db=self.db)

    def add(self, tenant_id: str, record: dict) -> None:
        self.collection(tenant_id).document(record["webhook_id"]).create(record)

    def active(self, tenant_id: str) -> list[dict]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = self.collection(tenant_id).where(filter=FieldFilter("active", "==", True)).stream()
        return sorted((s.to_dict() for s in found), key=lambda w: (w["created_at"], w["webhook_id"]))

    def get(self, tenant_id: str, webhook_id: str) -> dict | None:
        found = self.collection(tenant_id).document(webhook_id).get().to_dict()
        return found if found and found.get("active") else None

    def remove(self, tenant_id: str, webhook_id: str) -> bool:
        ref = self.collection(tenant_id).document(webhook_id)

        def attempt(transaction):
            found = ref.get(transaction=transaction).to_dict()
            if not found or not found.get("active"):
                return False
            transaction.update(ref, {"active": False, "secret": None})  # the sealed secret goes with it
            return True

        return firestore.run_transaction(attempt, db=self.db)

    # --- deliveries ---------------------------------------------------------------------------------------------

    def delivery_ref(self, key: str):
        return self.db.collection(DELIVERIES).document(key)

    def create_delivery(self, key: str, record: dict) -> bool:
        from google.api_core.exceptions import AlreadyExists

        try:
            self.delivery_ref(key).create(record)
        except AlreadyExists:
            return False
        return True

    def claim(self, key: str, attempt: int, now: datetime.datetime) -> dict | None:
        """The delivery, claimed for attempt `attempt` (attempts made so far), or None when that attempt was made
        or is being made, or the delivery is over."""
        ref = self.delivery_ref(key)

        def run(transaction):
            found = ref.get(transaction=transaction).to_dict()
            if not found or found["status"] != "pending" or found["attempts"] != attempt:
                return None
            if found.get("lease_until") and found["lease_until"] > now:
                return None
            transaction.update(ref, {"lease_until": now + LEASE})
            return found

        return firestore.run_transaction(run, db=self.db)

    def record(self, key: str, updates: dict) -> None:
        from google.cloud.firestore import DELETE_FIELD

        self.delivery_ref(key).update({**updates, "lease_until": None,
                                       **({} if "due_at" in updates else {"due_at": DELETE_FIELD})})

    def deferred(self, key: str, due_at: datetime.datetime) -> None:
        self.delivery_ref(key).update({"due_at": due_at})

    def due(self, before: datetime.datetime, limit: int = 500) -> list[dict]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = self.db.collection(DELIVERIES).where(filter=FieldFilter("due_at", "<=", before)).limit(limit)
        return [{**s.to_dict(), "key": s.id} for s in found.stream()]

    def deliveries(self, tenant_id: str, webhook_id: str) -> list[dict]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = self.db.collection(DELIVERIES).where(filter=FieldFilter("webhook_id", "==", webhook_id)).stream()
        return sorted((d for d in (s.to_dict() for s in found) if d["tenant_id"] == tenant_id),
                      key=lambda d: (d["created_at"], d["event_id"]))
