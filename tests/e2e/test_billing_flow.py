"""Billing end to end: usage over HTTP (single and batch) and Pub/Sub (structured and binary), resent and
redelivered, through a Firestore outage; then a close requested the way Cloud Scheduler does it."""

import datetime
import io
import json
import os
import random
import signal
import time
import uuid
from decimal import Decimal
from pathlib import Path

import requests

from tests.e2e.test_stack import descendants
from tests.support import wait_until

NOW = datetime.datetime.now(datetime.UTC)
LAST_MONTH = (NOW.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")


PROFILE = {"legal_name": "Zakład Usług Informatycznych Sp. z o.o.", "vat_id": "PL5260001246",
           "address": {"line1": "ul. Piotrkowska 104", "postal_code": "90-926", "city": "Łódź", "country": "PL"}}
DUTCH = {"legal_name": "Acme B.V.", "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam",
                                               "country": "NL"}}


def make_tenant(stack, tenant_id: str, profile: dict | None = DUTCH) -> None:
    response = requests.post(f"{stack.url}/v1/tenants", headers=stack.operator(), timeout=10, json={
        "tenant_id": tenant_id, "display_name": tenant_id, "tier": "standard", "billing_start": f"{LAST_MONTH}-01",
        **({"billing_profile": profile} if profile else {})})
    assert response.status_code == 202, response.text


def event(tenant_id: str, quantity: str, when: str | None = None) -> dict:
    return {"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//energent.ai/platform/e2e",
            "id": uuid.uuid4().hex, "time": when or f"{LAST_MONTH}-15T10:00:00Z", "datacontenttype": "application/json",
            "data": {"tenant_id": tenant_id, "meter": "workflow_minutes", "quantity": quantity}}


def post_single(stack, headers, e) -> dict:
    return requests.post(f"{stack.url}/v1/usage", data=json.dumps(e), timeout=30,
                         headers={**headers, "Content-Type": "application/cloudevents+json"}).json()


def post_batch(stack, headers, batch) -> requests.Response:
    return requests.post(f"{stack.url}/v1/usage", data=json.dumps(batch), timeout=60,
                         headers={**headers, "Content-Type": "application/cloudevents-batch+json"})


def publish_structured(stack, e) -> None:
    stack.publish("billing-events", json.dumps(e).encode(), {"Content-Type": "application/cloudevents+json"})


def publish_binary(stack, e) -> None:
    attributes = {f"ce-{k}": v for k, v in e.items() if k not in ("data", "datacontenttype")}
    stack.publish("billing-events", json.dumps(e["data"]).encode(), {**attributes, "content-type": "application/json"})


def total(stack, tenant_id: str, period: str = LAST_MONTH, meter: str = "workflow_minutes") -> Decimal:
    response = requests.get(f"{stack.url}/v1/tenants/{tenant_id}/usage", params={"period": period},
                            headers=stack.operator(), timeout=10)
    return Decimal(response.json()["meters"][meter]["quantity"])


def sentinels_counted(stack, tenant_id: str) -> None:
    """Publish one counted run through each Pub/Sub binding and wait until both are counted: the messages
    published before them have then been delivered too (so a test can assert that they changed nothing)."""
    before = total(stack, tenant_id, meter="workflow_runs")
    for publish in (publish_structured, publish_binary):
        sentinel = event(tenant_id, "1")
        publish(stack, {**sentinel, "data": {**sentinel["data"], "meter": "workflow_runs"}})
    wait_until(lambda: total(stack, tenant_id, meter="workflow_runs") == before + 2, 60, 0.2,
               what="the sentinel runs to be counted")


def wait_for_total(stack, tenant_id: str, expected: Decimal, timeout_s: float = 90) -> Decimal:
    wait_until(lambda: total(stack, tenant_id) == expected, timeout_s, 0.5, what=f"the total to reach {expected}")
    return total(stack, tenant_id)


