"""The words and number formats of an invoice in the customer's language (`billing_profile.language`: `en`, the
default, or `nl`), for the HTML, the PDF and the UBL's texts.

Conventions: English writes €1,234.56 and 1,234.5; Dutch writes € 1.234,56 and 1.234,5 (a space after the sign, a
point between thousands, a decimal comma; a negative amount as € -1.234,56). Dutch months are lower case.
The VAT notes are the texts a Dutch invoice carries: "BTW verlegd" for a service reverse-charged to a business in
another member state (art. 35a Wet OB asks for that note), "Dienst verricht buiten de EU" for a service to a
business outside the EU, where the place of supply is the customer's country (art. 44 VAT Directive).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

LANGUAGES = ("en", "nl")
DEFAULT = "en"

_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
}

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice", "credit_note": "Credit note", "invoice_number": "Invoice number",
        "credit_note_number": "Credit note number", "issue_date": "Issue date", "due_date": "Due date",
        "period": "Period supplied", "seller": "From", "customer": "Bill to", "vat_id": "VAT number",
        "coc_number": "Chamber of Commerce (KvK)", "description": "Description", "quantity": "Quantity",
        "billable_quantity": "Billable", "unit_price": "Unit price", "amount": "Amount", "subtotal": "Subtotal",
        "sla_credit": "SLA credit", "credit_grant": "Credit grant", "net": "Net amount", "vat": "VAT {rate} %",
        "vat_reverse_charge": "VAT reverse-charged", "vat_outside_scope": "VAT not applicable",
        "total": "Total", "balance_applied": "Customer balance applied", "amount_paid": "Paid",
        "amount_due": "Amount due", "payment": "Payment", "iban": "IBAN", "bic": "BIC",
        "payment_reference": "Payment reference",
        "pay_by": "Please pay {amount} by {date} to {iban}, quoting {reference}.",
        "scan_to_pay": "Scan with your banking app to pay", "credits_invoice": "Credits invoice",
        "invoice_date": "Invoice date", "reason": "Reason", "page": "Page {page} of {pages}",
        "base_fee": "Base fee", "late_usage": "Late usage, {period}: {meter}", "late_base_fee": "Base fee, {period}",
        "credit": "Credit on invoice {number}", "days": "{days} of {days_in_month} days",
        "payment_terms": "Payment within {days} days, by {date}, quoting {reference}.",
        "credit_terms": "Settles invoice {number}: set against what is due; what was already paid is refunded or "
                        "kept as a credit balance.",
        "reverse_charge_reason": "Reverse charge", "outside_scope_reason": "Not subject to VAT",
        "reverse_charge_note": "VAT reverse-charged (BTW verlegd): the customer accounts for the VAT "
                               "(art. 196 VAT Directive).",
        "reverse_charge_vat_id": "Customer VAT number: {vat_id}.",
        "outside_scope_note": "Service supplied outside the EU: not subject to Dutch VAT (art. 44 VAT Directive).",
        "credit_note_date": "Issue date", "customer_account": "Customer account", "replaces": "Replaces invoice",
        "invoice_of": "{number} of {date}",
        "to": "To", "total_credited": "Total credited", "sla_credit_pct": "SLA credit ({pct}% of subtotal)",
        "page_footer": "page {page} of {pages}",
        "pay_by_transfer": "Please pay {amount} by {date} to IBAN {iban}{bic} in the name of {name}, quoting payment "
                           "reference {reference}.",
        "no_usage": "No usage this period of: {meters}.",
        "late_note": "Charged here for earlier periods, at those periods' prices and allowances, as counted after "
                     "they were invoiced: {items}.",
        "late_item": "{quantity} of {meter} used in {month}", "late_item_base_fee": "the base fee of {month}",
        "line_late_usage": "{meter}, {dates}: used in {month}, counted after it was invoiced",
        "line_late_peak": "{meter}, {dates}: the peak rose from {before} to {after} after {month} was invoiced",
        "line_base_fee": "{tier} plan, {dates}",
        "line_base_fee_share": " (base fee for {days} of {days_in_month} days)",
        "line_no_base_fee": "{tier} plan, {dates}: no base fee before the billing start",
        "line_late_base_fee": "Base fee for {month}, owed from the billing start {date}",
        "line_credit": "Credit on invoice {number} ({reason})", "days_word": "days",
    },
    "nl": {
        "invoice": "Factuur", "credit_note": "Creditnota", "invoice_number": "Factuurnummer",
        "credit_note_number": "Creditnotanummer", "issue_date": "Factuurdatum", "due_date": "Vervaldatum",
        "period": "Leveringsperiode", "seller": "Van", "customer": "Aan", "vat_id": "Btw-nummer",
        "coc_number": "KvK-nummer", "description": "Omschrijving", "quantity": "Aantal",
        "billable_quantity": "Gefactureerd", "unit_price": "Prijs per eenheid", "amount": "Bedrag",
        "subtotal": "Subtotaal", "sla_credit": "SLA-creditering", "credit_grant": "Tegoed", "net": "Nettobedrag",
        "vat": "Btw {rate}%", "vat_reverse_charge": "Btw verlegd", "vat_outside_scope": "Btw niet van toepassing",
        "total": "Totaal", "balance_applied": "Verrekend tegoed", "amount_paid": "Betaald",
        "amount_due": "Te betalen", "payment": "Betaling", "iban": "IBAN", "bic": "BIC",
        "payment_reference": "Betalingskenmerk",
        "pay_by": "Graag {amount} vóór {date} overmaken naar {iban} onder vermelding van {reference}.",
        "scan_to_pay": "Scan met uw bankapp om te betalen", "credits_invoice": "Crediteert factuur",
        "invoice_date": "Datum factuur", "reason": "Reden", "page": "Pagina {page} van {pages}",
        "base_fee": "Vaste vergoeding", "late_usage": "Nagekomen gebruik, {period}: {meter}",
        "late_base_fee": "Vaste vergoeding, {period}", "credit": "Creditering op factuur {number}",
        "days": "{days} van {days_in_month} dagen",
        "payment_terms": "Betaling binnen {days} dagen, uiterlijk {date}, onder vermelding van {reference}.",
        "credit_terms": "Verrekening met factuur {number}: in mindering op het openstaande bedrag; wat al betaald "
                        "is, wordt terugbetaald of als tegoed bewaard.",
        "reverse_charge_reason": "BTW verlegd", "outside_scope_reason": "Dienst verricht buiten de EU",
        "reverse_charge_note": "BTW verlegd: de afnemer voldoet de btw (art. 196 Btw-richtlijn).",
        "reverse_charge_vat_id": "Btw-nummer afnemer: {vat_id}.",
        "outside_scope_note": "Dienst verricht buiten de EU: niet belast in Nederland (art. 44 Btw-richtlijn).",
        "credit_note_date": "Datum creditnota", "customer_account": "Klantnummer", "replaces": "Vervangt factuur",
        "invoice_of": "{number} van {date}",
        "to": "Aan", "total_credited": "Totaal gecrediteerd",
        "sla_credit_pct": "SLA-creditering ({pct}% van het subtotaal)", "page_footer": "pagina {page} van {pages}",
        "pay_by_transfer": "Graag {amount} vóór {date} overmaken naar IBAN {iban}{bic} ten name van {name}, onder "
                           "vermelding van betalingskenmerk {reference}.",
        "no_usage": "Geen gebruik in deze periode van: {meters}.",
        "late_note": "Hier in rekening gebracht voor eerdere periodes, tegen de prijzen en bundels van die periodes, "
                     "zoals geteld nadat die gefactureerd waren: {items}.",
        "late_item": "{quantity} {meter} gebruikt in {month}", "late_item_base_fee": "de vaste vergoeding van {month}",
        "line_late_usage": "{meter}, {dates}: gebruikt in {month}, geteld nadat die periode gefactureerd was",
        "line_late_peak": "{meter}, {dates}: de piek steeg van {before} naar {after} nadat {month} gefactureerd was",
        "line_base_fee": "Abonnement {tier}, {dates}",
        "line_base_fee_share": " (vaste vergoeding voor {days} van {days_in_month} dagen)",
        "line_no_base_fee": "Abonnement {tier}, {dates}: geen vaste vergoeding vóór de startdatum",
        "line_late_base_fee": "Vaste vergoeding voor {month}, verschuldigd vanaf de startdatum {date}",
        "line_credit": "Creditering op factuur {number} ({reason})", "days_word": "dagen",
    },
}

# Meters by their price-book key; a meter not named here keeps the price book's description.
METER_NAMES = {
    "en": {"workflow_minutes": "Agent workflow run time", "workflow_runs": "Workflows started",
           "peak_concurrent_workflows": "Peak concurrent workflows", "storage_gib_hours": "Workspace storage"},
    "nl": {"workflow_minutes": "Looptijd van agentworkflows", "workflow_runs": "Gestarte workflows",
           "peak_concurrent_workflows": "Piek gelijktijdige workflows", "storage_gib_hours": "Opslag werkruimte"},
}

# Units by the price book's name: (one, many).
UNITS = {
    "en": {"minute": ("minute", "minutes"), "run": ("run", "runs"), "workflow": ("workflow", "workflows"),
           "GiB-hour": ("GiB-hour", "GiB-hours"), "day": ("day", "days"), "month": ("month", "months")},
    "nl": {"minute": ("minuut", "minuten"), "run": ("run", "runs"), "workflow": ("workflow", "workflows"),
           "GiB-hour": ("GiB-uur", "GiB-uren"), "day": ("dag", "dagen"), "month": ("maand", "maanden")},
}

_CURRENCY_SIGNS = {"EUR": "€"}


def resolve(value: object) -> str:
    """The language a document is rendered in: `nl` or `en` as given, anything else (absent, unknown) `en`."""
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT


def of(document: Mapping) -> str:
    """The language of an issued document: its own `language`, else its customer's, else `en`."""
    customer = document.get("customer") or {}
    return resolve(document.get("language") or customer.get("language"))


