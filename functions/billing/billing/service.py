"""Billing over its adapters: usage counted exactly once, usage and invoice reads, SLA reports, and the start
of a close (closing.py does the rest)."""

from __future__ import annotations

import datetime
import json
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from cloudevents.http import CloudEvent

from billing import closing, closing_rules, grants, lifecycle, numbering, periods, rollups
from billing.closing import STORE_TYPE, Closer
from billing.documents import InvoiceFiles
from billing.errors import Conflict, Invalid, NotFound
from billing.invoice import issue_fields, settle
from billing.money import plain
from billing.numbering import CREDIT_NOTE, INVOICE
from billing.parties import Seller, parties
from billing.pricing import PriceBook
from billing.records import CreditNote, Invoice, Tenant
from billing.rollups import Rollups
from billing.store.closes import Periods
from billing.store.grants import Grants
from billing.store.invoices import Invoices
from billing.store.ledger import Ledger
from billing.store.sla_reports import SlaReports
from billing.store.tenant_records import TenantCache
from billing.store.usage_counters import Outcome, Overflow, UsageStore
from billing.usage import Rejected, Usage, total, validate
from energent_shared import fields
from energent_shared.clock import rfc3339, utcnow
from energent_shared.events import InvalidEvent, parse_time
from energent_shared.firestore import valid_tenant_id
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")
INGEST_WORKERS = 8
TENANT_PAGE = 1000  # tenant records read at once on first sight: one round trip instead of a thousand (TenantCache)
MAX_SLA_NUMBER = Decimal(10) ** 9
MAX_AMOUNT = Decimal(10) ** 12
_AMOUNT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,2})?")


