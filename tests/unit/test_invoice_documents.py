# ruff: noqa: RUF001 - the customers are named in Greek, Cyrillic and Latin letters on purpose
"""Invoice and credit-note documents as a customer reads them: every name and address in the PDF's text layer
exactly (Polish, Greek, Bulgarian), the fonts embedded and subset per PDF, the number and "page n of m" on every
page, € on unit prices, thousands separators and plurals, no rows of zeros — read back with pypdf."""

import copy
import datetime
import html
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing import documents, fonts, invoice, lifecycle, parties, pricing, rendering
from billing.numbering import Numbers
from billing.usage import Totals
from tests.conftest import ROOT

BOOK = pricing.load(ROOT / "config" / "pricing.json")
SELLER = parties.load_seller(ROOT / "config" / "seller.json")
NOW = datetime.datetime(2026, 12, 1, 9, tzinfo=datetime.UTC)
CUSTOMERS = {
    "pl": {"legal_name": "Zakład Usług Informatycznych „Łódź” Sp. z o.o.",
           "address": {"line1": "ul. Piotrkowska 104 lok. 7", "postal_code": "90-926", "city": "Łódź",
                       "country": "PL"}, "vat_id": "PL5260001246"},
    "gr": {"legal_name": "Ελληνική Εταιρεία Λογισμικού Α.Ε.",
           "address": {"line1": "Λεωφόρος Κηφισίας 44", "postal_code": "151 25", "city": "Μαρούσι", "country": "GR"},
           "vat_id": "EL094259216"},
    "bg": {"legal_name": "Българска търговска компания ЕООД",
           "address": {"line1": "бул. Витоша 1", "postal_code": "1000", "city": "София", "country": "BG"},
           "vat_id": "BG175074752"},
    "eu": {"legal_name": "Ŝarĝo ĦġŻ Ċitta’ — Þórður Ðón ŒÆØÅ ș ț ő ű ė į ų ŗ ļ ņ ķ ģ ā ē ī ū č ď ě ň ř ť ů ž",
           "address": {"line1": "Triq il-Kbira 1, İstasyon ğ ş ı", "postal_code": "VLT 1000", "city": "Valletta",
                       "country": "MT"}, "vat_id": "MT15121333"},
}


def tenant(profile: dict, tier="premium", history=()) -> dict:
    created = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return {"tenant_id": "customer", "tier": tier, "deployment_model": "multi-tenant", "billing_start": "2026-11-01",
            "created_at": created, "billing_profile": profile,
            "tier_history": [{"tier": tier, "at": created}, *({"tier": t, "at": at} for at, t in history)]}


def issued(profile: dict, own: dict, history=(), sequence=41) -> dict:
    record = tenant(profile, "standard" if history else "premium", history)
    draft, _ = invoice.draft(BOOK, record, "2026-11", own, [], {}, None)
    change = lifecycle.issue(draft, lambda d: invoice.settle(d, parties.parties(SELLER, record)),
                             Numbers({("invoice", 2026): sequence}), invoice.issue_fields(NOW, 30), Decimal(0), NOW)
    return change.documents[0]


def usage(**per_day) -> dict:
    found = {}
    for meter, days in per_day.items():
        for day, quantity in days.items():
            micros = int(Decimal(quantity) * 10**6)
            found[(f"2026-11-{day:02d}", meter)] = Totals(1, micros, micros)
    return found


