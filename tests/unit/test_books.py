"""The books: the journal (balanced entries per document and payment, accounts from config/ledger.json) and the
Dutch VAT return with its ICP listing, each checked against sums taken independently from the documents."""

import copy
import csv
import io
import json
from collections import defaultdict
from decimal import Decimal

import pytest

from billing import journal, ledger, vat_return
from tests import einvoice_fixtures as fixtures

LEDGER = ledger.load_ledger(fixtures.ROOT / "config" / "ledger.json")
RAW_LEDGER = json.loads((fixtures.ROOT / "config" / "ledger.json").read_text())
DOCUMENTS = fixtures.documents()
INVOICES = [d for d in DOCUMENTS.values() if "invoice_number" not in d]
NOTES = [d for d in DOCUMENTS.values() if "invoice_number" in d]
ACCOUNT = RAW_LEDGER["postings"]


def balances(rows) -> dict[str, Decimal]:
    """Credit minus debit per account."""
    totals = defaultdict(Decimal)
    for row in rows:
        totals[row["account"]] += Decimal(row["credit"]) - Decimal(row["debit"])
    return totals


def test_the_shipped_ledger_documents_every_treatment_and_its_box():
    assert {t: c["box"] for t, c in RAW_LEDGER["vat_codes"].items()} == \
        {"standard": "1a", "reverse_charge": "3b", "outside_scope": None}
    assert all(len(code["about"]) > 80 for code in RAW_LEDGER["vat_codes"].values())
    assert set(RAW_LEDGER["postings"]["usage"]) == set(fixtures.PRICES["meters"])  # every meter has its account
    assert RAW_LEDGER["about"]


def test_every_entry_balances_and_every_document_and_payment_has_one():
    rows = journal.entries(LEDGER, INVOICES, NOTES)
    by_entry = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in rows:
        by_entry[row["entry"]][0] += Decimal(row["debit"])
        by_entry[row["entry"]][1] += Decimal(row["credit"])
        assert (Decimal(row["debit"]) == 0) != (Decimal(row["credit"]) == 0)  # one side per row
        assert row["account"] in RAW_LEDGER["accounts"]
    assert all(debit == credit for debit, credit in by_entry.values()), by_entry
    payments = {f"{i['number']}/{p['reference']}" for i in INVOICES for p in i["payments"]}
    assert set(by_entry) == {d["number"] for d in DOCUMENTS.values()} | payments
    assert [row["date"] for row in rows] == sorted(row["date"] for row in rows)


def test_accounts_hold_what_the_documents_say():
    totals = balances(journal.entries(LEDGER, INVOICES, NOTES))
    documents = INVOICES + NOTES
    # revenue per meter and base fee, discounts and VAT, summed straight from the documents' lines
    expected = defaultdict(Decimal)
    for document in documents:
        for line in document["lines"]:
            if line["kind"] == "base_fee":
                expected[ACCOUNT["base_fee"]] += Decimal(line["amount"])
            elif line["kind"] in ("usage", "late_usage"):
                expected[ACCOUNT["usage"][line["meter"]]] += Decimal(line["amount"])
            elif line["kind"] == "credit_grant":
                expected[ACCOUNT["credit_grant"]] += Decimal(line["amount"])
            else:
                expected[ACCOUNT["credit"]] += Decimal(line["amount"])
        expected[ACCOUNT["sla_credit"]] -= Decimal(document["sla_credit"])
        expected[ACCOUNT["vat_payable"]] += Decimal(document["vat"]["amount"])
    # the bank holds every payment; receivables what is still due; the customer balance what was paid or credited
    # beyond what was due, less what invoices used of it
    expected[ACCOUNT["bank"]] = -sum(Decimal(p["amount"]) for i in INVOICES for p in i["payments"])
    receivable = balance = Decimal(0)
    for invoice in INVOICES:
        due = Decimal(invoice["total"]) - Decimal(invoice["balance_applied"])
        settled = sum((Decimal(p["amount"]) for p in invoice["payments"]), Decimal(0))
        settled -= sum((Decimal(n["total"]) for n in NOTES if n["invoice_number"] == invoice["number"]), Decimal(0))
        receivable += max(Decimal(0), due - settled)
        balance += max(Decimal(0), settled - due) - Decimal(invoice["balance_applied"])
    expected[ACCOUNT["receivables"]] = -receivable
    expected[ACCOUNT["customer_balance"]] = balance
    assert {k: v for k, v in totals.items() if v} == {k: v for k, v in expected.items() if v}
    # the fixtures exercise what matters: an overpayment and credits after payment reach the customer balance
    assert totals[ACCOUNT["customer_balance"]] == Decimal("22.40") + Decimal("121.00") + Decimal("777.60") \
        + Decimal("285.95") - Decimal("10.00")


