"""Paying an invoice: ISO 11649 RF references (checked against python-stdnum's independent implementation) and
the EPC QR code, decoded back from its image and from a PDF drawn with fpdf2."""

import io

import pytest
from stdnum import iso11649

from billing import epc_qr, payment_reference
from tests import einvoice_fixtures as fixtures

DOCUMENTS = fixtures.documents()


@pytest.mark.parametrize("number", ["2026-000001", "2026-000101", "2026-999999", "2026-1000000", "2031-000042",
                                    "CN-2026-000011"])
def test_reference_is_rf_check_digits_and_the_number_without_hyphens(number):
    reference = payment_reference.creditor_reference(number)
    assert reference.startswith("RF") and reference[4:] == number.replace("-", "")
    assert iso11649.is_valid(reference)
    assert payment_reference.is_valid(reference)
    assert payment_reference.is_valid(payment_reference.printed(reference))


def test_known_references():
    assert payment_reference.creditor_reference("2026-000001") == "RF422026000001"
    assert payment_reference.printed("RF422026000001") == "RF42 2026 0000 01"
    assert payment_reference.is_valid("RF18 5390 0754 7034")  # the standard's example
    assert payment_reference.is_valid("rf18539007547034")


@pytest.mark.parametrize("reference", ["RF19539007547034", "RF18539007547035", "RF185390075470341234567890",
                                       "XX18539007547034", "RF1", "RF18", "RF18-5390", "", "RF18 5390 0754 703Ä"])
def test_invalid_references(reference):
    assert not payment_reference.is_valid(reference)


@pytest.mark.parametrize("number", ["", "----", "2026/000001", "A" * 22])
def test_numbers_that_cannot_become_a_reference(number):
    with pytest.raises(ValueError, match="1 to 21"):
        payment_reference.creditor_reference(number)


def decode(image) -> list:
    import zxingcpp

    return zxingcpp.read_barcodes(image)


def test_payload_follows_epc069_12_version_2():
    text = epc_qr.for_invoice(DOCUMENTS["nl-standard"])
    assert text.split("\n") == ["BCD", "002", "1", "SCT", "ABNANL2A", "Energent.ai B.V.", "NL91ABNA0417164300",
                                "EUR406.95", "", "RF582026000101"]
    assert payment_reference.is_valid("RF582026000101")
    assert not text.endswith("\n")


def test_qr_png_decodes_to_the_payload_as_utf8_at_level_m():
    from PIL import Image

    text = epc_qr.payload(name="Zoë Ørsted Łódź", iban="NL91 ABNA 0417 1643 00", amount="1234.5",
                          reference="RF42 2026 0000 01")
    assert "EUR1234.50" in text and "NL91ABNA0417164300" in text and "RF422026000001" in text
    assert text.split("\n")[4] == ""  # no BIC: optional in version 002
    results = decode(Image.open(io.BytesIO(epc_qr.png(text))))
    assert len(results) == 1
    assert results[0].bytes == text.encode("utf-8")
    assert results[0].ec_level == "M"
    assert results[0].format.name == "QRCode"


def test_amount_due_is_what_is_left_after_the_balance_and_nothing_due_has_no_code():
    assert "EUR20.00" in epc_qr.for_invoice(DOCUMENTS["pl-grant-balance"])  # 30.00 total, 10.00 balance applied
    assert epc_qr.for_invoice(DOCUMENTS["nl-covered-by-grant"]) is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"amount": "0.00"}, "amount"), ({"amount": "1000000000.00"}, "amount"), ({"amount": "1.001"}, "amount"),
    ({"amount": "-5"}, "amount"), ({"iban": "NL91 ABNA"}, "IBAN"), ({"iban": "NL92ABNA0417164300"}, "IBAN"),
    ({"bic": "ABN"}, "BIC"),
    ({"name": ""}, "name"), ({"name": "x" * 71}, "name"),
    ({"reference": "RF19539007547034"}, "creditor reference"), ({"name": "\U0001d538" * 70}, "331"),
])
def test_what_a_banking_app_would_reject_is_refused(fields, message):
    values = {"name": "Energent.ai B.V.", "iban": "NL91ABNA0417164300", "amount": "10.00",
              "reference": "RF422026000001", "bic": "ABNANL2A", **fields}
    with pytest.raises(ValueError, match=message):
        epc_qr.payload(**values)


def test_fpdf2_draws_the_code_and_it_decodes_from_the_pdf():
    from fpdf import FPDF
    from pypdf import PdfReader

    text = epc_qr.for_invoice(DOCUMENTS["de-reverse-charge-sla"])
    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(epc_qr.png(text)), x=150, y=240, w=40)
    pdf.image(io.BytesIO(epc_qr.svg(text)), x=10, y=240, w=40)  # the SVG draws too (vector, for print)
    images = PdfReader(io.BytesIO(bytes(pdf.output()))).pages[0].images
    assert len(images) == 1  # the PNG; the SVG became vector paths
    results = decode(images[0].image)
    assert [result.bytes for result in results] == [text.encode()]


def test_svg_is_an_svg_document_of_the_code():
    import xml.etree.ElementTree as ET

    code = epc_qr.svg(epc_qr.for_invoice(DOCUMENTS["nl-standard"]))
    svg = ET.fromstring(code)  # noqa: S314 (our own output)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = svg.get("viewBox").split()
    assert width == height and int(width) >= 21 + 8  # at least version 1 with its quiet zone


def test_billing_loads_no_image_or_xml_library_until_a_code_or_document_is_made():
    """Cold start: importing the modules costs nothing heavy; segno loads only to draw."""
    import subprocess
    import sys

    from tests.einvoice_fixtures import ROOT

    code = ("import sys; from billing import epc_qr, ubl, journal, vat_return, language, payment_reference; "
            "print(sorted(m for m in ('segno', 'lxml', 'PIL', 'fpdf', 'stdnum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "functions" / "billing", check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
