"""Invoices a Dutch company can send, on the Firestore and Cloud Storage emulators: parties and VAT by where the
customer is, drafts held until the customer is known, documents by number and their archive (the PDF read back),
payments with amounts, partial credit notes, the customer balance and reissue — the races run for real."""

import datetime
import io
import json
import uuid
from decimal import Decimal

import pytest
from pypdf import PdfReader
from stdnum import iso11649

from billing.errors import Conflict, Invalid, NotFound
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


def test_vat_follows_where_the_customer_is_and_a_customer_without_a_profile_is_held(billing, firestore_db):
    codes = ("nl", "de", "be", "us", "ch", "none")
    billing.ingest([customer(firestore_db, f"cust-{code}", PROFILES.get(code)) for code in codes], "http")
    state = close(billing, LAST_MONTH)
    assert (state["drafted"], state["issued"], state["held"]) == (6, 5, 1)
    found = {code: billing.invoice(f"cust-{code}", LAST_MONTH) for code in codes}
    # 49.00 base + 500.5 minutes above the 1,000 included at 0.01 = 54.01 net everywhere
    assert {invoice["net"] for invoice in found.values()} == {"54.01"}
    assert [(n, i["vat"]["treatment"], i["vat"]["rate"], i["vat"]["amount"], i["total"]) for n, i in found.items()] == [
        ("nl", "standard", "21", "11.34", "65.35"), ("de", "reverse_charge", "0", "0.00", "54.01"),
        ("be", "reverse_charge", "0", "0.00", "54.01"), ("us", "outside_scope", "0", "0.00", "54.01"),
        ("ch", "outside_scope", "0", "0.00", "54.01"), ("none", "standard", "21", "11.34", "65.35")]
    assert any("BTW verlegd" in note and "DE123456788" in note for note in found["de"]["notes"])
    assert any("outside the EU" in note for note in found["us"]["notes"])
    held = found["none"]
    assert (held["status"], held.get("number"), held["customer"]) == ("draft", None, {"legal_name": "Cust-None"})
    assert "no billing profile" in held["warnings"][0]
    assert found["nl"]["customer"]["vat_id"] == "NL100000009B01" and not found["nl"].get("warnings")
    seller = found["nl"]["seller"]
    assert (seller["vat_id"], seller["coc_number"], seller["iban"]) == ("NL100000009B01", "10000000",
                                                                        "NL91ABNA0417164300")
    issued = datetime.date.fromisoformat(found["nl"]["issue_date"])
    assert issued == NOW.date() and found["nl"]["due_date"] == (issued + datetime.timedelta(days=30)).isoformat()
    minutes = next(line for line in found["nl"]["lines"] if line.get("meter") == "workflow_minutes")
    assert (minutes["unit_price"], minutes["included"], minutes["billable_quantity"]) == ("0.0100", "1000", "500.5")
    assert [(i["status"], i.get("number")) for i in billing.invoices("cust-none")["invoices"]] == [("draft", None)]
    with pytest.raises(Conflict, match="draft"):
        billing.document("cust-none", LAST_MONTH, "pdf")
    for action in (lambda: billing.pay("cust-none", LAST_MONTH, {"reference": "X"}),
                   lambda: billing.credit("cust-none", LAST_MONTH, {"reason": "x"})):
        with pytest.raises(Conflict, match="draft"):
            action()