def test_rows_carry_the_vat_code_of_their_treatment():
    rows = journal.entries(LEDGER, INVOICES, NOTES)
    codes = {row["entry"]: set() for row in rows}
    for row in rows:
        if row["account"] in (ACCOUNT["bank"], ACCOUNT["receivables"], ACCOUNT["customer_balance"]):
            assert row["vat_code"] is None
        else:
            codes[row["entry"]].add(row["vat_code"])
    by_number = {d["number"]: d for d in DOCUMENTS.values()}
    for number, found in codes.items():
        if number in by_number and found:
            treatment = by_number[number]["vat"]["treatment"]
            assert found == {RAW_LEDGER["vat_codes"][treatment]["code"]}


def test_a_payment_and_a_credit_note_settle_the_same_in_either_order():
    invoice = copy.deepcopy(DOCUMENTS["nl-standard"])
    note = copy.deepcopy(DOCUMENTS["nl-partial-credit"])
    first = balances(journal.entries(LEDGER, [invoice], [note]))
    invoice["payments"][0]["paid_at"] = "2026-11-26T10:00:00Z"  # now after the credit note
    second_rows = journal.entries(LEDGER, [invoice], [note])
    assert balances(second_rows) == first
    payment = [row for row in second_rows if row["entry"].endswith("NL-BANK-20261120-1")]
    assert {(row["account"], row["credit"]) for row in payment if row["credit"] != "0.00"} == \
        {(ACCOUNT["receivables"], "285.95"), (ACCOUNT["customer_balance"], "121.00")}


def test_dates_are_inclusive_and_a_payment_is_dated_in_utc():
    rows = journal.entries(LEDGER, INVOICES, NOTES, start="2026-11-25", end="2026-11-25")
    assert {row["entry"] for row in rows} == {"CN-2026-000011", "2026-000102/DE-SEPA-7781"}
    invoice = copy.deepcopy(DOCUMENTS["pl-grant-balance"])
    invoice["payments"][0]["paid_at"] = "2026-11-30T23:30:00-02:00"
    rows = journal.entries(LEDGER, [invoice])
    assert {row["date"] for row in rows if "/" in row["entry"]} == {"2026-12-01"}


def test_meters_without_an_account_book_to_other_usage_and_drafts_are_not_booked():
    invoice = copy.deepcopy(DOCUMENTS["nl-september"])
    invoice["lines"].append({"kind": "usage", "meter": "gpu_seconds", "amount": "5.00"})
    invoice.update(subtotal="54.00", net="54.00", total="64.29")
    rows = journal.entries(LEDGER, [invoice])
    assert [(row["account"], row["credit"]) for row in rows if row["account"] == ACCOUNT["usage_other"]] == \
        [(ACCOUNT["usage_other"], "5.00")]
    assert balances(rows)[ACCOUNT["receivables"]] == Decimal("-64.29")
    draft = {**copy.deepcopy(DOCUMENTS["nl-september"]), "status": "draft"}
    draft.pop("number")
    assert journal.entries(LEDGER, [draft]) == []


def test_a_credit_note_needs_its_invoice():
    with pytest.raises(ValueError, match="2026-000101"):
        journal.entries(LEDGER, [DOCUMENTS["de-reverse-charge-sla"]], [DOCUMENTS["nl-partial-credit"]])


