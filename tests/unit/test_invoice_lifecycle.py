"""The invoice lifecycle's pure rules (billing/lifecycle.py) and document numbering (billing/numbering.py): issue,
payments with amounts, partial credit notes, the customer balance, statuses, numbers that widen and sort."""

import datetime
import random
from decimal import Decimal

import pytest

from billing import lifecycle, numbering
from billing.errors import Conflict, Invalid, NotFound
from billing.numbering import CREDIT_NOTE, INVOICE, Numbers

NOW = datetime.datetime(2026, 12, 3, 10, 0, tzinfo=datetime.UTC)
ISSUED = {"issued_at": "2026-12-03T10:00:00Z", "issue_date": "2026-12-03", "due_date": "2027-01-02"}


def draft(net="100.00", rate="21") -> dict:
    vat = (Decimal(net) * Decimal(rate) / 100).quantize(Decimal("0.01"), "ROUND_HALF_UP")
    return {"tenant_id": "acme", "period": "2026-11", "currency": "EUR", "tier": "basic", "status": "draft",
            "lines": [{"kind": "base_fee", "amount": net, "description": "Basic plan"}], "subtotal": net,
            "sla_credit": "0.00", "net": net, "vat": {"treatment": "standard", "rate": rate, "amount": str(vat)},
            "total": str(Decimal(net) + vat), "customer": {"legal_name": "Acme B.V."}, "held": True,
            "warnings": ["no billing profile"]}


def numbers(invoices=0, notes=0) -> Numbers:
    return Numbers({(INVOICE, 2026): invoices, (CREDIT_NOTE, 2026): notes})


def issued(net="100.00", rate="21", balance="0") -> lifecycle.Change:
    return lifecycle.issue(draft(net, rate), lambda d: d, numbers(41), ISSUED, Decimal(balance), NOW)


def test_issuing_numbers_the_draft_and_drops_what_only_a_draft_has():
    change = issued()
    invoice = change.record
    assert (invoice["number"], invoice["status"], invoice["amount_due"], invoice["balance_applied"]) == (
        "2026-000042", "final", "121.00", "0.00")
    assert "held" not in invoice and "warnings" not in invoice
    from stdnum import iso11649

    assert invoice["payment_reference"] == "RF022026000042" and iso11649.is_valid(invoice["payment_reference"])
    assert change.documents == [lifecycle.as_issued(invoice)] and "payments" not in change.documents[0]
    assert change.balance == []


def test_the_balance_pays_what_it_can_of_the_next_invoice_and_never_changes_net_or_vat():
    change = issued(balance="50.00")
    assert (change.record["net"], change.record["vat"]["amount"], change.record["total"]) == ("100.00", "21.00",
                                                                                              "121.00")
    assert (change.record["balance_applied"], change.record["amount_due"]) == ("50.00", "71.00")
    assert [e["amount"] for e in change.balance] == ["-50.00"]
    covered = issued(balance="500.00")
    assert (covered.record["balance_applied"], covered.record["amount_due"], covered.record["status"]) == (
        "121.00", "0.00", "paid")


def test_payments_in_parts_then_over_with_the_excess_on_the_balance():
    invoice = issued().record
    first = lifecycle.pay(invoice, Decimal("21.00"), "BANK-1", "2026-12-04T00:00:00Z", NOW)
    assert (first.record["status"], first.record["amount_paid"], first.record["amount_due"]) == (
        "partially_paid", "21.00", "100.00")
    assert lifecycle.pay(first.record, None, "BANK-1", "2026-12-04T00:00:00Z", NOW) is None  # the same again
    assert lifecycle.pay(first.record, Decimal("21.00"), "BANK-1", "2026-12-05T00:00:00Z", NOW) is None
    with pytest.raises(Conflict, match=r"recorded .* with amount 21\.00"):
        lifecycle.pay(first.record, Decimal("5.00"), "BANK-1", "2026-12-04T00:00:00Z", NOW)
    over = lifecycle.pay(first.record, Decimal("150.00"), "BANK-2", "2026-12-06T00:00:00Z", NOW)
    assert (over.record["status"], over.record["amount_paid"], over.record["amount_due"]) == ("paid", "171.00", "0.00")
    assert [e["amount"] for e in over.balance] == ["50.00"] and over.announce[0][0] == "paid"
    nothing_due = lifecycle.pay(over.record, Decimal("10.00"), "BANK-3", "2026-12-07T00:00:00Z", NOW)
    assert [e["amount"] for e in nothing_due.balance] == ["10.00"] and nothing_due.announce == []
    assert lifecycle.pay(over.record, None, "BANK-4", "2026-12-07T00:00:00Z", NOW) is None  # nothing due, no amount
    with pytest.raises(Invalid, match="before the invoice's issue date"):
        lifecycle.pay(invoice, None, "BANK-5", "2026-12-01T00:00:00Z", NOW)


