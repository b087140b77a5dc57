"""Credit grants on the Firestore and Cloud Storage emulators: taken before VAT by the next invoices, oldest expiry
first, never below zero, exactly once across re-closes, reissues and races; held drafts take grants made since
their close when they are issued; the upcoming invoice and spend show what the open period would take."""

import datetime
import json
import uuid
from decimal import Decimal

import pytest

from billing.errors import Invalid
from billing.spend_control import SpendControl
from billing.store.budgets import Budgets
from billing.store.spend_blocks import SpendBlocks
from billing.store.spend_checks import SpendChecks
from billing.store.spend_outbox import SpendOutbox
from energent_shared import clients
from tests.integration.test_billing import LAST_MONTH, NOW, THIS_MONTH, add_tenant, close, make_billing, usage
from tests.support import run_threads

TODAY = NOW.date()
LAST_DAY = (NOW.replace(day=1) - datetime.timedelta(days=1)).date()  # LAST_MONTH's last day


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"invoices-{uuid.uuid4().hex[:10]}").name


@pytest.fixture
def billing(firestore_db, bucket):
    return make_billing(firestore_db, bucket)


@pytest.fixture
def control(firestore_db, billing):
    steps = []
    return SpendControl(billing, Budgets(firestore_db), SpendBlocks(firestore_db), SpendOutbox(firestore_db),
                        SpendChecks(firestore_db), lambda payload: None, lambda kind, data: steps.append(data),
                        billing.clock)


def tenant(db, tenant_id="acme", minutes="1500", profile=True):
    """A basic tenant billed from the start of last month with `minutes` of last month's usage: 54.00 net."""
    add_tenant(db, tenant_id, billing_start=f"{LAST_MONTH}-01", **({} if profile else {"profile": None}))
    return usage(tenant_id, quantity=minutes, time=f"{LAST_MONTH}-10T12:00:00Z")


def grant_lines(invoice) -> list[tuple[str, str]]:
    return [(line["description"].split(": ", 1)[1], line["amount"]) for line in invoice["lines"]
            if line["kind"] == "credit_grant"]


def remaining(control, tenant_id="acme") -> dict[str, str]:
    return {g["reason"]: g["remaining"] for g in control.grants(tenant_id)["credit_grants"]}


def test_grants_are_taken_before_vat_oldest_expiry_first_and_never_below_zero(billing, control, firestore_db):
    billing.ingest([tenant(firestore_db)], "http")
    control.add_grant("acme", {"amount": "30.00", "reason": "no expiry"})
    control.add_grant("acme", {"amount": "20", "reason": "later", "expires_on": (TODAY + datetime.timedelta(
        days=60)).isoformat()})
    control.add_grant("acme", {"amount": "10.00", "reason": "sooner", "expires_on": (TODAY + datetime.timedelta(
        days=30)).isoformat()})
    close(billing, LAST_MONTH)
    invoice = billing.invoice("acme", LAST_MONTH)
    assert invoice["subtotal"] == "54.00" and invoice["sla_credit"] == "0.00"
    assert [(reason.split(",")[0], amount) for reason, amount in grant_lines(invoice)] == \
        [("sooner", "-10.00"), ("later", "-20.00"), ("no expiry", "-24.00")]
    assert (invoice["net"], invoice["vat"]["amount"], invoice["total"]) == ("0.00", "0.00", "0.00")
    assert Decimal(invoice["subtotal"]) - Decimal(invoice["sla_credit"]) + sum(
        Decimal(a) for _, a in grant_lines(invoice)) == Decimal(invoice["net"])
    assert remaining(control) == {"no expiry": "6.00", "later": "0.00", "sooner": "0.00"}
    grant = next(g for g in control.grants("acme")["credit_grants"] if g["reason"] == "no expiry")
    assert grant["uses"][0] | {"at": None} == {"period": LAST_MONTH, "amount": "24.00", "at": None}
    assert invoice["status"] == "paid"  # nothing is due


def test_vat_is_charged_on_the_net_after_grants(billing, control, firestore_db):
    billing.ingest([tenant(firestore_db)], "http")
    control.add_grant("acme", {"amount": "4.00", "reason": "welcome"})
    close(billing, LAST_MONTH)
    invoice = billing.invoice("acme", LAST_MONTH)
    assert (invoice["net"], invoice["vat"]["amount"], invoice["total"]) == ("50.00", "10.50", "60.50")
    assert invoice["lines"][-1] == {"kind": "credit_grant", "grant_id": invoice["lines"][-1]["grant_id"],
                                    "amount": "-4.00", "description": "Credit grant: welcome"}


def test_a_grant_expired_before_the_period_ends_is_not_taken(billing, control, firestore_db):
    billing.ingest([tenant(firestore_db)], "http")
    firestore_db.document("tenants/acme/credit_grants/old").set({
        "grant_id": "old", "amount": "5.00", "remaining": "5.00", "open": True, "reason": "expired",
        "expires_on": (LAST_DAY - datetime.timedelta(days=1)).isoformat(), "created_at": "2020-01-01T00:00:00Z",
        "uses": []})
    firestore_db.document("tenants/acme/credit_grants/edge").set({
        "grant_id": "edge", "amount": "1.00", "remaining": "1.00", "open": True, "reason": "last day",
        "expires_on": LAST_DAY.isoformat(), "created_at": "2020-01-01T00:00:00Z", "uses": []})
    close(billing, LAST_MONTH)
    assert [reason for reason, _ in grant_lines(billing.invoice("acme", LAST_MONTH))] == [
        f"last day, valid through {LAST_DAY.isoformat()}"]