def text_of(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.mark.parametrize("country", sorted(CUSTOMERS))
def test_every_name_and_address_is_in_the_pdfs_text_layer_exactly(country):
    profile = CUSTOMERS[country]
    document = issued(profile, usage(workflow_minutes={3: "1500"}))
    text = "\n".join(text_of(documents.render(document, "pdf")))
    address = profile["address"]
    for expected in (profile["legal_name"], address["line1"], f"{address['postal_code']} {address['city']}",
                     profile["vat_id"], "Energent.ai B.V.", "Herengracht 100"):
        assert expected in text, expected
    page = documents.render(document, "html").decode()
    assert html.escape(profile["legal_name"]) in page


def test_the_fonts_are_embedded_and_subset_per_pdf():
    pdf = documents.render(issued(CUSTOMERS["gr"], usage(workflow_minutes={3: "1500"})), "pdf")
    reader = PdfReader(io.BytesIO(pdf))
    embedded = []
    for font in reader.pages[0]["/Resources"]["/Font"].values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        descriptor = descendant["/FontDescriptor"].get_object()
        embedded.append((descriptor["/FontName"], len(descriptor["/FontFile2"].get_object().get_data())))
    prepared = {path.stat().st_size for path in fonts.prepared().values()}
    assert len(embedded) == 1 and all(name.startswith("/MPDFAA+SourceSansPro") for name, _ in embedded)
    assert all(size < min(prepared) / 2 for _, size in embedded)  # only the glyphs this document uses


def test_a_long_invoice_carries_its_number_and_page_n_of_m_on_every_page():
    history = [(datetime.datetime(2026, 11, day, 9, tzinfo=datetime.UTC), tier) for day, tier in
               enumerate(["premium", "basic", "enterprise", "standard"] * 6, start=2)]
    own = usage(workflow_minutes={day: str(1000 * day) for day in range(1, 28)},
                storage_gib_hours={day: "18250" for day in range(1, 28)})
    document = issued(CUSTOMERS["pl"], own, history)
    pages = text_of(documents.render(document, "pdf"))
    assert len(pages) >= 2
    for n, text in enumerate(pages, start=1):
        assert f"Invoice {document['number']}" in text and f"page {n} of {len(pages)}" in text
    # The totals close the table, the heading is repeated on the next page, and how to pay ends the invoice.
    assert "Amount due" in "".join(pages[-2:]) and "Description" in pages[1] and "Please pay" in pages[-1]


def test_lines_read_as_people_expect_and_meters_without_usage_are_a_note():
    own = usage(workflow_minutes={3: "12500.5", 9: "18250"}, storage_gib_hours={20: "21000"},
                peak_concurrent_workflows={12: "1"})
    page = rendering.layout(issued(CUSTOMERS["pl"], own))
    rows = {row.description.split(",")[0]: row for row in page.rows}
    minutes = rows["Agent workflow run time"]
    assert (minutes.quantity, minutes.billable, minutes.amount) == ("30,750.5 minutes", "10,750.5 minutes", "€86.00")
    assert minutes.unit_price == "€0.0080 / minute"
    assert rows["Workspace storage"].quantity == "21,000 GiB-hours"
    assert rows["Peak concurrent workflows"].quantity == "1 workflow"
    assert "Workflows started" not in rows  # no usage: not a row of zeros
    assert "No usage this period of: Workflows started." in page.notes
    assert all(row.amount != "€0.00" or row.quantity for row in page.rows)


def test_a_credit_note_names_the_invoice_and_its_date():
    document = issued(CUSTOMERS["bg"], usage(workflow_minutes={3: "1500"}))
    invoice_record = {**document, "payments": [], "amount_paid": "0.00", "credit_notes": [], "credited_net": "0.00",
                      "credited_vat": "0.00", "credited_total": "0.00"}
    note = lifecycle.credit(invoice_record, Decimal("10.00"), "outage", Numbers({("credit_note", 2026): 0}),
                            invoice.issue_fields(NOW, 30), NOW).documents[0]
    text = "\n".join(text_of(documents.render(note, "pdf")))
    assert f"{document['number']} of 1 December 2026" in text and "Credit note CN-2026-000001" in text
    assert "-€10.00" in text and "Българска търговска компания ЕООД" in text


def test_fonts_cover_every_character_of_the_customers():
    for profile in CUSTOMERS.values():
        assert fonts.covered(profile["legal_name"] + profile["address"]["line1"] + profile["address"]["city"])
    assert not fonts.covered("株式会社")


def test_rendering_never_changes_the_document():
    document = issued(CUSTOMERS["eu"], usage(workflow_minutes={3: "1500"}))
    before = copy.deepcopy(document)
    for suffix in ("json", "html", "pdf"):
        documents.render(document, suffix)
    assert document == before


def qr_codes(pdf: bytes) -> list[str]:
    import zxingcpp

    return [code.text for page in PdfReader(io.BytesIO(pdf)).pages for image in page.images
            for code in zxingcpp.read_barcodes(image.image)]


def test_a_dutch_customer_reads_a_dutch_invoice_and_an_english_one_english():
    dutch = issued({**CUSTOMERS["bg"], "language": "nl"}, usage(workflow_minutes={3: "12500.5"}))
    text = " ".join(" ".join(text_of(documents.render(dutch, "pdf"))).split())  # a cell may wrap
    page = documents.render(dutch, "html").decode()
    for expected in ("Factuur 2026-000042", "Factuurdatum", "1 december 2026", "31 december 2026", "Te betalen",
                     "Looptijd van agentworkflows, 1\N{EN DASH}30 november 2026", "12.500,5 minuten",
                     f"€ {Decimal(dutch['amount_due']):.2f}".replace(".", ","), "BTW verlegd", "pagina 1 van 1",
                     "Scan met uw bankapp om te betalen"):
        assert expected in text, expected
    assert '<html lang="nl">' in page and "Omschrijving" in page and "Te betalen" in page
    english = issued(CUSTOMERS["bg"], usage(workflow_minutes={3: "12500.5"}))
    text = " ".join(" ".join(text_of(documents.render(english, "pdf"))).split())
    for expected in ("Invoice 2026-000042", "1 December 2026", "Amount due", "12,500.5 minutes", "page 1 of 1",
                     "Agent workflow run time, 1\N{EN DASH}30 November 2026"):
        assert expected in text, expected
    assert "Factuur" not in text and "BTW verlegd" in text  # the Dutch term, named in the English note


def test_a_dutch_customer_outside_the_eu_reads_dienst_verricht_buiten_de_eu():
    swiss = {"legal_name": "Alpenblick AG", "language": "nl", "vat_id": "CHE-123.456.789 MWST",
             "address": {"line1": "Bahnhofstrasse 10", "postal_code": "8001", "city": "Zürich", "country": "CH"}}
    text = "\n".join(text_of(documents.render(issued(swiss, usage(workflow_minutes={3: "1500"})), "pdf")))
    assert "Dienst verricht buiten de EU" in text and "Btw niet van toepassing" in text


def test_the_pdf_carries_an_epc_qr_code_of_what_is_due():
    document = issued(CUSTOMERS["pl"], usage(workflow_minutes={3: "12500.5"}))
    [code] = qr_codes(documents.render(document, "pdf"))
    seller = SELLER.details
    assert code.split("\n") == ["BCD", "002", "1", "SCT", seller["bic"], seller["legal_name"], seller["iban"],
                                 f"EUR{document['amount_due']}", "", document["payment_reference"]]
    assert document["payment_reference"].startswith("RF") and "<svg" in documents.render(document, "html").decode()


def test_nothing_to_pay_carries_no_code():
    paid_by_balance = issued(CUSTOMERS["pl"], usage(workflow_minutes={3: "1500"}))
    paid_by_balance = {**paid_by_balance, "balance_applied": paid_by_balance["total"], "amount_due": "0.00"}
    assert qr_codes(documents.render(paid_by_balance, "pdf")) == []
    document = issued(CUSTOMERS["bg"], usage(workflow_minutes={3: "1500"}))
    record = {**document, "payments": [], "amount_paid": "0.00", "credit_notes": [], "credited_net": "0.00",
              "credited_vat": "0.00", "credited_total": "0.00"}
    note = lifecycle.credit(record, None, "duplicate", Numbers({("credit_note", 2026): 0}),
                            invoice.issue_fields(NOW, 30), NOW).documents[0]
    assert qr_codes(documents.render(note, "pdf")) == []


def test_writing_one_pdf_leaves_nothing_on_the_face_of_another():
    """fpdf2 writes a document's font file and descriptor id onto its face's descriptor: a descriptor shared by two
    documents drawn at once on two threads gives one of them the other's glyphs or a broken cross-reference."""
    from fpdf import FPDF

    first, second = FPDF(), FPDF()
    fonts.add_to(first)
    fonts.add_to(second)
    second.add_page()
    second.set_font(fonts.FAMILY, "", 10)
    second.cell(0, 5, "Łódź")
    second.output()
    [face] = first.fonts.values()
    assert getattr(face.desc, "font_file2", None) is None and face.desc.font_name is None


def test_pdfs_drawn_at_once_on_many_threads_are_each_whole_and_their_own():
    """An instance serves requests on several threads: PDFs drawn at the same moment share the parsed face."""
    from concurrent.futures import ThreadPoolExecutor

    documents_by_country = {country: issued(profile, usage(workflow_minutes={3: "1500"}), sequence=n)
                            for n, (country, profile) in enumerate(sorted(CUSTOMERS.items()))}
    expected = {country: text_of(documents.render(document, "pdf"))
                for country, document in documents_by_country.items()}
    work = sorted(documents_by_country) * 12
    with ThreadPoolExecutor(8) as pool:
        drawn = list(pool.map(lambda country: (country, documents.render(documents_by_country[country], "pdf")),
                              work))
    for country, pdf in drawn:
        assert text_of(pdf) == expected[country]