def test_drafts_and_missing_invoices_are_neither_paid_nor_credited():
    with pytest.raises(Conflict, match="draft"):
        lifecycle.pay(draft(), None, "X", "2026-12-04T00:00:00Z", NOW)
    with pytest.raises(Conflict, match="draft"):
        lifecycle.credit(draft(), None, "x", numbers(), ISSUED, NOW)
    with pytest.raises(NotFound):
        lifecycle.pay(None, None, "X", "2026-12-04T00:00:00Z", NOW)


@pytest.mark.parametrize("seed", range(60))
def test_partial_credit_notes_add_up_to_the_invoices_net_and_vat_exactly(seed):
    rng = random.Random(seed)
    net = Decimal(rng.randint(1, 10**7)) / 100
    invoice = lifecycle.issue(draft(str(net)), lambda d: d, numbers(), ISSUED, Decimal(0), NOW).record
    counters, notes = numbers(), []
    while Decimal(invoice["net"]) - Decimal(invoice["credited_net"]) > 0:
        left = Decimal(invoice["net"]) - Decimal(invoice["credited_net"])
        amount = None if rng.random() < 0.2 else min(left, Decimal(rng.randint(1, int(left * 100))) / 100)
        change = lifecycle.credit(invoice, amount, "goodwill", counters, ISSUED, NOW)
        note = change.documents[0]
        if amount is not None and amount != left:  # its own VAT, rounded half-up on its own, never past what is left
            vat_left = Decimal(invoice["vat"]["amount"]) - Decimal(invoice["credited_vat"])
            expected = min((amount * Decimal("0.21")).quantize(Decimal("0.01"), "ROUND_HALF_UP"), vat_left)
            assert note["vat"]["amount"] == str(-expected)
        assert Decimal(note["vat"]["amount"]) <= 0  # a credit note never charges VAT
        assert Decimal(note["total"]) == Decimal(note["net"]) + Decimal(note["vat"]["amount"])
        assert (note["invoice_number"], note["invoice_date"]) == (invoice["number"], "2026-12-03")
        notes.append(note)
        invoice = change.record
    assert sum(Decimal(n["net"]) for n in notes) == -Decimal(invoice["net"])
    assert sum(Decimal(n["vat"]["amount"]) for n in notes) == -Decimal(invoice["vat"]["amount"])
    assert invoice["status"] == "credited" and invoice["amount_due"] == "0.00"
    assert [n["number"] for n in notes] == [f"CN-2026-{n:06d}" for n in range(1, len(notes) + 1)]
    with pytest.raises(Conflict, match="credited in full"):
        lifecycle.credit(invoice, None, "again", counters, ISSUED, NOW)


def test_many_small_credits_never_credit_more_vat_than_the_invoice_had_nor_charge_any():
    """A one-day invoice (net 1.63, VAT 0.34) credited 0.03 at a time: each note's own rounding (0.0063 up to 0.01)
    would credit 0.54 of VAT before the last note, which would then charge VAT back."""
    invoice = lifecycle.issue(draft("1.63"), lambda d: d, numbers(), ISSUED, Decimal(0), NOW).record
    counters, notes = numbers(), []
    while Decimal(invoice["net"]) - Decimal(invoice["credited_net"]) > 0:
        left = Decimal(invoice["net"]) - Decimal(invoice["credited_net"])
        change = lifecycle.credit(invoice, min(Decimal("0.03"), left), "goodwill", counters, ISSUED, NOW)
        notes.append(change.documents[0])
        invoice = change.record
        assert Decimal(invoice["credited_vat"]) <= Decimal(invoice["vat"]["amount"])
    assert all(Decimal(note["vat"]["amount"]) <= 0 and Decimal(note["total"]) < 0 for note in notes)
    assert sum(Decimal(note["vat"]["amount"]) for note in notes) == -Decimal("0.34")


def test_a_partial_credit_keeps_the_status_and_more_than_is_left_is_refused():
    invoice = issued().record
    partial = lifecycle.credit(invoice, Decimal("40.00"), "goodwill", numbers(), ISSUED, NOW)
    assert (partial.record["status"], partial.record["credited_net"], partial.record["amount_due"]) == (
        "final", "40.00", "72.60")  # 121.00 - 48.40
    assert partial.documents[0]["lines"] == [{"kind": "credit", "amount": "-40.00",
                                              "description": "Credit on invoice 2026-000042 (goodwill)"}]
    with pytest.raises(Conflict, match=r"60\.00 of its net left"):
        lifecycle.credit(partial.record, Decimal("60.01"), "more", numbers(), ISSUED, NOW)