# What billing-events carries besides usage (Billing.on_step).
STEP_TYPES = (closing.CLOSE_TYPE, closing.CHUNK_TYPE, closing.NUMBER_TYPE, closing.ARCHIVE_TYPE, STORE_TYPE,
              rollups.ROLLUP_TYPE)


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
    accepted: Callable[[str], None] = lambda tenant_id: None  # after an event of the tenant is counted (spend checks)
    rollups: Rollups | None = None  # the daily rollup of counters (rollups.py)

    # --- ingestion --------------------------------------------------------------------------------------------

    def _check(self, event: CloudEvent | InvalidEvent, received_at: datetime.datetime) -> Usage | str:
        """The usage an event reports, or why it is rejected (its tenant as billing knows it included)."""
        if isinstance(event, InvalidEvent):
            return event.reason
        try:
            usage = validate(event, self.book, received_at)
            tenant = self.tenants.standing(usage.tenant_id, as_of=usage.time)
            if tenant is None:
                raise Rejected(f"unknown tenant {usage.tenant_id}")
            if tenant.deleted_at is not None and usage.time > tenant.deleted_at:
                raise Rejected(f"dated after tenant {usage.tenant_id} was deleted")
        except Rejected as rejected:
            return str(rejected)
        return usage

    @staticmethod
    def _outcome(usage: Usage, first: Outcome) -> tuple[str, str]:
        """('accepted' | 'duplicate' | 'conflict' | 'rejected', reason) of a usage recorded with outcome `first`."""
        if isinstance(first, Overflow):
            return "rejected", str(first)
        if first is None:
            return "accepted", ""
        differences = usage.differences(first)
        if differences:
            return "conflict", (f"({usage.source}, {usage.event_id}) was counted before with another "
                                f"{', '.join(differences)}; the first stands")
        return "duplicate", ""

    def _count(self, batch: list[CloudEvent | InvalidEvent], via: str,
               received_at: datetime.datetime) -> list[tuple[str, str]]:
        """Each event's outcome. One event (a Pub/Sub push) shares a commit with whatever this instance records at
        the same moment; a batch is counted in commits of up to 500 writes, one per event and one per (tenant, day,
        meter) in it."""
        if len(batch) == 1:
            checked = [self._check(batch[0], received_at)]
        else:
            with ThreadPoolExecutor(INGEST_WORKERS) as pool:  # tenant records not remembered yet are read at once
                checked = list(pool.map(lambda e: self._check(e, received_at), batch))
        usages = [(i, c) for i, c in enumerate(checked) if isinstance(c, Usage)]
        results: list[tuple[str, str]] = [("rejected", c) if isinstance(c, str) else ("", "") for c in checked]
        if len(usages) == 1:
            index, usage = usages[0]
            try:
                first: Outcome = self.usage.record(usage, self.book.meters[usage.meter].aggregation, via)
            except Overflow as overflow:
                first = overflow
            results[index] = self._outcome(usage, first)
        elif usages:
            outcomes = self.usage.record_many([(usage, self.book.meters[usage.meter].aggregation, via)
                                               for _, usage in usages])
            for (index, usage), outcome in zip(usages, outcomes, strict=True):
                results[index] = self._outcome(usage, outcome)
        # A duplicate too: it may be the resend of an event counted by a delivery that failed before this step (a
        # batch's later commit, an instance stopped), whose spend check was then never scheduled.
        for tenant_id in dict.fromkeys(usage.tenant_id for index, usage in usages
                                       if results[index][0] in ("accepted", "duplicate")):
            self.accepted(tenant_id)
        return results

    def ingest(self, batch: list[CloudEvent | InvalidEvent], via: str) -> dict:
        results = self._count(batch, via, self.clock())
        summary: dict[str, Any] = {"accepted": 0, "duplicates": 0, "conflicts": [], "rejected": []}
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

    def _tenant(self, tenant_id: str, fresh: bool = False) -> Tenant:
        """The tenant's record; `fresh`: as it is now (its billing profile may just have been corrected)."""
        tenant = self.tenants.get(tenant_id, as_of=self.clock() if fresh else None)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant  # type: ignore[return-value]

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
        """Every invoice, drafts held for a billing profile included, oldest period first (a reissue after the
        invoice it replaced); `page_token` is the position of the last invoice of the previous page."""
        found = self.invoices_store.listing(tenant_id)
        keys = [_listing_token(i) for i in found]
        if page_token:
            if page_token not in keys and not _valid_listing_token(page_token):
                raise Invalid("page_token is not valid")
            found = [i for i, key in zip(found, keys, strict=True) if _listing_key(key) > _listing_key(page_token)]
        page = found[:size]
        return {"invoices": page, "next_page_token": _listing_token(page[-1]) if len(found) > size else ""}

    def invoice(self, tenant_id: str, period: str) -> Invoice:
        """The period's current invoice (or its draft, held until the customer's billing profile is set)."""
        _period(period)
        found = self.invoices_store.get(tenant_id, period)
        if found is None:
            raise NotFound(f"tenant {tenant_id} has no invoice for {period}")
        return found

    def document(self, tenant_id: str, period: str, suffix: str) -> bytes:
        """The period's current invoice as issued and archived: `json`, `html`, `pdf` or `xml`."""
        found = self.invoice(tenant_id, period)
        if found.get("status") == "draft":
            raise Conflict(f"the invoice for {period} is a draft held until the customer's billing profile is set: "
                           "it has no document until it is issued")
        return self.archived(tenant_id, found["number"], suffix)

    def by_number(self, tenant_id: str, number: str) -> Invoice | CreditNote:
        """An issued invoice (current, replaced or credited) or credit note, as it stands now."""
        found = self.invoices_store.current(tenant_id, _number_param(number))
        if found is None:
            raise NotFound(f"tenant {tenant_id} has no document {number}")
        return found[1]

    def archived(self, tenant_id: str, number: str, suffix: str) -> bytes:
        """The document as issued, from the archive; repaired from the issued record if it is not there yet. A UBL
        whose customer had no Peppol address at issue is made once the customer's profile names one (`peppol_id`):
        the address is where the e-invoice is delivered, not part of what was invoiced."""
        from billing.ubl import NoElectronicAddress

        found = self.invoices_store.issued_document(tenant_id, _number_param(number))
        if found is None:
            raise NotFound(f"tenant {tenant_id} has no document {number}")
        document = found[1]
        try:
            return self.files.read(document, suffix)
        except NoElectronicAddress as missing:
            peppol_id = (self._tenant(tenant_id, fresh=True).get("billing_profile") or {}).get("peppol_id")
            if not peppol_id:
                raise Conflict(f"document {number} has no e-invoice yet: {missing}") from None
            return self.files.read({**document, "customer": {**document["customer"], "peppol_id": peppol_id}},
                                   suffix)

    def upcoming(self, tenant_id: str) -> Invoice:
        """The open period's invoice as it stands now: the whole period's base fee (the remaining days at the
        current tier), usage to date and whatever the last close left to bill; no number."""
        tenant = self._tenant(tenant_id, fresh=True)
        now = self.clock()
        period = periods.of(now)
        draft = self.closer.preview(tenant, period)
        if draft is None:
            raise NotFound(f"tenant {tenant_id} owes nothing for {period} so far")
        return {**draft, "status": "upcoming", "as_of": now.date().isoformat()}  # type: ignore[typeddict-unknown-key]

    # --- the books (journal.py, vat_return.py; accounts and VAT codes from config/ledger.json) -------------------

    def journal(self, first: str | None, last: str | None) -> list[dict]:
        """One balanced entry per invoice, credit note and payment dated from `first` through `last` (inclusive)."""
        from billing import journal

        start, end = _date_param(first, "from"), _date_param(last, "to")
        if end < start:
            raise Invalid(f"to ({end}) is before from ({start})")
        if (end - start).days > MAX_JOURNAL_DAYS:
            raise Invalid(f"a journal covers at most {MAX_JOURNAL_DAYS + 1} days; ask for a year at a time")
        invoices, credit_notes = self._books(self.invoices_store.journal_between(start.isoformat(), end.isoformat()))
        return journal.entries(books_ledger(), invoices, credit_notes, start, end)

    def vat_return(self, quarter: str) -> dict:
        """The Dutch VAT return of `quarter` (YYYY-Qn) and its ICP listing, from the documents issued in it."""
        from billing import vat_return

        try:
            parsed = vat_return.parse_quarter(quarter)
        except vat_return.InvalidQuarter as invalid:
            raise Invalid(str(invalid)) from None
        # Issued in the quarter, or supplied in it (a reverse-charged month counts where it was supplied, however
        # late its invoice: vat_return.tax_date).
        months = [f"{parsed.year:04d}-{month:02d}" for month in range(3 * parsed.number - 2, 3 * parsed.number + 1)]
        recorded = {(item["tenant_id"], item["document_number"]) for item in [
            *self.invoices_store.journal_between(parsed.first_day.isoformat(), parsed.last_day.isoformat()),
            *self.invoices_store.issued_for(months)] if item["kind"] != "payment"}
        issued = [self.invoices_store.issued_document(tenant_id, number) for tenant_id, number in sorted(recorded)]
        return vat_return.vat_return(parsed, [found[1] for found in issued if found is not None], books_ledger())

    def _books(self, recorded: list[dict]) -> tuple[list[Invoice], list[CreditNote]]:
        """Every document of the invoices that `recorded` touches: each invoice with its payments, and its credit
        notes (what a payment or credit note settles depends on what came before it)."""
        invoices: list[Invoice] = []
        credit_notes: list[CreditNote] = []
        for tenant_id, number in sorted({(item["tenant_id"], item["invoice_number"]) for item in recorded}):
            found = self.invoices_store.current(tenant_id, number)
            if found is None:
                continue
            invoice: Invoice = found[1]  # type: ignore[assignment]
            invoices.append(invoice)
            for note_number in invoice.get("credit_notes", []):
                note = self.invoices_store.issued_document(tenant_id, note_number)
                if note is not None:
                    credit_notes.append(note[1])  # type: ignore[arg-type]
        return invoices, credit_notes

    def balance(self, tenant_id: str) -> dict:
        self._tenant(tenant_id)
        return self.invoices_store.balance(tenant_id)

    # --- the invoice lifecycle (lifecycle.py) ------------------------------------------------------------------

    def _settle_with(self, tenant: Tenant) -> Callable[[Invoice], Invoice]:
        if not tenant.get("billing_profile"):
            raise Conflict(f"tenant {tenant['tenant_id']} has no billing profile: an invoice names its customer, set "
                           "the billing_profile first (PATCH the tenant)")
        return lambda draft: settle(draft, parties(self.closer.seller, tenant))

    def pay(self, tenant_id: str, period: str, body: dict, number: str | None = None) -> Invoice:
        """Record a payment of the period's invoice (or, by `number`, of any issued invoice of the tenant)."""
        if number is None:
            _period(period)
        fields.only(body, {"reference", "paid_at", "amount"})
        reference = fields.text(body, "reference", 140)
        amount = _amount(body.get("amount"), "amount") if body.get("amount") is not None else None
        now = self.clock()
        paid_at = rfc3339(now, "seconds")
        if body.get("paid_at") is not None:
            try:
                moment = parse_time(body["paid_at"])
            except (ValueError, TypeError) as bad:
                raise Invalid(f"paid_at: {bad}") from None
            if moment > now + datetime.timedelta(minutes=5):
                raise Invalid("paid_at may not be in the future")
            paid_at = rfc3339(moment)
        record, change = self.invoices_store.change(
            tenant_id, period, lambda invoice, balance, numbers: lifecycle.pay(
                _found(invoice, tenant_id, period, number), amount, reference, paid_at, now), number=number)
        if record is None:
            raise NotFound(f"tenant {tenant_id} has no invoice {number or 'for ' + period}")
        self._published(change)
        return record

    def pay_number(self, tenant_id: str, number: str, body: dict) -> Invoice:
        issued = self.invoices_store.issued_document(tenant_id, _number_param(number))
        if issued is None or issued[0] != "invoice":
            raise NotFound(f"tenant {tenant_id} has no invoice {number}")
        return self.pay(tenant_id, issued[1]["period"], body, number=number)

    def credit(self, tenant_id: str, period: str, body: dict, key: str | None = None) -> dict:
        """A credit note for part or all of the period's invoice; with `reissue`, the invoice issued again. With an
        idempotency `key`, a retry of a credit that was made answers what it made, and credits nothing again."""
        _period(period)
        if key is not None and (not key or len(key) > 200 or not key.isascii() or not key.isprintable()):
            raise Invalid("Idempotency-Key must be 1 to 200 printable ASCII characters")
        fields.only(body, {"reason", "reissue", "amount"})
        reason = fields.text(body, "reason", 500)
        again = body.get("reissue", False)
        if not isinstance(again, bool):
            raise Invalid("reissue must be true or false")
        amount = _amount(body.get("amount"), "amount") if body.get("amount") is not None else None
        if again and amount is not None:
            raise Invalid("reissue credits what is left of the invoice: it cannot be combined with amount")
        now = self.clock()
        issued = issue_fields(now, self.closer.seller.payment_terms_days)
        if again:
            settle_now = self._settle_with(self._tenant(tenant_id, fresh=True))

            def decide(invoice, balance, numbers):
                return lifecycle.reissue(_found(invoice, tenant_id, period), reason, settle_now, numbers, issued,
                                         balance, now)
            series: tuple[str, ...] = (CREDIT_NOTE, INVOICE)
        else:
            def decide(invoice, balance, numbers):
                return lifecycle.credit(_found(invoice, tenant_id, period), amount, reason, numbers, issued, now)
            series = (CREDIT_NOTE,)
        record, change = self.invoices_store.change(tenant_id, period, decide, series=series, year=now.year,
                                                    request=key)
        if change is None:  # the same request again: what it made the first time
            done = self.invoices_store.replayed(tenant_id, key) if key else None
            if done is None:
                raise Conflict("the credit changed nothing")
            return {"credit_note": self.by_number(tenant_id, done["documents"][0]),
                    "invoice": self.by_number(tenant_id, done["invoice"])}
        self._published(change)
        return {"credit_note": change.documents[0], "invoice": record}

    def issue_held(self, tenant_id: str) -> list[Invoice]:
        """Issue the tenant's drafts held for want of a billing profile, oldest period first, each with the next
        number of the year of issue; nothing while the tenant still has no profile."""
        tenant = self._tenant(tenant_id, fresh=True)
        if not tenant.get("billing_profile"):
            return []
        issued_now: list[Invoice] = []
        for period in self.invoices_store.held(tenant_id):
            self._take_grants(tenant_id, period)
            now = self.clock()
            fields = issue_fields(now, self.closer.seller.payment_terms_days)
            settle_now = self._settle_with(tenant)

            def decide(invoice, balance, numbers, fields=fields, settle_now=settle_now, now=now):
                if invoice is None or invoice.get("status") != "draft":
                    return None  # issued meanwhile
                return lifecycle.issue(invoice, settle_now, numbers, fields, balance, now)

            _, change = self.invoices_store.change(tenant_id, period, decide, series=(INVOICE,),
                                                   year=int(fields["issue_date"][:4]),
                                                   progress=self.periods.ref(period))
            if change is not None:
                self._published(change)
                issued_now.append(change.record)
        return issued_now

    def _take_grants(self, tenant_id: str, period: str) -> None:
        """A held draft about to be issued takes what is left of the credit grants made since its close (those made
        before it took at its close)."""
        found = self.closer.grants
        if found is not None:
            found.take_for_draft(tenant_id, self.invoices_store.ref(tenant_id, period),
                                 lambda draft, available: grants.apply(draft, available, period), period)

    def _published(self, change: lifecycle.Change | None) -> None:
        """After a change committed: its documents archived and its events announced. Neither may turn a committed
        change into an error the caller would retry; what fails is stored by a step on billing-events (and is
        repaired from the issued record whenever it is read)."""
        if change is None:
            return
        for document in change.documents:
            try:
                self.files.store(document)
            except Exception:
                logger.exception("change committed; storing a document failed, handing it on",
                                 extra={"json_fields": {"number": document["number"]}})
                self.closer.dispatch(STORE_TYPE, {"tenant_id": document["tenant_id"], "number": document["number"]})
        for kind, document in change.announce:
            try:
                self.announce(kind, document)  # type: ignore[arg-type]
            except Exception:
                logger.exception("change committed; announcing it failed",
                                 extra={"json_fields": {"number": document.get("number"), "event": kind}})

    def on_step(self, event_type: str, data: Any) -> None:
        """A message on billing-events other than usage (delivered at least once, each idempotent): a close begun
        (Cloud Scheduler's fixed message names no period: the month that just ended), a step of one, a document
        stored again, a page of the daily rollup."""
        if event_type == closing.CLOSE_TYPE:
            self.closer.start((data.get("period") if isinstance(data, dict) else None)
                              or periods.preceding(periods.of(self.clock())))
        elif event_type == rollups.ROLLUP_TYPE and self.rollups is not None:
            self.rollups.on_event(data)
        elif event_type == STORE_TYPE:
            if not isinstance(data, dict) or not valid_tenant_id(data.get("tenant_id")):
                raise Invalid("a document store step needs data.tenant_id and data.number")
            self.store_document(data["tenant_id"], str(data.get("number")))
        else:
            self.closer.on_event(event_type, data)

    def store_document(self, tenant_id: str, number: str) -> None:
        """Archive an issued document from its issued record (create-only: a stored one stays as it is)."""
        found = self.invoices_store.issued_document(tenant_id, number)
        if found is not None:
            self.files.store(found[1])

    def credit_notes(self, tenant_id: str, size: int = 50, page_token: str | None = None) -> dict:
        """Credit notes in number order; `page_token` is the last number of the previous page."""
        if page_token is not None and numbering.parse(page_token) is None:
            raise Invalid("page_token is not valid")
        found = [n for n in self.invoices_store.credit_notes(tenant_id)
                 if not page_token or numbering.sort_key(n["number"]) > numbering.sort_key(page_token)]
        page = found[:size]
        return {"credit_notes": page, "next_page_token": page[-1]["number"] if len(found) > size else ""}

    # --- SLA reports ------------------------------------------------------------------------------------------

    def report_sla(self, tenant_id: str, body: dict) -> dict:
        fields.only(body, {"period", "availability_pct", "p95_latency_ms", "rto_minutes"})
        period = _period(body.get("period"))
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
        return closing_rules.progress(period, self.periods.get(period))


