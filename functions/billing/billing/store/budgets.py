"""Budgets in Firestore: the current one per tenant, and every version ever set.

    tenants/{T}/budget/current          {version, monthly_limit, thresholds, action, active, set_at}
    tenants/{T}/budget_versions/{v}     each version as it was set (and when it was removed)

The current document is never deleted: a DELETE marks it inactive and keeps its version, so the next PUT takes the
next version whatever happened in between (crossings are announced once per version: a version number used twice
would silence a new budget's first crossings).
"""

from __future__ import annotations

from collections.abc import Iterator

from billing.store.usage_counters import WRITE_TIMEOUT_S
from energent_shared import clients, firestore
from energent_shared.clock import rfc3339, utcnow


class Budgets:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, tenant_id: str):
        return firestore.tenant_doc(tenant_id, "budget", "current", db=self.db)

    def get(self, tenant_id: str) -> dict | None:
        """The tenant's budget in force, or None."""
        found = self.ref(tenant_id).get(timeout=WRITE_TIMEOUT_S).to_dict()
        return found if found and found.get("active") else None

    def put(self, tenant_id: str, budget: dict) -> dict:
        """Set `budget` as the next version; returns it as stored."""
        ref = self.ref(tenant_id)

        def attempt(transaction):
            before = ref.get(transaction=transaction).to_dict() or {}
            stored = {**budget, "tenant_id": tenant_id, "version": int(before.get("version", 0)) + 1, "active": True,
                      "set_at": rfc3339(utcnow(), "seconds")}
            transaction.set(ref, stored)
            transaction.set(firestore.tenant_doc(tenant_id, "budget_versions", f"{stored['version']:09d}",
                                                 db=self.db), stored)
            return stored

        return firestore.run_transaction(attempt, db=self.db)

    def remove(self, tenant_id: str) -> dict | None:
        """Remove the budget in force (its version stays taken); None if there was none."""
        ref = self.ref(tenant_id)

        def attempt(transaction):
            before = ref.get(transaction=transaction).to_dict()
            if not before or not before.get("active"):
                return None
            removed_at = rfc3339(utcnow(), "seconds")
            transaction.update(ref, {"active": False, "removed_at": removed_at})
            transaction.set(firestore.tenant_doc(tenant_id, "budget_versions", f"{before['version']:09d}",
                                                 db=self.db), {"removed_at": removed_at}, merge=True)
            return before

        return firestore.run_transaction(attempt, db=self.db)

    def tenants_after(self, after_path: str | None, size: int) -> tuple[list[str], str | None]:
        """A page of tenants holding a budget document (in force or removed), in document order: (tenant ids,
        the cursor of the next page or None). A collection-group scan without filters needs no index."""
        query = self.db.collection_group("budget").order_by("__name__").limit(size)
        if after_path:
            query = query.start_after({"__name__": self.db.document(after_path)})
        snapshots = list(query.stream())
        ids = [s.reference.parent.parent.id for s in snapshots if s.reference.id == "current"]
        return ids, snapshots[-1].reference.path if len(snapshots) == size else None

    def every_tenant(self) -> Iterator[str]:
        cursor: str | None = None
        while True:
            ids, cursor = self.tenants_after(cursor, 500)
            yield from ids
            if cursor is None:
                return