def test_csv_reads_back_and_never_starts_a_formula():
    invoice = copy.deepcopy(DOCUMENTS["pl-grant-balance"])
    invoice["payments"][0]["reference"] = "x"
    invoice["tenant_id"] = "=HYPERLINK(1)"
    rows = journal.entries(LEDGER, [invoice])
    text = journal.to_csv(rows)
    read = list(csv.DictReader(io.StringIO(text)))
    assert list(read[0]) == list(journal.COLUMNS)
    assert len(read) == len(rows)
    assert {row["tenant_id"] for row in read} == {"'=HYPERLINK(1)"}
    assert [(r["account"], r["debit"], r["credit"], r["vat_code"]) for r in read] == \
        [(r["account"], r["debit"], r["credit"], r["vat_code"] or "") for r in rows]
    assert text.endswith("\r\n")


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["postings"].update(bank="9999"), "postings.bank"),
    (lambda d: d["postings"]["usage"].update(workflow_runs="7777"), "postings.usage.workflow_runs"),
    (lambda d: d["vat_codes"]["reverse_charge"].update(box="1e"), "vat_codes.reverse_charge.box"),
    (lambda d: d["vat_codes"]["standard"].pop("box"), "vat_codes.standard.box"),
    (lambda d: d["vat_codes"].pop("outside_scope"), "vat_codes.outside_scope.code"),
    (lambda d: d.update(accounts=[]), "accounts"),
])
def test_a_wrong_ledger_is_refused_naming_the_field(change, field):
    document = copy.deepcopy(RAW_LEDGER)
    change(document)
    with pytest.raises(ledger.LedgerError, match=field.replace(".", r"\.")):
        ledger.parse_ledger(document)


# -- the VAT return


@pytest.mark.parametrize("text", ["2026-Q1", "2000-Q4", "2999-Q2"])
def test_quarters(text):
    assert str(vat_return.parse_quarter(text)) == text


@pytest.mark.parametrize("text", ["2026-Q5", "2026-Q0", "2026-q4", "2026Q4", "2026-4", "1999-Q1", "3000-Q1",
                                  " 2026-Q4", "2026-Q4\n", "2026-Q04", "\uff12\uff10\uff12\uff16-Q4", "", None, 2026])
def test_malformed_quarters_are_refused_clearly(text):
    with pytest.raises(vat_return.InvalidQuarter, match="YYYY-Qn"):
        vat_return.parse_quarter(text)


def test_quarter_days():
    quarter = vat_return.parse_quarter("2024-Q1")
    assert (str(quarter.first_day), str(quarter.last_day)) == ("2024-01-01", "2024-03-31")
    quarter = vat_return.parse_quarter("2026-Q4")
    assert (str(quarter.first_day), str(quarter.last_day)) == ("2026-10-01", "2026-12-31")


def test_return_of_the_fourth_quarter_counted_by_hand():
    result = vat_return.vat_return("2026-Q4", DOCUMENTS.values(), LEDGER)
    assert result == {
        "period": "2026-Q4",
        # NL 336.32 (VAT 70.63), NL covered by a grant 0.00, less a partial credit note of 100.00 (VAT 21.00)
        "boxes": {"1a": {"turnover": "236.32", "vat": "49.63"},
                  # DE 777.60 credited in full, GR 159.87 credited in full, PL 30.00 less 15.00, BG 151.25
                  "3b": {"turnover": "166.25"}},
        # CH 41.30 credited in full, US 7,559.00
        "outside_return": {"turnover": "7559.00"},
        "icp": [{"vat_id": "BG175074752", "country": "BG", "turnover": "151.25"},
                {"vat_id": "PL5261040828", "country": "PL", "turnover": "15.00"}],
    }


def test_credit_notes_subtract_in_their_own_quarter():
    assert vat_return.vat_return("2027-Q1", DOCUMENTS.values(), LEDGER)["boxes"]["1a"] == \
        {"turnover": "-236.32", "vat": "-49.63"}
    assert vat_return.vat_return("2026-Q3", DOCUMENTS.values(), LEDGER)["boxes"]["1a"] == \
        {"turnover": "49.00", "vat": "10.29"}
    assert vat_return.vat_return("2026-Q2", DOCUMENTS.values(), LEDGER)["icp"] == []