def test_every_path_resends_and_redeliveries_count_each_event_once(stack):
    make_tenant(stack, "metered")
    writer = stack.operator("usage:write")
    rng = random.Random(11)
    unique = [event("metered", str(Decimal(rng.randrange(1, 10**8)) / 1000)) for _ in range(240)]
    singles, batch, structured, binary = unique[:40], unique[40:120], unique[120:180], unique[180:]
    for e in singles:
        assert post_single(stack, writer, e)["accepted"] == 1
    response = post_batch(stack, writer, batch)
    assert response.status_code == 202
    assert response.json() == {"accepted": 80, "duplicates": 0, "conflicts": [], "rejected": []}
    for e in structured:
        publish_structured(stack, e)
    for e in binary:
        publish_binary(stack, e)
    # A third again, through another path; some Pub/Sub messages twice.
    resent = unique[::3]
    again = post_batch(stack, writer, resent).json()
    # Those already through HTTP are duplicates; Pub/Sub ones may still be in flight, and then lose the race.
    assert again["duplicates"] >= len([e for e in resent if e in singles or e in batch])
    assert again["accepted"] + again["duplicates"] == len(resent) and again["rejected"] == []
    for e in structured[:10]:
        publish_structured(stack, e)
    for e in resent[:10]:
        publish_binary(stack, e)
    expected = sum(Decimal(e["data"]["quantity"]) for e in unique)
    assert wait_for_total(stack, "metered", expected) == expected
    sentinels_counted(stack, "metered")
    assert total(stack, "metered") == expected  # nothing more trickles in