def test_setting_the_profile_issues_every_held_draft_oldest_first_with_the_next_numbers(billing, firestore_db,
                                                                                         bucket):
    add_tenant(firestore_db, "holding", billing_start="2025-01-01", profile=None)
    add_tenant(firestore_db, "known", billing_start="2025-01-01")
    for period in ("2025-01", "2025-02"):
        close(billing, period)
    assert billing.period("2025-02")["held"] == 1 and billing.period("2025-02")["issued"] == 1
    assert [i["status"] for i in billing.invoices("holding")["invoices"]] == ["draft", "draft"]
    assert billing.issue_held("holding") == []  # no profile yet: nothing happens
    firestore_db.document("tenants/holding").update({"billing_profile": PROFILES["de"]})  # PATCHed
    issued = billing.issue_held("holding")
    year = NOW.year
    assert [(i["period"], i["number"]) for i in issued] == [("2025-01", f"{year}-000003"),
                                                           ("2025-02", f"{year}-000004")]
    assert all(i["vat"]["treatment"] == "reverse_charge" and i["customer"]["legal_name"] == "Beispiel GmbH"
               and not i.get("warnings") for i in issued)
    assert billing.issue_held("holding") == []  # once
    assert (billing.period("2025-02")["held"], billing.period("2025-02")["issued"]) == (0, 2)
    stored = clients.storage().bucket(bucket)
    assert all(stored.blob(f"invoices/{i['number']}.pdf").exists() for i in issued)


def test_the_documents_are_stored_by_number_and_the_pdf_says_what_the_law_asks(billing, firestore_db, bucket):
    billing.ingest([customer(firestore_db, "reader", PROFILES["de"])], "http")
    close(billing, LAST_MONTH)
    invoice = billing.invoice("reader", LAST_MONTH)
    stored = clients.storage().bucket(bucket)
    for suffix in ("json", "html", "pdf"):
        assert stored.blob(f"invoices/{invoice['number']}.{suffix}").exists()
    text = PdfReader(io.BytesIO(billing.document("reader", LAST_MONTH, "pdf"))).pages[0].extract_text()
    for expected in (invoice["number"], "NL100000009B01", "Beispiel GmbH", "DE123456788", "BTW verlegd",
                     "€54.01", "NL91ABNA0417164300", "Amount due", "Chamber of Commerce (KvK) 10000000",
                     invoice["payment_reference"]):
        assert expected in text, expected
    page = billing.document("reader", LAST_MONTH, "html").decode()
    assert "Beispiel GmbH" in page and invoice["number"] in page and "Unit price" in page


def test_payments_with_amounts_partial_over_and_once_per_reference(billing, firestore_db, announced):
    billing.ingest([customer(firestore_db, "payer", PROFILES["nl"])], "http")
    close(billing, LAST_MONTH)  # total 65.35
    paid_at = f"{NOW:%Y-%m-%d}T00:00:00Z"
    with pytest.raises(Invalid, match="before the invoice's issue date"):
        billing.pay("payer", LAST_MONTH, {"reference": "BANK-1", "paid_at": f"{LAST_MONTH}-28T09:00:00Z"})
    part = billing.pay("payer", LAST_MONTH, {"reference": "BANK-1", "amount": "15.35", "paid_at": paid_at})
    assert (part["status"], part["amount_paid"], part["amount_due"]) == ("partially_paid", "15.35", "50.00")
    assert part["payments"] == [{"amount": "15.35", "reference": "BANK-1", "paid_at": paid_at}]
    assert billing.pay("payer", LAST_MONTH, {"reference": "BANK-1", "amount": "15.35"}) == part  # again: unchanged
    with pytest.raises(Conflict, match=r"with amount 15\.35"):
        billing.pay("payer", LAST_MONTH, {"reference": "BANK-1", "amount": "9.00"})
    over = billing.pay("payer", LAST_MONTH, {"reference": "BANK-2", "amount": 80})  # a JSON number
    assert (over["status"], over["amount_paid"], over["amount_due"]) == ("paid", "95.35", "0.00")
    # the invoice's own ISO 11649 reference; the payer's references live in payments[] only
    assert iso11649.is_valid(over["payment_reference"]) and over["payment_reference"][4:] == over["number"].replace(
        "-", "")
    balance = billing.balance("payer")
    assert (balance["amount"], [e["amount"] for e in balance["entries"]]) == ("30.00", ["30.00"])
    assert balance["entries"][0]["document_number"] == over["number"]
    for body in ({}, {"reference": ""}, {"reference": "x", "paid_at": "yesterday"}, {"reference": "x", "extra": 1},
                 {"reference": "x", "paid_at": "2999-01-01T00:00:00Z"}, {"reference": "x", "amount": "-1"},
                 {"reference": "x", "amount": "0"}, {"reference": "x", "amount": "1.001"},
                 {"reference": "x", "amount": Decimal("1e999999")}, {"reference": "x", "amount": True},
                 {"reference": "x", "amount": "NaN"}):
        with pytest.raises(Invalid):
            billing.pay("payer", LAST_MONTH, body)
    assert [kind for kind, _ in announced].count("paid") == 1


