"""Issued invoices and credit notes as UBL 2.1 e-invoices: Peppol BIS Billing 3.0 with the Dutch national rules
(NL-R-001 to NL-R-009) for a Dutch seller. A pure function of the document as issued: the same JSON always gives
the same bytes (no clock, no random identifiers).

How the JSON maps (EN 16931 business terms in brackets):
- parties: the seller's KvK number is its legal registration [BT-30] under scheme 0106 (NL-R-003) and, unless the
  seller configures a `peppol_id`, its electronic address [BT-34]; the customer's electronic address [BT-49] is
  its `peppol_id`, else its VAT number under the EAS scheme of the VAT number's country (9944 NL, 9930 DE, ...).
  A customer with neither cannot receive the document over Peppol: `build` raises NoElectronicAddress.
- VAT category by treatment: `standard` S at the rate; `reverse_charge` AE at 0 with VATEX-EU-AE; `outside_scope`
  O without a rate, with VATEX-EU-O, and neither party's VAT number (BR-O-02).
- lines: a usage line's billable quantity in its UN/ECE rec. 20 unit at its unit price; a line priced in bands
  becomes one UBL line per band, the cents of the JSON amount spread so each band line is within a cent of its
  quantity x price and together they are the JSON amount exactly (PEPPOL-EN16931-R120, BR-CO-10). A line for part
  of a month: the base fee as days at the monthly fee per days-in-month (Price/BaseQuantity); a peak as the peak
  at the unit price x days / days-in-month.
- `sla_credit` and each `credit_grant` line are document-level allowances in the document's VAT category.
- totals: LineExtensionAmount = `subtotal`, AllowanceTotalAmount = SLA credit + grants, TaxExclusiveAmount =
  `net`, TaxInclusiveAmount = `total`, PrepaidAmount = `balance_applied`, PayableAmount = what was due at issue.
  A credit note's JSON carries negated amounts; its UBL carries them positive (Peppol has no negative
  credit note), names the invoice it corrects (NL-R-001) and its reason.
- payment: SEPA credit transfer (58) to the seller's IBAN with the RF reference as the payment id [BT-83].

Unit codes (UN/ECE rec. 20): minute MIN; a count of runs or a peak of workflows C62 ("one"); a GiB-hour C62 as
well: rec. 20 has no gibibyte-hour, and E62 (gibibyte) or HUR (hour) would state the wrong dimension to a buyer's
system that converts units, while C62 says "this many of the unit named in the item" (the item name names it).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from xml.sax.saxutils import escape, quoteattr

from billing import language as words
from billing import payment_reference
from billing.rendering import describe
from energent_shared.peppol import EAS_CODES  # the list PEPPOL-EN16931-CL008 checks an EndpointID against

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
INVOICE_TYPE = "380"  # commercial invoice
CREDIT_NOTE_TYPE = "381"  # credit note
SEPA_CREDIT_TRANSFER = "58"
KVK = "0106"
SLA_REASON_CODE = "64"  # UNCL 5189 "Special agreement": the contract's service credit
GRANT_REASON_CODE = "95"  # UNCL 5189 "Discount": a promotional or contractual credit

# The EAS scheme of a VAT number, by the VAT number's prefix (Peppol's EAS code list). Sweden, Denmark and Norway
# have no VAT scheme of their own there: a Swedish VAT number is the organisation number plus "01" (scheme 0007
# takes the organisation number), a Danish one is "DK" and the CVR number (scheme 0184 takes it with its prefix),
# a Norwegian one "NO", the organisation number and "MVA" (scheme 0192 takes the organisation number). Outside
# the EU: the VAT schemes of Peppol's list for countries whose customers carry a VAT number.
VAT_SCHEMES = {
    "AT": "9914", "BE": "9925", "BG": "9926", "CY": "9928", "CZ": "9929", "DE": "9930", "DK": "0184", "EE": "9931",
    "EL": "9933", "ES": "9920", "FI": "0213", "FR": "9957", "HR": "9934", "HU": "9910", "IE": "9935", "IT": "0211",
    "LT": "9937", "LU": "9938", "LV": "9939", "MT": "9943", "NL": "9944", "PL": "9945", "PT": "9946", "RO": "9947",
    "SE": "0007", "SI": "9949", "SK": "9950", "NO": "0192",
    "AD": "9922", "AL": "9923", "BA": "9924", "CH": "9927", "GB": "9932", "LI": "9936", "MC": "9940", "ME": "9941",
    "MK": "9942", "RS": "9948", "SM": "9951", "TR": "9952", "VA": "9953",
}

UNIT_CODES = {"minute": "MIN", "hour": "HUR", "day": "DAY", "month": "MON", "run": "C62", "workflow": "C62",
              "GiB-hour": "C62"}
DEFAULT_UNIT_CODE = "C62"

CATEGORIES = {"standard": "S", "reverse_charge": "AE", "outside_scope": "O"}
EXEMPTION_CODES = {"AE": "VATEX-EU-AE", "O": "VATEX-EU-O"}

CENT = Decimal("0.01")
ROUNDING = Decimal("0.005000000001")
_XML_TEXT = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class NoElectronicAddress(ValueError):
    """The customer has no Peppol address: neither a `peppol_id` nor a VAT number whose country has an EAS VAT
    scheme. The JSON, HTML and PDF are issued as usual; the UBL waits until the profile gains one."""


class Inconsistent(ValueError):
    """The document's amounts do not add up the way the UBL has to state them (a bug upstream, never hidden)."""


