"""Invoices and credit notes for people: one layout built from the document's data (pure), drawn as HTML and as
PDF (fpdf2: pure Python, installs from the package index with no system libraries; the fonts are embedded, see
fonts.py). Everything art. 35a Wet OB asks for is on the page: both parties with addresses and VAT numbers, the
seller's KvK number, number and dates, the period supplied, quantities and unit prices, the taxable amount, VAT
rate and amount (or the reverse-charge / outside-scope note), the total and what is due, the IBAN and the payment
reference. Every PDF page carries the document's number and "page n of m"."""

from __future__ import annotations

import datetime
import html
from dataclasses import dataclass, field
from decimal import Decimal

from billing import periods

CURRENCY_SIGNS = {"EUR": "€"}
PLURALS = {"GiB-hour": "GiB-hours"}  # units whose plural is not unit + "s"


@dataclass
class Row:
    description: str
    quantity: str  # metered
    billable: str  # charged, after the allowance
    unit_price: str
    amount: str


@dataclass
class Layout:
    title: str
    number: str
    facts: list[tuple[str, str]]
    seller: list[str]
    customer: list[str]
    rows: list[Row]
    totals: list[tuple[str, str]]  # the last one is what is due (or credited)
    notes: list[str] = field(default_factory=list)
    payment: list[str] = field(default_factory=list)


def money(amount: str | Decimal, currency: str) -> str:
    value = Decimal(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}{CURRENCY_SIGNS.get(currency, currency + ' ')}{abs(value):,.2f}"


def price(unit_price: str, currency: str) -> str:
    """A unit price as configured (0.0080 keeps its decimals), with the currency sign and thousands separators."""
    whole, _, fraction = unit_price.partition(".")
    return f"{CURRENCY_SIGNS.get(currency, currency + ' ')}{int(whole):,}{'.' + fraction if fraction else ''}"


def number(text: str) -> str:
    """A decimal string with thousands separators: 30750.5 -> 30,750.5."""
    whole, _, fraction = text.lstrip("-").partition(".")
    return f"{'-' if text.startswith('-') else ''}{int(whole):,}{'.' + fraction if fraction else ''}"


def counted(quantity: str, unit: str) -> str:
    """"1 minute", "18,250 GiB-hours"."""
    plural = unit if Decimal(quantity) == 1 else PLURALS.get(unit, unit + "s")
    return f"{number(quantity)} {plural}".strip()


def _date(text: str) -> str:
    return datetime.date.fromisoformat(text).strftime("%-d %B %Y")


def _party(party: dict, extra: list[tuple[str, str | None]]) -> list[str]:
    address = party.get("address") or {}
    lines = [party["legal_name"], address.get("line1"), address.get("line2"),
             " ".join(filter(None, (address.get("postal_code"), address.get("city")))), address.get("country")]
    lines += [f"{label} {value}".strip() for label, value in extra if value]
    return [line for line in lines if line]


def _name(line: dict) -> str:
    """A meter's display name, as its line's description starts."""
    return line["description"].split(",")[0]


def _row(line: dict, currency: str) -> Row:
    unit = line.get("unit", "")
    if "bands" in line:
        unit_price = "; ".join(f"{number(band['quantity'])} \N{MULTIPLICATION SIGN} "
                               f"{price(band['unit_price'], currency)}" for band in line["bands"])
    elif "unit_price" in line:
        unit_price = price(line["unit_price"], currency) + (f" / {unit}" if unit else "")
    else:
        unit_price = ""
    share = line.get("proration")
    if share:
        unit_price += f" \N{MULTIPLICATION SIGN} {share['days']}/{share['days_in_month']} days"
    quantity = counted(line["quantity"], unit) if "quantity" in line else ""
    billable = counted(line["billable_quantity"], unit) if "billable_quantity" in line else ""
    return Row(line["description"], quantity, billable, unit_price, money(line["amount"], currency))


def _unused(line: dict) -> bool:
    """A line of a meter without usage and without a charge: shown as a note, not as a row of zeros."""
    return line.get("kind") == "usage" and Decimal(line.get("quantity", "0")) == 0 and Decimal(line["amount"]) == 0


