"""Check markers: `spend_checks/{T}~{window}`, created once per tenant and window of time in which usage of the
tenant was accepted. The one ingestion that creates a window's marker publishes the check of that window; the
marker records that the check ran (`evaluated`), so a check whose message was lost is published again by the
sweep. Markers expire (Firestore TTL on `expire_at`) a day after their window."""

from __future__ import annotations

import datetime

from billing.store.usage_counters import WRITE_TIMEOUT_S
from energent_shared import clients

CHECKS = "spend_checks"
KEEP = datetime.timedelta(days=1)


class SpendChecks:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, tenant_id: str, window: int):
        return self.db.collection(CHECKS).document(f"{tenant_id}~{window}")

    def mark(self, tenant_id: str, window: int, not_before: datetime.datetime) -> bool:
        """Create the window's marker: True if this call created it (and so publishes its check)."""
        from google.api_core.exceptions import AlreadyExists

        try:
            self.ref(tenant_id, window).create(
                {"tenant_id": tenant_id, "window": window, "not_before": not_before, "evaluated": False,
                 "expire_at": not_before + KEEP}, timeout=WRITE_TIMEOUT_S)
        except AlreadyExists:
            return False
        return True

    def evaluated(self, tenant_id: str, window: int) -> None:
        self.ref(tenant_id, window).update({"evaluated": True})

    def overdue(self, before: datetime.datetime, limit: int = 500) -> list[dict]:
        """Markers whose check should have run before `before` and has not."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        # Oldest first, filtered by the query (composite index in infra): a backlog of markers not yet due cannot
        # hide the overdue ones behind the limit.
        found = self.db.collection(CHECKS).where(filter=FieldFilter("evaluated", "==", False)).where(
            filter=FieldFilter("not_before", "<", before)).order_by("not_before").limit(limit).stream()
        return [s.to_dict() for s in found]