@pytest.mark.parametrize("body, detail", [
    ({"amount": "10", "reason": "x", "expires_on": (TODAY - datetime.timedelta(days=1)).isoformat()}, "passed"),
    ({"amount": "10", "reason": "x", "expires_on": "2026-02-30"}, "real date"),
    ({"amount": "10", "reason": "x", "expires_on": "20260101"}, "YYYY-MM-DD"),
    ({"amount": "0", "reason": "x"}, "more than 0"), ({"amount": "1.234", "reason": "x"}, "two decimals"),
    ({"amount": "10"}, "reason"), ({"amount": "10", "reason": "x", "kind": "promo"}, "unknown field"),
])
def test_a_bad_grant_is_refused(control, firestore_db, body, detail):
    add_tenant(firestore_db)
    with pytest.raises(Invalid, match=detail):
        control.add_grant("acme", body)


def test_a_grant_expiring_today_is_accepted(control, firestore_db):
    add_tenant(firestore_db)
    assert control.add_grant("acme", {"amount": "1", "reason": "x", "expires_on": TODAY.isoformat()})["remaining"] \
        == "1.00"


def test_a_grant_is_used_once_across_re_closes_and_reissues(billing, control, firestore_db):
    billing.ingest([tenant(firestore_db)], "http")
    control.add_grant("acme", {"amount": "10.00", "reason": "promo"})
    close(billing, LAST_MONTH)
    close(billing, LAST_MONTH)  # again: nothing is drafted twice
    first = billing.invoice("acme", LAST_MONTH)
    reissued = billing.credit("acme", LAST_MONTH, {"reason": "address", "reissue": True})["invoice"]
    assert grant_lines(reissued) == grant_lines(first) == [("promo", "-10.00")]
    assert reissued["net"] == first["net"] == "44.00"
    assert remaining(control) == {"promo": "0.00"}
    billing.ingest([usage(quantity="10")], "http")  # this month: no grant left for it
    assert grant_lines(billing.upcoming("acme")) == []


def test_the_upcoming_invoice_and_spend_show_what_the_open_period_would_take(billing, control, firestore_db):
    add_tenant(firestore_db, billing_start=f"{THIS_MONTH}-01")
    control.add_grant("acme", {"amount": "9.00", "reason": "promo"})
    upcoming = billing.upcoming("acme")
    assert grant_lines(upcoming) == [("promo", "-9.00")] and upcoming["net"] == "40.00"
    spend = control.spend("acme")
    assert (spend["net"], spend["vat"]["amount"], spend["total"]) == ("40.00", "8.40", "48.40")
    assert remaining(control) == {"promo": "9.00"}  # shown, not taken


def test_a_held_draft_takes_grants_made_since_its_close_when_it_is_issued(billing, control, firestore_db):
    billing.ingest([tenant(firestore_db, profile=False)], "http")
    control.add_grant("acme", {"amount": "4.00", "reason": "before the close"})
    close(billing, LAST_MONTH)
    held = billing.invoice("acme", LAST_MONTH)
    assert held["status"] == "draft" and grant_lines(held) == [("before the close", "-4.00")]
    control.add_grant("acme", {"amount": "6.00", "reason": "after the close"})
    firestore_db.document("tenants/acme").update({"billing_profile": {
        "legal_name": "Acme B.V.", "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam",
                                               "country": "NL"}}})
    issued = billing.issue_held("acme")[0]
    assert grant_lines(issued) == [("before the close", "-4.00"), ("after the close", "-6.00")]
    assert (issued["net"], issued["vat"]["amount"], issued["total"]) == ("44.00", "9.24", "53.24")
    assert remaining(control) == {"before the close": "0.00", "after the close": "0.00"}


def test_closes_racing_for_one_grant_take_it_once(firestore_db, bucket, control):
    """Two tenants' closes never share a grant, but two instances closing one tenant at once race for its grant:
    the ledger and the grant's update time decide, and the grant is taken once."""
    instances = [make_billing(firestore_db, bucket) for _ in range(4)]
    instances[0].ingest([tenant(firestore_db)], "http")
    control.add_grant("acme", {"amount": "30.00", "reason": "promo"})
    instances[0].closer.periods.begin(LAST_MONTH, NOW)
    tenant_record = firestore_db.document("tenants/acme").get().to_dict()
    run_threads(8, lambda i: instances[i % 4].closer.draft(tenant_record, LAST_MONTH))
    assert remaining(control) == {"promo": "0.00"}
    draft = firestore_db.document(f"tenants/acme/invoices/{LAST_MONTH}").get().to_dict()
    assert grant_lines(draft) == [("promo", "-30.00")] and draft["net"] == "24.00"
    grant = json.loads(json.dumps(control.grants("acme")["credit_grants"][0]))
    assert len(grant["uses"]) == 1
