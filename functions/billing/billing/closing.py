"""Closing a period: every tenant's invoice drafted, numbered without gaps, and stored — for any number of tenants.

Why every usage event is billed exactly once, whatever the timing
-----------------------------------------------------------------
Ingestion decides nothing about invoices: it counts each event into a counter of the day it happened, and every
counter carries the server time of its last write (`written_at`). The close of period P for tenant T, not the
ingestion, decides what is billed, from T's ledger:

1. It reads the ledger; the read's server time R is this close's watermark.
2. It reads all of T's counters of P (P's own usage, whenever it arrived; live counters and rollup in one query),
   and finds every earlier period with a counter written after the previous close's watermark. For each such
   period Q it reads Q's counters and subtracts what the ledger says was billed for Q: the difference is late
   usage, billed now.
3. It writes the draft invoice, what it billed for P and each Q, and the watermark R in one atomic batch,
   conditional on the ledger being unchanged since step 1.

A counter written before R is visible to the reads of step 2. One written after R has `written_at` > R and is
found by the next close of T, however many periods later. One caught by both is billed once, because each close
bills only the difference between the counters and the ledger. No instance's view of "open" or "closed" is
involved, so no cache lifetime has to line up with anything. `max` meters are compared per run of days under one
tier: a late event is charged only for what it adds above the peak already billed.

Rollups keep it so. A period's counters are one collection holding the live counters and the period's rollup;
the daily rollup (rollups.py) moves counters into the rollup in one atomic commit that writes the rollup (unless
it changed since read) and deletes each counter it took (unless that changed since read). Hence, at every instant,
each counted event is in exactly one document of its period: a live counter or the rollup — never both, never
neither — and a period's total is read at one instant by the one query that returns both (step 2 reads each period
that way). A rollup's `written_at` is the latest `written_at` among the counters it took, not the time of the
rollup, so "written after the watermark" survives a rollup:
- a straggler counted after R lands on a live counter with `written_at` > R; if a rollup takes that counter before
  the next close, the rollup's `written_at` is at least as late, so the next close still finds its period and
  bills the difference to the ledger — once;
- a straggler racing the rollup lands either before the rollup's commit (on a counter the rollup read: its update
  fails the rollup's precondition, nothing moves, and the counter keeps it; or on a counter the rollup did not read,
  which stays live) or after it (on a counter the commit deleted, which starts again from zero, or a new one);
- a rollup interrupted before its commit changed nothing; one redelivered after its commit finds nothing left to
  move. A rollup never changes a period's total, so the ledger's differences are untouched by it.
A draft therefore reads, per month, the rollup plus the counters written since it (for a closed month, its last day
or so): O(meters) documents rather than one per day, meter and shard.

A close reads a page of tenants at once (`_page_reads`): the ledgers (the watermark R of each is the read time of
that lookup, made before any counter is read) and, in one query at one instant, every counter and rollup of the
page's tenants. That holds every document of P and every document written after each watermark, which is all that
steps 1 and 2 read (a period found that way is then read in full). A credit grant is read only for a tenant whose
ledger says it has one: adding a grant says so in the ledger in the grant's own commit, so a close that read the
ledger before cannot commit (step 3) and drafts again.

A month asked to close while the one before it is still closing waits for it and starts when it ends.

Periods a tenant's previous close skipped over (an operator may close March after January) are read in full, so
their usage is late usage whenever it was counted.

Scale: an HTTP or scheduled close only records the period as `closing` and publishes the first chunk message. Each
chunk takes the next CHUNK tenants after the previous chunk's last, cut once (every delivery of a chunk drafts the
same tenants, whatever is created meanwhile; a tenant created after its place was cut is billed by the next close),
publishes the following chunk at once (so chunks overlap) and drafts its own, reading their ledgers, SLA reports
and counters in a few requests for the whole chunk; a marker per chunk keeps the
progress counters exact under redelivery (a chunk already drafted is not drafted again), and each step publishes the
next once per run of the close. Numbering follows drafting chunk by chunk: one step per chunk, in chunk (so tenant)
order, issues its drafts in one transaction with the year's invoice counter (reading them by key: no query) once its
chunk is drafted and the step before it is done, and hands on a step that archives what it issued. Whichever of
"chunk k drafted" and "step k - 1 numbered" is recorded second hands on step k: each side records its own marker and
then reads the other's, so at least one of them sees both. Every step is idempotent and each
message names its step, so redelivery or a crash anywhere resumes without gaps or doubles, and no invocation or
document grows with the number of tenants. The close is `closed` once every chunk is numbered: every invoice is
issued then. Archiving and announcing the documents (rendering JSON, HTML, PDF and UBL: most of a close's CPU) runs
in steps of its own, on other instances, and is counted in `steps_stored`; a document asked for before its step
stored it is stored from its issued record when it is read.

Held drafts: a tenant without a billing profile is drafted like any other, but the numbering step leaves its draft
unnumbered (`held`). The step reads the tenants' records inside its transaction, so a profile set at the same
moment is either seen by the step (the draft is issued) or committed after it (and the tenant-events message of
that change, processed after the commit, finds the draft held and issues it). Either way no draft stays held once
its tenant has a profile.
"""

