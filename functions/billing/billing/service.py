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
from billing.money import plain
from billing.pricing import PriceBook
from billing.store import Invoices, Ledger, Overflow, Periods, SlaReports, TenantCache, UsageStore, utcnow
from billing.usage import Rejected, total, validate
from energent_shared.events import InvalidEvent
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

    def _tenant(self, tenant_id: str) -> dict:
        tenant = self.tenants.get(tenant_id)
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
        """Issued invoices, oldest period first; `page_token` is the last period of the previous page."""
        if page_token and not periods.valid(page_token):
            raise Invalid("page_token is not valid")
        found = [i for i in self.invoices_store.issued(tenant_id) if not page_token or i["period"] > page_token]
        page = found[:size]
        return {"invoices": page, "next_page_token": page[-1]["period"] if len(found) > size else ""}

    def invoice(self, tenant_id: str, period: str) -> dict:
        if not periods.valid(period):
            raise Invalid("period must be YYYY-MM")
        found = self.invoices_store.get(tenant_id, period)
        if found is None or found.get("status") == "draft":
            raise NotFound(f"tenant {tenant_id} has no invoice for {period}")
        return found

    # --- SLA reports ------------------------------------------------------------------------------------------

    def report_sla(self, tenant_id: str, body: dict) -> dict:
        unknown = set(body) - {"period", "availability_pct", "p95_latency_ms", "rto_minutes"}
        if unknown:
            raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
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
            raise Conflict(f"period {period} is closing or closed; SLA reports count only before its close starts")
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


def build(db, files: InvoiceFiles, dispatch: Callable[[str, dict], None], book: PriceBook,
          clock: Callable[[], datetime.datetime] = utcnow) -> Billing:
    """Billing over Firestore `db`, issuing documents to `files`; `dispatch` publishes a close's next step."""
    usage, tenants, sla, period_store, invoices = (UsageStore(db), TenantCache(db), SlaReports(db), Periods(db),
                                                   Invoices(db))
    closer = Closer(book, usage, Ledger(db), period_store, sla, invoices, tenants, files.store, dispatch, clock)
    return Billing(book, usage, tenants, sla, period_store, invoices, closer, clock)


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
    data = event.get_data()
    return {"type": event["type"], "time": event.get("time"),
            "data": json.loads(json.dumps(data, default=str)) if isinstance(data, dict) else None}
