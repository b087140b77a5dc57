"""Billing over its adapters: usage counted exactly once, usage and invoice reads, SLA reports, and the start
of a close (closing.py does the rest)."""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cloudevents.http import CloudEvent

from billing import periods
from billing.closing import Closer, progress
from billing.documents import InvoiceFiles
from billing.errors import Conflict, Invalid, NotFound
from billing.invoice import credit_note, issue_fields, reissued
from billing.money import plain
from billing.parties import Seller, parties
from billing.pricing import PriceBook
from billing.store import Invoices, Ledger, Overflow, Periods, SlaReports, TenantCache, UsageStore
from billing.usage import Rejected, total, validate
from energent_shared.clock import rfc3339, utcnow
from energent_shared.errors import shown
from energent_shared.events import InvalidEvent, parse_time
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")
INGEST_WORKERS = 8
MAX_SLA_NUMBER = Decimal(10) ** 9


@dataclass
class Billing:
    book: PriceBook
    usage: UsageStore
    tenants: TenantCache
    sla: SlaReports
    periods: Periods
    invoices_store: Invoices
    closer: Closer
    files: InvoiceFiles
    announce: Callable[[str, dict], None]  # (issued | paid | credited, document): tells tenant-events
    clock: Callable[[], datetime.datetime] = utcnow

    # --- ingestion --------------------------------------------------------------------------------------------

    def _one(self, event: CloudEvent | InvalidEvent, via: str, received_at: datetime.datetime) -> tuple[str, str]:
        """('accepted' | 'duplicate' | 'conflict' | 'rejected', reason)."""
        if isinstance(event, InvalidEvent):
            return "rejected", event.reason
        try:
            usage = validate(event, self.book, received_at)
            tenant = self.tenants.get(usage.tenant_id, as_of=usage.time)
            if tenant is None:
                raise Rejected(f"unknown tenant {usage.tenant_id}")
            deleted_at = tenant.get("deleted_at")
            if deleted_at is not None and usage.time > deleted_at:
                raise Rejected(f"dated after tenant {usage.tenant_id} was deleted")
            first = self.usage.record(usage, self.book.meters[usage.meter].aggregation, via)
        except (Rejected, Overflow) as rejected:
            return "rejected", str(rejected)
        if first is None:
            return "accepted", ""
        differences = usage.differences(first)
        if differences:
            return "conflict", (f"({usage.source}, {usage.event_id}) was counted before with another "
                                f"{', '.join(differences)}; the first stands")
        return "duplicate", ""

    def ingest(self, batch: list[CloudEvent | InvalidEvent], via: str) -> dict:
        received_at = self.clock()
        if len(batch) == 1:
            results = [self._one(batch[0], via, received_at)]
        else:
            with ThreadPoolExecutor(INGEST_WORKERS) as pool:
                results = list(pool.map(lambda e: self._one(e, via, received_at), batch))
        summary = {"accepted": 0, "duplicates": 0, "conflicts": [], "rejected": []}
        for event, (outcome, reason) in zip(batch, results, strict=True):
            event_id = event.event_id if isinstance(event, InvalidEvent) else event["id"]
            if outcome == "accepted":
                summary["accepted"] += 1
            elif outcome == "duplicate":
                summary["duplicates"] += 1
            elif outcome == "conflict":
                summary["conflicts"].append({"id": event_id, "reason": reason})
            else:
                source = None if isinstance(event, InvalidEvent) else event["source"]
                summary["rejected"].append({"id": event_id, "reason": reason})
                self.usage.reject(reason, via, event_id, source, _describe(event))
        if summary["rejected"] or summary["conflicts"]:
            log_event(logger, "usage.refused", severity=logging.WARNING, via=via, rejected=len(summary["rejected"]),
                      conflicts=len(summary["conflicts"]),
                      first_reason=(summary["rejected"] or summary["conflicts"])[0]["reason"])
        return summary

    # --- reads ------------------------------------------------------------------------------------------------

    def _tenant(self, tenant_id: str, fresh: bool = False) -> dict:
        """The tenant's record; `fresh`: as it is now (its billing profile may just have been corrected)."""
        tenant = self.tenants.get(tenant_id, as_of=self.clock() if fresh else None)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant

    def usage_of(self, tenant_id: str, period: str, granularity: str = "month") -> dict:
        """Usage that happened in `period`, whichever invoice bills it; by day too with granularity=day."""
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        if granularity not in ("month", "day"):
            raise Invalid(f"granularity must be month or day, got {granularity[:20]!r}")
        self._tenant(tenant_id)
        days = self.usage.day_totals(tenant_id, period)
        answer = {"tenant_id": tenant_id, "period": period, "meters": self._meters(days)}
        if granularity == "day":
            answer["days"] = [{"date": day, "meters": self._meters(days, lambda d, day=day: d == day)}
                              for day in sorted({day for day, _ in days})]
        return answer

    def _meters(self, days, within=lambda day: True) -> dict:
        return {meter: {"quantity": plain(total(days, meter, within).quantity(definition.aggregation)),
                        "unit": definition.unit} for meter, definition in sorted(self.book.meters.items())}

    def invoices(self, tenant_id: str, size: int = 50, page_token: str | None = None) -> dict:
        """Issued invoices, oldest period first (a reissue after the invoice it replaced); `page_token` is the last
        invoice of the previous page, `<period>~<number>`."""
        after = tuple(page_token.split("~", 1)) if page_token else None
        if after is not None and (len(after) != 2 or not periods.valid(after[0]) or len(after[1]) > 40):
            raise Invalid("page_token is not valid")
        found = [i for i in self.invoices_store.issued(tenant_id) if not after or (i["period"], i["number"]) > after]
        page = found[:size]
        more = len(found) > size
        return {"invoices": page, "next_page_token": f"{page[-1]['period']}~{page[-1]['number']}" if more else ""}

    def invoice(self, tenant_id: str, period: str) -> dict:
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        found = self.invoices_store.get(tenant_id, period)
        if found is None or found.get("status") == "draft":
            raise NotFound(f"tenant {tenant_id} has no invoice for {period}")
        return found

    def document(self, tenant_id: str, period: str, suffix: str) -> bytes:
        """The period's current invoice as stored: `json`, `html` or `pdf`."""
        return self.files.read(self.invoice(tenant_id, period), suffix)

    def upcoming(self, tenant_id: str) -> dict:
        """The open period's invoice as it stands now (§3): the whole period's base fee (the remaining days at the
        current tier), usage to date and whatever the last close left to bill; no number."""
        tenant = self._tenant(tenant_id, fresh=True)
        now = self.clock()
        period = periods.of(now)
        draft = self.closer.preview(tenant, period)
        if draft is None:
            raise NotFound(f"tenant {tenant_id} owes nothing for {period} so far")
        issue_date = now.date().isoformat()
        return {**draft, "status": "upcoming", "as_of": issue_date}

    # --- invoice lifecycle (§7.4) -------------------------------------------------------------------------------

    def pay(self, tenant_id: str, period: str, body: dict) -> dict:
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        _known_fields(body, {"reference", "paid_at"})
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference.strip() or len(reference) > 140 \
                or not reference.isprintable():
            raise Invalid("reference must be a non-blank string of at most 140 printable characters")
        paid_at = body.get("paid_at")
        if paid_at is None:
            paid_at = rfc3339(self.clock(), "seconds")
        else:
            try:
                moment = parse_time(paid_at)
            except ValueError as bad:
                raise Invalid(f"paid_at: {bad}") from None
            if moment > self.clock() + datetime.timedelta(minutes=5):
                raise Invalid("paid_at may not be in the future")
            paid_at = rfc3339(moment)
        outcome, found = self.invoices_store.pay(tenant_id, period, reference.strip(), paid_at)
        if outcome == "missing":
            raise NotFound(f"tenant {tenant_id} has no invoice for {period}")
        if outcome == "credited":
            raise Conflict(f"invoice {found['number']} was credited ({found.get('credited_by')}); it cannot be paid")
        if outcome == "before_issue":
            raise Invalid(f"paid_at may not be before the invoice's issue date {found['issue_date']}")
        if outcome == "other_reference":
            raise Conflict(f"invoice {found['number']} was already paid with reference "
                           f"{found['payment_reference']!r}")
        self.announce("paid", found)
        return found

    def credit(self, tenant_id: str, period: str, body: dict) -> dict:
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        _known_fields(body, {"reason", "reissue"})
        reason, reissue = body.get("reason"), body.get("reissue", False)
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500 or not reason.isprintable():
            raise Invalid("reason must be a non-blank string of at most 500 printable characters")
        if not isinstance(reissue, bool):
            raise Invalid("reissue must be true or false")
        tenant = self._tenant(tenant_id, fresh=True)
        now = self.clock()
        issued = issue_fields(now, self.closer.seller.payment_terms_days)
        outcome, note, current = self.invoices_store.credit(
            tenant_id, period, lambda found, number: credit_note(found, number, reason.strip(), issued),
            (lambda found, number: reissued(found, number, parties(self.closer.seller, tenant), issued))
            if reissue else None, now.year)
        if outcome == "missing":
            raise NotFound(f"tenant {tenant_id} has no invoice for {period}")
        if outcome != "credited":
            raise Conflict(f"invoice {current['number']} is {current['status']}; only an unpaid invoice is credited")
        # The credit is committed: what follows must not turn it into an error the caller would retry (and get
        # 409). A document not stored now is stored when it is first read; a lost event is logged.
        for kind, document in (("credited", note), *((("issued", current),) if reissue else ())):
            try:
                self.files.store(document)
                self.announce(kind, document)
            except Exception:
                logger.exception("credit committed; storing or announcing a document failed",
                                 extra={"json_fields": {"number": document["number"], "event": kind}})
        return {"credit_note": note, "invoice": current}

    def credit_notes(self, tenant_id: str, size: int = 50, page_token: str | None = None) -> dict:
        """Credit notes in number order; `page_token` is the last number of the previous page."""
        found = [n for n in self.invoices_store.credit_notes(tenant_id) if not page_token or n["number"] > page_token]
        page = found[:size]
        return {"credit_notes": page, "next_page_token": page[-1]["number"] if len(found) > size else ""}

    # --- SLA reports ------------------------------------------------------------------------------------------

    def report_sla(self, tenant_id: str, body: dict) -> dict:
        _known_fields(body, {"period", "availability_pct", "p95_latency_ms", "rto_minutes"})
        period = body.get("period")
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        if period > periods.of(self.clock()):
            raise Invalid(f"period {period} has not started")
        report = {"period": period,
                  "availability_pct": _number(body, "availability_pct", maximum=Decimal(100)),
                  "p95_latency_ms": _number(body, "p95_latency_ms"),
                  "rto_minutes": _number(body, "rto_minutes") if body.get("rto_minutes") is not None else None}
        self._tenant(tenant_id)
        if not self.sla.put(tenant_id, report):
            raise Conflict(f"period {period} is closing or closed (or a later one is); SLA reports count only before "
                           "the period's close starts")
        return report

    # --- closing ----------------------------------------------------------------------------------------------

    def close(self, period: str, wait_s: float = 0.0) -> tuple[bool, dict]:
        """Start closing `period` and wait up to `wait_s` for it to finish: (finished, progress)."""
        state = self.closer.start(period)
        deadline = time.monotonic() + wait_s
        while state["status"] != "closed" and time.monotonic() < deadline:
            time.sleep(0.1)
            state = self.period(period)
        return state["status"] == "closed", state

    def period(self, period: str) -> dict:
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        return progress(period, self.periods.get(period))