from __future__ import annotations

import datetime
import json
import logging
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
from billing.store.usage_counters import WATERMARK_MARGIN, UsageStore, totals_of, written_at
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")

CLOSE_TYPE = "ai.energent.billing.period.close.v1"  # Cloud Scheduler / operators: {period?}
CHUNK_TYPE = "ai.energent.billing.period.chunk.v1"  # {period, chunk, run}: draft the next tenants
NUMBER_TYPE = "ai.energent.billing.period.number.v1"  # {period, step, run}: number the next drafts
ARCHIVE_TYPE = "ai.energent.billing.period.archive.v1"  # {period, step}: store and announce what a step issued
STORE_TYPE = "ai.energent.billing.document.store.v1"  # {tenant_id, number}: archive a document as issued
CHUNK = 100
DRAFT_WORKERS = 8


@dataclass(frozen=True)
class Prefetched:
    """What a page of a close read for one tenant: its ledger snapshot (the watermark is its read time), all of its
    counters and rollups, read after the ledger (Closer._page_reads), its SLA report for the period."""

    ledger: Any
    counters: list
    sla: dict | None
    has_grants: bool | None  # for a ledger that does not say: whether the tenant had an open grant when read


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
        self.dispatch(CHUNK_TYPE, {"period": period, "chunk": 0, "run": uuid.uuid4().hex})
        log_event(logger, "period.close_started", period=period, resumed=resumed)

    # --- drafting, one chunk of tenants at a time -------------------------------------------------------------

    def _hand_on(self, run: str, event_type: str, data: dict, step: str) -> None:
        """Publish the next step once per run of the close, however often this step is delivered."""
        if not self.periods.handed_on(data["period"], step, run):
            self.dispatch(event_type, {**data, "run": run})
            self.periods.mark_handed_on(data["period"], step, run)

    def draft_chunk(self, period: str, chunk: int, run: str) -> None:
        record = self.periods.get(period)
        if record is None or record["status"] != "closing" or record.get("waiting"):
            return
        ids = self.periods.chunk_tenants(period, chunk, CHUNK, self.tenants.ids_after)
        if ids is None:
            log_event(logger, "period.chunk_refused", severity=logging.WARNING, period=period, chunk=chunk,
                      reason="the chunk before it was not cut full")
            return  # no such chunk (a stray or forged message)
        if len(ids) == CHUNK:
            self._hand_on(run, CHUNK_TYPE, {"period": period, "chunk": chunk + 1}, f"chunk-{chunk + 1}")
        if self.periods.chunk_done(period, chunk):
            # Drafted before (a redelivery, or a resumed run walking on), so its numbering may have begun: a draft
            # made now could be missed by it (a tenant not drafted here is billed by the next close). The delivery
            # that drafted it may have stopped before handing on its numbering: look again.
            self._number_when_ready(period, chunk, run)
            return
        if len(ids) < CHUNK:
            self.periods.last_chunk(period, chunk + 1)
        page = self.tenants.fresh(ids)
        reads = self._page_reads([tenant["tenant_id"] for tenant in page], period)
        with ThreadPoolExecutor(DRAFT_WORKERS) as pool:
            has = list(pool.map(lambda t: self.draft(t, period, reads[t["tenant_id"]]), page))
        drafted = [tenant["tenant_id"] for tenant, drafted_one in zip(page, has, strict=True) if drafted_one]
        self.periods.chunk_drafted(period, chunk, len(page), drafted)
        self._number_when_ready(period, chunk, run)

    def _number_when_ready(self, period: str, chunk: int, run: str) -> None:
        """Hand on numbering step `chunk` if the step before it is done. Numbering step k needs chunk k drafted and
        step k - 1 numbered; each side first records its own part and then reads the other's, so whichever of the
        two finishes second sees both and hands it on (both may: handing on is idempotent)."""
        if chunk == 0 or self.periods.numbered(period, chunk - 1):
            self._hand_on(run, NUMBER_TYPE, {"period": period, "step": chunk}, f"number-{chunk}")

    def _page_reads(self, tenant_ids: list[str], period: str) -> dict[str, Prefetched]:
        """What the drafts of a page of tenants read, in one request and one query rather than several per tenant:
        their ledgers and SLA reports in one lookup, and every counter and rollup of the page's run of tenant ids in
        one query (a page is consecutive ids), made after the lookup. That holds every document of the period and
        every one written after each tenant's watermark, which is all a draft uses (`_compose`)."""
        refs = [self.ledger.ref(t) for t in tenant_ids] + [self.sla.ref(t, period) for t in tenant_ids]
        found = {snapshot.reference.path: snapshot for snapshot in self.ledger.db.get_all(refs)}
        ledgers = {t: found[self.ledger.ref(t).path] for t in tenant_ids}
        counters = self.usage.counters_of_range(min(tenant_ids), max(tenant_ids)) if tenant_ids else {}
        undecided = [t for t, s in ledgers.items() if "has_grants" not in (s.to_dict() or {})]
        with_grants = self.grants.tenants_with_open_grants() if undecided and self.grants is not None else set()
        return {t: Prefetched(ledgers[t], counters.get(t, []), found[self.sla.ref(t, period).path].to_dict(),
                              t in with_grants if t in undecided else None)
                for t in tenant_ids}

    def draft(self, tenant: Tenant, period: str, prefetched: Prefetched | None = None) -> bool:
        """Draft the tenant's invoice for `period` from its ledger (see the module docstring); True if it has one.
        `prefetched`: what its page read for it (the first attempt uses it; another attempt reads afresh)."""
        tenant_id = tenant["tenant_id"]
        while True:
            seen = prefetched.ledger if prefetched is not None else self.ledger.read(tenant_id)
            ledger = seen.to_dict() or {}
            if ledger.get("last_closed", "") >= period:
                return ledger.get("invoiced") == period
            draft, billed_base_fees, own, late, taken, has_grants = self._compose(tenant, period, ledger,
                                                                                  prefetched=prefetched)
            prefetched = None
            base_fees = ledger.get("base_fees", {})
            new_ledger = {"read_at": seen.read_time, "last_closed": period,
                          "billing_start": tenant.get("billing_start"),
                          "invoiced": period if draft else ledger.get("invoiced"),
                          "base_fees": {**base_fees, **billed_base_fees}, "has_grants": has_grants}
            billed = {period: own, **{item.period: item.current for item in late}}
            record = None if draft is None else {**draft, "status": "draft"}
            if self.ledger.commit(tenant_id, seen, new_ledger, billed, record, period, grants=taken):
                return draft is not None
            # A concurrent close of this tenant committed first (or a grant it took changed meanwhile, or a grant
            # was added): read its ledger and go by that.

    def _compose(self, tenant: Tenant, period: str, ledger: dict, settled_through: str | None = None,
                 prefetched: Prefetched | None = None):
        """(draft with parties and VAT or None, base fees billed per period, own usage, late periods, what it takes
        of the credit grants, whether it has grants left); with `settled_through`, only periods up to it count as
        late. A tenant's grants are read only if its ledger says it has some (Grants.add says so in the ledger, so a
        close that read the ledger before a grant was added cannot commit), or does not say (never closed since)."""
        tenant_id = tenant["tenant_id"]
        watermark = ledger.get("read_at")
        if prefetched is not None:
            own = totals_of([s for s in prefetched.counters if s.get("period") == period])
            earlier = {s.get("period") for s in prefetched.counters if watermark is None
                       or ((at := written_at(s)) is not None and at > watermark - WATERMARK_MARGIN)}
            sla = prefetched.sla
        else:
            own = self.usage.day_totals(tenant_id, period)
            earlier = self.usage.periods_written_since(tenant_id, watermark)
            sla = self.sla.get(tenant_id, period)
        if ledger.get("last_closed"):  # periods the last close skipped over: read in full
            earlier |= set(periods.between(periods.following(ledger["last_closed"]), periods.preceding(period)))
        late = [invoice.LatePeriod(q, days, self.ledger.billed(tenant_id, q)) for q in sorted(earlier)
                if q < period and (settled_through is None or q <= settled_through)
                and (days := self.usage.day_totals(tenant_id, q))]
        draft, base_fees = invoice.draft(
            self.book, tenant, period, own, late, ledger.get("base_fees", {}), sla,
            recheck_base_fees=ledger.get("billing_start") != tenant.get("billing_start"),
            settled_through=settled_through)
        taken: list = []
        has_grants = ledger.get("has_grants")
        if has_grants is None:  # never said (a tenant not closed since grants were noted in the ledger)
            has_grants = prefetched.has_grants if prefetched is not None and prefetched.has_grants is not None \
                else True
        if draft is not None and self.grants is not None and has_grants:
            available = self.grants.available(tenant_id)
            has_grants = bool(available)
            draft, given = grants.apply(dict(draft), [grant for grant, _ in available], period)  # type: ignore[assignment]
            taken = self.grants.uses(tenant_id, given, {g["grant_id"]: at for g, at in available}, period)
        if draft is not None:
            draft = invoice.settle(draft, parties(self.seller, tenant))
        return draft, base_fees, own, late, taken, has_grants

    def preview(self, tenant: Tenant, period: str) -> Invoice | None:
        """The tenant's invoice for the open `period` as it stands now (nothing is written): only periods already
        closed count as late; one that has ended but is not closed yet gets its own invoice at its close."""
        return self._compose(tenant, period, self.ledger.read(tenant["tenant_id"]).to_dict() or {},
                             settled_through=self.periods.latest() or "")[0]

    # --- numbering --------------------------------------------------------------------------------------------

    def number(self, period: str, step: int, run: str) -> None:
        """Issue a chunk's drafts, hand on the archiving of what it issued, and hand on to the next step if its chunk
        is drafted (so numbering follows drafting chunk by chunk and never waits for storage). A draft of a tenant
        without a billing profile is held: it gets no number until the profile is set (`issue_held`). The close is
        done when every chunk is numbered; each step's documents are archived and announced after it (archived()).
        Numbers belong to the year in which they are issued."""
        if not self.periods.chunk_done(period, step) or (step > 0 and not self.periods.numbered(period, step - 1)):
            return  # a step is numbered once its chunk is drafted and the step before it numbered, whoever sent it
        # Read after the chunk's marker: the last chunk records the count of chunks before it drafts.
        record = self.periods.get(period)
        if record is None or record["status"] == "closed":
            return
        last_step = record["chunks_total"] is not None and step + 1 >= record["chunks_total"]
        now = self.clock()
        issued_fields = invoice.issue_fields(now, self.seller.payment_terms_days)

        def decide(draft: Invoice, tenant: dict | None, balance, numbers) -> lifecycle.Change | None:
            if not tenant or not tenant.get("billing_profile"):
                return None
            return lifecycle.issue(draft, lambda d: invoice.settle(d, parties(self.seller, tenant)), numbers,
                                   issued_fields, balance, now)

        self.invoices.issue_step(period, self.periods.numbering_ref(period, step), self.periods.ref(period),
                                 last_step, self.periods.chunk(period, step).get("drafted", []), decide,
                                 int(issued_fields["issue_date"][:4]))
        # Archiving is a step of its own (rendering is most of a close's CPU: other instances do it while this one
        # numbers on); it is handed on before the close can end, so a close never ends with a step not archived.
        self._hand_on(run, ARCHIVE_TYPE, {"period": period, "step": step}, f"archive-{step}")
        if last_step:
            self._closed(period)
        elif self.periods.chunk_done(period, step + 1):  # else drafting the next chunk hands its numbering on
            self._hand_on(run, NUMBER_TYPE, {"period": period, "step": step + 1}, f"number-{step + 1}")

    def archive(self, period: str, step: int) -> None:
        """Store and announce what numbering step `step` issued, as issued (create-only: a redelivery stores nothing
        twice, and announces the same events with the same ids)."""
        marker = self.periods.numbering_ref(period, step).get().to_dict()
        if marker is None:
            return  # not numbered (a forged or stray message)
        pairs = [pair.split(" ") for pair in marker.get("invoices", [])]
        issued = [found[1] for tenant_id, number in pairs
                  if (found := self.invoices.issued_document(tenant_id, number)) is not None]

        def publish(document: Invoice) -> None:
            issued_document = lifecycle.as_issued(document)
            self.files(issued_document)  # type: ignore[arg-type]
            self.announce("issued", issued_document)  # type: ignore[arg-type]

        with ThreadPoolExecutor(DRAFT_WORKERS) as pool:
            list(pool.map(publish, issued))
        record = self.periods.stored(period, step)
        if closing_rules.archived(record):
            log_event(logger, "period.archived", period=period, invoices=record["issued"])

    def _closed(self, period: str) -> None:
        """Every chunk is numbered: the period is closed (once), and a month waiting for it starts closing."""
        record = self.periods.get(period) or {}
        if not closing_rules.finished(record) or record["status"] == "closed":
            return
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
            self.draft_chunk(period, step, run)
        elif event_type == NUMBER_TYPE:
            self.number(period, step, run)
        elif event_type == ARCHIVE_TYPE:
            self.archive(period, step)
