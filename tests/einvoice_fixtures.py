"""Issued invoices and credit notes as billing's JSON carries them, for the e-invoice, payment, journal and VAT
tests, the official-validator harness (tools/validate_einvoice.py) and the e-invoice benchmark.

Amounts are computed here from quantities and the shipped price book, independently of billing's own pricing:
graduated bands above the allowance, each line rounded once half-up to cents, the SLA credit a percentage of the
subtotal, grants before VAT, VAT on the net, credit notes negated (a partial one as one `credit` line, its VAT the
invoice's rate on that amount, the last one taking the VAT that is left).
"""

from __future__ import annotations

import calendar
import copy
import datetime
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from billing.payment_reference import creditor_reference

ROOT = Path(__file__).resolve().parent.parent
PRICES = json.loads((ROOT / "config" / "pricing.json").read_text())
_SELLER = json.loads((ROOT / "config" / "seller.json").read_text())
SELLER = {**{k: _SELLER[k] for k in ("legal_name", "vat_id", "coc_number", "iban", "email")},
          "address": _SELLER["address"], "payment_terms_days": _SELLER["payment_terms_days"], "bic": _SELLER["bic"]}
EU = {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
      "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    value = cents(value)
    return str(value if value else Decimal("0.00"))


def plain(value: Decimal) -> str:
    text = f"{value:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


CUSTOMERS = {
    "nl": {"legal_name": "Bakkerij De Gouden Korenaar B.V.", "vat_id": "NL123456782B01", "coc_number": "12345678",
           "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL"},
           "email": "administratie@goudenkorenaar.nl", "language": "nl"},
    "de": {"legal_name": "Müller Datentechnik GmbH", "vat_id": "DE811907980",
           "address": {"line1": "Königstraße 12", "line2": "3. OG", "postal_code": "70173", "city": "Stuttgart",
                       "country": "DE"},
           "email": "rechnungen@mueller-datentechnik.de", "buyer_reference": "PO-4711"},
    "gr": {"legal_name": "Ελληνικές Ψηφιακές Λύσεις Α.Ε.", "vat_id": "EL094501236",  # noqa: RUF001 (Greek A.E.)
           "address": {"line1": "Λεωφόρος Βασιλίσσης Σοφίας 12", "postal_code": "106 74", "city": "Αθήνα",
                       "country": "GR"}},
    "pl": {"legal_name": "Zakład Usług Informatycznych „Łódź” sp. z o.o.", "vat_id": "PL5261040828",
           "address": {"line1": "ul. Piotrkowska 104", "postal_code": "90-926", "city": "Łódź", "country": "PL"},
           "language": "en"},
    "bg": {"legal_name": "Софтуерни решения ЕООД", "vat_id": "BG175074752",
           "address": {"line1": "бул. Витоша 15", "postal_code": "1000", "city": "София", "country": "BG"}},
    "ch": {"legal_name": "Alpenblick Analytik AG", "vat_id": "CHE-116.281.710 MWST",
           "address": {"line1": "Bahnhofstrasse 10", "postal_code": "8001", "city": "Zürich", "country": "CH"}},
    "us": {"legal_name": "Acme Robotics Inc.", "vat_id": "EIN 12-3456789",
           "address": {"line1": "500 Market Street", "postal_code": "94105", "city": "San Francisco",
                       "country": "US"},
           "peppol_id": {"scheme": "0060", "id": "123456789"}},
}


def treatment(customer: dict) -> tuple[str, Decimal]:
    country = customer["address"]["country"]
    if country == "NL":
        return "standard", Decimal(_SELLER["vat_rates"]["standard"])
    return ("reverse_charge", Decimal(0)) if country in EU else ("outside_scope", Decimal(0))


def _bands(tier: str, meter: str) -> list[tuple[Decimal | None, Decimal]]:
    return [(None if band["up_to"] is None else Decimal(band["up_to"]), Decimal(band["unit_price"]))
            for band in PRICES["plans"][tier]["overage"][meter]]


def _split(start: Decimal, end: Decimal, bands: list) -> list[tuple[Decimal, Decimal]]:
    parts, lower = [], Decimal(0)
    for up_to, price in bands:
        low, high = max(start, lower), end if up_to is None else min(end, up_to)
        if high > low:
            parts.append((high - low, price))
        if up_to is None or end <= up_to:
            break
        lower = up_to
    return parts


def _days(period: str) -> int:
    return calendar.monthrange(int(period[:4]), int(period[5:7]))[1]