def layout(document: dict) -> Layout:
    """The page of an invoice or credit note (a credit note carries `invoice_number`), as it was issued."""
    currency = document["currency"]
    credit = "invoice_number" in document
    start, end = periods.start(document["period"]).date(), periods.end(document["period"]).date()
    supplied = f"{start:%-d %b} \N{EN DASH} {end - datetime.timedelta(days=1):%-d %b %Y}"
    facts = [("Credit note number" if credit else "Invoice number", document["number"]),
             ("Issue date", _date(document["issue_date"]))]
    if credit:
        facts.append(("Credits invoice", f"{document['invoice_number']} of {_date(document['invoice_date'])}"
                      if document.get("invoice_date") else document["invoice_number"]))
    else:
        facts.append(("Due date", _date(document["due_date"])))
    facts += [("Period supplied", supplied), ("Customer account", document["tenant_id"])]
    if document.get("replaces"):
        facts.append(("Replaces invoice", document["replaces"]))
    seller, customer = document["seller"], document["customer"]
    lines = document["lines"]
    rows = [_row(line, currency) for line in lines if not _unused(line)]
    vat = document["vat"]
    totals = [("Subtotal", money(document["subtotal"], currency))]
    if Decimal(document["sla_credit"]):
        pct = (document.get("sla") or {}).get("credit_pct", "")
        totals.append((f"SLA credit ({pct}% of subtotal)", money(-Decimal(document["sla_credit"]), currency)))
    totals.append(("Taxable amount (net)", money(document["net"], currency)))
    label = {"standard": f"VAT {vat['rate']}%", "reverse_charge": "VAT reverse-charged (0%)",
             "outside_scope": "VAT: outside the scope (0%)"}[vat["treatment"]]
    totals.append((label, money(vat["amount"], currency)))
    due = document.get("amount_due", document["total"])
    if credit:
        totals.append(("Total credited", money(document["total"], currency)))
    else:
        totals.append(("Total", money(document["total"], currency)))
        if Decimal(document.get("balance_applied") or "0"):
            totals.append(("Paid from your balance", money(-Decimal(document["balance_applied"]), currency)))
        totals.append(("Amount due", money(due, currency)))
    notes = list(document.get("notes") or [])
    unused = [_name(line) for line in lines if _unused(line)]
    if unused:
        notes.append(f"No usage this period of: {', '.join(unused)}.")
    names = {line["meter"]: _name(line) for line in lines if line.get("meter")}
    late = [f"{counted(item['quantity'], _unit(lines, item['meter']))} of {names.get(item['meter'], item['meter'])} "
            f"used in {_month(item['period'])}" if "meter" in item else f"the base fee of {_month(item['period'])}"
            for item in document.get("late_usage") or []]
    if late:
        notes.append("Charged here for earlier periods, at those periods' prices and allowances, as counted after "
                     "they were invoiced: " + "; ".join(late) + ".")
    if credit:
        notes.insert(0, f"Reason: {document['reason']}")
    reference = document.get("payment_reference") or document["number"]
    payment = [] if credit or not Decimal(due) else [
        f"Please pay {money(due, currency)} by {_date(document['due_date'])} to IBAN {seller['iban']}"
        f"{' (BIC ' + seller['bic'] + ')' if seller.get('bic') else ''} in the name of {seller['legal_name']}, "
        f"quoting payment reference {reference}."]
    return Layout(
        title="Credit note" if credit else "Invoice", number=document["number"], facts=facts,
        seller=_party(seller, [("VAT", seller.get("vat_id")), ("KvK", seller.get("coc_number")),
                               ("", seller.get("email"))]),
        customer=_party(customer, [("VAT", customer.get("vat_id")), ("", customer.get("email"))]),
        rows=rows, totals=totals, notes=notes, payment=payment)


def _unit(lines: list[dict], meter: str) -> str:
    return next((line.get("unit", "") for line in lines if line.get("meter") == meter), "")


def _month(period: str) -> str:
    return periods.start(period).strftime("%B %Y")