def build(db, files: InvoiceFiles, dispatch: Callable[[str, dict], None], book: PriceBook, seller: Seller,
          clock: Callable[[], datetime.datetime] = utcnow,
          announce: Callable[[str, dict], None] = lambda kind, document: None) -> Billing:
    """Billing over Firestore `db`, issuing documents to `files`; `dispatch` publishes a close's next step and
    `announce` an invoice event."""
    usage, tenants, sla, period_store, invoices = (UsageStore(db), TenantCache(db, page=TENANT_PAGE), SlaReports(db),
                                                   Periods(db), Invoices(db, book.currency))
    closer = Closer(book, seller, usage, Ledger(db), period_store, sla, invoices, tenants, files.store, dispatch,
                    clock, announce, Grants(db))
    return Billing(book, usage, tenants, sla, period_store, invoices, closer, files, announce, clock,
                   rollups=Rollups(usage, tenants, dispatch, clock))


MAX_JOURNAL_DAYS = 366


def _date_param(value: str | None, name: str) -> datetime.date:
    """A date given as exactly YYYY-MM-DD in ASCII digits (a real date, years 2000 to 2999)."""
    if not isinstance(value, str) or not re.fullmatch(r"2[0-9]{3}-[0-9]{2}-[0-9]{2}", value):
        raise Invalid(f"{name} must be a date YYYY-MM-DD, got {str(value)[:20]!r}")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} is not a date: {value}") from None


