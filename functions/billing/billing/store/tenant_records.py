"""Tenant records as the provisioner keeps them, read by billing (never written)."""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict

from billing.store.usage_counters import WRITE_TIMEOUT_S
from energent_shared import clients, firestore


class TenantCache:
    """Tenant records as the provisioner keeps them, each remembered with the moment it was read.

    Records are never deleted, and deleting a tenant stamps `deleted_at` with the time of the DELETE, so a record
    read at R answers truly for usage dated up to R: a deletion it does not show came after R. Usage dated after
    R is checked against a fresh read. Usage arrives a little after it happens, so a busy tenant costs about one
    read per reporting delay rather than one per event. Unknown tenants are never remembered.
    """

    def __init__(self, db=None, size: int = 10_000):
        self.db = db or clients.firestore()
        self._entries: OrderedDict[str, tuple[datetime.datetime, dict]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, tenant_id: str, as_of: datetime.datetime | None = None) -> dict | None:
        """The tenant's record as it stood at `as_of` or later (None: its existence is all that matters)."""
        with self._lock:
            remembered = self._entries.get(tenant_id)
            if remembered:
                self._entries.move_to_end(tenant_id)
        if remembered and (as_of is None or as_of <= remembered[0]):
            return remembered[1]
        snapshot = firestore.tenant_doc(tenant_id, db=self.db).get(timeout=WRITE_TIMEOUT_S)
        if not snapshot.exists:
            return None
        record = snapshot.to_dict()
        with self._lock:
            self._entries[tenant_id] = (snapshot.read_time, record)
            self._entries.move_to_end(tenant_id)
            while len(self._entries) > self._size:  # the least recently used goes first
                self._entries.popitem(last=False)
        return record

    def ids_after(self, after: str | None, size: int) -> list[str]:
        """The ids of the next `size` tenants after `after`, in id order."""
        query = self.db.collection("tenants").order_by("__name__").select([]).limit(size)
        if after:
            query = query.start_after({"__name__": firestore.tenant_doc(after, db=self.db)})
        return [snapshot.id for snapshot in query.stream()]

    def fresh(self, tenant_ids: list[str]) -> list[dict]:
        """These tenants' records as they are now, in the given order (closes must see every tenant as it is)."""
        found = {snapshot.id: snapshot for snapshot in self.db.get_all(
            [firestore.tenant_doc(tenant_id, db=self.db) for tenant_id in tenant_ids])}
        return [found[tenant_id].to_dict() for tenant_id in tenant_ids if found[tenant_id].exists]