def label(language: str, key: str, **values: object) -> str:
    return LABELS[resolve(language)][key].format(**values)


def _grouped(value: Decimal, language: str, places: int | None) -> str:
    """|value| with thousands grouped and `places` decimals (None: its own, trailing zeros dropped)."""
    value = abs(value)
    if places is None:
        whole, _, fraction = _plain(value).partition(".")
        text = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
    else:
        text = f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,f}"
    if language == "nl":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _signed(value: Decimal, digits: str, language: str, currency: str) -> str:
    symbol = _CURRENCY_SIGNS.get(currency)
    sign = "-" if value < 0 else ""
    if language == "nl" or symbol is None:
        return f"{symbol or currency} {sign}{digits}"
    return f"{sign}{symbol}{digits}"


def money(amount: Decimal | str, language: str, currency: str = "EUR") -> str:
    """€1,234.56 / -€1,234.56 (en), € 1.234,56 / € -1.234,56 (nl). Amounts keep two decimals."""
    language = resolve(language)
    value = Decimal(str(amount))
    return _signed(value, _grouped(value, language, 2), language, currency)


def unit_price(price: Decimal | str, language: str, currency: str = "EUR") -> str:
    """A unit price with the decimals it was set with, at least two: €0.0090 / € 0,0090."""
    language = resolve(language)
    value = Decimal(str(price))
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return _signed(value, _grouped(value, language, places), language, currency)


