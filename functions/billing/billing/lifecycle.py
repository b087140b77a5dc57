"""The invoice lifecycle, as pure rules: a draft is issued (numbered, its parties and VAT settled, the customer's
balance applied), then paid in parts or in full, credited in parts or in full, and reissued. Each rule takes the
invoice as it stands (read in one transaction with the customer's balance and the counters it may draw numbers
from) and returns a `Change` for the store to write in that same transaction, or None when nothing changes.
A refusal raises Invalid, Conflict or NotFound, which aborts the transaction with nothing written.

Why money is right under retries and concurrent calls: every rule sees the invoice, the balance and the counters
as one serializable transaction read them and its change is written atomically with them, so two calls racing on
one invoice are ordered: the second sees the first's payment (a repeated reference changes nothing) or its credit
notes (two partial credits never credit more than the net), and a number exists only with its document.

Amounts (every money field a string with two decimals):
  total      = net + VAT                               never changes after issue
  amount_due = total - balance_applied - amount_paid - credited_total, never below 0
  status     = draft; else credited when the whole net is credited; else paid when nothing is due; else
               partially_paid when something was paid; else final
What a payment exceeds the amount due, and what a credit note's total exceeds it, is owed to the customer: it goes
to the customer balance, which the next invoice issued applies to its total (`balance_applied`, never to net or
VAT).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from billing.errors import Conflict, Invalid, NotFound
from billing.money import cents
from billing.numbering import CREDIT_NOTE, INVOICE, Numbers, creditor_reference
from billing.records import BalanceEntry, CreditNote, Invoice, Line, Payment

ZERO = Decimal("0.00")
LIFECYCLE_FIELDS = ("payments", "amount_paid", "credit_notes", "credited_net", "credited_vat", "credited_total",
                    "replaced_by")  # what changes after issue; the archive never holds these


def money(amount: Decimal) -> str:
    """A money string with exactly two decimals (never "-0.00")."""
    rounded = cents(amount)
    return str(rounded if rounded else ZERO)


def _dec(record: Invoice | CreditNote, name: str) -> Decimal:
    return Decimal(str(record.get(name) or "0"))


@dataclass
class Change:
    """What one transaction does to one invoice's lifecycle: the record after it, the one it replaced (a reissue),
    documents issued (as issued, stored by number), entries of the customer balance, and events to announce."""

    record: Invoice
    replaced: Invoice | None = None
    documents: list[Invoice | CreditNote] = field(default_factory=list)
    balance: list[BalanceEntry] = field(default_factory=list)
    announce: list[tuple[str, Invoice | CreditNote]] = field(default_factory=list)


def amount_due(invoice: Invoice) -> Decimal:
    due = (_dec(invoice, "total") - _dec(invoice, "balance_applied") - _dec(invoice, "amount_paid")
           - _dec(invoice, "credited_total"))
    return max(ZERO, due)


def status_of(invoice: Invoice) -> str:
    if invoice.get("status") == "draft":
        return "draft"
    if invoice.get("credit_notes") and _dec(invoice, "credited_net") >= _dec(invoice, "net"):
        return "credited"
    if amount_due(invoice) == 0:
        return "paid"
    if _dec(invoice, "amount_paid") > 0:
        return "partially_paid"
    return "final"


def _settled(invoice: Invoice) -> Invoice:
    """The invoice with `amount_due` and `status` recomputed from its lifecycle."""
    settled: Invoice = {**invoice, "amount_due": money(amount_due(invoice))}
    settled["status"] = status_of(settled)
    return settled


def as_issued(invoice: Invoice) -> Invoice:
    """What was issued: the invoice without what happened to it since (payments, credits, replacement)."""
    issued: Invoice = {k: v for k, v in invoice.items() if k not in LIFECYCLE_FIELDS}  # type: ignore[assignment]
    return issued


def _at(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def issue(draft: Invoice, settle: Callable[[Invoice], Invoice], numbers: Numbers, issued: dict, balance: Decimal,
          now: datetime.datetime) -> Change:
    """Issue `draft`: `settle` gives it its parties and VAT as they are now, it takes the next invoice number of the
    year of issue and the issue fields, and the customer's balance pays what it can of its total."""
    year = int(issued["issue_date"][:4])
    invoice: Invoice = {k: v for k, v in settle(draft).items() if k not in ("held", "warnings")}  # type: ignore
    number = numbers.next_number(INVOICE, year)
    applied = min(max(balance, ZERO), _dec(invoice, "total"))
    invoice = _settled({**invoice, **issued, "number": number, "status": "final",
                        "payment_reference": creditor_reference(number), "balance_applied": money(applied),
                        "payments": [], "amount_paid": money(ZERO), "credit_notes": [], "credited_net": money(ZERO),
                        "credited_vat": money(ZERO), "credited_total": money(ZERO)})
    entries: list[BalanceEntry] = []
    if applied:
        entries.append({"amount": money(-applied), "reason": f"applied to invoice {number}", "document_number": number,
                        "at": _at(now)})
    return Change(invoice, documents=[as_issued(invoice)], balance=entries, announce=[("issued", as_issued(invoice))])


