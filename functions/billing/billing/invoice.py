"""An invoice drafted from its inputs (pure): lines that reconcile, proration by day, peaks as capacities, late usage
priced as the difference it makes to its own period, the SLA credit, and parties with VAT.

Every usage line shows the metered `quantity`, the `billable_quantity` above its allowance and what that was priced
with (`unit_price`, or `bands` whose quantities add up to it), so quantity times price is the amount before its one
rounding, half-up to cents. A line whose amount is a share of the month (a base fee or a peak of part of a month)
carries `proration: {days, days_in_month}` and its product is taken times days / days_in_month.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from billing import periods, proration
from billing.money import cents, plain
from billing.pricing import PriceBook, bands_of, plain_price, priced
from billing.records import Invoice, LateEntry, Line, Tenant
from billing.sla import credit_pct
from billing.usage import DayTotals, total
from energent_shared.clock import rfc3339


@dataclass(frozen=True)
class LatePeriod:
    """An earlier period with usage counted after it was last invoiced: as it stands now, and as billed."""

    period: str
    current: DayTotals
    billed: DayTotals


def _proration(days: int, segment: proration.Segment) -> dict:
    return {} if days == segment.days_in_month else {"proration": {"days": days,
                                                                   "days_in_month": segment.days_in_month}}


def _capacity_days(segment: proration.Segment) -> int:
    """The days a peak is charged for: the segment's billed days (those owing the base fee), or all its days when
    none owes one (usage before the billing start)."""
    return segment.owed_days if segment.owed else segment.days


def usage_line(book: PriceBook, tier: str, meter: str, segment: proration.Segment, before: Decimal, after: Decimal,
               late_of: str | None = None) -> Line:
    """The line for raising `meter` from `before` to `after` in `segment` (before = 0: the segment's own usage),
    under the segment's plan: a `sum` or `count` meter against its allowance prorated to the segment's billed days,
    a `max` meter (a capacity) against its whole allowance with the price prorated by the days instead."""
    plan, definition = book.plan(tier), book.meters[meter]
    included = plan.included.get(meter, Decimal(0))
    capacity = definition.aggregation == "max"
    allowance = included if capacity else segment.allowance(included)
    cost = priced(before, after, allowance, bands_of(plan, meter))
    days = _capacity_days(segment)
    exact = cost.exact * days / segment.days_in_month if capacity else cost.exact
    when = segment.describe()
    line: Line = {"kind": "late_usage" if late_of else "usage", **({"period": late_of} if late_of else {}),
                  "meter": meter, "quantity": plain(after - before), "unit": definition.unit,
                  "included": plain(allowance), **cost.fields(),
                  **(_proration(days, segment) if capacity else {}), "amount": str(cents(exact))}
    if late_of is None:
        line["description"] = f"{definition.description}, {when}"
    elif capacity:
        line["description"] = (f"{definition.description}, {when}: the peak rose from {plain(before)} to "
                               f"{plain(after)} after {_month(late_of)} was invoiced")
    else:
        line["description"] = (f"{definition.description}, {when}: used in {_month(late_of)}, counted after it was "
                               "invoiced")
    return line


def _base_fee_line(book: PriceBook, segment: proration.Segment) -> Line:
    fee = book.plan(segment.tier).base_fee
    return {"kind": "base_fee", "unit_price": plain_price(fee), **_proration(segment.owed_days, segment),
            "amount": str(cents(segment.prorate(fee))), "description": _base_fee_description(segment)}


def _late_lines(book: PriceBook, tenant: Tenant, earlier: LatePeriod) -> tuple[list[Line], list[LateEntry]]:
    """What usage counted after `earlier` was invoiced adds to that period, priced there: one line per meter and run
    of days under one tier, priced as price(billed + late) - price(billed) with that run's plan and allowance."""
    lines: list[Line] = []
    entries: list[LateEntry] = []
    runs = proration.segments(tenant, earlier.period) or [_whole_month(tenant, earlier.period)]
    for meter in sorted(book.meters):
        aggregation = book.meters[meter].aggregation
        for segment in runs:
            now = total(earlier.current, meter, segment.holds).quantity(aggregation)
            billed = total(earlier.billed, meter, segment.holds).quantity(aggregation)
            if now > billed:
                lines.append(usage_line(book, segment.tier, meter, segment, billed, now, late_of=earlier.period))
                entries.append({"period": earlier.period, "meter": meter, "quantity": plain(now - billed)})
    return lines, entries


def _whole_month(tenant: Tenant, period: str) -> proration.Segment:
    days = periods.days(period)
    tier = proration.tier_on(proration.tier_history(tenant), days[-1])
    return proration.Segment(days[0], days[-1], tier, 0, len(days))


def draft(book: PriceBook, tenant: Tenant, period: str, own: DayTotals, late: list[LatePeriod],
          base_fees_billed: dict[str, str], sla_report: dict | None,
          recheck_base_fees: bool = True, settled_through: str | None = None) -> tuple[Invoice | None, dict[str, str]]:
    """The tenant's invoice for `period` without parties, `number`, `status` and the issue fields, or None when it
    owes nothing; and the base fee now billed per period (what the ledger keeps so no base fee is charged twice).

    For each run of days under one tier: a base-fee line and a usage line per meter with usage. A meter without
    usage all period gets one line (nothing charged), never one per run. Late usage of earlier periods gets lines of
    its own, priced in its own period, never counted into this period's lines. Base fees of earlier periods not
    yet billed (a `billing_start` in the past) get a line per period. `recheck_base_fees=False` looks only at
    periods the ledger has no entry for; `settled_through` limits late base fees to periods up to it (a preview
    leaves periods not yet closed alone).
    """
    late_lines: list[Line] = []
    late_usage: list[LateEntry] = []
    for earlier in sorted(late, key=lambda item: item.period):
        lines_of, entries = _late_lines(book, tenant, earlier)
        late_lines += lines_of
        late_usage += entries

    base_fees: dict[str, str] = {}
    start = proration.billing_start(tenant)
    if start is not None:
        last = min(periods.preceding(period), settled_through) if settled_through is not None else \
            periods.preceding(period)
        for earlier_period in periods.between(max(periods.of(start), periods.FIRST), last):
            if not recheck_base_fees and earlier_period in base_fees_billed:
                continue
            owed = proration.base_fee_owed(tenant, earlier_period, lambda tier: book.plan(tier).base_fee)
            billed = Decimal(base_fees_billed.get(earlier_period, "0"))
            if owed > billed:
                late_lines.append({"kind": "base_fee", "period": earlier_period, "amount": str(owed - billed),
                                   "description": f"Base fee for {_month(earlier_period)}, owed from the billing "
                                                  f"start {start:%-d %b %Y}"})
                late_usage.append({"period": earlier_period, "kind": "base_fee"})
            base_fees[earlier_period] = str(max(owed, billed))

    lines: list[Line] = []
    own_base_fee = Decimal("0.00")
    segments = proration.segments(tenant, period)
    used = {meter: False for meter in book.meters}
    kept: list[proration.Segment] = []
    for segment in segments:
        quantities = {meter: total(own, meter, segment.holds) for meter in book.meters}
        if not segment.owed and not any(totals.count for totals in quantities.values()):
            continue
        kept.append(segment)
        base_fee = _base_fee_line(book, segment)
        own_base_fee += Decimal(base_fee["amount"])
        lines.append(base_fee)
        for meter in sorted(book.meters):
            if quantities[meter].count:
                used[meter] = True
                lines.append(usage_line(book, segment.tier, meter, segment, Decimal(0),
                                        quantities[meter].quantity(book.meters[meter].aggregation)))
    if kept:  # a meter without usage all period: one line, in the last run, nothing charged
        for meter in sorted(meter for meter, seen in used.items() if not seen):
            lines.append(usage_line(book, kept[-1].tier, meter, kept[-1], Decimal(0), Decimal(0)))
    base_fees[period] = str(own_base_fee)
    lines += late_lines
    if not (any(used.values()) or late_usage or any(segment.owed for segment in segments)):
        return None, base_fees

    subtotal = sum((Decimal(line["amount"]) for line in lines), Decimal("0.00"))
    pct, sla = Decimal(0), None
    if sla_report is not None:
        rto = sla_report.get("rto_minutes")
        pct = credit_pct(tenant.get("deployment_model", "multi-tenant"), Decimal(sla_report["availability_pct"]),
                         Decimal(sla_report["p95_latency_ms"]), None if rto is None else Decimal(rto))
        sla = {**{k: sla_report[k] for k in ("availability_pct", "p95_latency_ms", "rto_minutes") if
                  sla_report.get(k) is not None}, "credit_pct": plain(pct)}
    sla_credit = cents(subtotal * pct / 100)
    tier = proration.tier_on(proration.tier_history(tenant), periods.days(period)[-1])
    return {"tenant_id": tenant["tenant_id"], "period": period, "currency": book.currency, "tier": tier,
            "deployment_model": tenant.get("deployment_model", "multi-tenant"), "price_book": book.version,
            "lines": lines, "subtotal": str(cents(subtotal)), "sla": sla, "sla_credit": str(sla_credit),
            "net": str(cents(subtotal - sla_credit)), "total": str(cents(subtotal - sla_credit)),
            "late_usage": late_usage}, base_fees


def settle(draft: Invoice, parties: dict) -> Invoice:
    """The draft with its parties and VAT: `vat.amount` = net x rate, rounded once half-up to cents, and `total` =
    net + VAT."""
    from billing.parties import vat_amount

    net = Decimal(draft["net"])
    rate = Decimal(parties["vat"]["rate"])
    vat = vat_amount(net, rate)
    return {**draft, **parties, "vat": {**parties["vat"], "amount": str(vat)},  # type: ignore[typeddict-item]
            "total": str(net + vat)}


def issue_fields(now: datetime.datetime, payment_terms_days: int) -> dict:
    """What issuing adds besides the number: the moment, the issue date and the due date (UTC)."""
    issue_date = now.astimezone(datetime.UTC).date()
    return {"issued_at": rfc3339(now, "seconds"),
            "issue_date": issue_date.isoformat(),
            "due_date": (issue_date + datetime.timedelta(days=payment_terms_days)).isoformat()}


def _base_fee_description(segment: proration.Segment) -> str:
    if not segment.owed:
        return f"{segment.tier.capitalize()} plan, {segment.describe()}: no base fee before the billing start"
    share = "" if segment.owed_days == segment.days_in_month else \
        f" (base fee for {segment.owed_days} of {segment.days_in_month} days)"
    return f"{segment.tier.capitalize()} plan, {segment.describe()}{share}"


def _month(period: str) -> str:
    return periods.start(period).strftime("%B %Y")
