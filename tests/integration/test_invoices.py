"""Invoices a Dutch company can send (§7.3, §7.4), on the Firestore and Cloud Storage emulators: parties and VAT
by where the customer is, the documents by number (the PDF read back), payment, credit notes and reissue."""

import datetime
import io
import uuid
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing.errors import Conflict, Invalid
from energent_shared import clients
from tests.integration.test_billing import LAST_MONTH, NOW, add_tenant, close, make_billing, usage
from tests.support import run_threads

PROFILES = {
    "nl": {"legal_name": "Acme B.V.", "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam",
                                                  "country": "NL"}, "vat_id": "NL100000009B01"},
    "de": {"legal_name": "Beispiel GmbH", "address": {"line1": "Hauptstr. 1", "postal_code": "10115",
                                                       "city": "Berlin", "country": "DE"}, "vat_id": "DE123456788"},
    "be": {"legal_name": "Voorbeeld NV", "address": {"line1": "Grote Markt 1", "postal_code": "1000",
                                                     "city": "Brussel", "country": "BE"}, "vat_id": "BE0123456749"},
    "us": {"legal_name": "Example Inc.", "address": {"line1": "1 Main St", "postal_code": "94105",
                                                     "city": "San Francisco", "country": "US"}},
    "ch": {"legal_name": "Beispiel AG", "address": {"line1": "Bahnhofstr. 1", "postal_code": "8001",
                                                    "city": "Zürich", "country": "CH"}, "vat_id": "CHE-123.456.789"},
}


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"invoices-{uuid.uuid4().hex[:10]}").name


@pytest.fixture
def announced():
    return []


@pytest.fixture
def billing(firestore_db, bucket, announced):
    made = make_billing(firestore_db, bucket)
    made.announce = made.closer.announce = lambda kind, document: announced.append((kind, document["number"]))
    return made


def customer(db, tenant_id, profile=None, minutes="1500.5"):
    add_tenant(db, tenant_id, billing_start=f"{LAST_MONTH}-01")
    db.document("tenants", tenant_id).update({"billing_profile": profile, "display_name": tenant_id.title()})
    return usage(tenant_id, quantity=minutes, time=f"{LAST_MONTH}-10T12:00:00Z")


def test_vat_follows_where_the_customer_is(billing, firestore_db):
    codes = ("nl", "de", "be", "us", "ch", "none")
    billing.ingest([customer(firestore_db, f"cust-{code}", PROFILES.get(code)) for code in codes], "http")
    close(billing, LAST_MONTH)
    found = {code: billing.invoice(f"cust-{code}", LAST_MONTH) for code in codes}
    # 49.00 base + 500.5 minutes above the 1,000 included at 0.01 = 54.01 net everywhere
    assert {invoice["net"] for invoice in found.values()} == {"54.01"}
    assert [(n, i["vat"]["treatment"], i["vat"]["rate"], i["vat"]["amount"], i["total"]) for n, i in found.items()] == [
        ("nl", "standard", "21", "11.34", "65.35"), ("de", "reverse_charge", "0", "0.00", "54.01"),
        ("be", "reverse_charge", "0", "0.00", "54.01"), ("us", "outside_scope", "0", "0.00", "54.01"),
        ("ch", "outside_scope", "0", "0.00", "54.01"), ("none", "standard", "21", "11.34", "65.35")]
    assert any("BTW verlegd" in note and "DE123456788" in note for note in found["de"]["notes"])
    assert any("outside the EU" in note for note in found["us"]["notes"])
    assert found["none"]["customer"] == {"legal_name": "Cust-None"}
    assert "no billing profile" in found["none"]["warnings"][0]
    assert found["nl"]["customer"]["vat_id"] == "NL100000009B01" and not found["nl"]["warnings"]
    seller = found["nl"]["seller"]
    assert (seller["vat_id"], seller["coc_number"], seller["iban"]) == ("NL100000009B01", "10000000",
                                                                        "NL91ABNA0417164300")
    issued = datetime.date.fromisoformat(found["nl"]["issue_date"])
    assert issued == NOW.date() and found["nl"]["due_date"] == (issued + datetime.timedelta(days=30)).isoformat()
    minutes = next(line for line in found["nl"]["lines"] if line.get("meter") == "workflow_minutes")
    assert minutes["unit_price"] == "0.0100" and minutes["included"] == "1000"


def test_vat_is_rounded_once_per_invoice_on_the_net(billing, firestore_db):
    # net 49.00 + 0.05 (5 minutes x 0.01) = 49.05; 21 % = 10.3005 -> 10.30 on the invoice's net
    billing.ingest([customer(firestore_db, "rounding", PROFILES["nl"], minutes="1005")], "http")
    billing.report_sla("rounding", {"period": LAST_MONTH, "availability_pct": Decimal("99.85"),
                                    "p95_latency_ms": 10})  # 10 % credit: 4.91
    close(billing, LAST_MONTH)
    invoice = billing.invoice("rounding", LAST_MONTH)
    assert (invoice["subtotal"], invoice["sla_credit"], invoice["net"]) == ("49.05", "4.91", "44.14")
    assert invoice["vat"]["amount"] == "9.27" and invoice["total"] == "53.41"  # 44.14 x 0.21 = 9.2694