@cache
def books_ledger():
    """Accounts and VAT codes of the books (config/ledger.json, documented there)."""
    from billing.ledger import load_ledger
    from billing.settings import CONFIG

    return load_ledger(CONFIG / "ledger.json")


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


def _period(period: object) -> str:
    if not isinstance(period, str) or not periods.valid(period):
        raise Invalid("period must be YYYY-MM, a month of the years 2000 to 2999")
    return period


def _number_param(number: str) -> str:
    if numbering.parse(number) is None:
        raise Invalid("a document number looks like 2026-000001 (invoice) or CN-2026-000001 (credit note)")
    return number


def _found(invoice: Invoice | None, tenant_id: str, period: str, number: str | None = None) -> Invoice:
    if invoice is None:
        raise NotFound(f"tenant {tenant_id} has no invoice {number or 'for ' + period}")
    return invoice


def _amount(value: object, name: str) -> Decimal:
    """A money amount: a decimal string like "12.50" or a JSON number, > 0, at most two decimals."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise Invalid(f"{name} must be a decimal string such as \"12.50\"")
    if isinstance(value, str) and not _AMOUNT.fullmatch(value):
        raise Invalid(f"{name} must be a decimal string such as \"12.50\" (ASCII digits, at most two decimals)")
    try:
        amount = Decimal(value)
        exact = amount.is_finite() and amount == amount.quantize(Decimal("0.01"))
    except InvalidOperation:
        exact = False
    if not exact or amount > MAX_AMOUNT:
        raise Invalid(f"{name} must be an amount of at most {MAX_AMOUNT:,} with at most two decimals")
    if amount <= 0:
        raise Invalid(f"{name} must be more than 0")
    return amount


def _listing_token(invoice: Invoice) -> str:
    return f"{invoice['period']}~{invoice.get('number') or 'draft'}"


def _valid_listing_token(token: str) -> bool:
    period, _, number = token.partition("~")
    return periods.valid(period) and (number == "draft" or numbering.parse(number) is not None)


def _listing_key(token: str) -> tuple:
    period, _, number = token.partition("~")
    return period, (("", 0, 0) if number == "draft" or numbering.parse(number) is None else numbering.sort_key(number))