def test_two_payments_with_one_reference_racing_record_one(billing, firestore_db):
    billing.ingest([customer(firestore_db, f"racer-{n}", PROFILES["nl"]) for n in range(3)], "http")
    close(billing, LAST_MONTH)
    for n in range(3):
        results = run_threads(4, lambda _, n=n: billing.pay(f"racer-{n}", LAST_MONTH, {"reference": "SAME",
                                                                                      "amount": "10.00"}))
        invoice = billing.invoice(f"racer-{n}", LAST_MONTH)
        assert [p["reference"] for p in invoice["payments"]] == ["SAME"] and invoice["amount_paid"] == "10.00"
        assert all(r["payments"] == invoice["payments"] for r in results)


def test_two_partial_credits_racing_never_credit_more_than_the_net(billing, firestore_db):
    billing.ingest([customer(firestore_db, f"double-{n}", PROFILES["nl"]) for n in range(3)], "http")
    close(billing, LAST_MONTH)  # net 54.01 each
    for n in range(3):
        outcomes: list = []

        def attempt(_, n=n, outcomes=outcomes):
            try:
                outcomes.append(billing.credit(f"double-{n}", LAST_MONTH, {"reason": "goodwill", "amount": "30.00"}))
            except Conflict as refused:
                outcomes.append(refused)

        run_threads(2, attempt)
        assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "dict"]
        invoice = billing.invoice(f"double-{n}", LAST_MONTH)
        assert (invoice["credited_net"], invoice["status"], len(invoice["credit_notes"])) == ("30.00", "final", 1)
    notes = sorted(c["number"] for n in range(3) for c in billing.credit_notes(f"double-{n}")["credit_notes"])
    assert notes == [f"CN-{NOW.year}-{k:06d}" for k in range(1, 4)]


def test_partial_credit_notes_after_payment_go_to_the_balance_and_the_next_invoice_uses_it(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, "refund", billing_start="2025-01-01")
    close(billing, "2025-01")  # 49.00 + 21 % = 59.29
    billing.pay("refund", "2025-01", {"reference": "BANK-1"})
    first = billing.credit("refund", "2025-01", {"reason": "outage", "amount": "10.00"})
    note = first["credit_note"]
    assert (note["net"], note["vat"]["amount"], note["total"]) == ("-10.00", "-2.10", "-12.10")
    assert (note["invoice_number"], note["invoice_date"]) == (first["invoice"]["number"],
                                                              first["invoice"]["issue_date"])
    second = billing.credit("refund", "2025-01", {"reason": "outage", "amount": "0.05"})["credit_note"]
    assert second["vat"]["amount"] == "-0.01"  # 0.0105 rounds half-up on its own
    rest = billing.credit("refund", "2025-01", {"reason": "cancel the rest"})
    assert (rest["credit_note"]["net"], rest["credit_note"]["vat"]["amount"]) == ("-38.95", "-8.18")
    assert rest["invoice"]["status"] == "credited"  # 2.10 + 0.01 + 8.18 = 10.29, the invoice's VAT exactly
    with pytest.raises(Conflict, match="credited in full"):
        billing.credit("refund", "2025-01", {"reason": "again"})
    assert billing.balance("refund")["amount"] == "59.29"  # paid, then credited in full: all owed back
    close(billing, "2025-02")
    february = billing.invoice("refund", "2025-02")
    assert (february["net"], february["total"], february["balance_applied"], february["amount_due"],
            february["status"]) == ("49.00", "59.29", "59.29", "0.00", "paid")
    assert billing.balance("refund")["amount"] == "0.00"
    with pytest.raises(Invalid):
        billing.credit("refund", "2025-02", {"reason": "x", "amount": "1.00", "reissue": True})