def base_fee(tier: str, period: str, days: int | None = None) -> dict:
    fee = Decimal(PRICES["plans"][tier]["base_fee"])
    in_month = _days(period)
    days = in_month if days is None else days
    line = {"kind": "base_fee", "unit_price": str(fee), "amount": money(fee * days / in_month),
            "description": f"{tier.capitalize()} plan, {period}"}
    if days != in_month:
        line["proration"] = {"days": days, "days_in_month": in_month}
    return line


def late_base_fee(tier: str, period: str, days: int) -> dict:
    fee = Decimal(PRICES["plans"][tier]["base_fee"]) * days / _days(period)
    return {"kind": "base_fee", "period": period, "amount": money(fee),
            "description": f"Base fee for {period}, owed from the billing start ({days} days)"}


def usage(tier: str, meter: str, quantity: str, period: str, *, days: int | None = None, before: str = "0",
          late_of: str | None = None) -> dict:
    """A usage line (late usage with `late_of`): `quantity` more than `before`, priced above the allowance of the
    days (a sum or count meter's allowance prorated, a peak's price prorated instead)."""
    definition = PRICES["meters"][meter]
    included = Decimal(PRICES["plans"][tier]["included"][meter])
    in_month = _days(period)
    days = in_month if days is None else days
    capacity = definition["aggregation"] == "max"
    allowance = included if capacity else (included * days / in_month).quantize(Decimal("0.000001"),
                                                                                 rounding=ROUND_HALF_UP)
    start = max(Decimal(0), Decimal(before) - allowance)
    end = max(Decimal(0), Decimal(before) + Decimal(quantity) - allowance)
    bands = _bands(tier, meter)
    parts = _split(start, end, bands)
    exact = sum((q * p for q, p in parts), Decimal(0))
    if capacity:
        exact = exact * days / in_month
    line = {"kind": "late_usage" if late_of else "usage", "meter": meter, "quantity": quantity,
            "unit": definition["unit"], "included": plain(allowance), "billable_quantity": plain(end - start)}
    if late_of:
        line["period"] = late_of
    if len(parts) > 1:
        line["bands"] = [{"quantity": plain(q), "unit_price": str(p)} for q, p in parts]
    else:
        line["unit_price"] = str(parts[0][1] if parts else next(p for up, p in bands if up is None or start < up))
    if capacity and days != in_month:
        line["proration"] = {"days": days, "days_in_month": in_month}
    line["amount"] = money(exact)
    line["description"] = f"{definition['description']}, {late_of or period}"
    return line


def invoice(number: str, key: str, period: str, tier: str, lines: list[dict], *, issue_date: str,
            sla_pct: str | None = None, grants: tuple[str, ...] = (), balance: str = "0.00",
            tenant_id: str | None = None, payments: tuple[tuple[str, str, str], ...] = ()) -> dict:
    customer = copy.deepcopy(CUSTOMERS[key])
    subtotal = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    sla = cents(subtotal * Decimal(sla_pct) / 100) if sla_pct else Decimal(0)
    room = subtotal - sla
    grant_lines = []
    for grant in grants:
        used = min(Decimal(grant), room)
        room -= used
        grant_lines.append({"kind": "credit_grant", "amount": money(-used),
                            "description": f"Credit grant (welcome credit of {grant})"})
    net = subtotal - sla - sum((-Decimal(g["amount"]) for g in grant_lines), Decimal(0))
    kind, rate = treatment(customer)
    vat = cents(net * rate / 100)
    total = net + vat
    applied = min(Decimal(balance), total)
    due = datetime.date.fromisoformat(issue_date) + datetime.timedelta(days=SELLER["payment_terms_days"])
    document = {
        "number": number, "tenant_id": tenant_id or f"tenant-{key}", "period": period, "currency": "EUR",
        "tier": tier, "lines": [*lines, *grant_lines], "subtotal": money(subtotal), "sla_credit": money(sla),
        "sla": {"availability_pct": "99.85", "p95_latency_ms": 900, "credit_pct": sla_pct} if sla_pct else None,
        "net": money(net), "vat": {"treatment": kind, "rate": plain(rate), "amount": money(vat)},
        "total": money(total), "seller": copy.deepcopy(SELLER), "customer": customer, "status": "final",
        "issued_at": f"{issue_date}T00:05:00Z", "issue_date": issue_date, "due_date": due.isoformat(),
        "payment_reference": creditor_reference(number), "balance_applied": money(applied),
        "late_usage": [{"period": line["period"], "meter": line["meter"], "quantity": line["quantity"]}
                       for line in lines if line["kind"] == "late_usage"],
        "payments": [{"amount": amount, "reference": reference, "paid_at": paid_at}
                     for amount, reference, paid_at in payments],
    }
    document["amount_due"] = money(max(Decimal(0), total - applied))
    return document