def to_html(page: Layout) -> str:
    e = html.escape
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in page.facts)
    rows = "".join(f"<tr><td>{e(r.description)}</td><td class=n>{e(r.quantity)}</td><td class=n>{e(r.billable)}</td>"
                   f"<td class=n>{e(r.unit_price)}</td><td class=n>{e(r.amount)}</td></tr>" for r in page.rows)
    totals = "".join(f"<tr{' class=total' if i == len(page.totals) - 1 else ''}><td colspan=4>{e(k)}</td>"
                     f"<td class=n>{e(v)}</td></tr>" for i, (k, v) in enumerate(page.totals))
    notes = "".join(f"<p>{e(note)}</p>" for note in page.notes + page.payment)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(page.title)} {e(page.number)}</title>
<style>
body{{font-family:"Source Sans Pro","Helvetica Neue",Arial,sans-serif;color:#1d2433;max-width:900px;margin:32px auto;
padding:0 24px;font-size:14px}} h1{{font-size:24px;margin:0 0 4px}} .muted{{color:#667085}} table{{width:100%;
border-collapse:collapse}} th,td{{padding:7px 6px;text-align:left;vertical-align:top}} .lines th,.lines td{{
border-bottom:1px solid #e4e7ec}} .n{{text-align:right;white-space:nowrap}} .total td{{font-weight:700;
font-size:16px;border-top:2px solid #1d2433;border-bottom:none}} .parties{{display:flex;gap:48px;margin:24px 0}}
.parties div{{flex:1}} .facts th{{font-weight:400;color:#667085;width:40%}} .facts{{width:auto}}
</style></head><body>
<header><h1>{e(page.title)} {e(page.number)}</h1><div class=muted>{e(page.seller[0])}</div></header>
<section class=parties><div><strong>From</strong><br>{"<br>".join(e(s) for s in page.seller)}</div>
<div><strong>To</strong><br>{"<br>".join(e(s) for s in page.customer)}</div></section>
<table class=facts>{facts}</table>
<table class=lines style="margin-top:20px"><thead><tr><th>Description</th><th class=n>Quantity</th>
<th class=n>Billable</th><th class=n>Unit price</th><th class=n>Amount</th></tr></thead><tbody>{rows}</tbody>
<tfoot>{totals}</tfoot></table>
<section style="margin-top:20px">{notes}</section>
</body></html>
"""


def to_pdf(page: Layout) -> bytes:
    from fpdf import FPDF  # lazily: it costs cold start, and only this reads it

    from billing import fonts

    class Document(FPDF):
        def header(self) -> None:
            if self.page_no() > 1:  # continuation pages say what they continue
                self.set_font(family, "", 9)
                self.cell(0, 5, f"{page.title} {page.number}", new_x="LMARGIN", new_y="NEXT")
                self.ln(3)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font(family, "", 8)
            self.cell(0, 5, f"{page.title} {page.number} \N{MIDDLE DOT} page {self.page_no()} of {{nb}}", align="R")

    pdf = Document(format="A4")
    family = fonts.add_to(pdf)
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, 20)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font(family, "", 20)
    _strong(pdf, 0, 10, f"{page.title} {page.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _parties(pdf, family, page)
    for key, value in page.facts:
        pdf.set_font(family, "", 10)
        pdf.cell(45, 5.5, key)
        _strong(pdf, 0, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    _table(pdf, family, page.rows)
    pdf.ln(3)
    for index, (key, value) in enumerate(page.totals):
        last = index == len(page.totals) - 1  # what is due (or credited) stands out
        pdf.set_font(family, "", 11 if last else 10)
        draw = _strong if last else _plain
        draw(pdf, width - 40, 6, key, align="R")
        draw(pdf, 40, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(family, "", 9)
    for note in page.notes + page.payment:
        for part in wrap(pdf, note, pdf.epw):
            pdf.cell(0, 4.5, part, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    return bytes(pdf.output())


def _plain(pdf, width: float, height: float, text: str, **options) -> None:
    pdf.cell(width, height, text, **options)


def _strong(pdf, width: float, height: float, text: str, **options) -> None:
    """A cell in bold. One face is embedded, and bold is drawn by stroking the letters' outlines as well as filling
    them, so every PDF subsets a single face (half the work of a second, bold one)."""
    with pdf.local_context(text_mode="FILL_STROKE", line_width=pdf.font_size_pt * 0.012):
        pdf.cell(width, height, text, **options)


def _size_to_fit(pdf, family: str, text: str, width: float, largest: float, smallest: float) -> float | None:
    """The largest font size from `largest` down to `smallest` at which `text` fits on one line, if any."""
    size = largest
    while size >= smallest:
        pdf.set_font(family, "", size)
        if pdf.get_string_width(text) <= width:
            return size
        size -= 0.5
    return None


def _parties(pdf, family: str, page: Layout) -> None:
    """Seller and customer side by side, or one above the other when a name or address line would not fit beside
    the other: a name is never broken over two lines when a smaller size can keep it on one."""
    blocks = (("From", page.seller), ("To", page.customer))
    half = pdf.epw / 2 - 4
    side_by_side = all(_size_to_fit(pdf, family, line, half, 10, 8) for _, lines in blocks for line in lines)
    top = pdf.get_y()
    for column, (heading, lines) in enumerate(blocks):
        width = half if side_by_side else pdf.epw
        if side_by_side:
            pdf.set_xy(pdf.l_margin + column * pdf.epw / 2, top)
        pdf.set_font(family, "", 10)
        _strong(pdf, width, 5, heading, new_x="LEFT", new_y="NEXT")
        for line in lines:
            size = _size_to_fit(pdf, family, line, width, 10, 6)
            pdf.set_font(family, "", size or 6)
            for part in [line] if size else wrap(pdf, line, width):
                pdf.cell(width, 5, part, new_x="LEFT", new_y="NEXT")
        if not side_by_side:
            pdf.ln(3)
    if side_by_side:
        pdf.set_y(top + 5 * (1 + max(len(page.seller), len(page.customer))))
    pdf.set_x(pdf.l_margin)
    pdf.ln(6)


def _put(pdf, x: float, top: float, width: float, text: str, align: str) -> None:
    """`text` on one line of the table, left or right in a column `width` wide from `x`, its top at `top` (placed
    directly: a table has dozens of these, and a cell does far more work than a line of text needs)."""
    if text:
        left = x if align == "L" else x + width - pdf.get_string_width(text)
        pdf.text(left, top + LINE_MM / 2 + 0.3 * pdf.font_size, text)


def wrap(pdf, text: str, width: float) -> list[str]:
    """`text` broken into lines no wider than `width` at spaces (each word measured once: fpdf2's own line breaking
    measures a line again for every character it adds)."""
    if not text:
        return [""]
    space = pdf.get_string_width(" ")
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    for word in text.split(" "):
        measured = pdf.get_string_width(word)
        if current and used + space + measured > width:
            lines.append(" ".join(current))
            current, used = [], 0.0
        used += (space if current else 0) + measured
        current.append(word)
    lines.append(" ".join(current))
    return lines


COLUMNS = (("Description", 0.40, "L"), ("Quantity", 0.14, "R"), ("Billable", 0.14, "R"), ("Unit price", 0.20, "R"),
           ("Amount", 0.12, "R"))
LINE_MM = 4.4


def _table(pdf, family: str, rows: list[Row]) -> None:
    """The lines as a table: each cell wrapped to its column, a row kept on one page, the heading repeated on
    every page the table reaches."""
    widths = [share * pdf.epw for _, share, _ in COLUMNS]

    def heading() -> None:
        pdf.set_font(family, "", 9)
        for (title, _, align), width in zip(COLUMNS, widths, strict=True):
            _strong(pdf, width, 6, title, align=align)
        pdf.ln(6)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())

    heading()
    pdf.set_font(family, "", 9)
    for row in rows:
        cells = (row.description, row.quantity, row.billable, row.unit_price, row.amount)
        wrapped = [wrap(pdf, text, width - 2) for text, width in zip(cells, widths, strict=True)]
        height = LINE_MM * max(len(lines) for lines in wrapped) + 2
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
            heading()
            pdf.set_font(family, "", 9)
        top = pdf.get_y() + 1
        x = pdf.l_margin
        for lines, width, (_, _, align) in zip(wrapped, widths, COLUMNS, strict=True):
            for index, text in enumerate(lines):
                _put(pdf, x + 1, top + index * LINE_MM, width - 2, text, align)
            x += width
        pdf.set_y(top - 1 + height)
        pdf.set_draw_color(228, 231, 236)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
        pdf.set_draw_color(0, 0, 0)