def test_a_reissue_after_a_profile_fix_replaces_the_invoice_with_a_credit_note_between(billing, firestore_db, bucket):
    billing.ingest([customer(firestore_db, "fixme", PROFILES["nl"])], "http")
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
    billing.ingest([customer(firestore_db, "paged", PROFILES["nl"])], "http")
    close(billing, LAST_MONTH)
    billing.credit("paged", LAST_MONTH, {"reason": "profile", "reissue": True})
    first = billing.invoices("paged", size=1)
    second = billing.invoices("paged", size=1, page_token=first["next_page_token"])
    assert [i["status"] for i in first["invoices"] + second["invoices"]] == ["credited", "final"]
    assert second["next_page_token"] == ""
    with pytest.raises(Invalid):
        billing.invoices("paged", page_token="2026-13~x")


def test_documents_by_number_show_the_current_status_and_the_archive_keeps_what_was_issued(billing, firestore_db,
                                                                                          bucket):
    billing.ingest([customer(firestore_db, "archived", PROFILES["nl"]), customer(firestore_db, "other",
                                                                                 PROFILES["nl"])], "http")
    close(billing, LAST_MONTH)
    number = billing.invoice("archived", LAST_MONTH)["number"]
    billing.pay("archived", LAST_MONTH, {"reference": "BANK-9"})
    result = billing.credit("archived", LAST_MONTH, {"reason": "profile", "reissue": True})
    note, new = result["credit_note"]["number"], result["invoice"]["number"]
    assert billing.by_number("archived", number)["status"] == "credited"  # replaced and credited, still readable
    assert billing.by_number("archived", number)["replaced_by"] == new
    assert billing.by_number("archived", note)["invoice_number"] == number
    assert billing.by_number("archived", new)["status"] == "paid"  # the payment's excess paid the reissue
    stored = clients.storage().bucket(bucket)
    archived = json.loads(stored.blob(f"invoices/{number}.json").download_as_text())
    assert archived["status"] == "final" and "payments" not in archived and "replaced_by" not in archived
    for lost in (f"invoices/{number}.pdf", f"credit-notes/{note}.pdf", f"credit-notes/{note}.json"):
        stored.blob(lost).delete()  # as if storing had failed
    for which in (number, note):
        assert billing.archived("archived", which, "pdf").startswith(b"%PDF")  # repaired, as issued
    repaired = json.loads(billing.archived("archived", note, "json"))
    assert repaired == billing.invoices_store.issued_document("archived", note)[1]
    assert stored.blob(f"credit-notes/{note}.json").exists()
    with pytest.raises(NotFound):
        billing.by_number("other", number)  # another tenant's number
    with pytest.raises(Invalid):
        billing.by_number("archived", "../2026-000001")
    paid = billing.pay_number("archived", number, {"reference": "LATE-TRANSFER", "amount": "5.00"})
    assert paid["number"] == number and [p["reference"] for p in paid["payments"]] == ["BANK-9", "LATE-TRANSFER"]


def test_a_credit_note_not_stored_at_issue_is_stored_by_a_step_from_its_issued_record(firestore_db, bucket,
                                                                                     monkeypatch):
    billing = make_billing(firestore_db, bucket)
    billing.ingest([customer(firestore_db, "flaky", PROFILES["nl"])], "http")
    close(billing, LAST_MONTH)
    steps = []
    billing.closer.dispatch = lambda event_type, data: steps.append((event_type, data))
    real = billing.files.store

    def failing(document):
        if "invoice_number" in document:
            raise ConnectionError("storage unavailable")
        real(document)

    monkeypatch.setattr(billing.files, "store", failing)
    note = billing.credit("flaky", LAST_MONTH, {"reason": "x", "amount": "1.00"})["credit_note"]
    assert steps == [("ai.energent.billing.document.store.v1", {"tenant_id": "flaky", "number": note["number"]})]
    monkeypatch.setattr(billing.files, "store", real)
    billing.on_step(*steps[0])  # what the billing-events deployment does with the step
    stored = json.loads(clients.storage().bucket(bucket).blob(f"credit-notes/{note['number']}.json")
                        .download_as_text())
    assert stored == note


