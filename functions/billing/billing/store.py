"""Billing's Firestore adapters; every path billing reads or writes is here.

    usage_events/{sha256([source, id])}              one per counted event: the exactly-once key
    usage_rejections/{auto}                          what was refused, and why
    tenants/{T}/usage_shards/{day}_{meter}_{n}       counters of the events that happened on that UTC day
    tenants/{T}/billing/ledger                       what the tenant's closes have taken: watermark, base fees
    tenants/{T}/billed_usage/{period}                the period's usage as it stood when last invoiced
    tenants/{T}/sla_reports/{period}                 the period's SLA report
    tenants/{T}/invoices/{period}                    draft, then numbered invoice
    billing_periods/{period}                         a close: status and progress counters
    billing_periods/{period}/chunks/{n}              one per chunk of tenants drafted (makes the count exact)
    billing_periods/{period}/numbering/{n}           one per numbering step (makes it resumable)
    billing_periods/{period}/stored/{n}              one per numbering step whose documents are stored
    billing_periods/{period}/handed_on/{step}        which run of the close published that step
    invoice_counters/{year}                          the last invoice number of the year

A hot tenant holds because no event read-modify-writes a shared document: the event's key is created and one
of SHARDS counters is advanced with server-side transforms (Increment, Maximum) in one atomic batch.
"""

from __future__ import annotations

import datetime
import random
import threading
from collections import OrderedDict
from collections.abc import Callable

from billing.usage import DayTotals, Totals, Usage
from energent_shared import clients, firestore
from energent_shared.clock import utcnow

SHARDS = 16
WRITE_TIMEOUT_S = 10
PERIODS = "billing_periods"
# A sum is kept as whole units plus millionths, each an int64 that Firestore clamps silently at 2^63 - 1. A
# counter that passes UNITS_LIMIT has its event taken back; to clamp, 2^62 more units (4.6 million events of
# the largest quantity) would have to land on one shard between two commits, far beyond any batch in flight.
UNITS_LIMIT = 2 ** 62
# How much earlier than its commit a counter's server timestamp may be (the emulator stamps a few ms early);
# closes look back this far past their watermark, and what they see twice the ledger subtracts.
WATERMARK_MARGIN = datetime.timedelta(minutes=10)



def latest_close(db):
    """The query for the latest period whose close has begun (periods close in order)."""
    from google.cloud.firestore import Query

    return db.collection(PERIODS).order_by("period", direction=Query.DESCENDING).limit(1)


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


class Ledger:
    """Per tenant, what its closes have billed: `billing/ledger` holds the watermark (the read time of the last
    close, so counters written later are found by the next one), the last closed period and the base fee billed
    per period; `billed_usage/{period}` the period's usage as it stood when it was last invoiced."""

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, tenant_id: str):
        return firestore.tenant_doc(tenant_id, "billing", "ledger", db=self.db)

    def read(self, tenant_id: str):
        """The ledger snapshot; its `read_time` is the moment every later read of this close starts from."""
        return self.ref(tenant_id).get(timeout=WRITE_TIMEOUT_S)

    def billed(self, tenant_id: str, period: str) -> DayTotals:
        data = firestore.tenant_doc(tenant_id, "billed_usage", period, db=self.db).get().to_dict() or {}
        return {(day, meter): Totals.of(totals) for day, meters in data.get("days", {}).items()
                for meter, totals in meters.items()}

    def commit(self, tenant_id: str, seen, ledger: dict, billed: dict[str, DayTotals], draft: dict | None,
               period: str) -> bool:
        """Write the draft invoice, the usage it billed and the new ledger at once, provided nobody changed the
        ledger since `seen` was read. False: a concurrent close of this tenant got there first."""
        from google.api_core.exceptions import AlreadyExists, FailedPrecondition

        batch = self.db.batch()
        if draft is not None:
            batch.create(firestore.tenant_doc(tenant_id, "invoices", period, db=self.db), draft)
        for billed_period, days in billed.items():
            by_day: dict[str, dict] = {}
            for (day, meter), totals in days.items():
                by_day.setdefault(day, {})[meter] = totals.as_dict()
            batch.set(firestore.tenant_doc(tenant_id, "billed_usage", billed_period, db=self.db), {"days": by_day})
        if seen.exists:
            batch.update(self.ref(tenant_id), ledger, option=self.db.write_option(last_update_time=seen.update_time))
        else:
            batch.create(self.ref(tenant_id), ledger)
        try:
            batch.commit(timeout=WRITE_TIMEOUT_S)
        except (AlreadyExists, FailedPrecondition):
            return False
        return True