def test_the_documents_are_stored_by_number_and_the_pdf_says_what_the_law_asks(billing, firestore_db, bucket):
    billing.ingest([customer(firestore_db, "reader", PROFILES["de"])], "http")
    close(billing, LAST_MONTH)
    invoice = billing.invoice("reader", LAST_MONTH)
    stored = clients.storage().bucket(bucket)
    for suffix in ("json", "html", "pdf"):
        assert stored.blob(f"invoices/{invoice['number']}.{suffix}").exists()
    text = PdfReader(io.BytesIO(billing.document("reader", LAST_MONTH, "pdf"))).pages[0].extract_text()
    for expected in (invoice["number"], "NL100000009B01", "Beispiel GmbH", "DE123456788", "BTW verlegd",
                     "€54.01", "NL91ABNA0417164300", "Total due", "KvK 10000000"):
        assert expected in text, expected
    page = billing.document("reader", LAST_MONTH, "html").decode()
    assert "Beispiel GmbH" in page and invoice["number"] in page and "Unit price" in page


def test_pay_is_idempotent_and_a_credited_invoice_cannot_be_paid(billing, firestore_db, announced):
    billing.ingest([customer(firestore_db, "payer", PROFILES["nl"]), customer(firestore_db, "crediting")], "http")
    close(billing, LAST_MONTH)
    paid_at = f"{NOW:%Y-%m-%d}T00:00:00Z"
    with pytest.raises(Invalid, match="before the invoice's issue date"):
        billing.pay("payer", LAST_MONTH, {"reference": "BANK-1", "paid_at": f"{LAST_MONTH}-28T09:00:00Z"})
    paid = billing.pay("payer", LAST_MONTH, {"reference": "BANK-1", "paid_at": paid_at})
    assert (paid["status"], paid["payment_reference"], paid["paid_at"]) == ("paid", "BANK-1", paid_at)
    assert billing.pay("payer", LAST_MONTH, {"reference": "BANK-1"}) == paid  # the same call again
    with pytest.raises(Conflict, match="already paid"):
        billing.pay("payer", LAST_MONTH, {"reference": "BANK-2"})
    with pytest.raises(Conflict):  # a paid invoice is not credited
        billing.credit("payer", LAST_MONTH, {"reason": "oops"})
    billing.credit("crediting", LAST_MONTH, {"reason": "wrong customer name"})
    with pytest.raises(Conflict, match="credited"):
        billing.pay("crediting", LAST_MONTH, {"reference": "BANK-3"})
    with pytest.raises(Conflict):  # credited twice
        billing.credit("crediting", LAST_MONTH, {"reason": "again"})
    for body in ({}, {"reference": ""}, {"reference": "x", "paid_at": "yesterday"}, {"reference": "x", "extra": 1},
                 {"reference": "x", "paid_at": "2999-01-01T00:00:00Z"}):
        with pytest.raises(Invalid):
            billing.pay("payer", LAST_MONTH, body)
    kinds = [kind for kind, _ in announced]
    assert kinds.count("issued") == 2 and "paid" in kinds and "credited" in kinds


def test_a_reissue_after_a_profile_fix_replaces_the_invoice_with_a_credit_note_between(billing, firestore_db, bucket):
    billing.ingest([customer(firestore_db, "fixme", None)], "http")
    close(billing, LAST_MONTH)
    first = billing.invoice("fixme", LAST_MONTH)
    assert first["vat"]["treatment"] == "standard" and first["total"] == "65.35"
    firestore_db.document("tenants/fixme").update({"billing_profile": PROFILES["be"]})  # PATCHed by the operator
    result = billing.credit("fixme", LAST_MONTH, {"reason": "customer is a Belgian business", "reissue": True})
    note, reissued = result["credit_note"], result["invoice"]
    assert note["number"] == f"CN-{NOW.year}-000001" and note["invoice_number"] == first["number"]
    assert (note["net"], note["vat"]["amount"], note["total"]) == ("-54.01", "-11.34", "-65.35")
    assert [line["amount"] for line in note["lines"]] == [f"-{line['amount']}" if line["amount"] != "0.00" else "0.00"
                                                          for line in first["lines"]]
    assert reissued["replaces"] == first["number"] and reissued["number"] == f"{NOW.year}-000002"
    assert reissued["vat"]["treatment"] == "reverse_charge" and reissued["total"] == "54.01"
    assert reissued["lines"] == first["lines"]  # the amounts billed do not change, only parties and VAT
    assert billing.invoice("fixme", LAST_MONTH)["number"] == reissued["number"]
    listed = billing.invoices("fixme")["invoices"]
    assert [(i["number"], i["status"]) for i in listed] == [(first["number"], "credited"),
                                                            (reissued["number"], "final")]
    assert [c["number"] for c in billing.credit_notes("fixme")["credit_notes"]] == [note["number"]]
    stored = clients.storage().bucket(bucket)
    assert stored.blob(f"credit-notes/{note['number']}.pdf").exists()
    text = PdfReader(io.BytesIO(stored.blob(f"credit-notes/{note['number']}.pdf").download_as_bytes())
                     ).pages[0].extract_text()
    assert "Credit note" in text and first["number"] in text and "-€65.35" in text