def credit_note(invoice: dict, number: str, issue_date: str, reason: str, amount: str | None = None,
                credited: tuple[str, str] = ("0", "0")) -> dict:
    """A credit note on `invoice`: in full (its lines negated) when `amount` is None and nothing was credited,
    else one `credit` line; `credited` is (net, VAT) already credited by earlier notes."""
    net, vat_amount = Decimal(invoice["net"]), Decimal(invoice["vat"]["amount"])
    left = net - Decimal(credited[0])
    value = left if amount is None else Decimal(amount)
    rest = value == left
    vat = vat_amount - Decimal(credited[1]) if rest else cents(value * Decimal(invoice["vat"]["rate"]) / 100)
    whole = rest and Decimal(credited[0]) == 0

    def negated(text: str) -> str:
        return money(-Decimal(text))

    if whole:
        lines = [{**line, "amount": negated(line["amount"])} for line in invoice["lines"]]
        subtotal, sla_credit = negated(invoice["subtotal"]), negated(invoice["sla_credit"])
    else:
        lines = [{"kind": "credit", "amount": money(-value),
                  "description": f"Credit on invoice {invoice['number']} ({reason})"}]
        subtotal, sla_credit = money(-value), "0.00"
    return {**{k: copy.deepcopy(invoice[k]) for k in ("tenant_id", "period", "currency", "tier", "seller", "customer")},
            "number": number, "invoice_number": invoice["number"], "invoice_date": invoice["issue_date"],
            "reason": reason, "lines": lines, "subtotal": subtotal, "sla_credit": sla_credit,
            "sla": invoice.get("sla") if whole else None, "net": money(-value),
            "vat": {**invoice["vat"], "amount": money(-vat)}, "total": money(-(value + vat)), "status": "issued",
            "issued_at": f"{issue_date}T09:30:00Z", "issue_date": issue_date}


def documents() -> dict[str, dict]:
    """Every fixture by name, invoices first, each credit note after the invoice it corrects."""
    nl = invoice("2026-000101", "nl", "2026-10", "standard", [
        base_fee("standard", "2026-10"),
        usage("standard", "workflow_minutes", "26000", "2026-10"),
        usage("standard", "workflow_runs", "2000", "2026-10"),
        usage("standard", "peak_concurrent_workflows", "2", "2026-10"),
        usage("standard", "storage_gib_hours", "20000", "2026-10"),
    ], issue_date="2026-11-01", payments=(("406.95", "NL-BANK-20261120-1", "2026-11-20T10:00:00Z"),))
    de = invoice("2026-000102", "de", "2026-10", "premium", [
        base_fee("premium", "2026-10"),
        usage("premium", "workflow_minutes", "80000", "2026-10"),
    ], issue_date="2026-11-01", sla_pct="10", payments=(("800.00", "DE-SEPA-7781", "2026-11-25T08:00:00Z"),))
    gr = invoice("2026-000103", "gr", "2026-10", "standard", [
        base_fee("basic", "2026-10", days=15),
        usage("basic", "workflow_minutes", "1200", "2026-10", days=15),
        base_fee("standard", "2026-10", days=16),
        usage("standard", "peak_concurrent_workflows", "3", "2026-10", days=16),
        usage("basic", "workflow_minutes", "700", "2026-10", before="4500", late_of="2026-09"),
        usage("basic", "peak_concurrent_workflows", "1", "2026-10", before="1", late_of="2026-09"),
        late_base_fee("basic", "2026-08", 10),
    ], issue_date="2026-11-01")
    pl = invoice("2026-000104", "pl", "2026-10", "basic", [
        base_fee("basic", "2026-10"),
        usage("basic", "workflow_runs", "1700", "2026-10"),
    ], issue_date="2026-11-01", grants=("25.00",), balance="10.00",
        payments=(("5.00", "PL-PRZELEW-0042", "2026-11-28T12:00:00Z"),))
    bg = invoice("2026-000105", "bg", "2026-10", "standard", [
        base_fee("standard", "2026-10"),
        usage("standard", "storage_gib_hours", "30750.5", "2026-10"),
    ], issue_date="2026-11-01")
    ch = invoice("2026-000106", "ch", "2026-10", "basic", [
        base_fee("basic", "2026-10"),
        usage("basic", "workflow_minutes", "1500", "2026-10"),
    ], issue_date="2026-11-01", sla_pct="5", grants=("10.00",))
    us = invoice("2026-000107", "us", "2026-10", "enterprise", [
        base_fee("enterprise", "2026-10"),
        usage("enterprise", "workflow_minutes", "1250000", "2026-10"),
    ], issue_date="2026-11-02")
    free = invoice("2026-000108", "nl", "2026-10", "basic", [base_fee("basic", "2026-10")],
                   issue_date="2026-11-02", grants=("100.00",), tenant_id="tenant-nl-free")
    september = invoice("2026-000090", "nl", "2026-09", "basic", [base_fee("basic", "2026-09")],
                        issue_date="2026-09-30", tenant_id="tenant-nl-free")
    return {
        "nl-standard": nl, "de-reverse-charge-sla": de, "gr-late-usage-prorated": gr, "pl-grant-balance": pl,
        "bg-cyrillic": bg, "ch-outside-eu-grant": ch, "us-outside-eu-peppol": us, "nl-covered-by-grant": free,
        "nl-september": september,
        "nl-partial-credit": credit_note(nl, "CN-2026-000011", "2026-11-25", "goodwill for an outage", "100.00"),
        "nl-rest-credit": credit_note(nl, "CN-2027-000001", "2027-01-10", "contract ended",
                                      credited=("100.00", "21.00")),
        "de-full-credit": credit_note(de, "CN-2026-000012", "2026-11-30", "billed to the wrong entity"),
        "pl-partial-credit": credit_note(pl, "CN-2026-000013", "2026-12-01", "runs counted twice", "15.00"),
        "ch-full-credit": credit_note(ch, "CN-2026-000014", "2026-12-02", "duplicate invoice"),
        "gr-full-credit": credit_note(gr, "CN-2026-000015", "2026-12-03", "wrong legal entity: reissued"),
    }