def test_return_equals_an_independent_sum_over_any_quarter():
    for quarter in ("2026-Q3", "2026-Q4", "2027-Q1"):
        start, end = {"2026-Q3": ("2026-07-01", "2026-09-30"), "2026-Q4": ("2026-10-01", "2026-12-31"),
                      "2027-Q1": ("2027-01-01", "2027-03-31")}[quarter]
        dated = [d for d in DOCUMENTS.values() if start <= d["issue_date"] <= end]
        result = vat_return.vat_return(quarter, DOCUMENTS.values(), LEDGER)

        def total(treatment, field, documents=dated):
            return sum((Decimal(d[field] if field == "net" else d["vat"]["amount"]) for d in documents
                        if d["vat"]["treatment"] == treatment), Decimal("0.00"))

        assert Decimal(result["boxes"]["1a"]["turnover"]) == total("standard", "net")
        assert Decimal(result["boxes"]["1a"]["vat"]) == total("standard", "vat")
        assert Decimal(result["boxes"]["3b"]["turnover"]) == total("reverse_charge", "net")
        assert Decimal(result["outside_return"]["turnover"]) == total("outside_scope", "net")
        assert sum((Decimal(row["turnover"]) for row in result["icp"]), Decimal(0)) == \
            total("reverse_charge", "net")


def test_a_reverse_charged_month_counts_where_it_was_supplied_however_late_its_invoice():
    """December supplied to a German business, invoiced on 1 January: box 3b and the ICP listing of Q4, as the
    customer declares it; a Dutch December invoiced on 1 January is Q1's (VAT due on the invoice date), and a credit
    note counts in the quarter it is issued."""
    german = next(copy.deepcopy(d) for d in DOCUMENTS.values() if d["vat"]["treatment"] == "reverse_charge"
                  and "invoice_number" not in d)
    dutch = next(copy.deepcopy(d) for d in DOCUMENTS.values() if d["vat"]["treatment"] == "standard"
                 and "invoice_number" not in d and Decimal(d["net"]))
    for document, number in ((german, "2027-000001"), (dutch, "2027-000002")):
        document.update(number=number, period="2026-12", issue_date="2027-01-01")
    note = {**copy.deepcopy(german), "number": "CN-2027-000001", "invoice_number": german["number"],
            "issue_date": "2027-02-10", "net": "-10.00", "total": "-10.00",
            "vat": {**german["vat"], "amount": "0.00"}}
    q4 = vat_return.vat_return("2026-Q4", [german, dutch, note], LEDGER)
    q1 = vat_return.vat_return("2027-Q1", [german, dutch, note], LEDGER)
    assert q4["boxes"]["3b"]["turnover"] == german["net"] and q4["boxes"]["1a"]["turnover"] == "0.00"
    assert [row["turnover"] for row in q4["icp"]] == [german["net"]]
    assert q1["boxes"]["1a"] == {"turnover": dutch["net"], "vat": dutch["vat"]["amount"]}
    assert q1["boxes"]["3b"]["turnover"] == "-10.00" and [row["turnover"] for row in q1["icp"]] == ["-10.00"]


def test_icp_groups_by_vat_number_and_the_ledger_decides_the_box():
    one = copy.deepcopy(DOCUMENTS["pl-grant-balance"])
    two = copy.deepcopy(DOCUMENTS["pl-grant-balance"])
    two["number"], two["customer"]["vat_id"] = "2026-000200", "pl 526.104.08.28"
    draft = {**copy.deepcopy(DOCUMENTS["bg-cyrillic"]), "status": "draft"}
    draft.pop("number")
    result = vat_return.vat_return("2026-Q4", [one, two, draft], LEDGER)
    assert result["icp"] == [{"vat_id": "PL5261040828", "country": "PL", "turnover": "60.00"}]
    changed = copy.deepcopy(RAW_LEDGER)
    changed["vat_codes"]["reverse_charge"]["box"] = None
    result = vat_return.vat_return("2026-Q4", [one], ledger.parse_ledger(changed))
    assert (result["boxes"]["3b"], result["outside_return"], result["icp"]) == \
        ({"turnover": "0.00"}, {"turnover": "30.00"}, [])
