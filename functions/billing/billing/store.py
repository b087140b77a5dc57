"""Billing adapters. Counting holds for a hot tenant because no event read-modify-writes a shared document:

- `usage_events/{sha256(source, id)}` is created once per event (create fails on a duplicate), and in the same
  atomic batch the event is added to one of SHARDS counter documents
  `tenants/{T}/usage_shards/{period}_{billed_in}_{meter}_{n}` with server-side transforms (Increment, Maximum):
  no transaction, no read, no lock, and each shard sees 1/SHARDS of the writes.
- Totals are the sum (or max) over the shards, read when asked.
"""

from __future__ import annotations

import datetime
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from billing.usage import Usage
from energent_shared import clients, firestore

SHARDS = 16
WRITE_TIMEOUT_S = 10
PERIODS = "billing_periods"
CLOSED = ("closing", "closed")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Totals:
    count: int = 0
    sum_micros: int = 0
    max_micros: int = 0

    def add(self, other: Totals) -> None:
        self.count += other.count
        self.sum_micros += other.sum_micros
        self.max_micros = max(self.max_micros, other.max_micros)

    def minus(self, invoiced: Totals) -> Totals:
        """What arrived after `invoiced` was taken (a max only counts if it rose)."""
        return Totals(self.count - invoiced.count, self.sum_micros - invoiced.sum_micros,
                      self.max_micros if self.max_micros > invoiced.max_micros else 0)

    def as_dict(self) -> dict:
        return {"count": self.count, "sum_micros": self.sum_micros, "max_micros": self.max_micros}

    @classmethod
    def of(cls, data: dict | None) -> Totals:
        data = data or {}
        return cls(int(data.get("count", 0)), int(data.get("sum_micros", 0)), int(data.get("max_micros", 0)))


class UsageStore:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def record(self, usage: Usage, billed_in: str, via: str) -> bool:
        """Count `usage` once: False if its (source, id) was counted before, by any path."""
        from google.api_core.exceptions import AlreadyExists
        from google.cloud.firestore import Increment, Maximum

        shard = firestore.tenant_doc(usage.tenant_id, "usage_shards",
                                     f"{usage.period}_{billed_in}_{usage.meter}_{random.randrange(SHARDS):02d}",  # noqa: S311
                                     db=self.db)
        batch = self.db.batch()
        batch.create(self.db.collection("usage_events").document(usage.key), {
            "tenant_id": usage.tenant_id, "meter": usage.meter, "micros": usage.micros, "time": usage.time,
            "period": usage.period, "billed_in": billed_in, "source": usage.source, "id": usage.event_id,
            "via": via, "received_at": utcnow()})
        batch.set(shard, {"tenant_id": usage.tenant_id, "period": usage.period, "billed_in": billed_in,
                          "meter": usage.meter, "count": Increment(1), "sum_micros": Increment(usage.micros),
                          "max_micros": Maximum(usage.micros)}, merge=True)
        try:
            batch.commit(timeout=WRITE_TIMEOUT_S)
        except AlreadyExists:
            return False
        return True

    def reject(self, reason: str, via: str, event_id: str | None, source: str | None, detail: dict) -> None:
        """Rejected events are kept where an operator can find them: `usage_rejections`."""
        self.db.collection("usage_rejections").add({"reason": reason, "via": via, "id": event_id, "source": source,
                                                    "detail": detail, "received_at": utcnow()})

    def _totals(self, tenant_id: str, field: str, period: str) -> dict[tuple[str, str], Totals]:
        """Totals by (period, meter) over the tenant's shards whose `field` equals `period`."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        found: dict[tuple[str, str], Totals] = {}
        query = firestore.tenant_collection(tenant_id, "usage_shards", db=self.db).where(
            filter=FieldFilter(field, "==", period))
        for snapshot in query.stream():
            data = snapshot.to_dict()
            found.setdefault((data["period"], data["meter"]), Totals()).add(Totals.of(data))
        return found

    def happened_in(self, tenant_id: str, period: str) -> dict[str, Totals]:
        """Usage whose time falls in `period`, whichever invoice it was billed on."""
        return {meter: totals for (_, meter), totals in self._totals(tenant_id, "period", period).items()}

    def billed_in(self, tenant_id: str, period: str) -> dict[tuple[str, str], Totals]:
        """Usage to bill in `period`: its own, and late usage of closed periods, by (period it happened, meter)."""
        return self._totals(tenant_id, "billed_in", period)


class PeriodStatus:
    """Whether a period is open. Closing and closed are final, so they are cached for good; open, briefly."""

    def __init__(self, db=None, open_ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.db = db or clients.firestore()
        self._open_ttl_s = open_ttl_s
        self._clock = clock
        self._closed: set[str] = set()
        self._open_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_closed(self, period: str) -> bool:
        with self._lock:
            if period in self._closed:
                return True
            if self._open_until.get(period, 0) > self._clock():
                return False
        snapshot = self.db.collection(PERIODS).document(period).get(timeout=WRITE_TIMEOUT_S)
        closed = snapshot.exists and snapshot.get("status") in CLOSED
        with self._lock:
            if closed:
                self._closed.add(period)
            else:
                self._open_until[period] = self._clock() + self._open_ttl_s
        return closed


class TenantCache:
    """Tenant records as the provisioner keeps them, each remembered with the moment it was read.

    Records are never deleted, and deleting a tenant stamps `deleted_at` with the time of the DELETE, so a record
    read at R answers truly for usage dated up to R: a deletion it does not show came after R. Usage dated after
    R is checked against a fresh read. Usage arrives a little after it happens, so a busy tenant costs about one
    read per reporting delay rather than one per event. Unknown tenants are never remembered.
    """

    def __init__(self, db=None):
        self.db = db or clients.firestore()
        self._entries: dict[str, tuple[datetime.datetime, dict]] = {}

    def get(self, tenant_id: str, as_of: datetime.datetime | None = None) -> dict | None:
        """The tenant's record as it stood at `as_of` or later (None: its existence is all that matters)."""
        remembered = self._entries.get(tenant_id)
        if remembered and (as_of is None or as_of <= remembered[0]):
            return remembered[1]
        snapshot = firestore.tenant_doc(tenant_id, db=self.db).get(timeout=WRITE_TIMEOUT_S)
        if not snapshot.exists:
            return None
        record = snapshot.to_dict()
        self._entries[tenant_id] = (snapshot.read_time, record)
        return record
