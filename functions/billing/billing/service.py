"""Billing over its adapters: ingest usage exactly once, answer usage questions, take SLA reports, close periods
into numbered invoices in Firestore and Cloud Storage."""

from __future__ import annotations

import datetime
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cloudevents.http import CloudEvent

from billing import invoice, periods
from billing.money import from_micros, plain
from billing.pricing import PriceBook
from billing.store import PERIODS, PeriodStatus, TenantCache, Totals, UsageStore, utcnow
from billing.usage import Rejected, validate
from energent_shared import firestore
from energent_shared.events import InvalidEvent
from energent_shared.http import Problem, page_size_param
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")
INGEST_WORKERS = 8
CLOSE_WORKERS = 8
NUMBERING_CHUNK = 200


@dataclass
class Billing:
    book: PriceBook
    usage: UsageStore
    period_status: PeriodStatus
    tenants: TenantCache
    db: Any
    invoice_bucket: str
    storage: Any  # () -> storage client

    # --- ingestion --------------------------------------------------------------------------------------------

    def _billed_in(self, period: str) -> str:
        """Usage of a closed period is billed in the next open one."""
        while self.period_status.is_closed(period):
            period = periods.following(period)
        return period

    def _one(self, event: CloudEvent | InvalidEvent, via: str, received_at: datetime.datetime) -> tuple[str, str]:
        """('accepted' | 'duplicate' | 'rejected', reason)."""
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
        except Rejected as rejected:
            return "rejected", str(rejected)
        counted = self.usage.record(usage, self._billed_in(usage.period), via)
        return ("accepted" if counted else "duplicate"), ""

    def ingest(self, batch: list[CloudEvent | InvalidEvent], via: str) -> dict:
        received_at = utcnow()
        if len(batch) == 1:
            results = [self._one(batch[0], via, received_at)]
        else:
            with ThreadPoolExecutor(INGEST_WORKERS) as pool:
                results = list(pool.map(lambda e: self._one(e, via, received_at), batch))
        summary = {"accepted": 0, "duplicates": 0, "rejected": []}
        for event, (outcome, reason) in zip(batch, results, strict=True):
            if outcome == "accepted":
                summary["accepted"] += 1
            elif outcome == "duplicate":
                summary["duplicates"] += 1
            else:
                event_id = event.event_id if isinstance(event, InvalidEvent) else event["id"]
                source = None if isinstance(event, InvalidEvent) else event["source"]
                summary["rejected"].append({"id": event_id, "reason": reason})
                self.usage.reject(reason, via, event_id, source, _describe(event))
        if summary["rejected"]:
            log_event(logger, "usage.rejected", severity=logging.WARNING, via=via, count=len(summary["rejected"]),
                      first_reason=summary["rejected"][0]["reason"])
        return summary

    # --- reads ------------------------------------------------------------------------------------------------

    def usage_of(self, tenant_id: str, period: str) -> dict:
        if not periods.valid(period):
            raise Problem(400, "period must be YYYY-MM")
        if self.tenants.get(tenant_id) is None:
            raise Problem(404, f"tenant {tenant_id} does not exist")
        totals = self.usage.happened_in(tenant_id, period)
        return {"tenant_id": tenant_id, "period": period, "meters": {
            meter: {"quantity": plain(self._quantity(meter, totals.get(meter, Totals()))),
                    "unit": definition.unit} for meter, definition in sorted(self.book.meters.items())}}

    def _quantity(self, meter: str, totals: Totals) -> Decimal:
        aggregation = self.book.meters[meter].aggregation
        if aggregation == "count":
            return Decimal(totals.count)
        return from_micros(totals.max_micros if aggregation == "max" else totals.sum_micros)

    def invoices(self, tenant_id: str, page_size: str | None = None, page_token: str | None = None) -> dict:
        """Final invoices, oldest period first; `page_token` is the last period of the previous page."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        size = page_size_param(page_size)
        if page_token and not periods.valid(page_token):
            raise Problem(400, "page_token is not valid")
        query = firestore.tenant_collection(tenant_id, "invoices", db=self.db).where(
            filter=FieldFilter("status", "==", "final"))
        found = sorted((snapshot.to_dict() for snapshot in query.stream()), key=lambda i: i["period"])
        found = [i for i in found if not page_token or i["period"] > page_token]
        page = found[:size]
        return {"invoices": page, "next_page_token": page[-1]["period"] if len(found) > size else ""}

    def invoice(self, tenant_id: str, period: str) -> dict:
        if not periods.valid(period):
            raise Problem(400, "period must be YYYY-MM")
        snapshot = firestore.tenant_doc(tenant_id, "invoices", period, db=self.db).get()
        if not snapshot.exists or snapshot.get("status") != "final":
            raise Problem(404, f"tenant {tenant_id} has no invoice for {period}")
        return snapshot.to_dict()

    # --- SLA reports ------------------------------------------------------------------------------------------

    def report_sla(self, tenant_id: str, body: dict) -> dict:
        unknown = set(body) - {"period", "availability_pct", "p95_latency_ms", "rto_minutes"}
        if unknown:
            raise Problem(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        period = body.get("period")
        if not periods.valid(period):
            raise Problem(400, "period must be YYYY-MM")
        if period > periods.of(utcnow()):
            raise Problem(400, f"period {period} has not started")
        report = {"period": period,
                  "availability_pct": _number(body, "availability_pct", maximum=Decimal(100)),
                  "p95_latency_ms": _number(body, "p95_latency_ms"),
                  "rto_minutes": _number(body, "rto_minutes") if body.get("rto_minutes") is not None else None}
        if self.tenants.get(tenant_id) is None:
            raise Problem(404, f"tenant {tenant_id} does not exist")
        if self.period_status.is_closed(period):
            raise Problem(409, f"period {period} is closed; SLA reports count only before close")
        firestore.tenant_doc(tenant_id, "sla_reports", period, db=self.db).set({**report, "received_at": utcnow()})
        return report

    # --- closing a period -------------------------------------------------------------------------------------

    def close(self, period: str, now: datetime.datetime | None = None) -> dict:
        """Invoice every tenant that owes a base fee or has usage for `period`. Idempotent; after a crash,
        calling it again finishes the job without numbering anything twice."""
        now = now or utcnow()
        if not periods.valid(period):
            raise Problem(400, "period must be YYYY-MM")
        if not periods.has_ended(period, now):
            raise Problem(409, f"period {period} has not ended; it can be closed from {periods.end(period):%Y-%m-%d}")
        ref = self.db.collection(PERIODS).document(period)
        if not firestore.create_if_absent(ref, {"status": "closing", "started_at": now}):
            existing = ref.get().to_dict()
            if existing["status"] == "closed":
                return {"period": period, "invoices": existing["invoices"]}
        tenants = [s.to_dict() for s in self.db.collection("tenants").stream()]
        with ThreadPoolExecutor(CLOSE_WORKERS) as pool:
            drafted = [t for t in pool.map(lambda t: self._draft(t, period), tenants) if t]
        self._number(sorted(drafted), period, now)
        summaries = []
        for tenant_id in sorted(drafted):
            final = firestore.tenant_doc(tenant_id, "invoices", period, db=self.db).get().to_dict()
            self._publish_files(final)
            summaries.append({"tenant_id": tenant_id, "number": final["number"], "total": final["total"],
                              "currency": final["currency"]})
        ref.update({"status": "closed", "closed_at": utcnow(), "invoices": summaries})
        log_event(logger, "period.closed", period=period, invoices=len(summaries))
        return {"period": period, "invoices": summaries}

    def _draft(self, tenant: dict, period: str) -> str | None:
        """Write the tenant's draft invoice and what it billed; returns the tenant id if it has an invoice."""
        tenant_id = tenant["tenant_id"]
        draft_ref = firestore.tenant_doc(tenant_id, "invoices", period, db=self.db)
        if draft_ref.get().exists:
            return tenant_id
        billed = self.usage.billed_in(tenant_id, period)
        own = {meter: totals for (happened, meter), totals in billed.items() if happened == period}
        late: dict[tuple[str, str], Totals] = {key: t for key, t in billed.items() if key[0] != period}
        # Usage of the previous period that arrived while it was being closed: late, billed now.
        previous = periods.preceding(period)
        snapshot_ref = firestore.tenant_doc(tenant_id, "billed_usage", previous, db=self.db)
        straggler_updates = None
        if self.period_status.is_closed(previous):
            invoiced = (snapshot_ref.get().to_dict() or {}).get("meters", {})
            current = self.usage.billed_in(tenant_id, previous)
            now_own = {meter: t for (happened, meter), t in current.items() if happened == previous}
            for meter, totals in now_own.items():
                extra = totals.minus(Totals.of(invoiced.get(meter)))
                if extra.count > 0:
                    late.setdefault((previous, meter), Totals()).add(extra)
            straggler_updates = {"meters": {m: t.as_dict() for m, t in now_own.items()}}
        quantities: dict[str, Decimal] = {}
        combined: dict[str, Totals] = {}
        for source in (own, {meter: t for (_, meter), t in late.items()}):
            for meter, totals in source.items():
                combined.setdefault(meter, Totals()).add(totals)
        for meter, totals in combined.items():
            quantities[meter] = self._quantity(meter, totals)
        late_usage = [{"period": happened, "meter": meter, "quantity": plain(self._quantity(meter, totals))}
                      for (happened, meter), totals in sorted(late.items())]
        owes = invoice.owes_base_fee(tenant, period)
        batch = self.db.batch()
        batch.set(firestore.tenant_doc(tenant_id, "billed_usage", period, db=self.db),
                  {"meters": {m: t.as_dict() for m, t in own.items()}})
        if straggler_updates is not None:
            batch.set(snapshot_ref, straggler_updates)
        has_usage = any(t.count > 0 for t in combined.values())
        if owes or has_usage:
            sla = firestore.tenant_doc(tenant_id, "sla_reports", period, db=self.db).get().to_dict()
            draft = invoice.build(self.book, tenant, period, quantities, late_usage, owes, sla)
            batch.create(draft_ref, {**draft, "status": "draft"})
        from google.api_core.exceptions import AlreadyExists  # lazily: it costs cold start

        try:
            batch.commit()
        except AlreadyExists:  # a concurrent close drafted it first; theirs stands
            pass
        return tenant_id if (owes or has_usage) else None

    def _number(self, tenant_ids: list[str], period: str, now: datetime.datetime) -> None:
        """Give drafts their numbers in tenant order, in transactions that also move the year's counter:
        a number exists only with its invoice, so the sequence has no gaps."""
        year = now.year
        counter = self.db.collection("invoice_counters").document(str(year))
        for start in range(0, len(tenant_ids), NUMBERING_CHUNK):
            chunk = tenant_ids[start:start + NUMBERING_CHUNK]
            refs = [firestore.tenant_doc(t, "invoices", period, db=self.db) for t in chunk]

            def assign(transaction, refs=refs):
                last = (counter.get(transaction=transaction).to_dict() or {}).get("last", 0)
                drafts = [s for s in self.db.get_all(refs, transaction=transaction) if s.get("status") == "draft"]
                drafts.sort(key=lambda s: s.get("tenant_id"))
                issued_at = utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")
                for snapshot in drafts:
                    last += 1
                    transaction.update(snapshot.reference, {"number": invoice.number(year, last), "status": "final",
                                                            "issued_at": issued_at})
                transaction.set(counter, {"last": last})

            firestore.run_transaction(assign, db=self.db)

    def _publish_files(self, final: dict) -> None:
        bucket = self.storage().bucket(self.invoice_bucket)
        base = f"invoices/{final['period']}/{final['tenant_id']}"
        bucket.blob(f"{base}.json").upload_from_string(json.dumps(final, indent=2, sort_keys=True),
                                                       content_type="application/json")
        bucket.blob(f"{base}.html").upload_from_string(invoice.render_html(final), content_type="text/html")


def _number(body: dict, name: str, maximum: Decimal | None = None) -> str:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise Problem(400, f"{name} must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Problem(400, f"{name} must be a number") from None
    if not number.is_finite() or number < 0:
        raise Problem(400, f"{name} must be a finite, non-negative number")
    if maximum is not None and number > maximum:
        raise Problem(400, f"{name} must be at most {maximum}")
    return plain(number)


def _describe(event: CloudEvent | InvalidEvent) -> dict:
    if isinstance(event, InvalidEvent):
        return {"reason": event.reason}
    data = event.get_data()
    return {"type": event["type"], "time": event.get("time"),
            "data": json.loads(json.dumps(data, default=str)) if isinstance(data, dict) else None}
