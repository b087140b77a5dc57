"""The UBL e-invoices (Peppol BIS Billing 3.0, Dutch rules) checked structurally with ElementTree: the rules the
builder relies on, each asserted against the JSON the document came from. The official validators run in
tools/validate_einvoice.py; these tests need nothing but the standard library."""

import copy
import random
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from billing import payment_reference, ubl
from tests import einvoice_fixtures as fixtures

NS = {"cac": ubl.CAC, "cbc": ubl.CBC, "inv": ubl.INVOICE_NS, "cn": ubl.CREDIT_NOTE_NS}
DOCUMENTS = fixtures.documents()
METERS = fixtures.PRICES["meters"]


def parse(document: dict) -> ET.Element:
    return ET.fromstring(ubl.build(document, METERS))  # noqa: S314 (our own output)


def text(root: ET.Element, path: str) -> str:
    element = root.find(path, NS)
    assert element is not None, f"{path} is missing"
    return element.text or ""


def amount(root: ET.Element, path: str) -> Decimal:
    return Decimal(text(root, path))


def lines_of(root: ET.Element) -> list[ET.Element]:
    return root.findall("cac:InvoiceLine", NS) + root.findall("cac:CreditNoteLine", NS)


def quantity_of(line: ET.Element) -> ET.Element:
    found = line.find("cbc:InvoicedQuantity", NS)
    return found if found is not None else line.find("cbc:CreditedQuantity", NS)


@pytest.fixture(params=sorted(DOCUMENTS), ids=sorted(DOCUMENTS))
def case(request) -> tuple[dict, ET.Element]:
    document = DOCUMENTS[request.param]
    return document, parse(document)


def test_root_identifies_peppol_bis_billing_3_and_the_document_kind(case):
    document, root = case
    credit = "invoice_number" in document
    assert root.tag == f"{{{ubl.CREDIT_NOTE_NS if credit else ubl.INVOICE_NS}}}{'CreditNote' if credit else 'Invoice'}"
    assert text(root, "cbc:CustomizationID") == \
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    assert text(root, "cbc:ProfileID") == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert text(root, "cbc:ID") == document["number"]
    assert text(root, "cbc:IssueDate") == document["issue_date"]
    assert text(root, "cbc:DocumentCurrencyCode") == "EUR"
    if credit:
        assert text(root, "cbc:CreditNoteTypeCode") == "381"
    else:
        assert text(root, "cbc:InvoiceTypeCode") == "380"
        assert text(root, "cbc:DueDate") == document["due_date"]


def test_output_is_deterministic_utf8_without_empty_elements(case):
    document, _ = case
    first, second = ubl.build(document, METERS), ubl.build(copy.deepcopy(document), METERS)
    assert first == second
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    first.decode("utf-8")
    root = ET.fromstring(first)  # noqa: S314 (our own output)
    for element in root.iter():  # PEPPOL-EN16931-R008
        assert len(element) or (element.text or "").strip(), f"empty {element.tag}"
    for element in root.iter():  # every currency is the document's (PEPPOL-EN16931-R051)
        if "currencyID" in element.attrib:
            assert element.get("currencyID") == "EUR"


def test_totals_equal_the_json_and_add_up(case):
    document, root = case
    credit = "invoice_number" in document
    sign = -1 if credit else 1
    total_path = "cac:LegalMonetaryTotal/cbc:"
    grants = sum((-Decimal(line["amount"]) * sign for line in document["lines"] if line["kind"] == "credit_grant"),
                 Decimal(0))
    allowances = Decimal(document["sla_credit"]) * sign + grants
    prepaid = Decimal(0) if credit else Decimal(document["balance_applied"])
    assert amount(root, total_path + "LineExtensionAmount") == Decimal(document["subtotal"]) * sign
    assert amount(root, total_path + "TaxExclusiveAmount") == Decimal(document["net"]) * sign
    assert amount(root, total_path + "TaxInclusiveAmount") == Decimal(document["total"]) * sign
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == Decimal(document["vat"]["amount"]) * sign
    assert amount(root, total_path + "PayableAmount") == Decimal(document["total"]) * sign - prepaid
    if allowances:
        assert amount(root, total_path + "AllowanceTotalAmount") == allowances
        assert sum(amount(a, "cbc:Amount") for a in root.findall("cac:AllowanceCharge", NS)) == allowances
    else:
        assert root.find(total_path + "AllowanceTotalAmount", NS) is None
    if prepaid:
        assert amount(root, total_path + "PrepaidAmount") == prepaid
    # BR-CO-10, BR-CO-13, BR-CO-15, BR-CO-16
    line_sum = sum(amount(line, "cbc:LineExtensionAmount") for line in lines_of(root))
    assert line_sum == amount(root, total_path + "LineExtensionAmount")
    assert amount(root, total_path + "TaxExclusiveAmount") == line_sum - allowances
    assert amount(root, total_path + "TaxInclusiveAmount") == \
        amount(root, total_path + "TaxExclusiveAmount") + amount(root, "cac:TaxTotal/cbc:TaxAmount")
    # Peppol has no negative credit note: every amount is positive
    for element in root.iter():
        if "currencyID" in element.attrib:
            assert Decimal(element.text) >= 0, element.tag
            if not element.tag.endswith("PriceAmount"):
                assert element.text == f"{Decimal(element.text):.2f}", f"{element.tag} has 2 decimals (BR-DEC)"