def no_peppol_customer() -> dict:
    """An invoice to a customer outside the EU with neither a Peppol id nor a VAT number of a Peppol scheme."""
    document = invoice("2026-000109", "us", "2026-10", "basic", [base_fee("basic", "2026-10")],
                       issue_date="2026-11-02")
    document["customer"].pop("peppol_id")
    return document


# Customers in other member states, addressed by the VAT schemes of their countries (0007 and 0184 check their
# identifiers' formats in the Peppol schematron); Dutch texts.
OTHER_CUSTOMERS = {
    "se": ("Nordisk Analys AB", "SE556677889901", "Drottninggatan 5", "111 51", "Stockholm", "SE"),
    "dk": ("Dansk Dataservice ApS", "DK13585628", "Vesterbrogade 3", "1620", "København V", "DK"),
    "be": ("Brouwerij Sint-Arnoldus NV", "BE0403019261", "Grote Markt 1", "1000", "Brussel", "BE"),
    "it": ("Soluzioni Digitali S.r.l.", "IT12345679992", "Via Roma 10", "00184", "Roma", "IT"),
    "fr": ("Société Générale d'Analyse SAS", "FR40303265045", "12 rue de Rivoli", "75004", "Paris", "FR"),
    "at": ("Österreichische Datenwerke GmbH", "ATU13585627", "Mariahilfer Straße 1", "1060", "Wien", "AT"),
}


def member_state_variants() -> dict[str, dict]:
    """The reverse-charge invoice and its full credit note, to customers of six more member states, in Dutch."""
    base = documents()["de-reverse-charge-sla"]
    variants = {}
    for key, (name, vat_id, street, postal_code, city, country) in OTHER_CUSTOMERS.items():
        document = copy.deepcopy(base)
        document.update(number=f"2026-0002{len(variants):02d}", tenant_id=f"tenant-{key}")
        document["payment_reference"] = creditor_reference(document["number"])
        document["customer"] = {"legal_name": name, "vat_id": vat_id, "language": "nl",
                                "address": {"line1": street, "postal_code": postal_code, "city": city,
                                            "country": country}}
        variants[f"{key}-reverse-charge-nl"] = document
        variants[f"{key}-full-credit-nl"] = credit_note(document, f"CN-2026-0002{len(variants):02d}", "2026-12-01",
                                                        "dubbel gefactureerd")
    return variants
