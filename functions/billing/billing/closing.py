"""Closing a period: every tenant's invoice drafted, numbered without gaps, and stored — for any number of tenants.

Why every usage event is billed exactly once, whatever the timing
-----------------------------------------------------------------
Ingestion decides nothing about invoices: it counts each event into a counter of the day it happened, and every
counter carries the server time of its last write (`written_at`). The close of period P for tenant T, not the
ingestion, decides what is billed, from T's ledger:

1. It reads the ledger; the read's server time R is this close's watermark.
2. It reads all of T's counters of P (P's own usage, whenever it arrived), and finds every earlier period with a
   counter written after the previous close's watermark. For each such period Q it reads Q's counters and
   subtracts what the ledger says was billed for Q: the difference is late usage, billed now.
3. It writes the draft invoice, what it billed for P and each Q, and the watermark R in one atomic batch,
   conditional on the ledger being unchanged since step 1.

A counter written before R is visible to the reads of step 2. One written after R has `written_at` > R and is
found by the next close of T, however many periods later. One caught by both is billed once, because each close
bills only the difference between the counters and the ledger. No instance's view of "open" or "closed" is
involved, so no cache lifetime has to line up with anything. `max` meters are compared per run of days under one
tier: a late event is charged only for what it adds above the peak already billed.

A month asked to close while the one before it is still closing waits for it and starts when it ends.

Periods a tenant's previous close skipped over (an operator may close March after January) are read in full, so
their usage is late usage whenever it was counted.

Scale: an HTTP or scheduled close only records the period as `closing` and publishes the first chunk message.
Each chunk lists the next CHUNK tenants, publishes the following chunk at once (so chunks overlap) and drafts
its own; a marker per chunk keeps the progress counters exact under redelivery (a chunk already drafted is not
drafted again), and each step publishes the next once per run of the close. Numbering starts only when every
chunk is drafted: one step per chunk, in chunk (so tenant) order, issues its drafts in one transaction with the
year's invoice counter (reading them by key: no query), hands on to the next step, then stores its documents while
the next step numbers. Every step is idempotent and each message names its step, so redelivery or a crash
anywhere resumes without gaps or doubles, and no invocation or document grows with the number of tenants. The
close is `closed` once every chunk is numbered and every step's documents are stored.

Held drafts: a tenant without a billing profile is drafted like any other, but the numbering step leaves its draft
unnumbered (`held`). The step reads the tenants' records inside its transaction, so a profile set at the same
moment is either seen by the step (the draft is issued) or committed after it (and the tenant-events message of
that change, processed after the commit, finds the draft held and issues it). Either way no draft stays held once
its tenant has a profile.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from billing import closing_rules, grants, invoice, lifecycle, periods
from billing.errors import Conflict, Invalid
from billing.parties import Seller, parties
from billing.pricing import PriceBook
from billing.records import Invoice, Tenant
from billing.store.closes import Periods
from billing.store.grants import Grants
from billing.store.invoices import Invoices
from billing.store.ledger import Ledger
from billing.store.sla_reports import SlaReports
from billing.store.tenant_records import TenantCache
from billing.store.usage_counters import UsageStore
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")

CLOSE_TYPE = "ai.energent.billing.period.close.v1"  # Cloud Scheduler / operators: {period?}
CHUNK_TYPE = "ai.energent.billing.period.chunk.v1"  # {period, chunk, after, run}: draft the next tenants
NUMBER_TYPE = "ai.energent.billing.period.number.v1"  # {period, step, run}: number the next drafts
STORE_TYPE = "ai.energent.billing.document.store.v1"  # {tenant_id, number}: archive a document as issued
CHUNK = 100
DRAFT_WORKERS = 8


@dataclass
class Closer:
    book: PriceBook
    seller: Seller
    usage: UsageStore
    ledger: Ledger
    periods: Periods
    sla: SlaReports
    invoices: Invoices
    tenants: TenantCache
    files: Callable[[dict], None]  # stores an issued document in the archive
    dispatch: Callable[[str, dict], None]  # (event type, data): publish to billing-events
    clock: Callable[[], datetime.datetime]
    announce: Callable[[str, dict], None]  # (issued | paid | credited, document)
    grants: Grants | None = None  # credit grants the drafts take (grants.py)

    # --- starting ---------------------------------------------------------------------------------------------

    def start(self, period: str) -> dict:
        """Begin closing `period` (idempotent); returns its progress."""
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        now = self.clock()
        if not periods.has_ended(period, now):
            raise Conflict(f"period {period} has not ended; it can be closed from {periods.end(period):%Y-%m-%d}")
        record, created = self.periods.begin(period, now)
        if record.get("waiting"):
            earlier = self.periods.get(record["after"])
            if earlier is None or earlier["status"] != "closed":
                log_event(logger, "period.close_waiting", period=period, after=record["after"])
                return closing_rules.progress(period, self.periods.get(period))
            self.periods.stop_waiting(period)  # the earlier close ended but did not start this one: start it now
        if created or record["status"] == "closing":
            # Again for a close already under way: every step is idempotent, so a new run resumes one that stalled.
            self._run(period, resumed=not created)
        return closing_rules.progress(period, self.periods.get(period))

    def _run(self, period: str, resumed: bool) -> None:
        self.dispatch(CHUNK_TYPE, {"period": period, "chunk": 0, "after": "", "run": uuid.uuid4().hex})
        log_event(logger, "period.close_started", period=period, resumed=resumed)

    # --- drafting, one chunk of tenants at a time -------------------------------------------------------------

    def _hand_on(self, run: str, event_type: str, data: dict, step: str) -> None:
        """Publish the next step once per run of the close, however often this step is delivered."""
        if not self.periods.handed_on(data["period"], step, run):
            self.dispatch(event_type, {**data, "run": run})
            self.periods.mark_handed_on(data["period"], step, run)

    def draft_chunk(self, period: str, chunk: int, after: str, run: str) -> None:
        record = self.periods.get(period)
        if record is None or record["status"] != "closing" or record.get("waiting"):
            return
        page = self.tenants.page(after or None, CHUNK)
        if len(page) == CHUNK:
            self._hand_on(run, CHUNK_TYPE, {"period": period, "chunk": chunk + 1, "after": page[-1]["tenant_id"]},
                          f"chunk-{chunk + 1}")
        drafted_all = closing_rules.all_drafted(self.periods.get(period))
        if drafted_all or self.periods.chunk_done(period, chunk):
            # Drafted before (a redelivery, or a resumed run walking on), or numbering may have begun: a draft made
            # now could be missed by it. Tenants not drafted here are billed by the next close (late usage and fees).
            if drafted_all:
                self._hand_on(run, NUMBER_TYPE, {"period": period, "step": 0}, "number-0")
            return
        if len(page) < CHUNK:
            self.periods.last_chunk(period, chunk + 1)
        with ThreadPoolExecutor(DRAFT_WORKERS) as pool:
            drafted = [tenant["tenant_id"] for tenant, has in zip(page, pool.map(lambda t: self.draft(t, period), page),
                                                                   strict=True) if has]
        if self.periods.chunk_drafted(period, chunk, len(page), drafted):
            self._hand_on(run, NUMBER_TYPE, {"period": period, "step": 0}, "number-0")

    def draft(self, tenant: Tenant, period: str) -> bool:
        """Draft the tenant's invoice for `period` from its ledger (see the module docstring); True if it has one."""
        tenant_id = tenant["tenant_id"]
        while True:
            seen = self.ledger.read(tenant_id)
            ledger = seen.to_dict() or {}
            if ledger.get("last_closed", "") >= period:
                return ledger.get("invoiced") == period
            draft, billed_base_fees, own, late, taken = self._compose(tenant, period, ledger)
            base_fees = ledger.get("base_fees", {})
            new_ledger = {"read_at": seen.read_time, "last_closed": period,
                          "billing_start": tenant.get("billing_start"),
                          "invoiced": period if draft else ledger.get("invoiced"),
                          "base_fees": {**base_fees, **billed_base_fees}}
            billed = {period: own, **{item.period: item.current for item in late}}
            record = None if draft is None else {**draft, "status": "draft"}
            if self.ledger.commit(tenant_id, seen, new_ledger, billed, record, period, grants=taken):
                return draft is not None
            # A concurrent close of this tenant committed first (or a grant it took changed meanwhile): read its
            # ledger and go by that.

    def _compose(self, tenant: Tenant, period: str, ledger: dict, settled_through: str | None = None):
        """(draft with parties and VAT or None, base fees billed per period, own usage, late periods, what it takes
        of the credit grants); with `settled_through`, only periods up to it count as late."""
        tenant_id = tenant["tenant_id"]
        own = self.usage.day_totals(tenant_id, period)
        earlier = self.usage.periods_written_since(tenant_id, ledger.get("read_at"))
        if ledger.get("last_closed"):  # periods the last close skipped over: read in full
            earlier |= set(periods.between(periods.following(ledger["last_closed"]), periods.preceding(period)))
        late = [invoice.LatePeriod(q, days, self.ledger.billed(tenant_id, q)) for q in sorted(earlier)
                if q < period and (settled_through is None or q <= settled_through)
                and (days := self.usage.day_totals(tenant_id, q))]
        draft, base_fees = invoice.draft(
            self.book, tenant, period, own, late, ledger.get("base_fees", {}), self.sla.get(tenant_id, period),
            recheck_base_fees=ledger.get("billing_start") != tenant.get("billing_start"),
            settled_through=settled_through)
        taken: list = []
        if draft is not None and self.grants is not None:
            available = self.grants.available(tenant_id)
            draft, given = grants.apply(dict(draft), [grant for grant, _ in available], period)  # type: ignore[assignment]
            taken = self.grants.uses(tenant_id, given, {g["grant_id"]: at for g, at in available}, period)
        if draft is not None:
            draft = invoice.settle(draft, parties(self.seller, tenant))
        return draft, base_fees, own, late, taken

    def preview(self, tenant: Tenant, period: str) -> Invoice | None:
        """The tenant's invoice for the open `period` as it stands now (nothing is written): only periods already
        closed count as late; one that has ended but is not closed yet gets its own invoice at its close."""
        return self._compose(tenant, period, self.ledger.read(tenant["tenant_id"]).to_dict() or {},
                             settled_through=self.periods.latest() or "")[0]

    # --- numbering --------------------------------------------------------------------------------------------

    def number(self, period: str, step: int, run: str) -> None:
        """Issue the next chunk's drafts and hand on to the next step at once, then store this step's documents (so
        numbering never waits for storage). A draft of a tenant without a billing profile is held: it gets no
        number until the profile is set (`issue_held`). The close is done when every chunk is numbered and every
        step's documents are stored. Numbers belong to the year in which they are issued."""
        record = self.periods.get(period)
        if record is None or record["status"] == "closed" or not closing_rules.all_drafted(record):
            return  # numbering begins only once every chunk is drafted, whoever sent this step
        last_step = step + 1 >= record["chunks_total"]
        now = self.clock()
        issued_fields = invoice.issue_fields(now, self.seller.payment_terms_days)
        marker = self.periods.ref(period).collection("numbering").document(f"{step:06d}")

        def decide(draft: Invoice, tenant: dict | None, balance, numbers) -> lifecycle.Change | None:
            if not tenant or not tenant.get("billing_profile"):
                return None
            return lifecycle.issue(draft, lambda d: invoice.settle(d, parties(self.seller, tenant)), numbers,
                                   issued_fields, balance, now)

        issued, did = self.invoices.issue_step(period, marker, self.periods.ref(period), last_step, self.periods.chunk(
            period, step).get("drafted", []), decide, int(issued_fields["issue_date"][:4]))
        if not did:  # a redelivered step: what it issued the first time, as issued
            pairs = [pair.split(" ") for pair in (marker.get().to_dict() or {}).get("invoices", [])]
            issued = [found[1] for tenant_id, number in pairs  # type: ignore[misc]
                      if (found := self.invoices.issued_document(tenant_id, number)) is not None]
        if not last_step:  # hand on first: the next step numbers while this one stores
            self._hand_on(run, NUMBER_TYPE, {"period": period, "step": step + 1}, f"number-{step + 1}")

        def publish(document: Invoice) -> None:
            issued_document = lifecycle.as_issued(document)
            self.files(issued_document)  # type: ignore[arg-type]
            self.announce("issued", issued_document)  # type: ignore[arg-type]

        with ThreadPoolExecutor(DRAFT_WORKERS) as pool:
            list(pool.map(publish, issued))
        record = self.periods.stored(period, step)
        if closing_rules.finished(record) and record["status"] != "closed":
            self.periods.closed(period, self.clock())
            log_event(logger, "period.closed", period=period, invoices=record["issued"], held=record.get("held", 0))
            following = self.periods.successor(period)
            if following is not None:  # a later month asked to close while this one was closing
                self.periods.stop_waiting(following)
                self._run(following, resumed=False)

    def on_event(self, event_type: str, data: Any) -> None:
        """A step of a close, delivered by Pub/Sub (at least once)."""
        if not isinstance(data, dict) or not periods.valid(data.get("period")):
            raise Invalid(f"{event_type} needs data.period as YYYY-MM, got {json.dumps(data, default=str)[:100]}")
        period, step, run = data["period"], data.get("chunk", data.get("step", 0)), str(data.get("run") or "")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise Invalid(f"{event_type}: the step must be a non-negative integer, got {step!r}")
        if event_type == CHUNK_TYPE:
            self.draft_chunk(period, step, str(data.get("after") or ""), run)
        elif event_type == NUMBER_TYPE:
            self.number(period, step, run)