def number(value: Decimal | str, language: str) -> str:
    """A quantity with thousands grouped and its own decimals: 30,750.5 (en), 30.750,5 (nl)."""
    value = Decimal(str(value))
    return ("-" if value < 0 else "") + _grouped(value, resolve(language), None)


def quantity(value: Decimal | str, unit: str, language: str) -> str:
    """A quantity with its unit, singular for exactly one: 1 minute, 2,500 minutes, 1.000 minuten."""
    language = resolve(language)
    one, many = UNITS[language].get(unit, (unit, unit))
    return f"{number(value, language)} {one if Decimal(str(value)) == 1 else many}"


def date(iso_date: str | datetime.date, language: str) -> str:
    """1 September 2026 (en), 1 september 2026 (nl)."""
    day = iso_date if isinstance(iso_date, datetime.date) else datetime.date.fromisoformat(iso_date)
    return f"{day.day} {_MONTHS[resolve(language)][day.month - 1]} {day.year}"


def dates(first: str | datetime.date, last: str | datetime.date, language: str) -> str:
    """A run of days, e.g. 3 November 2026; 1 to 15 November 2026 as "1-15 November 2026" (an en dash); 28 October
    to 3 November 2026 with the dash between spaces. Dutch writes the months in lower case."""
    start, end = (day if isinstance(day, datetime.date) else datetime.date.fromisoformat(day) for day in (first, last))
    if start == end:
        return date(start, language)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}\N{EN DASH}{date(end, language)}"
    if start.year == end.year:
        return f"{date(start, language).rsplit(' ', 1)[0]} \N{EN DASH} {date(end, language)}"
    return f"{date(start, language)} \N{EN DASH} {date(end, language)}"


def month(period: str, language: str) -> str:
    """A period YYYY-MM as September 2026 / september 2026."""
    year, month_number = int(period[:4]), int(period[5:7])
    return f"{_MONTHS[resolve(language)][month_number - 1]} {year}"


def meter_name(meter: str, language: str, fallback: str | None = None) -> str:
    return METER_NAMES[resolve(language)].get(meter) or fallback or meter


def vat_note(treatment: str, language: str, customer_vat_id: str | None = None) -> str | None:
    """The VAT note an invoice of this treatment carries (None for standard VAT, which needs no note)."""
    if treatment == "reverse_charge":
        note = label(language, "reverse_charge_note")
        return f"{note} {label(language, 'reverse_charge_vat_id', vat_id=customer_vat_id)}" if customer_vat_id \
            else note
    if treatment == "outside_scope":
        return label(language, "outside_scope_note")
    return None


def exemption_reason(treatment: str, language: str) -> str | None:
    """The short reason the UBL's VAT breakdown gives for a 0 % category (BT-120)."""
    return {"reverse_charge": label(language, "reverse_charge_reason"),
            "outside_scope": label(language, "outside_scope_reason")}.get(treatment)
