"""Invoices and credit notes for people: one layout built from the document's data (pure), drawn as HTML and as
PDF (fpdf2: pure Python, installs from the package index with no system libraries, and renders in milliseconds).
Everything art. 35a Wet OB asks for is on the page: both parties with addresses and VAT numbers, the seller's
KvK number, number and dates, the period supplied, quantities and unit prices, the taxable amount, VAT rate and
amount (or the reverse-charge / outside-scope note), the total due, the IBAN and the payment reference."""

from __future__ import annotations

import datetime
import html
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from billing import periods

CURRENCY_SIGNS = {"EUR": "€"}


@dataclass
class Layout:
    title: str
    facts: list[tuple[str, str]]
    seller: list[str]
    customer: list[str]
    rows: list[tuple[str, str, str, str]]  # description, quantity, unit price, amount
    totals: list[tuple[str, str]]  # the last one is the amount due
    notes: list[str] = field(default_factory=list)
    payment: list[str] = field(default_factory=list)


def money(amount: str | Decimal, currency: str) -> str:
    value = Decimal(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}{CURRENCY_SIGNS.get(currency, currency + ' ')}{abs(value):,.2f}"


def _date(text: str) -> str:
    return datetime.date.fromisoformat(text).strftime("%-d %B %Y")


def _party(party: dict, extra: list[tuple[str, str | None]]) -> list[str]:
    address = party.get("address") or {}
    lines = [party["legal_name"], address.get("line1"), address.get("line2"),
             " ".join(filter(None, (address.get("postal_code"), address.get("city")))), address.get("country")]
    lines += [f"{label} {value}".strip() for label, value in extra if value]
    return [line for line in lines if line]


def _number(text: str) -> str:
    """A decimal string with thousands separators: 30750.5 -> 30,750.5."""
    whole, _, fraction = text.lstrip("-").partition(".")
    return f"{'-' if text.startswith('-') else ''}{int(whole):,}{'.' + fraction if fraction else ''}"


def _quantity(line: dict) -> str:
    if "quantity" not in line:
        return ""
    return f"{_number(line['quantity'])} {line.get('unit', '')}".strip()


def _unit_price(line: dict, currency: str) -> str:
    if "bands" in line:
        return "; ".join(f"{_number(band['quantity'])} at {band['unit_price']}" for band in line["bands"])
    if "unit_price" in line:
        return line["unit_price"]
    return ""


def layout(document: dict) -> Layout:
    """The page of an invoice or credit note (a credit note carries `invoice_number`)."""
    currency = document["currency"]
    credit = "invoice_number" in document
    start, end = periods.start(document["period"]).date(), periods.end(document["period"]).date()
    supplied = f"{start:%-d %b} \N{EN DASH} {end - datetime.timedelta(days=1):%-d %b %Y}"
    facts = [("Credit note number" if credit else "Invoice number", document["number"]),
             ("Issue date", _date(document["issue_date"]))]
    if credit:
        facts.append(("Credits invoice", document["invoice_number"]))
    else:
        facts.append(("Due date", _date(document["due_date"])))
    facts += [("Period supplied", supplied), ("Customer account", document["tenant_id"])]
    if document.get("replaces"):
        facts.append(("Replaces invoice", document["replaces"]))
    seller, customer = document["seller"], document["customer"]
    rows = [(line["description"], _quantity(line), _unit_price(line, currency), money(line["amount"], currency))
            for line in document["lines"]]
    vat = document["vat"]
    totals = [("Subtotal", money(document["subtotal"], currency))]
    if Decimal(document["sla_credit"]):
        pct = (document.get("sla") or {}).get("credit_pct", "")
        totals.append((f"SLA credit ({pct}% of subtotal)", money(-Decimal(document["sla_credit"]), currency)))
    totals.append(("Taxable amount (net)", money(document["net"], currency)))
    label = {"standard": f"VAT {vat['rate']}%", "reverse_charge": "VAT reverse-charged (0%)",
             "outside_scope": "VAT: outside the scope (0%)"}[vat["treatment"]]
    totals.append((label, money(vat["amount"], currency)))
    totals.append(("Total credited" if credit else "Total due", money(document["total"], currency)))
    notes = list(document.get("notes") or [])
    late = [f"{item['quantity']} {item['meter']} of {item['period']}" if "meter" in item else
            f"the base fee of {item['period']}" for item in document.get("late_usage") or []]
    if late:
        notes.append("The usage lines include what earlier periods had not billed yet (supplied in those periods): "
                     + "; ".join(late) + ".")
    if credit:
        notes.insert(0, f"Reason: {document['reason']}")
    payment = [] if credit else [
        f"Please pay {money(document['total'], currency)} by {_date(document['due_date'])} to IBAN {seller['iban']}"
        f"{' (BIC ' + seller['bic'] + ')' if seller.get('bic') else ''} in the name of {seller['legal_name']}, "
        f"quoting payment reference {document['number']}."]
    return Layout(
        title="Credit note" if credit else "Invoice", facts=facts,
        seller=_party(seller, [("VAT", seller.get("vat_id")), ("KvK", seller.get("coc_number")),
                               ("", seller.get("email"))]),
        customer=_party(customer, [("VAT", customer.get("vat_id")), ("", customer.get("email"))]),
        rows=rows, totals=totals, notes=notes, payment=payment)


