"""Invoices and credit notes for people: one layout built from the document's data (pure), drawn as HTML and as
PDF (fpdf2: pure Python, installs from the package index with no system libraries; the fonts are embedded, see
fonts.py). Everything art. 35a Wet OB asks for is on the page: both parties with addresses and VAT numbers, the
seller's KvK number, number and dates, the period supplied, quantities and unit prices, the taxable amount, VAT
rate and amount (or the reverse-charge / outside-scope note), the total and what is due, the IBAN and the payment
reference. Every PDF page carries the document's number and "page n of m"."""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from billing import language as words
from billing import periods
from energent_shared import tiers


@dataclass
class Row:
    description: str
    quantity: str  # metered
    billable: str  # charged, after the allowance
    unit_price: str
    amount: str


@dataclass
class Layout:
    language: str
    title: str
    number: str
    facts: list[tuple[str, str]]
    seller: list[str]
    customer: list[str]
    rows: list[Row]
    totals: list[tuple[str, str]]  # the last one is what is due (or credited)
    notes: list[str] = field(default_factory=list)
    payment: list[str] = field(default_factory=list)
    pay_code: str | None = None  # the EPC QR code's text (a SEPA transfer of what is due), if anything is due

    def word(self, key: str, **values: object) -> str:
        return words.label(self.language, key, **values)


def _party(party: Mapping, extra: list[tuple[str, str | None]]) -> list[str]:
    address = party.get("address") or {}
    lines = [party["legal_name"], address.get("line1"), address.get("line2"),
             " ".join(filter(None, (address.get("postal_code"), address.get("city")))), address.get("country")]
    lines += [f"{label} {value}".strip() for label, value in extra if value]
    return [line for line in lines if line]


def describe(line: Mapping, document: Mapping, lang: str) -> str:
    """A line in the document's language, from what the line records (its meter, plan, days and period); a line
    that records none of that keeps its own description."""
    kind, dates = line.get("kind"), line.get("dates")
    span = words.dates(dates["first"], dates["last"], lang) if dates else ""
    meter = words.meter_name(line["meter"], lang, line.get("description", "").split(",")[0]) if line.get("meter") \
        else ""
    if kind == "usage" and dates:
        return f"{meter}, {span}"
    if kind == "late_usage" and dates:
        month = words.month(line["period"], lang)
        if "peak_before" in line:
            return words.label(lang, "line_late_peak", meter=meter, dates=span, month=month,
                               before=words.number(line["peak_before"], lang),
                               after=words.number(Decimal(line["peak_before"]) + Decimal(line["quantity"]), lang))
        return words.label(lang, "line_late_usage", meter=meter, dates=span, month=month)
    if kind == "base_fee" and dates:
        tier = tiers.TIERS[line["tier"]].guide_name if lang == "nl" and line.get("tier") in tiers.TIERS else \
            str(line.get("tier", "")).capitalize()
        if Decimal(line["amount"]) == 0 and "proration" in line and line["proration"]["days"] == 0:
            return words.label(lang, "line_no_base_fee", tier=tier, dates=span)
        share = line.get("proration")
        return words.label(lang, "line_base_fee", tier=tier, dates=span) + (
            words.label(lang, "line_base_fee_share", **share) if share else "")
    if kind == "base_fee" and line.get("owed_from"):
        return words.label(lang, "line_late_base_fee", month=words.month(line["period"], lang),
                           date=words.date(line["owed_from"], lang))
    if kind == "credit" and "invoice_number" in document:
        return words.label(lang, "line_credit", number=document["invoice_number"], reason=document.get("reason", ""))
    return line.get("description", "")