def test_each_line_is_its_quantity_times_its_price(case):
    """PEPPOL-EN16931-R120: line amount = quantity x price / base quantity, within 0.02 (ours: within a cent)."""
    _, root = case
    for line in lines_of(root):
        quantity = Decimal(quantity_of(line).text)
        price = amount(line, "cac:Price/cbc:PriceAmount")
        base = line.find("cac:Price/cbc:BaseQuantity", NS)
        divisor = Decimal(base.text) if base is not None else Decimal(1)
        if base is not None:
            assert base.get("unitCode") == quantity_of(line).get("unitCode")  # PEPPOL-EN16931-R130
        assert abs(quantity * price / divisor - amount(line, "cbc:LineExtensionAmount")) <= Decimal("0.01")
        assert price >= 0  # BR-27


def test_vat_category_per_treatment(case):
    document, root = case
    treatment = document["vat"]["treatment"]
    expected = {"standard": "S", "reverse_charge": "AE", "outside_scope": "O"}[treatment]
    breakdown = root.find("cac:TaxTotal/cac:TaxSubtotal", NS)
    assert len(root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)) == 1
    assert amount(breakdown, "cbc:TaxableAmount") == abs(Decimal(document["net"]))
    assert amount(breakdown, "cbc:TaxAmount") == abs(Decimal(document["vat"]["amount"]))
    categories = [breakdown.find("cac:TaxCategory", NS)]
    categories += [line.find("cac:Item/cac:ClassifiedTaxCategory", NS) for line in lines_of(root)]
    categories += [allowance.find("cac:TaxCategory", NS) for allowance in root.findall("cac:AllowanceCharge", NS)]
    for category in categories:
        assert text(category, "cbc:ID") == expected
        assert text(category, "cac:TaxScheme/cbc:ID") == "VAT"
    tax_ids = [text(scheme, "cbc:CompanyID") for scheme in root.iter(f"{{{ubl.CAC}}}PartyTaxScheme")]
    category = breakdown.find("cac:TaxCategory", NS)
    if expected == "S":
        assert [Decimal(text(c, "cbc:Percent")) for c in categories] == [Decimal(21)] * len(categories)
        assert category.find("cbc:TaxExemptionReasonCode", NS) is None
        # BR-CO-17: VAT = taxable x rate, rounded
        assert abs(amount(breakdown, "cbc:TaxableAmount") * Decimal("0.21") - amount(breakdown, "cbc:TaxAmount")) \
            < Decimal("0.01")
        assert document["seller"]["vat_id"] in tax_ids  # BR-S-02
    elif expected == "AE":
        assert {Decimal(text(c, "cbc:Percent")) for c in categories} == {Decimal(0)}
        assert text(category, "cbc:TaxExemptionReasonCode") == "VATEX-EU-AE"
        assert text(category, "cbc:TaxExemptionReason")
        assert tax_ids == [document["seller"]["vat_id"], document["customer"]["vat_id"]]  # BR-AE-02
    else:
        assert all(c.find("cbc:Percent", NS) is None for c in categories)  # BR-O-05 to BR-O-07
        assert text(category, "cbc:TaxExemptionReasonCode") == "VATEX-EU-O"
        assert text(category, "cbc:TaxExemptionReason")
        assert tax_ids == []  # BR-O-02: neither party's VAT number


