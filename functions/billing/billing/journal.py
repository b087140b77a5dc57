"""The journal: one balanced entry per issued invoice, credit note and payment, with the accounts and VAT codes of
config/ledger.json (documented there: what each entry books and why). A pure function of the documents.

Rows are `{date, entry, document_number, tenant_id, account, debit, credit, vat_code}`: `entry` names the journal
entry (a document's number; `{invoice number}/{payment reference}` for a payment), so that debits equal credits
can be checked per entry; a payment's `document_number` is the invoice it pays. Revenue, discount and VAT rows
carry the VAT code of the document's treatment; receivables, bank and customer balance rows carry none.

What a payment or a credit note settles is replayed per invoice in time order (issue, then payments by `paid_at`
and credit notes by `issued_at`): up to what is still due it clears receivables, beyond that it is owed to the
customer (the customer balance), as billing's lifecycle does. Which of two events came first only moves money
between receivables and the customer balance in between: after both, the accounts hold the same amounts in
either order.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal

from billing.ledger import Ledger

ZERO = Decimal("0.00")
COLUMNS = ("date", "entry", "document_number", "tenant_id", "account", "debit", "credit", "vat_code")


def _dec(value: object) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"


def _utc_date(moment: str) -> str:
    return datetime.datetime.fromisoformat(moment).astimezone(datetime.UTC).date().isoformat()


class _Entry:
    """Signed amounts per account (credit positive, debit negative), written as rows in the order first booked."""

    def __init__(self, date: str, entry: str, document_number: str, tenant_id: str):
        self.date, self.entry, self.number, self.tenant_id = date, entry, document_number, tenant_id
        self.amounts: dict[str, Decimal] = {}
        self.codes: dict[str, str | None] = {}

    def book(self, account: str, credit: Decimal, vat_code: str | None = None) -> None:
        self.amounts[account] = self.amounts.get(account, ZERO) + credit
        self.codes.setdefault(account, vat_code)

    def rows(self) -> list[dict]:
        if sum(self.amounts.values(), ZERO) != 0:
            raise ValueError(f"entry {self.entry} does not balance: {self.amounts}")
        return [{"date": self.date, "entry": self.entry, "document_number": self.number,
                 "tenant_id": self.tenant_id, "account": account,
                 "debit": _money(-amount if amount < 0 else ZERO), "credit": _money(max(amount, ZERO)),
                 "vat_code": self.codes[account]}
                for account, amount in self.amounts.items() if amount]


def _document(ledger: Ledger, document: Mapping, entry: _Entry) -> None:
    """Revenue, discounts and VAT of an invoice or credit note (a credit note's JSON is negated: it reverses)."""
    code = ledger.vat_code(document["vat"]["treatment"])
    for line in document["lines"]:
        entry.book(ledger.revenue(line), _dec(line["amount"]), code)
    entry.book(ledger.postings["sla_credit"], -_dec(document.get("sla_credit")), code)
    entry.book(ledger.postings["vat_payable"], _dec(document["vat"]["amount"]), code)


def _settle(entry: _Entry, ledger: Ledger, amount: Decimal, outstanding: Decimal) -> Decimal:
    """Credit `amount` to receivables up to what is outstanding, the rest to the customer balance; what remains
    outstanding."""
    cleared = min(amount, max(outstanding, ZERO))
    entry.book(ledger.postings["receivables"], cleared)
    entry.book(ledger.postings["customer_balance"], amount - cleared)
    return outstanding - cleared


def entries(ledger: Ledger, invoices: Iterable[Mapping], credit_notes: Iterable[Mapping] = (),
            start: datetime.date | str | None = None, end: datetime.date | str | None = None) -> list[dict]:
    """The journal rows of every issued invoice (with its `payments`) and credit note, dated from `start` through
    `end` (inclusive; None: unbounded), in date order. Pass every document of the invoices concerned: what a
    credit note or payment settles depends on what came before it. A credit note whose invoice is not among
    `invoices` raises ValueError."""
    invoices = [invoice for invoice in invoices if invoice.get("number") and invoice.get("status") != "draft"]
    by_number = {invoice["number"]: invoice for invoice in invoices}
    events: dict[str, list[tuple[datetime.datetime, int, Mapping]]] = {number: [] for number in by_number}
    for note in credit_notes:
        if note["invoice_number"] not in by_number:
            raise ValueError(f"credit note {note['number']} corrects invoice {note['invoice_number']}, which is not "
                             "among the invoices given")
        moment = note.get("issued_at") or f"{note['issue_date']}T00:00:00Z"
        events[note["invoice_number"]].append((_instant(moment), 1, note))
    for invoice in invoices:
        for payment in invoice.get("payments") or []:
            events[invoice["number"]].append((_instant(payment["paid_at"]), 0, payment))

    written: list[_Entry] = []
    for number, invoice in by_number.items():
        tenant = invoice["tenant_id"]
        entry = _Entry(invoice["issue_date"], number, number, tenant)
        total, applied = _dec(invoice["total"]), _dec(invoice.get("balance_applied"))
        entry.book(ledger.postings["receivables"], -(total - applied))
        entry.book(ledger.postings["customer_balance"], -applied)
        _document(ledger, invoice, entry)
        written.append(entry)
        outstanding = total - applied
        for _, kind, event in sorted(events[number], key=lambda item: (item[0], item[1])):
            if kind == 1:  # a credit note: its total (negative in the JSON) settles the invoice
                entry = _Entry(event["issue_date"], event["number"], event["number"], tenant)
                _document(ledger, event, entry)
                outstanding = _settle(entry, ledger, -_dec(event["total"]), outstanding)
            else:
                entry = _Entry(_utc_date(event["paid_at"]), f"{number}/{event['reference']}", number, tenant)
                entry.book(ledger.postings["bank"], -_dec(event["amount"]))
                outstanding = _settle(entry, ledger, _dec(event["amount"]), outstanding)
            written.append(entry)

    first = None if start is None else str(start)
    last = None if end is None else str(end)
    rows = []
    for entry in sorted(written, key=lambda item: item.date):
        if (first is None or entry.date >= first) and (last is None or entry.date <= last):
            rows += entry.rows()
    return rows


def _instant(moment: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(moment).astimezone(datetime.UTC)


def to_csv(rows: Iterable[Mapping]) -> str:
    """The rows as CSV (RFC 4180, a header line, an empty cell for no VAT code), for a spreadsheet or an import."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _cell(row.get(column)) for column in COLUMNS})
    return out.getvalue()


def _cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting with =, +, -, @ or a control character (a payer's
    reference can be anything) is prefixed with an apostrophe, so it is never read as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