def _row(line: Mapping, document: Mapping, lang: str) -> Row:
    currency, unit = document["currency"], line.get("unit", "")
    one = words.UNITS[lang].get(unit, (unit, unit))[0] if unit else ""
    if "bands" in line:
        unit_price = "; ".join(f"{words.number(band['quantity'], lang)} \N{MULTIPLICATION SIGN} "
                               f"{words.unit_price(band['unit_price'], lang, currency)}" for band in line["bands"])
    elif "unit_price" in line:
        unit_price = words.unit_price(line["unit_price"], lang, currency) + (f" / {one}" if one else "")
    else:
        unit_price = ""
    share = line.get("proration")
    if share:
        unit_price += (f" \N{MULTIPLICATION SIGN} {share['days']}/{share['days_in_month']} "
                       f"{words.label(lang, 'days_word')}")
    quantity = words.quantity(line["quantity"], unit, lang) if "quantity" in line else ""
    billable = words.quantity(line["billable_quantity"], unit, lang) if "billable_quantity" in line else ""
    return Row(describe(line, document, lang), quantity, billable, unit_price,
               words.money(line["amount"], lang, currency))


def _unused(line: Mapping) -> bool:
    """A line of a meter without usage and without a charge: shown as a note, not as a row of zeros."""
    return line.get("kind") == "usage" and Decimal(line.get("quantity", "0")) == 0 and Decimal(line["amount"]) == 0


def layout(document: Mapping) -> Layout:
    """The page of an invoice or credit note (a credit note carries `invoice_number`), as it was issued, in the
    language of its customer's profile (English unless it says Dutch)."""
    from billing import epc_qr

    lang = words.of(document)
    currency = document["currency"]

    def money(amount: str | Decimal) -> str:
        return words.money(amount, lang, currency)

    credit = "invoice_number" in document
    first, last = periods.start(document["period"]).date(), periods.end(document["period"]).date()
    facts = [(words.label(lang, "credit_note_number" if credit else "invoice_number"), document["number"]),
             (words.label(lang, "credit_note_date" if credit else "issue_date"),
              words.date(document["issue_date"], lang))]
    if credit:
        facts.append((words.label(lang, "credits_invoice"), words.label(
            lang, "invoice_of", number=document["invoice_number"], date=words.date(document["invoice_date"], lang))
            if document.get("invoice_date") else document["invoice_number"]))
    else:
        facts.append((words.label(lang, "due_date"), words.date(document["due_date"], lang)))
    facts += [(words.label(lang, "period"), words.dates(first, last - datetime.timedelta(days=1), lang)),
              (words.label(lang, "customer_account"), document["tenant_id"])]
    if document.get("replaces"):
        facts.append((words.label(lang, "replaces"), document["replaces"]))
    seller, customer = document["seller"], document["customer"]
    lines = document["lines"]
    rows = [_row(line, document, lang) for line in lines if not _unused(line)]
    vat = document["vat"]
    totals = [(words.label(lang, "subtotal"), money(document["subtotal"]))]
    if Decimal(document["sla_credit"]):
        pct = (document.get("sla") or {}).get("credit_pct", "")
        totals.append((words.label(lang, "sla_credit_pct", pct=words.number(pct, lang) if pct else ""),
                       money(-Decimal(document["sla_credit"]))))
    totals.append((words.label(lang, "net"), money(document["net"])))
    label = {"standard": words.label(lang, "vat", rate=words.number(vat["rate"], lang)),
             "reverse_charge": words.label(lang, "vat_reverse_charge"),
             "outside_scope": words.label(lang, "vat_outside_scope")}[vat["treatment"]]
    totals.append((label, money(vat["amount"])))
    due = document.get("amount_due", document["total"])
    if credit:
        totals.append((words.label(lang, "total_credited"), money(document["total"])))
    else:
        totals.append((words.label(lang, "total"), money(document["total"])))
        if Decimal(document.get("balance_applied") or "0"):
            totals.append((words.label(lang, "balance_applied"), money(-Decimal(document["balance_applied"]))))
        totals.append((words.label(lang, "amount_due"), money(due)))
    notes = []
    vat_note = words.vat_note(vat["treatment"], lang, customer.get("vat_id"))
    if vat_note:
        notes.append(vat_note)
    unused = [describe(line, document, lang).split(",")[0] for line in lines if _unused(line)]
    if unused:
        notes.append(words.label(lang, "no_usage", meters=", ".join(unused)))
    units = {line["meter"]: line.get("unit", "") for line in lines if line.get("meter")}
    late = [words.label(lang, "late_item", quantity=words.quantity(item["quantity"], units.get(item["meter"], ""),
                                                                    lang),
                        meter=words.meter_name(item["meter"], lang), month=words.month(item["period"], lang))
            if "meter" in item else words.label(lang, "late_item_base_fee", month=words.month(item["period"], lang))
            for item in document.get("late_usage") or []]
    if late:
        notes.append(words.label(lang, "late_note", items="; ".join(late)))
    if credit:
        notes.insert(0, f"{words.label(lang, 'reason')}: {document['reason']}")
    reference = document.get("payment_reference") or document["number"]
    pays = not credit and bool(Decimal(due))
    payment = [words.label(lang, "pay_by_transfer", amount=money(due), date=words.date(document["due_date"], lang),
                           iban=seller["iban"], bic=f" (BIC {seller['bic']})" if seller.get("bic") else "",
                           name=seller["legal_name"], reference=reference)] if pays else []
    return Layout(
        language=lang, title=words.label(lang, "credit_note" if credit else "invoice"), number=document["number"],
        facts=facts,
        seller=_party(seller, [(words.label(lang, "vat_id"), seller.get("vat_id")),
                               (words.label(lang, "coc_number"), seller.get("coc_number")), ("", seller.get("email"))]),
        customer=_party(customer, [(words.label(lang, "vat_id"), customer.get("vat_id")), ("", customer.get("email"))]),
        rows=rows, totals=totals, notes=notes, payment=payment,
        pay_code=epc_qr.for_invoice(document) if pays else None)