def test_parties_follow_the_dutch_rules(case):
    document, root = case
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    legal = seller.find("cac:PartyLegalEntity/cbc:CompanyID", NS)
    assert (legal.get("schemeID"), legal.text) == ("0106", document["seller"]["coc_number"])  # NL-R-003
    assert text(seller, "cac:PartyLegalEntity/cbc:RegistrationName") == document["seller"]["legal_name"]
    endpoint = seller.find("cbc:EndpointID", NS)
    assert (endpoint.get("schemeID"), endpoint.text) == ("0106", document["seller"]["coc_number"])
    for party in (seller, root.find("cac:AccountingCustomerParty/cac:Party", NS)):
        for field in ("cbc:StreetName", "cbc:CityName", "cbc:PostalZone", "cac:Country/cbc:IdentificationCode"):
            assert text(party, f"cac:PostalAddress/{field}")  # NL-R-002, NL-R-004
    customer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    profile = document["customer"]
    # names and addresses exactly as in the profile, whatever the script
    assert text(customer, "cac:PartyLegalEntity/cbc:RegistrationName") == profile["legal_name"]
    assert text(customer, "cac:PostalAddress/cbc:StreetName") == profile["address"]["line1"]
    assert text(customer, "cac:PostalAddress/cbc:CityName") == profile["address"]["city"]
    assert profile["legal_name"].encode() in ubl.build(document, METERS)
    assert text(root, "cbc:BuyerReference") == profile.get("buyer_reference", document["tenant_id"])
    company = customer.find("cac:PartyLegalEntity/cbc:CompanyID", NS)
    if company is not None:
        assert profile["address"]["country"] == "NL" and company.get("schemeID") == "0106"  # NL-R-005


def test_payment_means_and_references(case):
    document, root = case
    if "invoice_number" in document:  # the money flows back: no payment means (NL-R-007), a reference instead
        assert root.find("cac:PaymentMeans", NS) is None
        reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
        assert text(reference, "cbc:ID") == document["invoice_number"]  # NL-R-001
        assert text(reference, "cbc:IssueDate") == document["invoice_date"]
        assert document["reason"] in text(root, "cbc:Note")
        assert document["invoice_number"] in text(root, "cac:PaymentTerms/cbc:Note")  # BR-CO-25
        return
    means = root.find("cac:PaymentMeans", NS)
    assert text(means, "cbc:PaymentMeansCode") == "58"  # SEPA credit transfer (NL-R-008)
    assert text(means, "cbc:PaymentID") == document["payment_reference"]
    assert payment_reference.is_valid(text(means, "cbc:PaymentID"))
    assert text(means, "cac:PayeeFinancialAccount/cbc:ID") == document["seller"]["iban"]  # BR-61
    assert text(means, "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID") == \
        document["seller"]["bic"]
    assert document["payment_reference"] in text(root, "cac:PaymentTerms/cbc:Note")
    assert len(root.findall("cbc:Note", NS)) <= 1  # PEPPOL-EN16931-R002


@pytest.mark.parametrize(("key", "scheme", "identifier"), [
    ("nl", "9944", "NL123456782B01"), ("de", "9930", "DE811907980"), ("gr", "9933", "094501236"),
    ("pl", "9945", "PL5261040828"), ("bg", "9926", "BG175074752"), ("ch", "9927", "CHE116281710MWST"),
    ("us", "0060", "123456789"),
])
def test_customer_endpoint_is_the_peppol_id_or_the_vat_number_under_its_scheme(key, scheme, identifier):
    document = next(d for d in DOCUMENTS.values() if d["tenant_id"] == f"tenant-{key}")
    endpoint = parse(document).find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", NS)
    assert (endpoint.get("schemeID"), endpoint.text) == (scheme, identifier)


@pytest.mark.parametrize(("vat_id", "expected"), [
    ("SE556677889901", ("0007", "5566778899")),  # the organisation number
    ("DK13585628", ("0184", "DK13585628")),
    ("FR40303265045", ("9957", "FR40303265045")),
    ("BE0403019261", ("9925", "BE0403019261")),
    ("IT12345679992", ("0211", "IT12345679992")),
    ("AT U123 456 78", ("9914", "ATU12345678")),
    ("GB 123.4567.89", ("9932", "GB123456789")),
    ("NO 987 654 325 MVA", ("0192", "987654325")),
])
def test_vat_schemes_of_other_countries(vat_id, expected):
    assert ubl.endpoint({"vat_id": vat_id, "address": {"country": "XX"}}) == expected
    assert ubl.endpoint({"vat_id": vat_id, "peppol_id": {"scheme": "0088", "id": "5790000435975"}}) == \
        ("0088", "5790000435975")
    assert set(ubl.VAT_SCHEMES.values()) <= PEPPOL_EAS
    assert ubl.EAS_CODES == PEPPOL_EAS