def test_a_credit_retried_with_its_idempotency_key_credits_once(billing, firestore_db):
    billing.ingest([customer(firestore_db, "retrier", PROFILES["nl"])], "http")
    close(billing, LAST_MONTH)
    first = billing.credit("retrier", LAST_MONTH, {"reason": "goodwill", "amount": "5.00"}, key="req-1")
    again = billing.credit("retrier", LAST_MONTH, {"reason": "goodwill", "amount": "5.00"}, key="req-1")
    assert again["credit_note"] == first["credit_note"] and again["invoice"]["credited_net"] == "5.00"
    results = run_threads(4, lambda _: billing.credit("retrier", LAST_MONTH, {"reason": "outage", "amount": "7.00"},
                                                      key="req-2"))
    assert len({r["credit_note"]["number"] for r in results}) == 1
    assert billing.invoice("retrier", LAST_MONTH)["credited_net"] == "12.00"
    assert len(billing.credit_notes("retrier")["credit_notes"]) == 2
    with pytest.raises(Invalid, match="Idempotency-Key"):
        billing.credit("retrier", LAST_MONTH, {"reason": "x", "amount": "1.00"}, key="ключ")


# --- e-invoices and the books -------------------------------------------------------------------------------------

def test_the_ubl_is_archived_beside_the_pdf_and_made_later_for_a_customer_without_a_peppol_address(
        billing, firestore_db, bucket):
    billing.ingest([customer(firestore_db, "ubl-de", PROFILES["de"]), customer(firestore_db, "ubl-us", PROFILES["us"])],
                   "http")
    close(billing, LAST_MONTH)
    german, american = billing.invoice("ubl-de", LAST_MONTH), billing.invoice("ubl-us", LAST_MONTH)
    stored = clients.storage().bucket(bucket)
    xml = stored.blob(f"invoices/{german['number']}.xml").download_as_bytes()
    assert b"<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0" in xml
    assert b'<cbc:EndpointID schemeID="9930">DE123456788</cbc:EndpointID>' in xml
    assert f"<cbc:PayableAmount currencyID=\"EUR\">{german['amount_due']}</cbc:PayableAmount>".encode() in xml
    assert billing.document("ubl-de", LAST_MONTH, "xml") == xml
    # No Peppol address at issue (no VAT number in a country with a Peppol scheme): no UBL until the profile has one.
    assert not stored.blob(f"invoices/{american['number']}.xml").exists()
    with pytest.raises(Conflict, match="no e-invoice yet"):
        billing.document("ubl-us", LAST_MONTH, "xml")
    firestore_db.document("tenants/ubl-us").update({"billing_profile": {
        **PROFILES["us"], "peppol_id": {"scheme": "0060", "id": "123456789"}}})
    made = billing.document("ubl-us", LAST_MONTH, "xml")
    assert b'<cbc:EndpointID schemeID="0060">123456789</cbc:EndpointID>' in made
    assert stored.blob(f"invoices/{american['number']}.xml").download_as_bytes() == made