def test_concurrent_credits_number_credit_notes_without_gaps(billing, firestore_db):
    names = [f"credit-{n}" for n in range(6)]
    billing.ingest([customer(firestore_db, name, PROFILES["us"]) for name in names], "http")
    close(billing, LAST_MONTH)
    run_threads(len(names), lambda i: billing.credit(names[i], LAST_MONTH, {
        "reason": "goodwill", "reissue": names[i].endswith(("1", "3"))}))
    notes = sorted(c["number"] for name in names for c in billing.credit_notes(name)["credit_notes"])
    assert notes == [f"CN-{NOW.year}-{n:06d}" for n in range(1, 7)]
    invoices = sorted(i["number"] for name in names for i in billing.invoices(name)["invoices"])
    assert invoices == [f"{NOW.year}-{n:06d}" for n in range(1, 9)]  # 6 issued at the close, 2 reissued


def test_the_upcoming_invoice_shows_the_open_period_as_it_stands(billing, firestore_db):
    add_tenant(firestore_db, "soon", billing_start=f"{NOW:%Y-%m}-01")
    billing.ingest([usage("soon", quantity="1200")], "http")
    upcoming = billing.upcoming("soon")
    assert upcoming["status"] == "upcoming" and "number" not in upcoming
    assert upcoming["period"] == NOW.strftime("%Y-%m")
    assert upcoming["subtotal"] == "51.00"  # the whole month's base fee and 200 minutes above the allowance
    assert not billing.invoices("soon")["invoices"]  # nothing is written
    add_tenant(firestore_db, "behind", billing_start=f"{LAST_MONTH}-01")
    billing.ingest([usage("behind", quantity="7", time=f"{LAST_MONTH}-05T00:00:00Z")], "http")
    behind = billing.upcoming("behind")  # last month is not closed yet: its own close bills it, not this invoice
    assert behind["subtotal"] == "49.00" and behind["late_usage"] == []
    close(billing, LAST_MONTH)
    firestore_db.document("tenants/behind").update({"billing_start": f"{LAST_MONTH}-20"})  # owed earlier now?
    firestore_db.document("tenants/late-start").set({**firestore_db.document("tenants/behind").get().to_dict(),
                                                     "tenant_id": "late-start"})
    late = billing.upcoming("late-start")  # created after last month's close: its base fee is late now
    assert {"period": LAST_MONTH, "kind": "base_fee"} in late["late_usage"]


def test_a_reissue_is_listed_after_the_invoice_it_replaced_page_by_page(billing, firestore_db):
    billing.ingest([customer(firestore_db, "paged", None)], "http")
    close(billing, LAST_MONTH)
    billing.credit("paged", LAST_MONTH, {"reason": "profile", "reissue": True})
    first = billing.invoices("paged", size=1)
    second = billing.invoices("paged", size=1, page_token=first["next_page_token"])
    assert [i["status"] for i in first["invoices"] + second["invoices"]] == ["credited", "final"]
    assert second["next_page_token"] == ""
    with pytest.raises(Invalid):
        billing.invoices("paged", page_token="2026-13~x")


def test_the_archive_keeps_the_invoice_as_issued_and_completes_itself(billing, firestore_db, bucket):
    billing.ingest([customer(firestore_db, "archived", PROFILES["nl"])], "http")
    close(billing, LAST_MONTH)
    number = billing.invoice("archived", LAST_MONTH)["number"]
    billing.pay("archived", LAST_MONTH, {"reference": "BANK-9"})
    again = billing.invoices_store.numbered("archived", LAST_MONTH, number)
    assert again["status"] == "final" and "payment_reference" not in again  # what was issued, not what followed
    stored = clients.storage().bucket(bucket)
    stored.blob(f"invoices/{number}.pdf").delete()  # as if storing it had failed
    assert billing.document("archived", LAST_MONTH, "pdf").startswith(b"%PDF")
    assert stored.blob(f"invoices/{number}.pdf").exists()
