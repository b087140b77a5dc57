"""Billing on the Firestore and Cloud Storage emulators."""

import datetime
import json
import random
import threading
import uuid
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent

from billing import pricing
from billing.service import Billing
from billing.store import PeriodStatus, TenantCache, UsageStore
from energent_shared import clients
from energent_shared.http import Problem
from tests.conftest import ROOT

BOOK = pricing.load(ROOT / "config" / "pricing.json")
NOW = datetime.datetime.now(datetime.UTC)
LAST_MONTH = (NOW.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
THIS_MONTH = NOW.strftime("%Y-%m")


@pytest.fixture
def billing(firestore_db, emulators):
    bucket = clients.storage().create_bucket(f"invoices-{uuid.uuid4().hex[:10]}").name
    return Billing(BOOK, UsageStore(firestore_db), PeriodStatus(firestore_db, open_ttl_s=0),
                   TenantCache(firestore_db), firestore_db, bucket, clients.storage)


def add_tenant(db, tenant_id="acme", tier="basic", billing_start=None, model="multi-tenant", deleted_at=None):
    db.document("tenants", tenant_id).set({"tenant_id": tenant_id, "tier": tier, "status": "active",
                                           "deployment_model": model, "billing_start": billing_start,
                                           "deleted_at": deleted_at})


def usage(tenant_id="acme", meter="workflow_minutes", quantity="1", time=None, event_id=None, source="//test"):
    attributes = {"specversion": "1.0", "type": "ai.energent.usage.v1", "source": source,
                  "id": event_id or uuid.uuid4().hex}
    if time:
        attributes["time"] = time
    data = {"tenant_id": tenant_id, "meter": meter}
    if quantity is not None:
        data["quantity"] = quantity
    return CloudEvent(attributes, data)


def in_last_month(day=10):
    return f"{LAST_MONTH}-{day:02d}T12:00:00Z"


def test_a_redelivered_or_resent_event_counts_once(billing, firestore_db):
    add_tenant(firestore_db)
    first = usage(quantity="2.5", event_id="run-1")
    assert billing.ingest([first], "pubsub") == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert billing.ingest([first], "pubsub")["duplicates"] == 1
    assert billing.ingest([usage(quantity="2.5", event_id="run-1")], "http")["duplicates"] == 1  # another path
    assert billing.ingest([usage(quantity="2.5", event_id="run-1", source="//other")], "http")["accepted"] == 1
    assert billing.usage_of("acme", THIS_MONTH)["meters"]["workflow_minutes"]["quantity"] == "5"


def test_concurrent_duplicates_count_once(billing, firestore_db):
    add_tenant(firestore_db)
    event = usage(quantity="7", event_id="same")
    results = []
    threads = [threading.Thread(target=lambda: results.append(billing.ingest([event], "http"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["accepted"] for r in results) == 1 and sum(r["duplicates"] for r in results) == 7
    assert billing.usage_of("acme", THIS_MONTH)["meters"]["workflow_minutes"]["quantity"] == "7"


def test_a_hot_tenant_counts_exactly_under_concurrency(billing, firestore_db):
    add_tenant(firestore_db)
    rng = random.Random(7)
    quantities = [Decimal(rng.randrange(0, 10**9)) / 10**6 for _ in range(400)]
    batches = [[usage(quantity=str(q)) for q in quantities[i:i + 50]] for i in range(0, 400, 50)]
    threads = [threading.Thread(target=billing.ingest, args=(batch, "http")) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    meters = billing.usage_of("acme", THIS_MONTH)["meters"]
    assert Decimal(meters["workflow_minutes"]["quantity"]) == sum(quantities)
    shards = list(firestore_db.collection("tenants/acme/usage_shards").stream())
    assert len(shards) > 1  # the writes were spread, not piled on one document


def test_count_and_max_meters(billing, firestore_db):
    add_tenant(firestore_db)
    billing.ingest([usage(meter="workflow_runs", quantity=None) for _ in range(3)], "http")
    billing.ingest([usage(meter="peak_concurrent_workflows", quantity=q) for q in ("2", "5", "3")], "http")
    meters = billing.usage_of("acme", THIS_MONTH)["meters"]
    assert meters["workflow_runs"]["quantity"] == "3"
    assert meters["peak_concurrent_workflows"] == {"quantity": "5", "unit": "workflow"}


def test_a_deletion_after_the_tenant_was_last_read_still_rejects_later_usage(billing, firestore_db):
    add_tenant(firestore_db)
    assert billing.ingest([usage()], "http")["accepted"] == 1  # billing has read the live tenant
    deleted_at = datetime.datetime.now(datetime.UTC)
    firestore_db.document("tenants", "acme").update({"status": "deleting", "deleted_at": deleted_at})
    before = usage(time=(deleted_at - datetime.timedelta(seconds=1)).isoformat())
    after = usage(time=(deleted_at + datetime.timedelta(milliseconds=10)).isoformat())
    result = billing.ingest([before, after], "http")
    assert result["accepted"] == 1 and result["rejected"] == [{"id": after["id"],
                                                               "reason": "dated after tenant acme was deleted"}]


def test_rejections_change_no_total_and_are_recorded(billing, firestore_db):
    deleted_at = NOW - datetime.timedelta(days=1)
    add_tenant(firestore_db)
    add_tenant(firestore_db, "gone", deleted_at=deleted_at)
    result = billing.ingest([usage(quantity="-1"), usage(tenant_id="nobody"), usage(tenant_id="gone"),
                             usage(tenant_id="gone", time=(deleted_at - datetime.timedelta(hours=1)).isoformat())],
                            "http")
    reasons = [r["reason"] for r in result["rejected"]]
    assert result["accepted"] == 1  # the deleted tenant's usage from before its deletion
    assert reasons == ["quantity must not be negative", "unknown tenant nobody", "dated after tenant gone was deleted"]
    assert billing.usage_of("acme", THIS_MONTH)["meters"]["workflow_minutes"]["quantity"] == "0"
    recorded = [d.to_dict()["reason"] for d in firestore_db.collection("usage_rejections").stream()]
    assert sorted(recorded) == sorted(reasons)


def test_backfill_from_before_the_tenant_existed_is_accepted(billing, firestore_db):
    add_tenant(firestore_db)
    assert billing.ingest([usage(time="2024-01-15T00:00:00Z")], "http")["accepted"] == 1
    assert billing.usage_of("acme", "2024-01")["meters"]["workflow_minutes"]["quantity"] == "1"


def test_close_invoices_base_fees_and_usage_with_gapless_numbers(billing, firestore_db):
    add_tenant(firestore_db, "acme", "basic", billing_start=f"{LAST_MONTH}-01")
    add_tenant(firestore_db, "bravo", "premium")  # never active: no base fee, but usage
    add_tenant(firestore_db, "charlie", "standard")  # nothing at all: no invoice
    billing.ingest([usage("acme", quantity="1500.5", time=in_last_month()),
                    usage("bravo", quantity="25000", time=in_last_month())], "http")
    billing.report_sla("acme", {"period": LAST_MONTH, "availability_pct": Decimal("99.75"),
                                "p95_latency_ms": 6000})
    closed = billing.close(LAST_MONTH)
    assert [(i["tenant_id"], i["total"]) for i in closed["invoices"]] == [("acme", "40.51"), ("bravo", "40.00")]
    year = NOW.year
    assert [i["number"] for i in closed["invoices"]] == [f"{year}-000001", f"{year}-000002"]
    acme = billing.invoice("acme", LAST_MONTH)
    assert acme["subtotal"] == "54.01" and acme["sla_credit"] == "13.50" and acme["status"] == "final"
    with pytest.raises(Problem) as caught:
        billing.invoice("charlie", LAST_MONTH)
    assert caught.value.status == 404
    bucket = clients.storage().bucket(billing.invoice_bucket)
    stored = json.loads(bucket.blob(f"invoices/{LAST_MONTH}/acme.json").download_as_text())
    assert stored["number"] == acme["number"] and stored["total"] == "40.51"
    page = bucket.blob(f"invoices/{LAST_MONTH}/acme.html").download_as_text()
    assert acme["number"] in page and "40.51" in page
    assert billing.close(LAST_MONTH) == closed  # idempotent
    assert [i["period"] for i in billing.invoices("acme")["invoices"]] == [LAST_MONTH]


def test_closing_an_open_period_and_reporting_after_close_are_conflicts(billing, firestore_db):
    add_tenant(firestore_db)
    with pytest.raises(Problem) as caught:
        billing.close(THIS_MONTH)
    assert caught.value.status == 409
    billing.close(LAST_MONTH)
    with pytest.raises(Problem) as caught:
        billing.report_sla("acme", {"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": 1})
    assert caught.value.status == 409


def test_late_usage_is_billed_in_the_next_open_period_and_listed(billing, firestore_db):
    add_tenant(firestore_db)
    billing.ingest([usage(quantity="10", time=in_last_month(3))], "http")
    billing.close(LAST_MONTH)
    billing.ingest([usage(quantity="4", time=in_last_month(4))], "http")  # arrives after the close
    assert billing.usage_of("acme", LAST_MONTH)["meters"]["workflow_minutes"]["quantity"] == "14"
    billed = billing.usage.billed_in("acme", THIS_MONTH)
    assert {key: totals.sum_micros for key, totals in billed.items()} == {(LAST_MONTH, "workflow_minutes"): 4_000_000}
    later = billing.close(THIS_MONTH, now=NOW + datetime.timedelta(days=40))
    invoice = billing.invoice("acme", THIS_MONTH)
    assert invoice["late_usage"] == [{"period": LAST_MONTH, "meter": "workflow_minutes", "quantity": "4"}]
    assert later["invoices"][0]["tenant_id"] == "acme"


def test_usage_that_raced_a_close_is_billed_as_late_in_the_next(billing, firestore_db):
    add_tenant(firestore_db)
    billing.ingest([usage(quantity="10", time=in_last_month())], "http")
    billing.close(LAST_MONTH)
    # An instance that still believed the period open wrote into it after the close had read it.
    straggler = Billing(BOOK, UsageStore(firestore_db), PeriodStatus(firestore_db, open_ttl_s=3600),
                        TenantCache(firestore_db), firestore_db, billing.invoice_bucket, clients.storage)
    straggler.period_status._open_until[LAST_MONTH] = float("inf")
    straggler.ingest([usage(quantity="3", time=in_last_month())], "http")
    billing.close(THIS_MONTH, now=NOW + datetime.timedelta(days=40))
    late = billing.invoice("acme", THIS_MONTH)["late_usage"]
    assert late == [{"period": LAST_MONTH, "meter": "workflow_minutes", "quantity": "3"}]


def test_a_close_interrupted_midway_resumes_without_gaps_or_doubles(billing, firestore_db):
    for name in ("alpha", "bravo", "charlie"):
        add_tenant(firestore_db, name, billing_start=f"{LAST_MONTH}-01")
    firestore_db.collection("billing_periods").document(LAST_MONTH).set({"status": "closing"})
    billing._draft(firestore_db.document("tenants/alpha").get().to_dict(), LAST_MONTH)  # then the crash
    closed = billing.close(LAST_MONTH)
    numbers = sorted(i["number"] for i in closed["invoices"])
    assert numbers == [f"{NOW.year}-00000{n}" for n in (1, 2, 3)]


@pytest.mark.parametrize("body, detail", [
    ({"period": "2026-13", "availability_pct": 99, "p95_latency_ms": 1}, "period must be YYYY-MM"),
    ({"period": LAST_MONTH, "availability_pct": 101, "p95_latency_ms": 1}, "at most 100"),
    ({"period": LAST_MONTH, "availability_pct": "x", "p95_latency_ms": 1}, "availability_pct must be a number"),
    ({"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": -1}, "non-negative"),
    ({"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": 1, "extra": 1}, "unknown field"),
])
def test_sla_reports_are_validated(billing, firestore_db, body, detail):
    add_tenant(firestore_db)
    with pytest.raises(Problem) as caught:
        billing.report_sla("acme", body)
    assert caught.value.status == 400 and detail in caught.value.detail


def test_two_closes_at_once_number_each_invoice_once(billing, firestore_db):
    for name in ("alpha", "bravo", "charlie", "delta"):
        add_tenant(firestore_db, name, billing_start=f"{LAST_MONTH}-01")
    results, errors = [], []

    def close():
        try:
            results.append(billing.close(LAST_MONTH))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(firestore_db.document(f"tenants/{t}/invoices/{LAST_MONTH}").get().get("number")
                     for t in ("alpha", "bravo", "charlie", "delta"))
    assert numbers == [f"{NOW.year}-00000{n}" for n in (1, 2, 3, 4)]
    assert firestore_db.document(f"invoice_counters/{NOW.year}").get().get("last") == 4