def _issued_invoice(invoice: Invoice | None, action: str) -> Invoice:
    if invoice is None:
        raise NotFound("no such invoice")
    if invoice.get("status") == "draft":
        raise Conflict(f"the invoice for {invoice.get('period')} is a draft held until the customer's billing profile "
                       f"is set; it cannot be {action} before it is issued")
    return invoice


def pay(invoice: Invoice | None, amount: Decimal | None, reference: str, paid_at: str,
        now: datetime.datetime) -> Change | None:
    """Record a payment once per `reference` (without `amount`: what is due). A repeat changes nothing; the same
    reference with another amount is refused. What exceeds the amount due goes to the customer balance."""
    invoice = _issued_invoice(invoice, "paid")
    for earlier in invoice.get("payments", []):
        if earlier["reference"] == reference:
            if amount is None or Decimal(earlier["amount"]) == amount:
                return None
            raise Conflict(f"reference {reference!r} was recorded on invoice {invoice['number']} with amount "
                           f"{earlier['amount']}, not {money(amount)}")
    if paid_at[:10] < invoice["issue_date"]:
        raise Invalid(f"paid_at may not be before the invoice's issue date {invoice['issue_date']}")
    due = amount_due(invoice)
    paid = due if amount is None else amount
    if paid <= 0:
        return None  # nothing due and no amount given: nothing to record
    payment: Payment = {"amount": money(paid), "reference": reference, "paid_at": paid_at}
    after = _settled({**invoice, "payments": [*invoice.get("payments", []), payment],
                      "amount_paid": money(_dec(invoice, "amount_paid") + paid)})
    entries: list[BalanceEntry] = []
    if paid > due:
        entries.append({"amount": money(paid - due), "reason": f"paid on invoice {invoice['number']} beyond what was "
                        f"due (reference {reference})", "document_number": invoice["number"], "at": _at(now)})
    announce: list[tuple[str, Invoice | CreditNote]] = \
        [("paid", after)] if after["status"] == "paid" and invoice.get("status") != "paid" else []
    return Change(after, balance=entries, announce=announce)


def _negated(amount: str | None) -> str:
    return money(-Decimal(amount or "0"))