def test_the_journal_balances_every_document_and_payment_and_the_vat_return_sums_the_quarter(billing, firestore_db):
    billing.ingest([customer(firestore_db, f"books-{code}", PROFILES[code]) for code in ("nl", "de", "us")], "http")
    close(billing, LAST_MONTH)
    dutch = billing.invoice("books-nl", LAST_MONTH)
    billing.pay("books-nl", LAST_MONTH, {"reference": "BANK-1", "amount": "20.00"})
    billing.pay("books-nl", LAST_MONTH, {"reference": "BANK-2", "amount": "100.00"})  # over: onto the balance
    billing.credit("books-de", LAST_MONTH, {"reason": "outage", "amount": "10.00"})
    today = NOW.date().isoformat()
    entries = billing.journal(today, today)
    by_entry: dict[str, list[dict]] = {}
    for row in entries:
        by_entry.setdefault(row["entry"], []).append(row)
    documents = {billing.invoice(f"books-{code}", LAST_MONTH)["number"] for code in ("nl", "de", "us")}
    notes = {note["number"] for note in billing.credit_notes("books-de")["credit_notes"]}
    assert set(by_entry) == documents | notes | {f"{dutch['number']}/BANK-1", f"{dutch['number']}/BANK-2"}
    for entry, rows in by_entry.items():  # every entry balances
        assert sum(Decimal(r["debit"]) for r in rows) == sum(Decimal(r["credit"]) for r in rows) > 0, entry
    # The second payment clears what was still receivable and leaves the rest on the customer balance.
    overpaid = {r["account"]: Decimal(r["credit"]) for r in by_entry[f"{dutch['number']}/BANK-2"]
                if Decimal(r["credit"])}
    assert overpaid == {"1300": Decimal(dutch["total"]) - Decimal("20.00"),
                        "1410": Decimal("120.00") - Decimal(dutch["total"])}
    assert billing.journal("2000-01-01", "2000-01-31") == []
    for bad in (("2026-13-01", today), (today, "yesterday"), ("2026-12-02", "2026-12-01"),
                ("2024-01-01", "2026-01-01")):
        with pytest.raises(Invalid):
            billing.journal(*bad)
    # The VAT return against an independent sum: the domestic and outside-EU invoices and the credit note count in
    # the quarter they were issued, the reverse-charged invoice in the quarter of the month it supplied (the two
    # differ when last month closed a quarter).
    issued_in = f"{NOW.year}-Q{(NOW.month - 1) // 3 + 1}"
    supplied_in = f"{LAST_MONTH[:4]}-Q{(int(LAST_MONTH[5:]) - 1) // 3 + 1}"
    returns = {quarter: billing.vat_return(quarter) for quarter in {issued_in, supplied_in}}
    nl, de = billing.invoice("books-nl", LAST_MONTH), billing.invoice("books-de", LAST_MONTH)
    assert returns[issued_in]["boxes"]["1a"] == {"turnover": nl["net"], "vat": nl["vat"]["amount"]}
    assert returns[issued_in]["outside_return"] == {"turnover": billing.invoice("books-us", LAST_MONTH)["net"]}
    three_b = {quarter: Decimal(found["boxes"]["3b"]["turnover"]) for quarter, found in returns.items()}
    icp = {quarter: {row["vat_id"]: Decimal(row["turnover"]) for row in found["icp"]}
           for quarter, found in returns.items()}
    expected = {issued_in: Decimal("-10.00"), supplied_in: Decimal(de["net"])} if issued_in != supplied_in else \
        {issued_in: Decimal(de["net"]) - Decimal("10.00")}
    assert three_b == expected and icp == {quarter: {"DE123456788": amount} for quarter, amount in expected.items()}
    for bad in ("2026-Q5", "2026-q1", "1999-Q4", "2026-Q1\n"):
        with pytest.raises(Invalid):
            billing.vat_return(bad)


def test_a_reissue_after_a_partial_credit_keeps_the_credit_and_archives_every_document(billing, firestore_db, bucket):
    billing.ingest([customer(firestore_db, "regoodwill", PROFILES["nl"])], "http")
    close(billing, LAST_MONTH)
    billing.credit("regoodwill", LAST_MONTH, {"reason": "outage", "amount": "10.00"})
    owed = billing.invoice("regoodwill", LAST_MONTH)["amount_due"]
    answer = billing.credit("regoodwill", LAST_MONTH, {"reason": "new address", "reissue": True})
    new = billing.invoice("regoodwill", LAST_MONTH)
    assert new["replaces"] == answer["credit_note"]["invoice_number"] and new["amount_due"] == owed
    notes = billing.credit_notes("regoodwill")["credit_notes"]
    assert [(n["invoice_number"] == new["number"], n["net"]) for n in notes][-1] == (True, "-10.00")
    stored = clients.storage().bucket(bucket)
    assert all(stored.blob(f"credit-notes/{n['number']}.pdf").exists() for n in notes)