# The EAS codes of Peppol's list (as the Peppol BIS 3 schematron, PEPPOL-EN16931-CL008, enumerates them).
PEPPOL_EAS = {
    "0002", "0007", "0009", "0037", "0060", "0088", "0096", "0097", "0106", "0130", "0135", "0142", "0151", "0177",
    "0183", "0184", "0188", "0190", "0191", "0192", "0193", "0195", "0196", "0198", "0199", "0200", "0201", "0202",
    "0204", "0208", "0209", "0210", "0211", "0212", "0213", "0215", "0216", "0218", "0221", "0230", "0235", "9910",
    "9913", "9914", "9915", "9918", "9919", "9920", "9922", "9923", "9924", "9925", "9926", "9927", "9928", "9929",
    "9930", "9931", "9932", "9933", "9934", "9935", "9936", "9937", "9938", "9939", "9940", "9941", "9942", "9943",
    "9944", "9945", "9946", "9947", "9948", "9949", "9950", "9951", "9952", "9953", "9957", "9959", "0147", "0154",
    "0158", "0170", "0194", "0203", "0205", "0217", "0225", "0240"}


def test_every_eu_member_state_has_a_vat_scheme():
    from billing.parties import eu_countries

    prefixes = {"GR": "EL"}
    assert {prefixes.get(country, country) for country in eu_countries() - {"MC"}} <= set(ubl.VAT_SCHEMES)


def test_a_customer_without_a_peppol_address_gets_no_ubl_and_is_told_why():
    with pytest.raises(ubl.NoElectronicAddress, match="peppol_id"):
        ubl.build(fixtures.no_peppol_customer(), METERS)
    with pytest.raises(ubl.NoElectronicAddress, match="no VAT number"):
        ubl.endpoint({"legal_name": "x", "address": {"country": "US"}})
    with pytest.raises(ubl.NoElectronicAddress, match="Electronic Address Scheme"):
        ubl.endpoint({"peppol_id": {"scheme": "1234", "id": "x"}, "vat_id": "DE811907980"})


def test_bands_become_one_line_each_and_units_follow_rec_20():
    root = parse(DOCUMENTS["nl-standard"])
    rows = [(quantity_of(line).text, quantity_of(line).get("unitCode"), text(line, "cac:Price/cbc:PriceAmount"),
             text(line, "cbc:LineExtensionAmount")) for line in lines_of(root)]
    assert rows == [
        ("1", "MON", "149.00", "149.00"),
        ("20000", "MIN", "0.0090", "180.00"), ("1000", "MIN", "0.0070", "7.00"),
        ("0", "C62", "0.0040", "0.00"),
        ("0", "C62", "18.00", "0.00"),
        ("1750", "C62", "0.000180", "0.32"),
    ]
    assert ubl.UNIT_CODES["minute"] == "MIN" and ubl.UNIT_CODES["GiB-hour"] == "C62"


def test_a_share_of_a_month_and_late_usage_keep_their_periods():
    root = parse(DOCUMENTS["gr-late-usage-prorated"])
    assert (text(root, "cac:InvoicePeriod/cbc:StartDate"), text(root, "cac:InvoicePeriod/cbc:EndDate")) == \
        ("2026-08-01", "2026-10-31")
    lines = lines_of(root)
    base = lines[0]
    assert (quantity_of(base).text, quantity_of(base).get("unitCode")) == ("15", "DAY")
    assert text(base, "cac:Price/cbc:BaseQuantity") == "31" and text(base, "cac:Price/cbc:PriceAmount") == "49.00"
    peak = lines[3]  # 1 workflow above the allowance for 16 of 31 days at 18.00
    assert abs(amount(peak, "cac:Price/cbc:PriceAmount") - Decimal(18) * 16 / 31) < Decimal("0.000001")
    late = lines[4]
    assert (text(late, "cac:InvoicePeriod/cbc:StartDate"), text(late, "cac:InvoicePeriod/cbc:EndDate")) == \
        ("2026-09-01", "2026-09-30")
    assert "September 2026" in text(late, "cac:Item/cbc:Name")
    assert lines[1].find("cac:InvoicePeriod", NS) is None


def test_allowances_carry_the_sla_credit_and_the_grants_with_reasons():
    root = parse(DOCUMENTS["ch-outside-eu-grant"])
    allowances = [(text(a, "cbc:ChargeIndicator"), text(a, "cbc:AllowanceChargeReasonCode"),
                   text(a, "cbc:AllowanceChargeReason"), text(a, "cbc:Amount"))
                  for a in root.findall("cac:AllowanceCharge", NS)]
    assert allowances == [("false", "64", "SLA credit (5 %)", "2.70"),
                          ("false", "95", "Credit grant (welcome credit of 10.00)", "10.00")]
    credited = parse(DOCUMENTS["ch-full-credit"])
    assert [text(a, "cbc:Amount") for a in credited.findall("cac:AllowanceCharge", NS)] == ["2.70", "10.00"]


