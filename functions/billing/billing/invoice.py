"""An invoice from its inputs (pure), and its human-readable rendering."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from billing import periods, proration
from billing.money import cents, plain
from billing.pricing import PriceBook, bands_of, graduated, priced_with, usage_line
from billing.sla import credit_pct
from billing.usage import DayTotals, total
from energent_shared.clock import rfc3339


@dataclass(frozen=True)
class LatePeriod:
    """An earlier period with usage counted after it was last invoiced: as it stands now, and as billed."""

    period: str
    current: DayTotals
    billed: DayTotals


def draft(book: PriceBook, tenant: dict, period: str, own: DayTotals, late: list[LatePeriod],
          base_fees_billed: dict[str, str], sla_report: dict | None,
          recheck_base_fees: bool = True, settled_through: str | None = None) -> tuple[dict | None, dict[str, str]]:
    """The tenant's invoice for `period` (§6, §7.2) without `number`, `status` and `issued_at`, or None when it owes
    nothing; and the base fee now billed per period (what the ledger keeps so no base fee is charged twice).

    One base-fee line and one usage line per meter for each segment of days under one tier. Late usage of a sum
    or count meter is counted into the last segment's line (the plan in force at the end of the period); a late
    rise of a `max` meter gets a line of its own, priced as price(new peak) - price(billed peak) under the plan of
    the segment it happened in. Base fees of earlier periods not yet billed (a `billing_start` in the past) get a
    line per period. `recheck_base_fees=False` looks only at periods the ledger has no entry for;
    `settled_through` limits late base fees to periods up to it (a preview leaves periods not yet closed alone).
    """
    aggregation = {meter: definition.aggregation for meter, definition in book.meters.items()}
    late_lines, late_usage, late_quantity = [], [], {}
    for earlier in sorted(late, key=lambda item: item.period):
        for meter in sorted(book.meters):
            if aggregation[meter] == "max":
                for segment in proration.segments(tenant, earlier.period):
                    peak = total(earlier.current, meter, segment.holds).quantity("max")
                    billed = total(earlier.billed, meter, segment.holds).quantity("max")
                    if peak > billed:
                        late_lines.append(_late_peak(book, meter, segment, billed, peak))
                        late_usage.append({"period": earlier.period, "meter": meter, "quantity": plain(peak - billed)})
                continue
            extra = total(earlier.current, meter).minus(total(earlier.billed, meter)).quantity(aggregation[meter])
            if extra > 0:
                late_quantity[meter] = late_quantity.get(meter, Decimal(0)) + extra
                late_usage.append({"period": earlier.period, "meter": meter, "quantity": plain(extra)})

    base_fees: dict[str, str] = {}
    start = proration.billing_start(tenant)
    if start is not None:
        last = min(periods.preceding(period), settled_through) if settled_through is not None else \
            periods.preceding(period)
        for earlier in periods.between(max(periods.of(start), periods.FIRST), last):
            if not recheck_base_fees and earlier in base_fees_billed:
                continue
            owed = proration.base_fee_owed(tenant, earlier, lambda tier: book.plan(tier).base_fee)
            billed = Decimal(base_fees_billed.get(earlier, "0"))
            if owed > billed:
                late_lines.append({"kind": "base_fee", "amount": str(owed - billed),
                                   "description": f"Base fee for {_month(earlier)}, owed from the billing start "
                                                  f"{start:%-d %b %Y}"})
                late_usage.append({"period": earlier, "kind": "base_fee"})
            base_fees[earlier] = str(max(owed, billed))

    lines, own_base_fee = [], Decimal("0.00")
    segments = proration.segments(tenant, period)
    used = False
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        quantities = {meter: total(own, meter, segment.holds) for meter in book.meters}
        counted = any(totals.count for totals in quantities.values())
        used = used or counted
        if not segment.owed and not counted and not (last and late_quantity):
            continue
        plan = book.plan(segment.tier)
        fee = cents(segment.prorate(plan.base_fee))
        own_base_fee += fee
        lines.append({"kind": "base_fee", "amount": str(fee), "description": _base_fee_description(segment)})
        for meter in sorted(book.meters):
            quantity = quantities[meter].quantity(aggregation[meter])
            if last:
                quantity += late_quantity.get(meter, Decimal(0))
            allowance = segment.allowance(plan.included.get(meter, Decimal(0)))
            lines.append(usage_line(book, plan, meter, quantity, allowance, segment.describe()))
    if not segments and late_quantity:  # deleted before this period: late usage alone, with no allowance
        plan = book.plan(proration.tier_on(proration.tier_history(tenant), periods.days(period)[-1]))
        lines += [usage_line(book, plan, meter, quantity, Decimal(0), "late usage")
                  for meter, quantity in sorted(late_quantity.items())]
    base_fees[period] = str(own_base_fee)
    lines += late_lines
    if not (used or late_usage or any(segment.owed for segment in segments)):
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


def settle(draft: dict, parties: dict) -> dict:
    """The draft with its parties and VAT (§6, §7.3): `vat.amount` = net x rate, rounded once half-up to cents,
    and `total` = net + VAT, the amount due."""
    from billing.parties import vat_amount

    net = Decimal(draft["net"])
    rate = Decimal(parties["vat"]["rate"])
    vat = vat_amount(net, rate)
    return {**draft, **parties, "vat": {**parties["vat"], "amount": str(vat)}, "total": str(net + vat)}


def issue_fields(now: datetime.datetime, payment_terms_days: int) -> dict:
    """What issuing adds besides the number: the moment, the issue date and the due date (UTC)."""
    issue_date = now.astimezone(datetime.UTC).date()
    return {"issued_at": rfc3339(now, "seconds"),
            "issue_date": issue_date.isoformat(),
            "due_date": (issue_date + datetime.timedelta(days=payment_terms_days)).isoformat()}


def _late_peak(book: PriceBook, meter: str, segment: proration.Segment, billed: Decimal, peak: Decimal) -> dict:
    plan = book.plan(segment.tier)
    included = segment.allowance(plan.included.get(meter, Decimal(0)))
    bands = bands_of(plan, meter)
    amount = cents(graduated(peak, included, bands) - graduated(billed, included, bands))
    definition = book.meters[meter]
    return {"kind": "usage", "meter": meter, "quantity": plain(peak - billed), "unit": definition.unit,
            "amount": str(amount), **priced_with(peak, included, bands),
            "description": f"{definition.description}, {segment.describe()}: late peak {plain(peak)} above the "
                           f"{plain(billed)} billed"}


def _base_fee_description(segment: proration.Segment) -> str:
    if not segment.owed:
        return f"{segment.tier.capitalize()} plan, {segment.describe()}: no base fee before the billing start"
    share = "" if segment.owed_days == segment.days_in_month else \
        f" (base fee for {segment.owed_days} of {segment.days_in_month} days)"
    return f"{segment.tier.capitalize()} plan, {segment.describe()}{share}"


def _month(period: str) -> str:
    return periods.start(period).strftime("%B %Y")


def number(year: int, sequence: int) -> str:
    return f"{year}-{sequence:06d}"


def credit_note_number(year: int, sequence: int) -> str:
    return f"CN-{year}-{sequence:06d}"


def _negated(amount: str) -> str:
    return str(-Decimal(amount)) if Decimal(amount) else "0.00"


def credit_note(invoice: dict, note_number: str, reason: str, issued: dict) -> dict:
    """A credit note cancelling `invoice` in full (§7.4): its lines, net, VAT and total negated."""
    return {**{k: invoice[k] for k in ("tenant_id", "period", "currency", "tier", "seller", "customer", "notes")
               if k in invoice},
            "number": note_number, "invoice_number": invoice["number"], "reason": reason,
            "lines": [{**line, "amount": _negated(line["amount"])} for line in invoice["lines"]],
            "subtotal": _negated(invoice["subtotal"]), "sla_credit": _negated(invoice["sla_credit"]),
            "sla": invoice.get("sla"), "net": _negated(invoice["net"]),
            "vat": {**invoice["vat"], "amount": _negated(invoice["vat"]["amount"])},
            "total": _negated(invoice["total"]), **{k: issued[k] for k in ("issued_at", "issue_date")}}


def reissued(invoice: dict, new_number: str, parties: dict, issued: dict) -> dict:
    """The period's invoice issued again from the data as it stands now (e.g. a corrected billing profile): the
    same lines, current parties and VAT, a new number and `replaces`."""
    kept = {k: v for k, v in invoice.items() if k not in (
        "seller", "customer", "vat", "notes", "warnings", "total", "credited_by", "paid_at", "payment_reference")}
    return {**settle(kept, parties), "number": new_number, "replaces": invoice["number"], "status": "final",
            **issued}