def test_a_credit_after_payment_puts_what_exceeds_the_amount_due_on_the_balance():
    invoice = issued().record
    paid = lifecycle.pay(invoice, None, "BANK-1", "2026-12-04T00:00:00Z", NOW).record
    refund = lifecycle.credit(paid, Decimal("10.00"), "goodwill", numbers(), ISSUED, NOW)
    assert [e["amount"] for e in refund.balance] == ["12.10"] and refund.record["status"] == "paid"
    half_paid = lifecycle.pay(invoice, Decimal("60.00"), "BANK-2", "2026-12-04T00:00:00Z", NOW).record
    whole = lifecycle.credit(half_paid, None, "cancelled", numbers(), ISSUED, NOW)
    assert whole.documents[0]["total"] == "-121.00" and [e["amount"] for e in whole.balance] == ["60.00"]
    assert (whole.record["status"], whole.record["amount_due"]) == ("credited", "0.00")


def test_a_reissue_credits_the_rest_and_applies_the_balance_it_made():
    invoice = issued().record
    paid = lifecycle.pay(invoice, None, "BANK-1", "2026-12-04T00:00:00Z", NOW).record
    counters = numbers(42)
    again = lifecycle.reissue(paid, "customer moved", lambda d: {**d, "vat": {**d["vat"], "treatment":
                              "reverse_charge", "rate": "0", "amount": "0.00"}, "total": d["net"]}, counters,
                              ISSUED, Decimal(0), NOW)
    note, new = again.documents
    assert note["total"] == "-121.00" and new["replaces"] == "2026-000042" and new["number"] == "2026-000043"
    assert (again.record["total"], again.record["balance_applied"], again.record["status"]) == ("100.00", "100.00",
                                                                                                "paid")
    assert [e["amount"] for e in again.balance] == ["121.00", "-100.00"]  # 21.00 stays owed to the customer
    assert again.replaced["replaced_by"] == "2026-000043" and again.replaced["status"] == "credited"


def test_a_reissue_after_a_partial_credit_keeps_that_credit():
    """A goodwill credit of 20.00, then the invoice reissued to correct the customer: the customer still owes what it
    owed before the reissue, and the books take the 20.00 off the new invoice as well."""
    invoice = issued("149.00").record  # total 180.29
    goodwill = lifecycle.credit(invoice, Decimal("20.00"), "goodwill", numbers(42), ISSUED, NOW)
    owed = goodwill.record["amount_due"]
    assert owed == "156.09"
    again = lifecycle.reissue(goodwill.record, "wrong address", lambda d: d, numbers(42, 1), ISSUED, Decimal(0), NOW)
    rest, new, carried = again.documents
    assert (rest["net"], carried["net"], carried["invoice_number"]) == ("-129.00", "-20.00", new["number"])
    assert "carried over from CN-2026-000001" in carried["reason"]
    assert again.record["amount_due"] == owed and again.record["credited_net"] == "20.00"
    revenue = sum(Decimal(d["net"]) for d in (invoice, *goodwill.documents, *again.documents))
    assert revenue == Decimal("129.00")  # 149 - 20, however many documents it took
    assert again.record["status"] == "final"


@pytest.mark.parametrize("sequence, text", [(1, "2026-000001"), (999999, "2026-999999"), (1000000, "2026-1000000"),
                                            (12345678, "2026-12345678")])
def test_numbers_widen_past_a_million_and_sort_numerically(sequence, text):
    assert numbering.format_number(INVOICE, 2026, sequence) == text
    assert numbering.parse(text) == (INVOICE, 2026, sequence)
    assert numbering.parse("CN-" + text) == (CREDIT_NOTE, 2026, sequence)


def test_the_allocator_continues_a_series_and_keeps_series_apart():
    counters = Numbers({(INVOICE, 2026): 999998, (CREDIT_NOTE, 2026): 4})
    assert [counters.next_number(INVOICE, 2026) for _ in range(3)] == ["2026-999999", "2026-1000000", "2026-1000001"]
    assert counters.next_number(CREDIT_NOTE, 2026) == "CN-2026-000005"
    assert counters.taken == {(INVOICE, 2026): 1000001, (CREDIT_NOTE, 2026): 5}
    listed = sorted(["2026-1000000", "2026-999999", "2025-1000001", "2026-000002"], key=numbering.sort_key)
    assert listed == ["2025-1000001", "2026-000002", "2026-999999", "2026-1000000"]
    for bad in ("2026-12345", "2026-0000001", "CN2026-000001", "2026-000001 ", "٢٠٢٦-000001"):
        assert numbering.parse(bad) is None
    with pytest.raises(KeyError):
        counters.next_number(INVOICE, 2027)