class SlaReports:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def put(self, tenant_id: str, report: dict) -> bool:
        """Store the report unless its period's close has begun, or a later period's (False: no close would read
        it). One transaction reads the latest close record, so a report and the start of a close are ordered:
        a report either lands before the close reads reports, or sees the close."""
        latest = latest_close(self.db)
        report_ref = firestore.tenant_doc(tenant_id, "sla_reports", report["period"], db=self.db)

        def attempt(transaction):
            last = next(iter(latest.stream(transaction=transaction)), None)
            if last is not None and last.get("period") >= report["period"]:
                return False
            transaction.set(report_ref, {**report, "received_at": utcnow()})
            return True

        return firestore.run_transaction(attempt, db=self.db)

    def get(self, tenant_id: str, period: str) -> dict | None:
        return firestore.tenant_doc(tenant_id, "sla_reports", period, db=self.db).get().to_dict()


class OutOfOrder(Exception):
    """A close that would break the order of periods; the message says which."""


class Periods:
    """Close records: `billing_periods/{period}` with status `closing` or `closed` and progress counters."""

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, period: str):
        return self.db.collection(PERIODS).document(period)

    def get(self, period: str) -> dict | None:
        return self.ref(period).get().to_dict()

    def begin(self, period: str, now: datetime.datetime) -> tuple[dict, bool]:
        """The period's close record, created as `closing` unless it exists: (record, created). Raises OutOfOrder
        for a period before the last one closed. While the latest period is still closing, the new one waits for
        it (`waiting`, `after`): its close starts when that one's ends, so closing months back to back just works."""

        ref = self.ref(period)

        def attempt(transaction):
            snapshot = ref.get(transaction=transaction)
            if snapshot.exists:
                return snapshot.to_dict(), False
            latest = list(latest_close(self.db).stream(transaction=transaction))
            if latest:
                last = latest[0].to_dict()
                if last["period"] > period:
                    raise OutOfOrder(f"periods close in order and {last['period']} is already closed; usage of "
                                     f"{period} is billed as late usage on the next invoice")
            waiting = bool(latest) and last["status"] != "closed"
            record = {"period": period, "status": "closing", "started_at": now, "closed_at": None, "tenants": 0,
                      "drafted": 0, "issued": 0, "stored": 0, "chunks_drafted": 0, "chunks_total": None,
                      "numbered_all": False, "waiting": waiting, "after": last["period"] if latest else None}
            transaction.create(ref, record)
            return record, True

        return firestore.run_transaction(attempt, db=self.db)

    def latest(self) -> str | None:
        """The latest period whose close has begun."""
        found = list(latest_close(self.db).stream())
        return found[0].get("period") if found else None

    def last_chunk(self, period: str, chunks: int) -> None:
        self.ref(period).update({"chunks_total": chunks})

    def chunk_done(self, period: str, index: int) -> bool:
        return self.ref(period).collection("chunks").document(f"{index:06d}").get().exists

    @staticmethod
    def all_drafted(record: dict | None) -> bool:
        """Whether the close record says every chunk is drafted (so numbering may have begun)."""
        record = record or {}
        return record.get("chunks_total") is not None and record["chunks_drafted"] >= record["chunks_total"]

    def chunk_drafted(self, period: str, index: int, tenants: int, drafted: list[str]) -> bool:
        """Count a drafted chunk once (a redelivery counts nothing), keeping which of its tenants have a draft
        (at most a chunk's worth: numbering reads them by key, with no query); True when every chunk is drafted."""
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
            pass  # counted by an earlier delivery, which may have stopped before handing on: look again below
        return self.all_drafted(self.get(period))

    def number(self, period: str, step: int, last_step: bool, stamp: Callable[[], dict]) -> list[tuple[str, str]]:
        """Numbering step `step`: give the drafts of chunk `step` the next numbers of the year they are issued in
        (`stamp` gives the issue fields), in tenant order, in one transaction with that year's counter, so a
        number exists only with its invoice (no gaps). Done once: a repeated step returns what it numbered the
        first time. Returns [(tenant_id, number)]."""
        from google.cloud.firestore import Increment

        from billing.invoice import number

        done_ref = self.ref(period).collection("numbering").document(f"{step:06d}")
        chunk = self.ref(period).collection("chunks").document(f"{step:06d}").get().to_dict() or {}
        refs = [firestore.tenant_doc(tenant_id, "invoices", period, db=self.db)
                for tenant_id in chunk.get("drafted", [])]

        done = done_ref.get()
        if done.exists:  # a redelivered step: no transaction, so no contention with the next one
            return [tuple(pair.split(" ")) for pair in done.get("invoices")]

        def attempt(transaction):
            done = done_ref.get(transaction=transaction)
            if done.exists:
                return [tuple(pair.split(" ")) for pair in done.get("invoices")]
            issued, numbered = stamp(), []
            year = int(issued["issue_date"][:4])
            counter = self.db.collection("invoice_counters").document(str(year))
            found = sorted((s for s in self.db.get_all(refs, transaction=transaction) if s.exists
                            and s.get("status") == "draft"), key=lambda s: s.get("tenant_id")) if refs else []
            last = (counter.get(transaction=transaction).to_dict() or {}).get("last", 0)
            for snapshot in found:
                last += 1
                numbered.append((snapshot.get("tenant_id"), number(year, last)))
                transaction.update(snapshot.reference, {"number": numbered[-1][1], "status": "final", **issued})
            transaction.set(counter, {"last": last})
            transaction.create(done_ref, {"invoices": [" ".join(pair) for pair in numbered]})
            transaction.update(self.ref(period), {"issued": Increment(len(numbered)), "numbered_all": last_step})
            return numbered

        return firestore.run_transaction(attempt, db=self.db)

    def _step(self, period: str, step: str):
        return self.ref(period).collection("handed_on").document(step)

    def handed_on(self, period: str, step: str, run: str) -> bool:
        """Whether this run of the close already published `step` (a redelivered message must not publish the
        next step again, or the chain would double at every redelivery)."""
        return (self._step(period, step).get().to_dict() or {}).get("run") == run

    def mark_handed_on(self, period: str, step: str, run: str) -> None:
        self._step(period, step).set({"run": run, "at": utcnow()})

    def stored(self, period: str, step: int, count: int) -> dict:
        """Count a numbering step's stored documents once; returns the close record as it is now."""
        from google.api_core.exceptions import AlreadyExists
        from google.cloud.firestore import Increment

        batch = self.db.batch()
        batch.create(self.ref(period).collection("stored").document(f"{step:06d}"), {"count": count})
        batch.update(self.ref(period), {"stored": Increment(count)})
        try:
            batch.commit(timeout=WRITE_TIMEOUT_S)
        except AlreadyExists:
            pass
        return self.get(period)

    def successor(self, period: str) -> str | None:
        """The period waiting for `period`'s close to end, if any."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = list(self.db.collection(PERIODS).where(filter=FieldFilter("after", "==", period)).limit(1).stream())
        return found[0].get("period") if found and found[0].get("waiting") else None

    def stop_waiting(self, period: str) -> None:
        self.ref(period).update({"waiting": False})

    def closed(self, period: str, now: datetime.datetime) -> None:
        self.ref(period).update({"status": "closed", "closed_at": now})


class Invoices:
    """`invoices/{period}` is the period's current invoice; one it replaced is kept at `invoices/{period}~{number}`.
    Credit notes live in `credit_notes/{number}`; both series are numbered per year without gaps."""

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, tenant_id: str, period: str):
        return firestore.tenant_doc(tenant_id, "invoices", period, db=self.db)

    def get(self, tenant_id: str, period: str) -> dict | None:
        return self.ref(tenant_id, period).get().to_dict()

    def numbered(self, tenant_id: str, period: str, number: str) -> dict:
        """The period's invoice with `number`, as it was issued (it may have been replaced, paid or credited
        since: the archive keeps what was issued)."""
        found = self.get(tenant_id, period)
        if found is None or found.get("number") != number:
            found = self.get(tenant_id, f"{period}~{number}")
        later = ("paid_at", "payment_reference", "credited_by")
        return {**{k: v for k, v in found.items() if k not in later}, "status": "final"}

    def issued(self, tenant_id: str) -> list[dict]:
        """Every issued invoice of the tenant (drafts are not invoices yet), oldest first."""
        return sorted((s.to_dict() for s in firestore.tenant_collection(tenant_id, "invoices", db=self.db).stream()
                       if s.get("status") != "draft"), key=lambda i: (i["period"], i.get("number", "")))

    def credit_notes(self, tenant_id: str) -> list[dict]:
        return sorted((s.to_dict() for s in firestore.tenant_collection(tenant_id, "credit_notes", db=self.db)
                       .stream()), key=lambda c: c["number"])

    def pay(self, tenant_id: str, period: str, reference: str, paid_at: str) -> tuple[str, dict | None]:
        """('paid' | 'unchanged' | 'credited' | 'other_reference' | 'before_issue' | 'missing', invoice), decided
        and written in one transaction."""
        ref = self.ref(tenant_id, period)

        def attempt(transaction):
            found = ref.get(transaction=transaction).to_dict()
            if found is None or found["status"] == "draft":
                return "missing", None
            if found["status"] == "credited":
                return "credited", found
            if found["status"] == "paid":
                return ("unchanged" if found["payment_reference"] == reference else "other_reference"), found
            if paid_at[:10] < found.get("issue_date", ""):
                return "before_issue", found
            paid = {**found, "status": "paid", "paid_at": paid_at, "payment_reference": reference}
            transaction.set(ref, paid)
            return "paid", paid

        return firestore.run_transaction(attempt, db=self.db)

    def credit(self, tenant_id: str, period: str, make_credit_note: Callable[[dict, str], dict],
               reissue: Callable[[dict, str], dict] | None, year: int) -> tuple[str, dict | None, dict | None]:
        """Credit the period's invoice in full, in one transaction with the credit-note counter (and the invoice
        counter when it is reissued): ('credited' | 'paid' | 'credited_before' | 'missing', credit note, invoice)."""
        from billing.invoice import credit_note_number, number

        ref = self.ref(tenant_id, period)
        notes = self.db.collection("credit_note_counters").document(str(year))
        invoices = self.db.collection("invoice_counters").document(str(year))

        def attempt(transaction):
            found = ref.get(transaction=transaction).to_dict()
            if found is None or found["status"] == "draft":
                return "missing", None, None
            if found["status"] != "final":
                return ("paid" if found["status"] == "paid" else "credited_before"), None, found
            last_note = (notes.get(transaction=transaction).to_dict() or {}).get("last", 0) + 1
            last_invoice = (invoices.get(transaction=transaction).to_dict() or {}).get("last", 0) + 1 if reissue \
                else None
            note = make_credit_note(found, credit_note_number(year, last_note))
            credited = {**found, "status": "credited", "credited_by": note["number"]}
            transaction.create(firestore.tenant_doc(tenant_id, "credit_notes", note["number"], db=self.db), note)
            transaction.set(notes, {"last": last_note})
            current = credited
            if reissue:
                current = reissue(found, number(year, last_invoice))
                transaction.set(invoices, {"last": last_invoice})
                transaction.create(self.ref(tenant_id, f"{period}~{found['number']}"), credited)
                transaction.set(ref, current)
            else:
                transaction.set(ref, credited)
            return "credited", note, current

        return firestore.run_transaction(attempt, db=self.db)


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

    def page(self, after: str | None, size: int) -> list[dict]:
        """Tenant records in id order, fresh from the store (closes must see every tenant as it is)."""
        query = self.db.collection("tenants").order_by("__name__").limit(size)
        if after:
            query = query.start_after({"__name__": firestore.tenant_doc(after, db=self.db)})
        return [snapshot.to_dict() for snapshot in query.stream()]