# -- a small deterministic XML writer: (tag, attributes, children or text); empty elements are left out, which
# Peppol requires anyway (PEPPOL-EN16931-R008).

Node = tuple[str, dict[str, str], "list[Node] | str"]


def _el(tag: str, content: object = None, **attributes: str) -> Node | None:
    if content is None:
        return None
    if isinstance(content, list):
        children = [child for child in content if child is not None]
        return (tag, attributes, children) if children else None
    text = str(content)
    if not text.strip():
        return None
    if _XML_TEXT.search(text):
        raise ValueError(f"{tag}: {text!r} holds characters XML cannot carry")
    return tag, attributes, text


def _write(node: Node, out: list[str], depth: int) -> None:
    tag, attributes, content = node
    attrs = "".join(f" {name}={quoteattr(value)}" for name, value in attributes.items())
    indent = "  " * depth
    if isinstance(content, str):
        out.append(f"{indent}<{tag}{attrs}>{escape(content)}</{tag}>\n")
        return
    out.append(f"{indent}<{tag}{attrs}>\n")
    for child in content:
        _write(child, out, depth + 1)
    out.append(f"{indent}</{tag}>\n")


# -- amounts


def _money(value: Decimal) -> str:
    return f"{value.quantize(CENT):f}"


def _decimal(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _dec(document: Mapping, field: str) -> Decimal:
    value = document.get(field)
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


@dataclass(frozen=True)
class UblLine:
    quantity: Decimal
    unit: str
    amount: Decimal
    price: Decimal
    base_quantity: Decimal | None
    name: str
    description: str | None
    period: str | None


@dataclass(frozen=True)
class Allowance:
    amount: Decimal
    reason_code: str
    reason: str


# -- electronic addresses


def endpoint(customer: Mapping) -> tuple[str, str]:
    """The customer's Peppol electronic address (scheme, identifier)."""
    peppol = customer.get("peppol_id")
    if isinstance(peppol, Mapping) and peppol.get("scheme") and peppol.get("id"):
        if str(peppol["scheme"]) not in EAS_CODES:
            raise NoElectronicAddress(f"peppol_id.scheme {peppol['scheme']!r} is not a code of Peppol's Electronic "
                                      "Address Scheme list")
        return str(peppol["scheme"]), str(peppol["id"])
    vat_id = _compact(customer.get("vat_id") or "")
    scheme = VAT_SCHEMES.get(vat_id[:2]) if vat_id[:2].isalpha() else None
    if scheme is None and vat_id.startswith("CHE"):
        scheme = VAT_SCHEMES["CH"]
    if scheme is None:
        country = (customer.get("address") or {}).get("country", "?")
        why = "it has no VAT number" if not vat_id else f"its VAT number {vat_id!r} has no Peppol VAT scheme"
        raise NoElectronicAddress(f"the customer has no Peppol address: no peppol_id, and {why} (country {country}); "
                                  "set billing_profile.peppol_id {scheme, id} to issue the UBL")
    if scheme == "0007":  # Swedish VAT number: SE + organisation number + 01
        return scheme, vat_id[2:12]
    if scheme == "0192":  # Norwegian VAT number: NO + organisation number + MVA
        return scheme, vat_id[2:11]
    if scheme == "9933":  # Greek participants are addressed by their TIN, the VAT number without EL
        return scheme, vat_id[2:]
    return scheme, vat_id


def _compact(identifier: str) -> str:
    return re.sub(r"[\s.\-]", "", identifier).upper()


# -- lines


def _unit_code(unit: str | None) -> str:
    return UNIT_CODES.get(unit or "", DEFAULT_UNIT_CODE)


def _spread(amount: Decimal, exact: list[Decimal]) -> list[Decimal]:
    """`amount` (cents) split over parts whose exact values are `exact`: each part rounded down to cents, then the
    cents left over go to the parts with the largest remainders, so every part is within a cent of its exact value
    and the parts add up to `amount`."""
    floors = [value.quantize(CENT, rounding=ROUND_DOWN) for value in exact]
    left = int((amount - sum(floors, Decimal(0))) / CENT)
    if not 0 <= left <= len(exact):
        raise Inconsistent(f"an amount of {amount} cannot be the rounded sum of {', '.join(map(str, exact))}")
    order = sorted(range(len(exact)), key=lambda index: (exact[index] - floors[index], -index), reverse=True)
    for index in order[:left]:
        floors[index] += CENT
    return floors


def _price_precision(quantity: Decimal) -> Decimal:
    """Enough decimals that quantity x (price rounded) stays within a tenth of a cent of quantity x price."""
    digits = len(str(int(abs(quantity)))) + 4
    return Decimal(1).scaleb(-max(6, digits))


def _usage_parts(line: Mapping, fraction: Decimal) -> list[tuple[Decimal, Decimal]]:
    """(billable quantity, unit price x the month's share) per band the line was priced with."""
    if line.get("bands"):
        parts = [(Decimal(band["quantity"]), Decimal(band["unit_price"])) for band in line["bands"]]
    else:
        parts = [(Decimal(line["billable_quantity"]), Decimal(line["unit_price"]))]
    return [(quantity, price * fraction) for quantity, price in parts]


def _lines(document: Mapping, sign: int, lang: str, meters: Mapping[str, Mapping]) -> list[UblLine]:
    result: list[UblLine] = []
    for line in document["lines"]:
        kind = line.get("kind")
        if kind == "credit_grant":
            continue
        amount = Decimal(line["amount"]) * sign
        if amount < 0:
            raise Inconsistent(f"a {kind} line of {line['amount']} on {document['number']} would be a negative "
                               "charge; only credit grants reduce an invoice")
        description = describe(line, document, lang)  # in the document's language, as the PDF says it
        period = line.get("period")
        proration = line.get("proration")
        fraction = Decimal(proration["days"]) / Decimal(proration["days_in_month"]) if proration else Decimal(1)
        if kind == "base_fee":
            result.append(_base_fee(line, amount, lang, description, period))
        elif kind in ("usage", "late_usage") and "billable_quantity" in line:
            meter = line.get("meter", "")
            definition = meters.get(meter) or {}
            unit = line.get("unit") or definition.get("unit")
            name = words.meter_name(meter, lang, definition.get("description"))
            if kind == "late_usage" and period:
                name = words.label(lang, "late_usage", period=words.month(period, lang), meter=name)
            parts = _usage_parts(line, fraction)
            exact = [quantity * price for quantity, price in parts]
            _check(sum(exact, Decimal(0)), amount, line)
            amounts = _spread(amount, exact)
            for (quantity, price), part in zip(parts, amounts, strict=True):
                if fraction != 1:  # a share of the monthly price: rounded far below a cent of the line
                    price = Decimal(_decimal(price.quantize(_price_precision(quantity))))
                result.append(UblLine(quantity, _unit_code(unit), part, price, None, name, description, period))
        elif kind == "credit":
            name = words.label(lang, "credit", number=document.get("invoice_number", ""))
            result.append(UblLine(Decimal(1), DEFAULT_UNIT_CODE, amount, amount, None, name, description, None))
        else:  # a line priced as a whole (no quantity recorded): one of it at its amount
            name = words.meter_name(line.get("meter", ""), lang, description or kind)
            result.append(UblLine(Decimal(1), DEFAULT_UNIT_CODE, amount, amount, None, name, description, period))
    return result


def _base_fee(line: Mapping, amount: Decimal, lang: str, description: str | None, period: str | None) -> UblLine:
    name = words.label(lang, "late_base_fee", period=words.month(period, lang)) if period else \
        words.label(lang, "base_fee")
    if "unit_price" not in line:  # a late base fee: what was owed for that period and not billed then
        return UblLine(Decimal(1), DEFAULT_UNIT_CODE, amount, amount, None, name, description, period)
    fee = Decimal(line["unit_price"])
    proration = line.get("proration")
    if proration:
        days, in_month = Decimal(proration["days"]), Decimal(proration["days_in_month"])
        _check(days * fee / in_month, amount, line)
        return UblLine(days, "DAY", amount, fee, in_month, name, description, period)
    _check(fee, amount, line)
    return UblLine(Decimal(1), "MON", amount, fee, None, name, description, period)


def _check(exact: Decimal, amount: Decimal, line: Mapping) -> None:
    """The line's amount is its quantity x price rounded once to cents (a hair of slack for 28-digit division)."""
    if abs(exact - amount) > ROUNDING:
        raise Inconsistent(f"line {line.get('description')!r}: {amount} is not its quantity x price ({exact})")


def _allowances(document: Mapping, sign: int, lang: str) -> list[Allowance]:
    allowances = []
    sla = _dec(document, "sla_credit") * sign
    if sla:
        pct = (document.get("sla") or {}).get("credit_pct")
        reason = words.label(lang, "sla_credit") + (f" ({pct} %)" if pct else "")
        allowances.append(Allowance(sla, SLA_REASON_CODE, reason))
    for line in document["lines"]:
        if line.get("kind") == "credit_grant" and Decimal(line["amount"]):
            reason = line.get("description") or words.label(lang, "credit_grant")
            allowances.append(Allowance(-Decimal(line["amount"]) * sign, GRANT_REASON_CODE, reason))
    for allowance in allowances:
        if allowance.amount < 0:
            raise Inconsistent(f"{document['number']}: an allowance of {allowance.amount} would be a charge")
    return allowances


# -- the document


def is_credit_note(document: Mapping) -> bool:
    return "invoice_number" in document


def build(document: Mapping, meters: Mapping[str, Mapping] | None = None) -> bytes:
    """The UBL of an issued invoice or credit note, UTF-8. `meters` is the price book's `meters` section
    (`{meter: {unit, description}}`), for units and item names the lines do not carry themselves.

    Raises NoElectronicAddress when the customer cannot be addressed over Peppol, Inconsistent when the
    document's amounts do not add up (lines to subtotal, allowances to net, net and VAT to total)."""
    credit = is_credit_note(document)
    sign = -1 if credit else 1
    lang = words.of(document)
    currency = document.get("currency", "EUR")
    treatment = document["vat"]["treatment"]
    category = CATEGORIES[treatment]
    rate = Decimal(str(document["vat"]["rate"]))
    customer_endpoint = endpoint(document["customer"])

    lines = _lines(document, sign, lang, meters or {})
    if not lines:
        raise Inconsistent(f"{document['number']} has no line to put on an e-invoice")
    allowances = _allowances(document, sign, lang)
    subtotal, net = _dec(document, "subtotal") * sign, _dec(document, "net") * sign
    vat, total = _dec(document["vat"], "amount") * sign, _dec(document, "total") * sign
    prepaid = Decimal(0) if credit else _dec(document, "balance_applied")
    allowed = sum((allowance.amount for allowance in allowances), Decimal(0))
    if sum((line.amount for line in lines), Decimal(0)) != subtotal:
        raise Inconsistent(f"{document['number']}: the lines add up to "
                           f"{sum((line.amount for line in lines), Decimal(0))}, the subtotal is {subtotal}")
    if subtotal - allowed != net or net + vat != total:
        raise Inconsistent(f"{document['number']}: subtotal {subtotal} - allowances {allowed} = net {net} and "
                           f"net + VAT {vat} = total {total} must hold")
    if category != "S" and vat:
        raise Inconsistent(f"{document['number']}: {treatment} carries no VAT, the document has {vat}")

    def amount(tag: str, value: Decimal) -> Node | None:
        return _el(tag, _money(value), currencyID=currency)

    tax_category = _tax_category("cac:TaxCategory", category, rate, treatment, lang)
    root_tag = "CreditNote" if credit else "Invoice"
    children = [
        _el("cbc:CustomizationID", CUSTOMIZATION_ID),
        _el("cbc:ProfileID", PROFILE_ID),
        _el("cbc:ID", document["number"]),
        _el("cbc:IssueDate", document["issue_date"]),
        None if credit else _el("cbc:DueDate", document.get("due_date")),
        _el("cbc:CreditNoteTypeCode", CREDIT_NOTE_TYPE) if credit else _el("cbc:InvoiceTypeCode", INVOICE_TYPE),
        _el("cbc:Note", _note(document, lang)),
        _el("cbc:DocumentCurrencyCode", currency),
        _el("cbc:BuyerReference", document["customer"].get("buyer_reference") or document.get("tenant_id")),
        _period("cac:InvoicePeriod", _document_period(document)),
        # The buyer's purchase order (BT-13), which Dutch public bodies ask invoices to quote.
        _el("cac:OrderReference", [_el("cbc:ID", document["customer"]["order_reference"])])
        if document["customer"].get("order_reference") else None,
        _billing_reference(document) if credit else None,
        _el("cac:AccountingSupplierParty", [_seller(document["seller"], category)]),
        _el("cac:AccountingCustomerParty", [_customer(document["customer"], customer_endpoint, category)]),
        None if credit else _payment_means(document),
        _el("cac:PaymentTerms", [_el("cbc:Note", _terms(document, lang))]),
        *[_el("cac:AllowanceCharge", [
            _el("cbc:ChargeIndicator", "false"),
            _el("cbc:AllowanceChargeReasonCode", allowance.reason_code),
            _el("cbc:AllowanceChargeReason", allowance.reason),
            amount("cbc:Amount", allowance.amount),
            tax_category,
        ]) for allowance in allowances],
        _el("cac:TaxTotal", [
            amount("cbc:TaxAmount", vat),
            _el("cac:TaxSubtotal", [amount("cbc:TaxableAmount", net), amount("cbc:TaxAmount", vat),
                                    _tax_category("cac:TaxCategory", category, rate, treatment, lang, reason=True)]),
        ]),
        _el("cac:LegalMonetaryTotal", [
            amount("cbc:LineExtensionAmount", subtotal),
            amount("cbc:TaxExclusiveAmount", net),
            amount("cbc:TaxInclusiveAmount", total),
            amount("cbc:AllowanceTotalAmount", allowed) if allowances else None,
            amount("cbc:PrepaidAmount", prepaid) if prepaid else None,
            amount("cbc:PayableAmount", total - prepaid),
        ]),
        *[_line(index, line, credit, currency, category, rate, treatment, lang)
          for index, line in enumerate(lines, 1)],
    ]
    namespace = CREDIT_NOTE_NS if credit else INVOICE_NS
    root = _el(root_tag, children, xmlns=namespace, **{"xmlns:cac": CAC, "xmlns:cbc": CBC})
    assert root is not None
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write(root, out, 0)
    return "".join(out).encode()


def _tax_category(tag: str, category: str, rate: Decimal, treatment: str, lang: str,
                  reason: bool = False) -> Node | None:
    return _el(tag, [
        _el("cbc:ID", category),
        None if category == "O" else _el("cbc:Percent", _decimal(rate)),
        _el("cbc:TaxExemptionReasonCode", EXEMPTION_CODES.get(category)) if reason else None,
        _el("cbc:TaxExemptionReason", words.exemption_reason(treatment, lang)) if reason else None,
        _el("cac:TaxScheme", [_el("cbc:ID", "VAT")]),
    ])


def _months(document: Mapping) -> Iterator[str]:
    yield document["period"]
    for line in document["lines"]:
        if line.get("period"):
            yield line["period"]


def _document_period(document: Mapping) -> tuple[str, str]:
    """The invoice's period, reaching back to the earliest period whose late usage or base fee it bills."""
    months = sorted(_months(document))
    return months[0], document["period"]


def _period(tag: str, months: tuple[str, str] | None) -> Node | None:
    if months is None:
        return None
    first, last = months
    year, month = int(last[:4]), int(last[5:7])
    return _el(tag, [_el("cbc:StartDate", f"{first}-01"),
                     _el("cbc:EndDate", f"{last}-{calendar.monthrange(year, month)[1]:02d}")])


def _note(document: Mapping, lang: str) -> str | None:
    if is_credit_note(document) and document.get("reason"):
        return f"{words.label(lang, 'reason')}: {document['reason']}"
    return None


def _terms(document: Mapping, lang: str) -> str:
    if is_credit_note(document):
        return words.label(lang, "credit_terms", number=document["invoice_number"])
    seller = document["seller"]
    return words.label(lang, "payment_terms", days=seller.get("payment_terms_days", ""),
                       date=words.date(document["due_date"], lang), reference=_reference(document))


def _reference(document: Mapping) -> str:
    return document.get("payment_reference") or payment_reference.creditor_reference(document["number"])


def _billing_reference(document: Mapping) -> Node | None:
    return _el("cac:BillingReference", [_el("cac:InvoiceDocumentReference", [
        _el("cbc:ID", document["invoice_number"]), _el("cbc:IssueDate", document.get("invoice_date"))])])


def _address(address: Mapping) -> Node | None:
    return _el("cac:PostalAddress", [
        _el("cbc:StreetName", address.get("line1")),
        _el("cbc:AdditionalStreetName", address.get("line2")),
        _el("cbc:CityName", address.get("city")),
        _el("cbc:PostalZone", address.get("postal_code")),
        _el("cac:Country", [_el("cbc:IdentificationCode", address.get("country"))]),
    ])


def _tax_scheme(vat_id: str | None, category: str) -> Node | None:
    if category == "O" or not vat_id:  # BR-O-02: no VAT numbers on a document outside the scope of VAT
        return None
    return _el("cac:PartyTaxScheme", [_el("cbc:CompanyID", _compact(vat_id)),
                                      _el("cac:TaxScheme", [_el("cbc:ID", "VAT")])])


def _seller(seller: Mapping, category: str) -> Node | None:
    peppol = seller.get("peppol_id") or {"scheme": KVK, "id": seller["coc_number"]}
    return _el("cac:Party", [
        _el("cbc:EndpointID", peppol["id"], schemeID=peppol["scheme"]),
        _address(seller["address"]),
        _tax_scheme(seller.get("vat_id"), category),
        _el("cac:PartyLegalEntity", [_el("cbc:RegistrationName", seller["legal_name"]),
                                     _el("cbc:CompanyID", seller["coc_number"], schemeID=KVK)]),
        _el("cac:Contact", [_el("cbc:ElectronicMail", seller.get("email"))]),
    ])


def _customer(customer: Mapping, address: tuple[str, str], category: str) -> Node | None:
    country = (customer.get("address") or {}).get("country")
    # A Dutch customer's legal registration may only be a KvK (0106) or OIN (0190) number (NL-R-005).
    coc = customer.get("coc_number") if country == "NL" else None
    return _el("cac:Party", [
        _el("cbc:EndpointID", address[1], schemeID=address[0]),
        _address(customer.get("address") or {}),
        _tax_scheme(customer.get("vat_id"), category),
        _el("cac:PartyLegalEntity", [_el("cbc:RegistrationName", customer["legal_name"]),
                                     _el("cbc:CompanyID", coc, schemeID=KVK)]),
        _el("cac:Contact", [_el("cbc:ElectronicMail", customer.get("email"))]),
    ])


def _payment_means(document: Mapping) -> Node | None:
    seller = document["seller"]
    return _el("cac:PaymentMeans", [
        _el("cbc:PaymentMeansCode", SEPA_CREDIT_TRANSFER, name="SEPA credit transfer"),
        _el("cbc:PaymentID", _reference(document)),
        _el("cac:PayeeFinancialAccount", [
            _el("cbc:ID", _compact(seller["iban"])),
            _el("cbc:Name", seller["legal_name"]),
            _el("cac:FinancialInstitutionBranch", [_el("cbc:ID", seller.get("bic"))]),
        ]),
    ])


def _line(index: int, line: UblLine, credit: bool, currency: str, category: str, rate: Decimal, treatment: str,
          lang: str) -> Node | None:
    def amount(tag: str, value: Decimal, exact: bool = False) -> Node | None:
        return _el(tag, f"{value:f}" if exact else _money(value), currencyID=currency)

    return _el("cac:CreditNoteLine" if credit else "cac:InvoiceLine", [
        _el("cbc:ID", str(index)),
        _el("cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity", _decimal(line.quantity),
            unitCode=line.unit),
        amount("cbc:LineExtensionAmount", line.amount),
        _period("cac:InvoicePeriod", (line.period, line.period) if line.period else None),
        _el("cac:Item", [
            _el("cbc:Description", line.description),
            _el("cbc:Name", line.name),
            _tax_category("cac:ClassifiedTaxCategory", category, rate, treatment, lang),
        ]),
        _el("cac:Price", [
            amount("cbc:PriceAmount", line.price, exact=True),
            _el("cbc:BaseQuantity", _decimal(line.base_quantity), unitCode=line.unit) if line.base_quantity else None,
        ]),
    ])
