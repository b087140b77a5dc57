"""An invoice from its inputs (pure), and its human-readable rendering."""

from __future__ import annotations

import datetime
import html
from decimal import Decimal

from billing import periods
from billing.money import cents, plain
from billing.pricing import PriceBook, usage_line
from billing.sla import credit_pct


def owes_base_fee(tenant: dict, period: str) -> bool:
    """From billing_start's month until (and including) the period in which the tenant is deleted."""
    billing_start = tenant.get("billing_start")
    if not billing_start or billing_start[:7] > period:
        return False
    deleted_at = tenant.get("deleted_at")
    return deleted_at is None or periods.of(deleted_at) >= period


def build(book: PriceBook, tenant: dict, period: str, quantities: dict[str, Decimal], late: list[dict],
          base_fee_owed: bool, sla_report: dict | None) -> dict:
    """Every field of the invoice except `number`, `status` and `issued_at`, which numbering adds."""
    plan = book.plan(tenant["tier"])
    base_fee = plan.base_fee if base_fee_owed else Decimal("0.00")
    lines = [{"kind": "base_fee", "amount": str(cents(base_fee)),
              "description": f"{tenant['tier'].capitalize()} plan, {period}" if base_fee_owed
              else f"No base fee for {period} (outside the billing term)"}]
    lines += [usage_line(book, plan, meter, quantities.get(meter, Decimal(0))) for meter in sorted(book.meters)]
    subtotal = sum((Decimal(line["amount"]) for line in lines), Decimal("0.00"))
    pct, sla = Decimal(0), None
    if sla_report is not None:
        rto = sla_report.get("rto_minutes")
        pct = credit_pct(tenant.get("deployment_model", "multi-tenant"), Decimal(sla_report["availability_pct"]),
                         Decimal(sla_report["p95_latency_ms"]), None if rto is None else Decimal(rto))
        sla = {**{k: sla_report[k] for k in ("availability_pct", "p95_latency_ms", "rto_minutes") if
                  sla_report.get(k) is not None}, "credit_pct": plain(pct)}
    sla_credit = cents(subtotal * pct / 100)
    return {"tenant_id": tenant["tenant_id"], "period": period, "currency": book.currency, "tier": tenant["tier"],
            "deployment_model": tenant.get("deployment_model", "multi-tenant"), "price_book": book.version,
            "lines": lines, "subtotal": str(cents(subtotal)), "sla": sla, "sla_credit": str(sla_credit),
            "total": str(cents(subtotal - sla_credit)), "late_usage": late}


def number(year: int, sequence: int) -> str:
    return f"{year}-{sequence:06d}"


def _quantity(line: dict) -> str:
    if "quantity" not in line:
        return ""
    whole, _, fraction = line["quantity"].partition(".")
    return f"{int(whole):,}{'.' + fraction if fraction else ''} {line.get('unit', '')}".strip()


def render_html(invoice: dict) -> str:
    """A plain, printable invoice page."""
    e = html.escape
    issued = datetime.datetime.fromisoformat(invoice["issued_at"].replace("Z", "+00:00")).strftime("%d %B %Y")
    rows = "".join(
        f"<tr><td>{e(line['description'])}</td><td class=n>{e(_quantity(line))}</td>"
        f"<td class=n>{e(invoice['currency'])} {e(line['amount'])}</td></tr>" for line in invoice["lines"])
    late = "".join(f"<li>{e(item['meter'])}: {e(item['quantity'])} from {e(item['period'])}</li>"
                   for item in invoice["late_usage"])
    credit = ""
    if Decimal(invoice["sla_credit"]) > 0:
        credit = (f"<tr><td colspan=2>SLA credit ({e(invoice['sla']['credit_pct'])}% of subtotal)</td>"
                  f"<td class=n>&minus; {e(invoice['currency'])} {e(invoice['sla_credit'])}</td></tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {e(invoice['number'])}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2433;max-width:760px;margin:40px auto;
padding:0 24px}} h1{{font-size:22px;margin:0}} .muted{{color:#667085}} table{{width:100%;border-collapse:collapse;
margin-top:28px}} th,td{{padding:10px 8px;border-bottom:1px solid #e4e7ec;text-align:left}} .n{{text-align:right;
white-space:nowrap}} tfoot td{{font-weight:600;border-bottom:none}} .total td{{font-size:18px;border-top:2px solid
#1d2433}} header{{display:flex;justify-content:space-between;align-items:flex-start}}
</style></head><body>
<header><div><h1>Energent.ai</h1><div class=muted>AI desktop agents</div></div>
<div class=n><strong>Invoice {e(invoice['number'])}</strong><br>
<span class=muted>Issued {e(issued)}</span></div></header>
<p>Tenant <strong>{e(invoice['tenant_id'])}</strong> · {e(invoice['tier'].capitalize())} plan ·
period {e(invoice['period'])}</p>
<table><thead><tr><th>Description</th><th class=n>Quantity</th><th class=n>Amount</th></tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><td colspan=2>Subtotal</td><td class=n>{e(invoice['currency'])} {e(invoice['subtotal'])}</td></tr>{credit}
<tr class=total><td colspan=2>Total</td><td class=n>{e(invoice['currency'])} {e(invoice['total'])}</td></tr></tfoot>
</table>
{f"<p class=muted>Includes usage reported after its period closed:</p><ul>{late}</ul>" if late else ""}
<p class=muted>Amounts exclude taxes. Questions about this invoice: billing@energent.ai</p>
</body></html>
"""