def test_texts_follow_the_customers_language():
    document = copy.deepcopy(DOCUMENTS["de-reverse-charge-sla"])
    assert text(parse(document), "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason") == \
        "Reverse charge"
    document["customer"]["language"] = "nl"
    root = parse(document)
    assert text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason") == "BTW verlegd"
    assert text(lines_of(root)[0], "cac:Item/cbc:Name") == "Vaste vergoeding"
    outside = copy.deepcopy(DOCUMENTS["ch-outside-eu-grant"])
    outside["customer"]["language"] = "nl"
    assert text(parse(outside), "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason") == \
        "Dienst verricht buiten de EU"


def test_a_document_that_does_not_add_up_is_refused():
    document = copy.deepcopy(DOCUMENTS["nl-standard"])
    document["subtotal"] = "336.33"
    with pytest.raises(ubl.Inconsistent, match="lines add up"):
        ubl.build(document, METERS)
    document = copy.deepcopy(DOCUMENTS["nl-standard"])
    document["total"] = "406.96"
    with pytest.raises(ubl.Inconsistent, match="total"):
        ubl.build(document, METERS)
    document = copy.deepcopy(DOCUMENTS["nl-standard"])
    document["lines"][1]["bands"][0]["unit_price"] = "0.0100"
    with pytest.raises(ubl.Inconsistent):
        ubl.build(document, METERS)
    document = copy.deepcopy(DOCUMENTS["nl-standard"])
    document["lines"][0]["amount"] = "150.00"
    with pytest.raises(ubl.Inconsistent, match="quantity x price"):
        ubl.build(document, METERS)
    document = copy.deepcopy(DOCUMENTS["nl-standard"])  # a cent off its bands' products (0.315 -> 0.32)
    document["lines"][4]["amount"], document["subtotal"], document["net"] = "0.33", "336.33", "336.33"
    with pytest.raises(ubl.Inconsistent, match="quantity x price"):
        ubl.build(document, METERS)


def test_text_xml_cannot_carry_is_refused():
    document = copy.deepcopy(DOCUMENTS["nl-standard"])
    document["customer"]["legal_name"] = "Bakkerij\x07 B.V."
    with pytest.raises(ValueError, match="XML cannot carry"):
        ubl.build(document, METERS)


def test_markup_in_names_is_escaped():
    document = copy.deepcopy(DOCUMENTS["nl-standard"])
    document["customer"]["legal_name"] = 'Smit & Zn. <"B.V.">'
    root = parse(document)
    assert text(root, "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName") == \
        'Smit & Zn. <"B.V.">'


def test_spreading_cents_keeps_every_part_within_a_cent_and_the_sum_exact():
    generator = random.Random(22)
    for _ in range(2000):
        exact = [Decimal(generator.randint(0, 10**9)) / Decimal(10**6) for _ in range(generator.randint(1, 4))]
        total = sum(exact, Decimal(0)).quantize(Decimal("0.01"))
        parts = ubl._spread(total, exact)
        assert sum(parts) == total
        assert all(abs(part - value) < Decimal("0.01") for part, value in zip(parts, exact, strict=True))


@pytest.mark.parametrize("name", sorted(fixtures.member_state_variants()))
def test_customers_of_other_member_states_are_addressed_by_their_vat_scheme(name):
    document = fixtures.member_state_variants()[name]
    root = parse(document)
    endpoint = root.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", NS)
    vat_id = document["customer"]["vat_id"]
    assert endpoint.get("schemeID") == ubl.VAT_SCHEMES[vat_id[:2]]
    assert endpoint.text == (vat_id[2:12] if vat_id.startswith("SE") else vat_id)
    assert text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason") == "BTW verlegd"


def test_the_buyers_purchase_order_is_quoted_as_the_order_reference():
    """Dutch public bodies ask their purchase order (BT-13) on the e-invoice, beside the buyer reference (BT-10)."""
    document = copy.deepcopy(next(d for d in DOCUMENTS.values() if "invoice_number" not in d))
    assert parse(document).find("cac:OrderReference", NS) is None
    document["customer"]["order_reference"] = "4500012345"
    root = parse(document)
    assert text(root, "cac:OrderReference/cbc:ID") == "4500012345"
    tags = [child.tag.split("}")[1] for child in root]
    assert tags.index("InvoicePeriod") < tags.index("OrderReference") < tags.index("AccountingSupplierParty")