def build(db, files: InvoiceFiles, dispatch: Callable[[str, dict], None], book: PriceBook, seller: Seller,
          clock: Callable[[], datetime.datetime] = utcnow,
          announce: Callable[[str, dict], None] = lambda kind, document: None) -> Billing:
    """Billing over Firestore `db`, issuing documents to `files`; `dispatch` publishes a close's next step and
    `announce` an invoice event."""
    usage, tenants, sla, period_store, invoices = (UsageStore(db), TenantCache(db), SlaReports(db), Periods(db),
                                                   Invoices(db))
    closer = Closer(book, seller, usage, Ledger(db), period_store, sla, invoices, tenants, files.store, dispatch,
                    clock, announce)
    return Billing(book, usage, tenants, sla, period_store, invoices, closer, files, announce, clock)


def _known_fields(body: dict, allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise Invalid(f"unknown field(s): {shown(unknown)}")


def _number(body: dict, name: str, maximum: Decimal = MAX_SLA_NUMBER) -> str:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise Invalid(f"{name} must be a number")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise Invalid(f"{name} must be a number") from None
    if not number.is_finite() or number < 0:
        raise Invalid(f"{name} must be a finite, non-negative number")
    if number > maximum:
        raise Invalid(f"{name} must be at most {maximum:,}")
    if number != number.quantize(Decimal("0.000001")):
        raise Invalid(f"{name} has more than 6 decimal places")
    return plain(number)


def _describe(event: CloudEvent | InvalidEvent) -> dict:
    if isinstance(event, InvalidEvent):
        return {"reason": event.reason}
    # As text, cut short: whatever a caller sent must be storable (Firestore refuses some keys and shapes).
    return {"type": str(event["type"])[:200], "time": event.get("time"),
            "data": json.dumps(event.get_data(), default=str)[:4000]}
