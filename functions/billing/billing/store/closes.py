"""Close records: `billing_periods/{period}`, with status `closing` or `closed`, progress counters, and markers that
make each step of a close count once however often it is delivered."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from billing import closing_rules
from billing.store.usage_counters import WRITE_TIMEOUT_S
from energent_shared import clients, firestore
from energent_shared.clock import utcnow

PERIODS = "billing_periods"


def latest_close(db):
    """The query for the latest period whose close has begun (periods close in order)."""
    from google.cloud.firestore import Query

    return db.collection(PERIODS).order_by("period", direction=Query.DESCENDING).limit(1)


class Periods:
    """Close records: `billing_periods/{period}` with status `closing` or `closed` and progress counters."""

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, period: str):
        return self.db.collection(PERIODS).document(period)

    def get(self, period: str) -> dict | None:
        return self.ref(period).get().to_dict()

    def begin(self, period: str, now: datetime.datetime) -> tuple[dict, bool]:
        """The period's close record, created as `closing` unless it exists: (record, created). The rule is
        `closing_rules.start`; reading the latest close in the same transaction orders this start against SLA
        reports and other starts."""
        ref = self.ref(period)

        def attempt(transaction):
            snapshot = ref.get(transaction=transaction)
            latest = list(latest_close(self.db).stream(transaction=transaction))
            record = closing_rules.start(period, snapshot.to_dict() if snapshot.exists else None,
                                         latest[0].to_dict() if latest else None, now)
            if snapshot.exists:
                return record, False
            transaction.create(ref, record)
            return record, True

        return firestore.run_transaction(attempt, db=self.db)

    def latest(self) -> str | None:
        """The latest period whose close has begun."""
        found = list(latest_close(self.db).stream())
        return found[0].get("period") if found else None

    def chunk_tenants(self, period: str, index: int, size: int,
                      cut: Callable[[str | None, int], list[str]]) -> list[str] | None:
        """The ids of the tenants of chunk `index`, cut once: the first delivery takes `cut(after, size)`, the `size`
        ids after the last one of chunk `index - 1`, and records them (create-only); every other delivery, before or
        after a crash, reads that record. So chunks tile the tenants without gaps or overlaps, and each is the same
        for every delivery, whatever tenants are created meanwhile and whatever a message says. None if chunk
        `index - 1` was not cut full (there is no such chunk)."""
        from google.api_core.exceptions import AlreadyExists

        ref = self.ref(period).collection("pages").document(f"{index:06d}")
        found = ref.get()
        if found.exists:
            return list(found.get("tenants"))
        after = None
        if index > 0:
            before = self.ref(period).collection("pages").document(f"{index - 1:06d}").get()
            if not before.exists or len(before.get("tenants")) < size:
                return None
            after = before.get("tenants")[-1]
        ids = cut(after, size)
        try:
            ref.create({"tenants": ids, "after": after, "at": utcnow()})
        except AlreadyExists:  # a concurrent delivery cut it first
            return list(ref.get().get("tenants"))
        return ids

    def last_chunk(self, period: str, chunks: int) -> None:
        self.ref(period).update({"chunks_total": chunks})

    def chunk_done(self, period: str, index: int) -> bool:
        return self.ref(period).collection("chunks").document(f"{index:06d}").get().exists

    def chunk(self, period: str, index: int) -> dict:
        return self.ref(period).collection("chunks").document(f"{index:06d}").get().to_dict() or {}

    def numbering_ref(self, period: str, step: int):
        """The marker of numbering step `step` (Invoices.issue_step creates it with the invoices it issued)."""
        return self.ref(period).collection("numbering").document(f"{step:06d}")

    def numbered(self, period: str, step: int) -> bool:
        return self.numbering_ref(period, step).get().exists

    def chunk_drafted(self, period: str, index: int, tenants: int, drafted: list[str]) -> None:
        """Count a drafted chunk once (a redelivery counts nothing), keeping which of its tenants have a draft
        (at most a chunk's worth: numbering reads them by key, with no query)."""
        from google.api_core.exceptions import AlreadyExists
        from google.cloud.firestore import Increment

        batch = self.db.batch()
        batch.create(self.ref(period).collection("chunks").document(f"{index:06d}"),
                     {"tenants": tenants, "drafted": sorted(drafted), "at": utcnow()})
        batch.update(self.ref(period), {"tenants": Increment(tenants), "drafted": Increment(len(drafted)),
                                        "chunks_drafted": Increment(1)})
        try:
            batch.commit(timeout=WRITE_TIMEOUT_S)
        except AlreadyExists:
            pass  # counted by an earlier delivery, which may have stopped before handing on

    def _step(self, period: str, step: str):
        return self.ref(period).collection("handed_on").document(step)

    def handed_on(self, period: str, step: str, run: str) -> bool:
        """Whether this run of the close already published `step` (a redelivered message must not publish the
        next step again, or the chain would double at every redelivery)."""
        return (self._step(period, step).get().to_dict() or {}).get("run") == run

    def mark_handed_on(self, period: str, step: str, run: str) -> None:
        self._step(period, step).set({"run": run, "at": utcnow()})

    def stored(self, period: str, step: int) -> dict:
        """Count a numbering step whose documents are stored, once; returns the close record as it is now."""
        from google.api_core.exceptions import AlreadyExists
        from google.cloud.firestore import Increment

        batch = self.db.batch()
        batch.create(self.ref(period).collection("stored").document(f"{step:06d}"), {"at": utcnow()})
        batch.update(self.ref(period), {"steps_stored": Increment(1)})
        try:
            batch.commit(timeout=WRITE_TIMEOUT_S)
        except AlreadyExists:
            pass
        return self.get(period) or {}

    def successor(self, period: str) -> str | None:
        """The period waiting for `period`'s close to end, if any."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = list(self.db.collection(PERIODS).where(filter=FieldFilter("after", "==", period)).limit(1).stream())
        return found[0].get("period") if found and found[0].get("waiting") else None

    def stop_waiting(self, period: str) -> None:
        self.ref(period).update({"waiting": False})

    def closed(self, period: str, now: datetime.datetime) -> None:
        self.ref(period).update({"status": "closed", "closed_at": now})