def credit(invoice: Invoice | None, amount: Decimal | None, reason: str, numbers: Numbers, issued: dict,
           now: datetime.datetime) -> Change:
    """A credit note for `amount` of the invoice's net (without it: all that is left uncredited). Its VAT is the
    invoice's rate on that amount, rounded on its own (never past the VAT left); the note that credits the rest
    takes the VAT that is left, so an invoice's notes add up to its VAT exactly and none of them charges VAT. What
    the note's total exceeds the amount due goes to the customer balance (a paid invoice credited is money owed
    back)."""
    invoice = _issued_invoice(invoice, "credited")
    net, credited = _dec(invoice, "net"), _dec(invoice, "credited_net")
    left = net - credited
    if left <= 0:
        raise Conflict(f"invoice {invoice['number']} is credited in full" if invoice.get("credit_notes") else
                       f"invoice {invoice['number']} has no net amount to credit")
    if amount is not None and amount > left:
        raise Conflict(f"invoice {invoice['number']} has {money(left)} of its net left to credit; {money(amount)} is "
                       "more")
    amount = left if amount is None else amount
    rest = amount == left
    vat_left = _dec(invoice["vat"], "amount") - _dec(invoice, "credited_vat")  # type: ignore[arg-type]
    # Each partial note rounds its own VAT, but never past what is left of the invoice's: so no note's VAT drifts
    # beyond the invoice's, and the note that credits the rest (which takes what is left) never charges VAT.
    vat = vat_left if rest else min(cents(amount * Decimal(invoice["vat"]["rate"]) / 100), vat_left)
    year = int(issued["issue_date"][:4])
    number = numbers.next_number(CREDIT_NOTE, year)
    whole = rest and not invoice.get("credit_notes")
    if whole:  # cancels the invoice in full: its lines, net, VAT and total negated
        lines: list[Line] = [{**line, "amount": _negated(line["amount"])} for line in invoice["lines"]]
        subtotal, sla_credit = _negated(invoice["subtotal"]), _negated(invoice["sla_credit"])
    else:
        lines = [{"kind": "credit", "amount": money(-amount),
                  "description": f"Credit on invoice {invoice['number']} ({reason})"}]
        subtotal, sla_credit = money(-amount), money(ZERO)
    note: CreditNote = {
        **{k: invoice[k] for k in ("tenant_id", "period", "currency", "tier", "seller", "customer", "notes")  # type: ignore
           if k in invoice},
        "number": number, "invoice_number": invoice["number"], "invoice_date": invoice["issue_date"],
        "reason": reason, "lines": lines, "subtotal": subtotal, "sla_credit": sla_credit,
        "sla": invoice.get("sla") if whole else None, "net": money(-amount),
        "vat": {**invoice["vat"], "amount": money(-vat)}, "total": money(-(amount + vat)), "status": "issued",
        **{k: issued[k] for k in ("issued_at", "issue_date")}}
    due = amount_due(invoice)
    after = _settled({**invoice, "credit_notes": [*invoice.get("credit_notes", []), number],
                      "credited_net": money(credited + amount),
                      "credited_vat": money(_dec(invoice, "credited_vat") + vat),
                      "credited_total": money(_dec(invoice, "credited_total") + amount + vat)})
    entries: list[BalanceEntry] = []
    if amount + vat > due:
        entries.append({"amount": money(amount + vat - due), "reason": f"credit note {number} on invoice "
                        f"{invoice['number']} beyond what was due", "document_number": number, "at": _at(now)})
    return Change(after, documents=[note], balance=entries, announce=[("credited", note)])


def reissue(invoice: Invoice | None, reason: str, settle: Callable[[Invoice], Invoice], numbers: Numbers, issued: dict,
            balance: Decimal, now: datetime.datetime) -> Change:
    """Credit what is left of the invoice and issue the period's invoice again: the same lines and amounts (fixed at
    the close), the customer and VAT as they are now, a new number that `replaces` the old one. The new invoice
    applies the customer's balance, including what the credit note just put there.

    What earlier partial credit notes took off the old invoice (a goodwill credit, say) is taken off the new one
    too, by a credit note of that net on it: otherwise correcting an address would charge it again."""
    earlier_notes = list(_issued_invoice(invoice, "reissued").get("credit_notes", []))
    earlier_net = _dec(invoice, "credited_net")  # type: ignore[arg-type]
    credited = credit(invoice, None, reason, numbers, issued, now)
    old = credited.record
    kept: Invoice = {k: v for k, v in as_issued(old).items() if k not in (  # type: ignore[assignment]
        "number", "issued_at", "issue_date", "due_date", "payment_reference", "balance_applied", "amount_due",
        "status", "replaces")}
    added = sum((Decimal(entry["amount"]) for entry in credited.balance), ZERO)
    again = issue(kept, settle, numbers, issued, balance + added, now)
    new: Invoice = _settled({**again.record, "replaces": old["number"]})
    documents: list[Invoice | CreditNote] = [as_issued(new)]
    announce: list[tuple[str, Invoice | CreditNote]] = [("issued", as_issued(new))]
    entries = list(again.balance)
    if earlier_net > 0:
        carried = credit(new, earlier_net, f"carried over from {', '.join(earlier_notes)} on invoice {old['number']}",
                         numbers, issued, now)
        new, documents = carried.record, [*documents, *carried.documents]
        entries, announce = [*entries, *carried.balance], [*announce, *carried.announce]
    replaced: Invoice = {**old, "replaced_by": new["number"]}
    return Change(new, replaced=replaced, documents=[*credited.documents, *documents],
                  balance=[*credited.balance, *entries], announce=[*credited.announce, *announce])
