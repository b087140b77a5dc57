"""Counting usage: each event's exactly-once key and one of SHARDS counters of its tenant, meter and UTC day.

A hot tenant holds because no event read-modify-writes a shared document: the event's key is created and one of
SHARDS counters is advanced with server-side transforms (Increment, Maximum) in one atomic batch.
"""

from __future__ import annotations

import datetime
import random

from billing.usage import DayTotals, Totals, Usage
from energent_shared import clients, firestore
from energent_shared.clock import utcnow

SHARDS = 16
WRITE_TIMEOUT_S = 10
# A sum is kept as whole units plus millionths, each an int64 that Firestore clamps silently at 2^63 - 1. A
# counter that passes UNITS_LIMIT has its event taken back; to clamp, 2^62 more units (4.6 million events of
# the largest quantity) would have to land on one shard between two commits, far beyond any batch in flight.
UNITS_LIMIT = 2 ** 62
# How much earlier than its commit a counter's server timestamp may be (the emulator stamps a few ms early);
# closes look back this far past their watermark, and what they see twice the ledger subtracts.
WATERMARK_MARGIN = datetime.timedelta(minutes=10)


class Overflow(Exception):
    """A total would leave the range Firestore holds exactly."""


class UsageStore:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def record(self, usage: Usage, aggregation: str, via: str) -> dict | None:
        """Count `usage` once. None if counted now; else the first event counted under its (source, id).
        Raises Overflow (and counts nothing) when the day's total of the meter would not stay exact."""
        from google.api_core.exceptions import AlreadyExists
        from google.cloud.firestore import SERVER_TIMESTAMP, Increment, Maximum

        event_ref = self.db.collection("usage_events").document(usage.key)
        shard = firestore.tenant_doc(usage.tenant_id, "usage_shards",
                                     f"{usage.day}_{usage.meter}_{random.randrange(SHARDS):02d}",  # noqa: S311
                                     db=self.db)
        units, micros = divmod(usage.micros, 1_000_000) if aggregation == "sum" else (0, 0)
        counters = {"count": Increment(1), "units": Increment(units), "micros": Increment(micros),
                    "max_micros": Maximum(usage.micros)}
        batch = self.db.batch()
        batch.create(event_ref, {"tenant_id": usage.tenant_id, "meter": usage.meter, "micros": usage.micros,
                                 "time": usage.time, "time_given": usage.time_given, "source": usage.source,
                                 "id": usage.event_id, "via": via, "received_at": utcnow()})
        batch.set(shard, {"tenant_id": usage.tenant_id, "period": usage.period, "day": usage.day,
                          "meter": usage.meter, **counters, "written_at": SERVER_TIMESTAMP}, merge=True)
        try:
            results = batch.commit(timeout=WRITE_TIMEOUT_S)
        except AlreadyExists:
            return event_ref.get(timeout=WRITE_TIMEOUT_S).to_dict() or {}
        # The client sends a document's transforms sorted by field path, and the results come in that order.
        after = dict(zip(sorted([*counters, "written_at"]), results[1].transform_results, strict=True))
        if after["units"].integer_value > UNITS_LIMIT or after["micros"].integer_value > UNITS_LIMIT:
            undo = self.db.batch()
            undo.delete(event_ref)
            undo.set(shard, {"count": Increment(-1), "units": Increment(-units), "micros": Increment(-micros)},
                     merge=True)
            undo.commit(timeout=WRITE_TIMEOUT_S)
            raise Overflow(f"the {usage.meter} total of tenant {usage.tenant_id} on {usage.day} would pass what "
                           "is counted exactly")
        return None

    def reject(self, reason: str, via: str, event_id: str | None, source: str | None, detail: dict) -> None:
        """Rejected events are kept where an operator can find them: `usage_rejections`."""
        self.db.collection("usage_rejections").add({"reason": reason, "via": via, "id": event_id, "source": source,
                                                    "detail": detail, "received_at": utcnow()})

    def _shards(self, tenant_id: str):
        return firestore.tenant_collection(tenant_id, "usage_shards", db=self.db)

    def day_totals(self, tenant_id: str, period: str) -> DayTotals:
        """The tenant's usage that happened in `period`, by (day, meter)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        found: DayTotals = {}
        for snapshot in self._shards(tenant_id).where(filter=FieldFilter("period", "==", period)).stream():
            data = snapshot.to_dict()
            found.setdefault((data["day"], data["meter"]), Totals()).add(
                Totals(data.get("count", 0), data.get("units", 0) * 1_000_000 + data.get("micros", 0),
                       data.get("max_micros", 0)))
        return found

    def periods_written_since(self, tenant_id: str, watermark: datetime.datetime | None) -> set[str]:
        """Periods of the tenant's counters written after `watermark` (all of them without one)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._shards(tenant_id)
        if watermark is not None:
            query = query.where(filter=FieldFilter("written_at", ">", watermark - WATERMARK_MARGIN))
        return {snapshot.get("period") for snapshot in query.select(["period"]).stream()}