def to_html(page: Layout) -> str:
    e = html.escape
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in page.facts)
    rows = "".join(f"<tr><td>{e(d)}</td><td class=n>{e(q)}</td><td class=n>{e(p)}</td><td class=n>{e(a)}</td></tr>"
                   for d, q, p, a in page.rows)
    totals = "".join(f"<tr{' class=total' if i == len(page.totals) - 1 else ''}><td colspan=3>{e(k)}</td>"
                     f"<td class=n>{e(v)}</td></tr>" for i, (k, v) in enumerate(page.totals))
    notes = "".join(f"<p>{e(note)}</p>" for note in page.notes + page.payment)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(page.title)} {e(page.facts[0][1])}</title>
<style>
body{{font-family:Helvetica,Arial,sans-serif;color:#1d2433;max-width:780px;margin:32px auto;padding:0 24px;
font-size:14px}} h1{{font-size:24px;margin:0 0 4px}} .muted{{color:#667085}} table{{width:100%;
border-collapse:collapse}} th,td{{padding:7px 6px;text-align:left;vertical-align:top}} .lines th,.lines td{{
border-bottom:1px solid #e4e7ec}} .n{{text-align:right;white-space:nowrap}} .total td{{font-weight:700;
font-size:16px;border-top:2px solid #1d2433;border-bottom:none}} .parties{{display:flex;gap:48px;margin:24px 0}}
.parties div{{flex:1}} .facts th{{font-weight:400;color:#667085;width:40%}} .facts{{width:auto}}
</style></head><body>
<header><h1>{e(page.title)}</h1><div class=muted>{e(page.seller[0])}</div></header>
<section class=parties><div><strong>From</strong><br>{"<br>".join(e(s) for s in page.seller)}</div>
<div><strong>To</strong><br>{"<br>".join(e(s) for s in page.customer)}</div></section>
<table class=facts>{facts}</table>
<table class=lines style="margin-top:20px"><thead><tr><th>Description</th><th class=n>Quantity</th>
<th class=n>Unit price</th><th class=n>Amount</th></tr></thead><tbody>{rows}</tbody><tfoot>{totals}</tfoot></table>
<section style="margin-top:20px">{notes}</section>
</body></html>
"""


def _latin(text: str) -> str:
    """What the PDF's built-in fonts can show (Windows-1252): other letters lose their accents, the rest is '?'."""
    try:
        text.encode("cp1252")
        return text
    except UnicodeEncodeError:
        plain = unicodedata.normalize("NFKD", text)
        return "".join(c if _encodable(c) else "?" for c in plain if not unicodedata.combining(c))


def _encodable(character: str) -> bool:
    try:
        character.encode("cp1252")
        return True
    except UnicodeEncodeError:
        return False


def to_pdf(page: Layout) -> bytes:
    from fpdf import FPDF  # lazily: it costs cold start, and only this reads it

    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, 18)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(text=_latin(page.title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    top = pdf.get_y()
    for column, (heading, party) in enumerate((("From", page.seller), ("To", page.customer))):
        pdf.set_xy(pdf.l_margin + column * width / 2, top)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(width / 2, 5, heading, new_x="LEFT", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for line in party:
            pdf.cell(width / 2, 5, _latin(line), new_x="LEFT", new_y="NEXT")
    pdf.set_y(top + 5 * (1 + max(len(page.seller), len(page.customer))) + 4)
    for key, value in page.facts:
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(45, 5.5, _latin(key))
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 5.5, _latin(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("Helvetica", "", 9)
    with pdf.table(col_widths=(52, 18, 16, 14), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
                   line_height=5, borders_layout="HORIZONTAL_LINES") as table:
        table.row(["Description", "Quantity", "Unit price", "Amount"])
        for row in page.rows:
            table.row([_latin(cell) for cell in row])
    pdf.ln(3)
    for index, (key, value) in enumerate(page.totals):
        last = index == len(page.totals) - 1
        pdf.set_font("Helvetica", "B" if last else "", 11 if last else 10)
        pdf.cell(width - 40, 6, _latin(key), align="R")
        pdf.cell(40, 6, _latin(value), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 9)
    for note in page.notes + page.payment:
        pdf.multi_cell(0, 4.5, _latin(note), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    return bytes(pdf.output())