def test_bad_usage_gets_a_reason_and_changes_no_total(stack):
    make_tenant(stack, "strict")
    writer = stack.operator("usage:write")
    before = total(stack, "strict")
    future = (NOW + datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bad = [event("strict", q) for q in ("-1", "NaN", "Infinity", "1e400", "abc")]
    bad += [{**event("strict", "1"), "data": {"tenant_id": "strict", "meter": "espresso", "quantity": "1"}},
            event("nobody", "1"), event("strict", "1", when=future), {**event("strict", "1"), "id": ""}]
    response = post_batch(stack, writer, bad)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 0 and len(body["rejected"]) == len(bad)
    assert all(r["reason"] for r in body["rejected"])
    for e in bad[:2]:
        publish_structured(stack, e)
    malformed = requests.post(f"{stack.url}/v1/usage", data=b"{nope", timeout=10,
                              headers={**writer, "Content-Type": "application/cloudevents+json"})
    assert malformed.status_code == 400 and malformed.headers["Content-Type"] == "application/problem+json"
    wrong_type = requests.post(f"{stack.url}/v1/usage", data=b"{}", timeout=10,
                               headers={**writer, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    too_many = post_batch(stack, writer, [event("strict", "1") for _ in range(1001)])
    assert too_many.status_code == 413
    tenant_token = requests.post(f"{stack.url}/v1/usage", data=json.dumps(event("strict", "1")), timeout=10,
                                 headers={"Content-Type": "application/cloudevents+json"})
    assert tenant_token.status_code == 401
    sentinels_counted(stack, "strict")
    assert total(stack, "strict") == before


def firestore_emulator_pid(stack) -> int:
    for pid in descendants(stack.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"CloudFirestore" in cmdline:
            return pid
    raise AssertionError("no Firestore emulator process")


def test_a_firestore_outage_midstream_loses_and_doubles_nothing(stack):
    make_tenant(stack, "outage")
    events = [event("outage", str(Decimal(n) / 100)) for n in range(1, 61)]
    for e in events[:20]:
        publish_structured(stack, e)
    pid = firestore_emulator_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    try:
        for e in events[20:]:
            publish_structured(stack, e)
        time.sleep(12)  # longer than the write timeout: deliveries fail and Pub/Sub retries them
    finally:
        os.kill(pid, signal.SIGCONT)
    for e in events[20:40]:
        publish_structured(stack, e)  # and some redelivered after the outage for good measure
    expected = sum(Decimal(e["data"]["quantity"]) for e in events)
    assert wait_for_total(stack, "outage", expected, timeout_s=120) == expected


def test_closes_over_http_and_from_the_scheduler_produce_the_invoices(stack):
    before = (NOW.replace(day=1) - datetime.timedelta(days=32)).strftime("%Y-%m")
    early = requests.post(f"{stack.url}/v1/tenants", headers=stack.operator(), timeout=10, json={
        "tenant_id": "closing-early", "display_name": "Early", "tier": "basic", "billing_start": f"{before}-01",
        "billing_profile": DUTCH})
    assert early.status_code == 202, early.text
    closed = requests.post(f"{stack.url}/v1/billing/periods/{before}:close", headers=stack.operator(), timeout=60)
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    invoice = requests.get(f"{stack.url}/v1/tenants/closing-early/invoices/{before}", headers=stack.operator(),
                           timeout=10).json()
    assert (invoice["subtotal"], invoice["status"]) == ("49.00", "final")
    make_tenant(stack, "closing")
    make_tenant(stack, "held-back", profile=None)  # no billing profile: its invoice is held as a draft
    writer = stack.operator("usage:write")
    post_single(stack, writer, event("closing", "6000"))
    post_single(stack, writer, event("held-back", "6000"))
    close = {"specversion": "1.0", "type": "ai.energent.billing.period.close.v1", "source": "//cloudscheduler",
             "id": uuid.uuid4().hex, "datacontenttype": "application/json", "data": {"period": LAST_MONTH}}
    stack.publish("billing-events", json.dumps(close).encode(), {"content-type": "application/cloudevents+json"})
    # The close drafts every tenant, then numbers the drafts: until then the invoice reads as a draft.
    response = wait_until(lambda: r if (r := requests.get(f"{stack.url}/v1/tenants/closing/invoices/{LAST_MONTH}",
                                                          headers=stack.operator(), timeout=10)).ok
                          and r.json().get("number") else None, 60, 0.5, what="the numbered invoice")
    invoice = response.json()
    # standard: 149.00 base + (6000 - 5000) x 0.009 = 9.00
    # a Dutch customer: VAT 21 % of 158.00
    assert (invoice["subtotal"], invoice["total"], invoice["status"]) == ("158.00", "191.18", "final")
    again = requests.post(f"{stack.url}/v1/billing/periods/{LAST_MONTH}:close", headers=stack.operator(), timeout=60)
    assert again.status_code == 200 and again.json()["status"] == "closed"
    progress = requests.get(f"{stack.url}/v1/billing/periods/{LAST_MONTH}", headers=stack.operator(), timeout=10)
    assert progress.json()["status"] == "closed" and progress.json()["issued"] >= 1 and progress.json()["held"] >= 1
    assert progress.json()["tenants"] >= progress.json()["drafted"] == progress.json()["issued"] + \
        progress.json()["held"]
    held = requests.get(f"{stack.url}/v1/tenants/held-back/invoices/{LAST_MONTH}", headers=stack.operator(),
                        timeout=10).json()
    assert (held["status"], held.get("number"), held["total"]) == ("draft", None, "191.18") and held["warnings"]
    late = post_single(stack, writer, event("closing", "1"))
    assert late["accepted"] == 1
    report = requests.post(f"{stack.url}/v1/tenants/closing/sla-reports", headers=stack.operator(), timeout=10,
                           json={"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": 1})
    assert report.status_code == 409, report.text
    daily = requests.get(f"{stack.url}/v1/tenants/closing/usage", headers=stack.operator(), timeout=10,
                         params={"period": LAST_MONTH, "granularity": "day"}).json()
    assert [(d["date"], d["meters"]["workflow_minutes"]["quantity"]) for d in daily["days"]] == [
        (f"{LAST_MONTH}-15", "6001")]
    listing = requests.get(f"{stack.url}/v1/tenants/closing/invoices", headers=stack.operator(), timeout=10).json()
    assert [i["period"] for i in listing["invoices"]] == [LAST_MONTH]
    open_period = requests.post(f"{stack.url}/v1/billing/periods/{NOW:%Y-%m}:close", headers=stack.operator(),
                                timeout=10)
    assert open_period.status_code == 409


def test_a_tenant_reads_only_its_own_usage_and_invoices(stack):
    make_tenant(stack, "reader-a")
    make_tenant(stack, "reader-b")
    created = requests.post(f"{stack.url}/v1/tenants/reader-a/clients", headers=stack.operator(), timeout=10,
                            json={"scopes": ["usage:read", "billing:read"]}).json()
    response = requests.post(f"{stack.url}/v1/oauth/token", data={"grant_type": "client_credentials"}, timeout=10,
                             auth=(created["client_id"], created["client_secret"]))
    mine = {"Authorization": f"Bearer {response.json()['access_token']}"}
    own = requests.get(f"{stack.url}/v1/tenants/reader-a/usage", params={"period": LAST_MONTH}, headers=mine,
                       timeout=10)
    assert own.status_code == 200 and own.json()["tenant_id"] == "reader-a"
    assert requests.get(f"{stack.url}/v1/tenants/reader-a/invoices", headers=mine, timeout=10).status_code == 200
    for path in ("usage", "invoices", f"invoices/{LAST_MONTH}"):
        other = requests.get(f"{stack.url}/v1/tenants/reader-b/{path}", headers=mine, timeout=10)
        assert other.status_code == 403, path
    operator_only = [
        requests.post(f"{stack.url}/v1/usage", data=json.dumps(event("reader-a", "1")), timeout=10,
                      headers={**mine, "Content-Type": "application/cloudevents+json"}),
        requests.post(f"{stack.url}/v1/tenants/reader-a/sla-reports", headers=mine, timeout=10,
                      json={"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": 1}),
        requests.post(f"{stack.url}/v1/billing/periods/{LAST_MONTH}:close", headers=mine, timeout=10),
    ]
    assert [r.status_code for r in operator_only] == [403, 403, 403]


def test_invoice_documents_payment_and_credit_through_the_gateway(stack):
    before = (NOW.replace(day=1) - datetime.timedelta(days=32)).strftime("%Y-%m")
    operator = stack.operator()
    bad = requests.post(f"{stack.url}/v1/tenants", headers=operator, timeout=10, json={
        "tenant_id": "bad-profile", "display_name": "Bad", "tier": "basic",
        "billing_profile": {"legal_name": "X", "address": {"line1": "a", "postal_code": "1", "city": "c",
                                                           "country": "DE"}, "vat_id": "NL100000009B01"}})
    assert bad.status_code == 400 and "billing_profile.vat_id" in bad.json()["detail"]
    first = requests.get(f"{stack.url}/v1/tenants/closing-early/invoices/{before}", headers=operator, timeout=10).json()
    reader = requests.get(f"{stack.url}/v1/tenants/closing-early/invoices/{before}", headers={
        **operator, "Accept": "application/pdf"}, timeout=10)
    assert reader.status_code == 200 and reader.headers["Content-Type"] == "application/pdf"
    assert reader.content.startswith(b"%PDF")
    assert reader.headers["Content-Disposition"] == f'inline; filename="{first["number"]}.pdf"'
    page = requests.get(f"{stack.url}/v1/tenants/closing-early/invoices/{before}", timeout=10,
                        headers={**operator, "Accept": "text/html"})
    assert page.headers["Content-Type"].startswith("text/html") and "Amount due" in page.text
    part = requests.post(f"{stack.url}/v1/tenants/closing-early/documents/{first['number']}:pay", headers=operator,
                         timeout=10, json={"reference": "BANK-41", "amount": "9.29"})
    assert part.status_code == 200 and (part.json()["status"], part.json()["amount_due"]) == ("partially_paid",
                                                                                            "50.00")
    fixed = requests.patch(f"{stack.url}/v1/tenants/closing-early", headers=operator, timeout=10, json={
        "billing_profile": {"legal_name": "Early Ltd", "address": {"line1": "1 High St", "postal_code": "EC1A 1AA",
                                                                   "city": "London", "country": "GB"}}})
    assert fixed.status_code == 200 and fixed.json()["billing_profile"]["address"]["country"] == "GB"
    credited = requests.post(f"{stack.url}/v1/tenants/closing-early/invoices/{before}:credit", timeout=30,
                             headers=operator, json={"reason": "customer is in the UK", "reissue": True})
    assert credited.status_code == 201, credited.text
    reissued = credited.json()["invoice"]
    assert reissued["vat"]["treatment"] == "outside_scope" and reissued["total"] == "49.00"
    assert (reissued["balance_applied"], reissued["amount_due"]) == ("9.29", "39.71")  # the part paid before
    paid = requests.post(f"{stack.url}/v1/tenants/closing-early/invoices/{before}:pay", headers=operator,
                         timeout=10, json={"reference": "BANK-42"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    refund = requests.post(f"{stack.url}/v1/tenants/closing-early/invoices/{before}:credit", timeout=30,
                           headers=operator, json={"reason": "goodwill", "amount": "10.00"})
    assert refund.status_code == 201 and refund.json()["credit_note"]["invoice_date"] == reissued["issue_date"]
    too_much = requests.post(f"{stack.url}/v1/tenants/closing-early/invoices/{before}:credit", timeout=30,
                             headers=operator, json={"reason": "more", "amount": "39.01"})
    assert too_much.status_code == 409
    balance = requests.get(f"{stack.url}/v1/tenants/closing-early/balance", headers=operator, timeout=10).json()
    assert (balance["currency"], balance["amount"]) == ("EUR", "10.00")  # the goodwill credit, owed back
    notes = requests.get(f"{stack.url}/v1/tenants/closing-early/credit-notes", headers=operator, timeout=10)
    assert [n["invoice_number"] for n in notes.json()["credit_notes"]] == [first["number"], reissued["number"]]
    replaced = requests.get(f"{stack.url}/v1/tenants/closing-early/documents/{first['number']}", headers=operator,
                            timeout=10).json()
    assert (replaced["status"], replaced["replaced_by"]) == ("credited", reissued["number"])
    note_number = refund.json()["credit_note"]["number"]
    note_pdf = requests.get(f"{stack.url}/v1/tenants/closing-early/documents/{note_number}", timeout=10,
                            headers={**operator, "Accept": "application/pdf"})
    assert note_pdf.status_code == 200 and note_pdf.headers["Content-Disposition"].endswith(f'"{note_number}.pdf"')
    assert requests.get(f"{stack.url}/v1/tenants/closing/documents/{first['number']}", headers=operator,
                        timeout=10).status_code == 404  # another tenant's number
    upcoming = requests.get(f"{stack.url}/v1/tenants/closing-early/invoices/upcoming", headers=operator,
                            timeout=10)
    assert upcoming.status_code == 200 and upcoming.json()["status"] == "upcoming"


def test_a_draft_held_for_a_billing_profile_is_issued_once_the_profile_is_set(stack):
    operator = stack.operator()
    path = f"{stack.url}/v1/tenants/held-back/invoices/{LAST_MONTH}"
    assert requests.get(path, headers={**operator, "Accept": "application/pdf"}, timeout=10).status_code == 409
    fixed = requests.patch(f"{stack.url}/v1/tenants/held-back", headers=operator, timeout=10,
                           json={"billing_profile": PROFILE})
    assert fixed.status_code == 200
    issued = wait_until(lambda: (r := requests.get(path, headers=operator, timeout=10).json()).get("number") and r,
                        60, 0.5, what="the held draft to be issued")
    assert (issued["status"], issued["customer"]["legal_name"], issued["vat"]["treatment"]) == (
        "final", PROFILE["legal_name"], "reverse_charge")
    assert issued["total"] == "158.00" and issued["issue_date"] == f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d}"
    progress = requests.get(f"{stack.url}/v1/billing/periods/{LAST_MONTH}", headers=operator, timeout=10).json()
    assert progress["held"] == 0
    pdf = requests.get(f"{stack.url}/v1/tenants/held-back/documents/{issued['number']}", timeout=10,
                       headers={**operator, "Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.headers["Content-Disposition"].endswith(f'"{issued["number"]}.pdf"')
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert PROFILE["legal_name"] in text and "90-926 Łódź" in text and issued["number"] in text