def to_html(page: Layout) -> str:
    e = html.escape
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in page.facts)
    rows = "".join(f"<tr><td>{e(r.description)}</td><td class=n>{e(r.quantity)}</td><td class=n>{e(r.billable)}</td>"
                   f"<td class=n>{e(r.unit_price)}</td><td class=n>{e(r.amount)}</td></tr>" for r in page.rows)
    totals = "".join(f"<tr{' class=total' if i == len(page.totals) - 1 else ''}><td colspan=4>{e(k)}</td>"
                     f"<td class=n>{e(v)}</td></tr>" for i, (k, v) in enumerate(page.totals))
    notes = "".join(f"<p>{e(note)}</p>" for note in page.notes + page.payment)
    if page.pay_code:
        from billing import epc_qr

        notes += (f"<figure class=pay>{epc_qr.svg(page.pay_code).decode()}<figcaption>{e(page.word('scan_to_pay'))}"
                  "</figcaption></figure>")
    heading = [e(page.word(key)) for key in ("description", "quantity", "billable_quantity", "unit_price", "amount")]
    return f"""<!doctype html>
<html lang="{page.language}"><head><meta charset="utf-8"><title>{e(page.title)} {e(page.number)}</title>
<style>
body{{font-family:"Source Sans Pro","Helvetica Neue",Arial,sans-serif;color:#1d2433;max-width:900px;margin:32px auto;
padding:0 24px;font-size:14px}} h1{{font-size:24px;margin:0 0 4px}} .muted{{color:#667085}} table{{width:100%;
border-collapse:collapse}} th,td{{padding:7px 6px;text-align:left;vertical-align:top}} .lines th,.lines td{{
border-bottom:1px solid #e4e7ec}} .n{{text-align:right;white-space:nowrap}} .total td{{font-weight:700;
font-size:16px;border-top:2px solid #1d2433;border-bottom:none}} .parties{{display:flex;gap:48px;margin:24px 0}}
.parties div{{flex:1}} .facts th{{font-weight:400;color:#667085;width:40%}} .facts{{width:auto}}
.pay{{margin:16px 0;width:160px}} .pay svg{{width:160px;height:auto}} .pay figcaption{{font-size:12px;color:#667085}}
</style></head><body>
<header><h1>{e(page.title)} {e(page.number)}</h1><div class=muted>{e(page.seller[0])}</div></header>
<section class=parties><div><strong>{e(page.word("seller"))}</strong><br>{"<br>".join(e(s) for s in page.seller)}</div>
<div><strong>{e(page.word("to"))}</strong><br>{"<br>".join(e(s) for s in page.customer)}</div></section>
<table class=facts>{facts}</table>
<table class=lines style="margin-top:20px"><thead><tr><th>{heading[0]}</th><th class=n>{heading[1]}</th>
<th class=n>{heading[2]}</th><th class=n>{heading[3]}</th><th class=n>{heading[4]}</th></tr></thead>
<tbody>{rows}</tbody>
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
            self.cell(0, 5, f"{page.title} {page.number} \N{MIDDLE DOT} "
                            f"{page.word('page_footer', page=self.page_no(), pages='{nb}')}", align="R")

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
    _table(pdf, family, page)
    pdf.ln(3)
    for index, (key, value) in enumerate(page.totals):
        last = index == len(page.totals) - 1  # what is due (or credited) stands out
        pdf.set_font(family, "", 11 if last else 10)
        draw = _strong if last else _plain
        draw(pdf, width - 40, 6, key, align="R")
        draw(pdf, 40, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(family, "", 9)
    for note in page.notes:
        for part in wrap(pdf, note, pdf.epw):
            pdf.cell(0, 4.5, part, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    _payment(pdf, family, page)
    return bytes(pdf.output())


QR_MM = 30  # large enough for a phone camera at arm's length (EPC asks for at least 2 cm)


def _payment(pdf, family: str, page: Layout) -> None:
    """How to pay, kept whole on one page: the EPC QR code of what is due, the transfer's details beside it."""
    import io

    from billing import epc_qr

    if not page.payment:
        return
    beside = pdf.epw - (QR_MM + 6 if page.pay_code else 0)
    text = [part for line in page.payment for part in wrap(pdf, line, beside)]
    height = max(QR_MM + 6 if page.pay_code else 0, 4.5 * len(text)) + 2
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
    top = pdf.get_y() + 1
    if page.pay_code:
        pdf.image(io.BytesIO(epc_qr.png(page.pay_code)), x=pdf.l_margin, y=top, w=QR_MM, h=QR_MM)
        pdf.set_xy(pdf.l_margin, top + QR_MM + 0.5)
        pdf.set_font(family, "", 7)
        pdf.cell(QR_MM, 4, page.word("scan_to_pay"))
    pdf.set_font(family, "", 9)
    for index, part in enumerate(text):
        pdf.set_xy(pdf.l_margin + pdf.epw - beside, top + 4.5 * index)
        pdf.cell(beside, 4.5, part)
    pdf.set_xy(pdf.l_margin, top + height)


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
    blocks = ((page.word("seller"), page.seller), (page.word("to"), page.customer))
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


COLUMNS = (("description", 0.40, "L"), ("quantity", 0.14, "R"), ("billable_quantity", 0.14, "R"),
           ("unit_price", 0.20, "R"), ("amount", 0.12, "R"))  # (the language's label, share of the width, alignment)
LINE_MM = 4.4


def _table(pdf, family: str, page: Layout) -> None:
    """The lines as a table: each cell wrapped to its column, a row kept on one page, the heading repeated on
    every page the table reaches."""
    widths = [share * pdf.epw for _, share, _ in COLUMNS]

    def heading() -> None:
        pdf.set_font(family, "", 9)
        for (title, _, align), width in zip(COLUMNS, widths, strict=True):
            _strong(pdf, width, 6, page.word(title), align=align)
        pdf.ln(6)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())

    heading()
    pdf.set_font(family, "", 9)
    for row in page.rows:
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
