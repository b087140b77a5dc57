"""Billing on the Firestore and Cloud Storage emulators: counting, closing, and every timing around a close."""

import datetime
import json
import random
import threading
import uuid
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent

from benchmarks.firestore_ops import count
from billing import closing, parties, pricing
from billing.documents import InvoiceFiles
from billing.errors import Conflict, Invalid, NotFound
from billing.service import build
from billing.store.usage_counters import SHARDS, UNITS_LIMIT
from energent_shared import clients, events, firestore
from tests.conftest import ROOT
from tests.support import run_threads

BOOK = pricing.load(ROOT / "config" / "pricing.json")
SELLER = parties.load_seller(ROOT / "config" / "seller.json")
NOW = datetime.datetime.now(datetime.UTC)
LAST_MONTH = (NOW.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
THIS_MONTH = NOW.strftime("%Y-%m")


class Steps:
    """Delivers a close's steps the way Pub/Sub does, in process: each message `repeat` times (a redelivery
    follows the first delivery), again after a failure, inline or each message on a thread of its own."""

    def __init__(self, repeat: int = 1, threaded: bool = False):
        self.repeat, self.threaded, self.billing, self.threads = repeat, threaded, None, []

    def __call__(self, event_type: str, data: dict) -> None:
        if not self.threaded:
            self._deliver(event_type, data)
            return
        thread = threading.Thread(target=self._deliver, args=(event_type, data))
        thread.start()  # before it is listed: join() may take it from the list at once
        self.threads.append(thread)

    def _deliver(self, event_type: str, data: dict) -> None:
        """Deliver until `repeat` deliveries succeeded: a step that raises (contention on the emulator, say) is
        delivered again, as Pub/Sub does."""
        delivered, attempts = 0, 0
        while delivered < self.repeat:
            attempts += 1
            try:
                self.billing.on_step(event_type, dict(data))  # as the function routes billing-events
                delivered += 1
            except Exception:
                if attempts > 10:
                    raise

    def join(self) -> None:
        while self.threads:
            self.threads.pop().join()


def make_billing(db, bucket: str, steps: Steps | None = None, clock=None):
    steps = steps or Steps()
    billing = build(db, InvoiceFiles(bucket, clients.storage), steps, BOOK, SELLER,
                    clock or (lambda: datetime.datetime.now(datetime.UTC)))
    steps.billing = billing
    return billing


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"invoices-{uuid.uuid4().hex[:10]}").name


@pytest.fixture
def billing(firestore_db, bucket):
    return make_billing(firestore_db, bucket)


DUTCH = {"legal_name": "Acme B.V.", "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam",
                                               "country": "NL"}, "vat_id": "NL100000009B01"}


def add_tenant(db, tenant_id="acme", tier="basic", billing_start=None, model="multi-tenant", deleted_at=None,
               history=(), profile=DUTCH):
    created = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    db.document("tenants", tenant_id).set({
        "tenant_id": tenant_id, "display_name": tenant_id.title(), "tier": history[-1][1] if history else tier,
        "status": "active", "deployment_model": model, "billing_start": billing_start, "deleted_at": deleted_at,
        "created_at": created, "billing_profile": profile,
        "tier_history": [{"tier": tier, "at": created}, *({"tier": t, "at": at} for at, t in history)]})


def usage(tenant_id="acme", meter="workflow_minutes", quantity="1", time=None, event_id=None, source="//test"):
    attributes = {"specversion": "1.0", "type": "ai.energent.usage.v1", "source": source,
                  "id": event_id or uuid.uuid4().hex}
    if time:
        attributes["time"] = time
    data = {"tenant_id": tenant_id, "meter": meter}
    if quantity is not None:
        data["quantity"] = quantity
    event = CloudEvent(attributes, data)
    if not time:
        del event["time"]
    return event


def in_month(period: str, day=10, hour=12) -> str:
    return f"{period}-{day:02d}T{hour:02d}:00:00Z"


def close(billing, period):
    finished, state = billing.close(period)
    assert finished, state
    return state


def settle(steps: Steps, billing, period: str, timeout_s: float = 60) -> None:
    """Deliver the close's steps until the period is closed."""
    import time

    deadline = time.monotonic() + timeout_s
    while billing.period(period)["status"] != "closed":
        assert time.monotonic() < deadline, billing.period(period)
        steps.join()
        time.sleep(0.01)
    steps.join()


def minutes_billed(billing, tenant_id: str, meter="workflow_minutes") -> Decimal:
    """Everything billed for `meter` on all of the tenant's invoices, own and late usage alike."""
    return sum((Decimal(line["quantity"]) for invoice in billing.invoices(tenant_id)["invoices"]
                for line in invoice["lines"] if line.get("meter") == meter), Decimal(0))


# --- counting -------------------------------------------------------------------------------------------------

def test_a_redelivered_or_resent_event_counts_once(billing, firestore_db):
    add_tenant(firestore_db)
    first = usage(quantity="2.5", event_id="run-1")
    assert billing.ingest([first], "pubsub") == {"accepted": 1, "duplicates": 0, "conflicts": [], "rejected": []}
    assert billing.ingest([first], "pubsub")["duplicates"] == 1
    assert billing.ingest([usage(quantity="2.5", event_id="run-1")], "http")["duplicates"] == 1  # another path
    assert billing.ingest([usage(quantity="2.5", event_id="run-1", source="//other")], "http")["accepted"] == 1
    assert billing.usage_of("acme", THIS_MONTH)["meters"]["workflow_minutes"]["quantity"] == "5"


def test_a_resend_with_other_data_is_a_conflict_and_the_first_stands(billing, firestore_db):
    add_tenant(firestore_db)
    add_tenant(firestore_db, "other")
    when = NOW.replace(microsecond=0).isoformat()
    assert billing.ingest([usage(quantity="3", event_id="e", time=when)], "http")["accepted"] == 1
    result = billing.ingest([usage(quantity="4", event_id="e", time=when),
                             usage(meter="storage_gib_hours", quantity="3", event_id="e", time=when),
                             usage(tenant_id="other", quantity="3", event_id="e", time=when),
                             usage(quantity="3", event_id="e", time=in_month(LAST_MONTH)),
                             usage(quantity="3", event_id="e", time=when)], "http")
    assert result["accepted"] == 0 and result["duplicates"] == 1
    assert [c["reason"].split("another ")[1] for c in result["conflicts"]] == [
        "quantity; the first stands", "meter; the first stands", "tenant_id; the first stands",
        "time; the first stands"]
    assert billing.usage_of("acme", THIS_MONTH)["meters"]["workflow_minutes"]["quantity"] == "3"


def test_source_and_id_cannot_be_confused_by_a_separator(billing, firestore_db):
    add_tenant(firestore_db)
    result = billing.ingest([usage(source="a\x00b", event_id="c"), usage(source="a", event_id="b\x00c")], "http")
    assert result["accepted"] == 2


def test_concurrent_duplicates_count_once(billing, firestore_db):
    add_tenant(firestore_db)
    event = usage(quantity="7", event_id="same")
    results = run_threads(8, lambda _: billing.ingest([event], "http"))
    assert sum(r["accepted"] for r in results) == 1 and sum(r["duplicates"] for r in results) == 7
    assert billing.usage_of("acme", THIS_MONTH)["meters"]["workflow_minutes"]["quantity"] == "7"


def test_a_hot_tenant_counts_exactly_under_concurrency(billing, firestore_db):
    add_tenant(firestore_db)
    rng = random.Random(7)
    quantities = [Decimal(rng.randrange(0, 10**9)) / 10**6 for _ in range(400)]
    batches = [[usage(quantity=str(q)) for q in quantities[i:i + 50]] for i in range(0, 400, 50)]
    run_threads(len(batches), lambda i: billing.ingest(batches[i], "http"))
    meters = billing.usage_of("acme", THIS_MONTH)["meters"]
    assert Decimal(meters["workflow_minutes"]["quantity"]) == sum(quantities)
    shards = list(firestore_db.collection("tenants/acme/usage_shards").stream())
    assert len(shards) > 1  # the writes were spread, not piled on one document


def test_the_largest_quantities_add_up_exactly(billing, firestore_db):
    add_tenant(firestore_db)
    day = in_month(LAST_MONTH, 3)
    result = billing.ingest([usage(quantity="1000000000000", time=day) for _ in range(200)] +
                            [usage(quantity="999999999999.999999", time=day) for _ in range(3)], "http")
    assert result["accepted"] == 203
    expected = Decimal(200 * 10**12) + 3 * Decimal("999999999999.999999")
    assert Decimal(billing.usage_of("acme", LAST_MONTH)["meters"]["workflow_minutes"]["quantity"]) == expected


def test_a_total_that_would_leave_the_exact_range_is_rejected_not_clamped(billing, firestore_db):
    add_tenant(firestore_db)
    day = f"{LAST_MONTH}-03"
    for shard in range(SHARDS):  # every counter of the day already near the limit
        firestore_db.document(f"tenants/acme/usage_shards/{day}_workflow_minutes_{shard:02d}").set({
            "tenant_id": "acme", "period": LAST_MONTH, "day": day, "meter": "workflow_minutes", "count": 1,
            "units": UNITS_LIMIT - 10, "micros": 0, "max_micros": 0})
    before = billing.usage_of("acme", LAST_MONTH)["meters"]["workflow_minutes"]["quantity"]
    result = billing.ingest([usage(quantity="11", time=f"{day}T10:00:00Z", event_id="big"),
                             usage(quantity="9", time=f"{day}T10:00:00Z")], "http")
    assert result["accepted"] == 1
    assert [r["id"] for r in result["rejected"]] == ["big"]
    assert "would pass what is counted exactly" in result["rejected"][0]["reason"]
    after = Decimal(billing.usage_of("acme", LAST_MONTH)["meters"]["workflow_minutes"]["quantity"])
    assert after == Decimal(before) + 9
    from google.cloud.firestore_v1.base_query import FieldFilter

    left = firestore_db.collection("usage_events").where(filter=FieldFilter("id", "==", "big")).get()
    assert not left  # nothing left of it


def test_count_and_max_meters_and_daily_usage(billing, firestore_db):
    add_tenant(firestore_db)
    billing.ingest([usage(meter="workflow_runs", quantity=None, time=in_month(LAST_MONTH, d)) for d in (1, 1, 5)],
                   "http")
    billing.ingest([usage(meter="peak_concurrent_workflows", quantity=q, time=in_month(LAST_MONTH, d))
                    for q, d in (("2", 1), ("5", 5), ("3", 5))], "http")
    answer = billing.usage_of("acme", LAST_MONTH, granularity="day")
    assert answer["meters"]["workflow_runs"]["quantity"] == "3"
    assert answer["meters"]["peak_concurrent_workflows"] == {"quantity": "5", "unit": "workflow"}
    assert [(d["date"], d["meters"]["workflow_runs"]["quantity"], d["meters"]["peak_concurrent_workflows"]["quantity"])
            for d in answer["days"]] == [(f"{LAST_MONTH}-01", "2", "2"), (f"{LAST_MONTH}-05", "1", "5")]
    assert "days" not in billing.usage_of("acme", LAST_MONTH)
    with pytest.raises(Invalid):
        billing.usage_of("acme", LAST_MONTH, granularity="hour")


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


def test_usage_of_a_tenant_not_seen_yet_is_checked_against_its_directory_entry(billing, firestore_db):
    deleted_at = NOW - datetime.timedelta(days=1)
    add_tenant(firestore_db, "gone", deleted_at=deleted_at)  # deleted, as the provisioner leaves it: the record
    batch = firestore_db.batch()  # and its directory entry
    firestore.put_directory_entry(batch, "gone", deleted_at, db=firestore_db)
    batch.commit()
    ops = count(firestore_db)
    result = billing.ingest([usage(tenant_id="gone"),
                             usage(tenant_id="gone", time=(deleted_at - datetime.timedelta(hours=1)).isoformat())],
                            "http")
    assert result["accepted"] == 1 and [r["reason"] for r in result["rejected"]] == [
        "dated after tenant gone was deleted"]
    assert ops.snapshot().reads == 1  # its directory shard, not its record


def test_rejections_change_no_total_and_are_recorded(billing, firestore_db):
    deleted_at = NOW - datetime.timedelta(days=1)
    add_tenant(firestore_db)
    add_tenant(firestore_db, "gone", deleted_at=deleted_at)
    result = billing.ingest([usage(quantity=Decimal("-1")), usage(quantity="1_000"), usage(tenant_id="nobody"),
                             usage(tenant_id="gone"),
                             usage(tenant_id="gone", time=(deleted_at - datetime.timedelta(hours=1)).isoformat())],
                            "http")
    reasons = [r["reason"] for r in result["rejected"]]
    assert result["accepted"] == 1  # the deleted tenant's usage from before its deletion
    assert reasons[0] == "quantity must not be negative" and "not a decimal string" in reasons[1]
    assert reasons[2:] == ["unknown tenant nobody", "dated after tenant gone was deleted"]
    assert billing.usage_of("acme", THIS_MONTH)["meters"]["workflow_minutes"]["quantity"] == "0"
    recorded = [d.to_dict()["reason"] for d in firestore_db.collection("usage_rejections").stream()]
    assert sorted(recorded) == sorted(reasons)


@pytest.mark.parametrize("binding", ["structured", "binary", "http"])
def test_a_quantity_with_a_huge_exponent_is_a_rejection_reason_in_every_binding(billing, firestore_db, binding):
    """Not a dead letter (Pub/Sub) and not a 400 for the whole batch (HTTP): that one event is refused, with why."""
    add_tenant(firestore_db)
    raw_data = b'{"tenant_id": "acme", "meter": "workflow_minutes", "quantity": 1e99999999999999999999}'
    attributes = {"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//test", "id": "huge"}
    structured = json.dumps({**attributes, "data": "DATA"}).encode().replace(b'"DATA"', raw_data)
    if binding == "http":
        fine = {**attributes, "id": "fine", "data": {"tenant_id": "acme", "meter": "workflow_minutes", "quantity": 2}}
        found = events.from_http(events.BATCH, {}, b"[" + structured + b", " + json.dumps(fine).encode() + b"]")
    elif binding == "structured":
        found = [events.from_pubsub_message(events.PubSubMessage(structured, {"content-type": events.STRUCTURED},
                                                                 "m-1"))]
    else:
        found = [events.from_pubsub_message(events.PubSubMessage(
            raw_data, {f"ce-{k}": v for k, v in attributes.items()} | {"content-type": "application/json"}, "m-1"))]
    result = billing.ingest(found, "http" if binding == "http" else "pubsub")
    assert result["rejected"] == [{"id": "huge", "reason": "quantity 1e99999999999999999999 is out of range "
                                                          "(at most 10^12)"}]
    assert result["accepted"] == (1 if binding == "http" else 0)
    assert [d.get("reason") for d in firestore_db.collection("usage_rejections").stream()] == [
        result["rejected"][0]["reason"]]


def test_backfill_from_before_the_tenant_existed_is_accepted(billing, firestore_db):
    add_tenant(firestore_db)
    assert billing.ingest([usage(time="2024-01-15T00:00:00Z")], "http")["accepted"] == 1
    assert billing.usage_of("acme", "2024-01")["meters"]["workflow_minutes"]["quantity"] == "1"


# --- closing --------------------------------------------------------------------------------------------------

def test_close_invoices_base_fees_and_usage_with_gapless_numbers(billing, firestore_db, bucket):
    add_tenant(firestore_db, "acme", "basic", billing_start=f"{LAST_MONTH}-01")
    add_tenant(firestore_db, "bravo", "premium")  # never active: no base fee, but usage
    add_tenant(firestore_db, "charlie", "standard")  # nothing at all: no invoice
    billing.ingest([usage("acme", quantity="1500.5", time=in_month(LAST_MONTH)),
                    usage("bravo", quantity="25000", time=in_month(LAST_MONTH))], "http")
    billing.report_sla("acme", {"period": LAST_MONTH, "availability_pct": Decimal("99.75"),
                                "p95_latency_ms": 6000})
    state = close(billing, LAST_MONTH)
    assert (state["status"], state["tenants"], state["drafted"], state["issued"]) == ("closed", 3, 2, 2)
    acme, bravo = billing.invoice("acme", LAST_MONTH), billing.invoice("bravo", LAST_MONTH)
    year = NOW.year
    assert (acme["number"], bravo["number"]) == (f"{year}-000001", f"{year}-000002")
    assert (acme["subtotal"], acme["sla_credit"], acme["net"]) == ("54.01", "13.50", "40.51")
    assert acme["vat"] == {"treatment": "standard", "rate": "21", "amount": "8.51"} and acme["total"] == "49.02"
    assert acme["customer"]["legal_name"] == "Acme B.V." and not acme.get("warnings")
    # No base fee owed, so no allowance either (§7.2: the allowance takes the base fee's fraction): 25,000 x 0.008
    assert bravo["net"] == "200.00" and bravo["total"] == "242.00" and acme["status"] == "final"
    with pytest.raises(NotFound):
        billing.invoice("charlie", LAST_MONTH)
    files = clients.storage().bucket(bucket)
    stored = json.loads(files.blob(f"invoices/{acme['number']}.json").download_as_text())
    assert stored["number"] == acme["number"] and stored["total"] == "49.02"
    page = files.blob(f"invoices/{acme['number']}.html").download_as_text()
    assert acme["number"] in page and "€49.02" in page
    assert close(billing, LAST_MONTH)["issued"] == 2  # idempotent
    assert [i["period"] for i in billing.invoices("acme")["invoices"]] == [LAST_MONTH]
    assert billing.period(LAST_MONTH)["status"] == "closed" and billing.period("2001-01")["status"] == "open"


def test_closing_an_open_period_or_out_of_order_is_a_conflict(billing, firestore_db):
    add_tenant(firestore_db)
    with pytest.raises(Conflict, match="has not ended"):
        billing.close(THIS_MONTH)
    close(billing, LAST_MONTH)
    with pytest.raises(Conflict, match="close in order"):
        billing.close("2025-01")
    for bad in ("2024-01\n", "٢٠٢٤-01", "2024-1"):
        with pytest.raises(Invalid):
            billing.close(bad)


def test_sla_reports_are_refused_from_the_moment_a_close_starts(billing, firestore_db):
    add_tenant(firestore_db)
    billing.periods.begin(LAST_MONTH, NOW)  # what a close does first, before any tenant is drafted
    with pytest.raises(Conflict, match="closing or closed"):
        billing.report_sla("acme", {"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": 1})


def test_the_last_sla_report_accepted_before_a_racing_close_is_the_one_invoiced(billing, firestore_db):
    add_tenant(firestore_db, billing_start=f"{LAST_MONTH}-01")
    accepted, stop = [], threading.Event()

    def report():
        for n in range(1000):
            availability = Decimal("99.0") + Decimal(n % 10) / 10
            try:
                billing.report_sla("acme", {"period": LAST_MONTH, "availability_pct": availability,
                                            "p95_latency_ms": 1})
            except Conflict:
                return
            accepted.append(availability)
            if stop.is_set():
                return

    reporter = threading.Thread(target=report)
    reporter.start()
    while not accepted:
        pass
    close(billing, LAST_MONTH)
    stop.set()
    reporter.join()
    assert Decimal(billing.invoice("acme", LAST_MONTH)["sla"]["availability_pct"]) == accepted[-1]


@pytest.mark.parametrize("body, detail", [
    ({"period": "2026-13", "availability_pct": 99, "p95_latency_ms": 1}, "period must be YYYY-MM"),
    ({"period": "٢٠٢٤-01", "availability_pct": 99, "p95_latency_ms": 1}, "period must be YYYY-MM"),
    ({"period": LAST_MONTH, "availability_pct": 101, "p95_latency_ms": 1}, "at most 100"),
    ({"period": LAST_MONTH, "availability_pct": "x", "p95_latency_ms": 1}, "availability_pct must be a number"),
    ({"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": -1}, "non-negative"),
    ({"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": Decimal("1e999999")}, "at most"),
    ({"period": LAST_MONTH, "availability_pct": 99, "p95_latency_ms": 1, "extra": 1}, "unknown field"),
])
def test_sla_reports_are_validated(billing, firestore_db, body, detail):
    add_tenant(firestore_db)
    with pytest.raises(Invalid) as caught:
        billing.report_sla("acme", body)
    assert detail in str(caught.value)


def test_late_usage_is_billed_on_the_next_invoice_and_listed(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, billing_start="2025-01-01")
    billing.ingest([usage(quantity="10", time=in_month("2025-01", 3))], "http")
    close(billing, "2025-01")
    billing.ingest([usage(quantity="4", time=in_month("2025-01", 4))], "http")  # arrives after the close
    assert billing.usage_of("acme", "2025-01")["meters"]["workflow_minutes"]["quantity"] == "14"
    close(billing, "2025-02")
    assert billing.invoice("acme", "2025-02")["late_usage"] == [
        {"period": "2025-01", "meter": "workflow_minutes", "quantity": "4"}]
    assert minutes_billed(billing, "acme") == 14


def test_a_straggler_three_closes_late_is_billed_once(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, billing_start="2025-01-01")
    billing.ingest([usage(quantity="10", time=in_month("2025-01"))], "http")
    for period in ("2025-01", "2025-02", "2025-03"):
        close(billing, period)
    billing.ingest([usage(quantity="3", time=in_month("2025-01", 20)),
                    usage(quantity="5", time=in_month("2025-02", 20))], "http")
    close(billing, "2025-04")
    close(billing, "2025-05")
    assert billing.invoice("acme", "2025-04")["late_usage"] == [
        {"period": "2025-01", "meter": "workflow_minutes", "quantity": "3"},
        {"period": "2025-02", "meter": "workflow_minutes", "quantity": "5"}]
    assert billing.invoice("acme", "2025-05")["late_usage"] == []
    assert minutes_billed(billing, "acme") == 18


def test_a_late_peak_is_charged_only_for_what_it_adds(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, billing_start="2025-01-01")
    billing.ingest([usage(meter="peak_concurrent_workflows", quantity="8", time=in_month("2025-01", 3))], "http")
    close(billing, "2025-01")
    billing.ingest([usage(meter="peak_concurrent_workflows", quantity="5", time=in_month("2025-01", 4))], "http")
    close(billing, "2025-02")
    assert billing.invoice("acme", "2025-02")["subtotal"] == "49.00"  # 5 < 8 billed: nothing owed
    billing.ingest([usage(meter="peak_concurrent_workflows", quantity="10", time=in_month("2025-01", 5))], "http")
    close(billing, "2025-03")
    late = billing.invoice("acme", "2025-03")
    assert late["subtotal"] == "89.00"  # 49 + (10 - 8) x 20
    assert late["late_usage"] == [{"period": "2025-01", "meter": "peak_concurrent_workflows", "quantity": "2"}]


def test_base_fees_of_closed_periods_are_charged_on_the_next_invoice(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, "early", billing_start="2025-01-01")
    close(billing, "2025-01")
    close(billing, "2025-02")
    add_tenant(firestore_db, "migrated", "standard", billing_start="2024-12-16")  # created after both closes
    close(billing, "2025-03")
    migrated = billing.invoice("migrated", "2025-03")
    late = [line for line in migrated["lines"] if "owed from the billing start" in line["description"]]
    assert [line["amount"] for line in late] == ["76.90", "149.00", "149.00"]  # 149 x 16/31, then whole months
    assert [entry["period"] for entry in migrated["late_usage"]] == ["2024-12", "2025-01", "2025-02"]
    firestore_db.document("tenants/early").update({"billing_start": "2024-11-01"})  # set earlier by PATCH
    close(billing, "2025-04")
    early = billing.invoice("early", "2025-04")
    assert [e["period"] for e in early["late_usage"] if e.get("kind") == "base_fee"] == ["2024-11", "2024-12"]
    assert early["subtotal"] == "147.00"  # 49 for April, and November and December
    close(billing, "2025-05")
    assert billing.invoice("early", "2025-05")["subtotal"] == "49.00"


def test_a_downgrade_during_the_month_is_prorated_on_the_invoice(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    changed = datetime.datetime(2025, 4, 30, 9, tzinfo=datetime.UTC)
    add_tenant(firestore_db, tier="enterprise", billing_start="2025-04-01", history=[(changed, "basic")])
    billing.ingest([usage(quantity="60000", time=in_month("2025-04", 10))], "http")
    close(billing, "2025-04")
    lines = billing.invoice("acme", "2025-04")["lines"]
    assert [line["amount"] for line in lines if line["kind"] == "base_fee"] == ["965.70", "1.63"]
    # two base fees, the minutes of the enterprise days, and one line for each meter without usage: no €0.00 per day
    assert len(lines) == 2 + 1 + (len(BOOK.meters) - 1)


# --- timing -----------------------------------------------------------------------------------------------------

def test_events_racing_back_to_back_closes_on_two_instances_are_billed_exactly_once(firestore_db, bucket):
    """Two instances ingest events at random times of three months while those months are closed back to back
    (with every step delivered twice, on threads); afterwards each event is on exactly one invoice."""
    months = ["2025-01", "2025-02", "2025-03"]
    steps = Steps(repeat=2, threaded=True)
    closer = make_billing(firestore_db, bucket, steps)
    instances = [make_billing(firestore_db, bucket) for _ in range(2)]
    for name in ("race-a", "race-b"):
        add_tenant(firestore_db, name, billing_start="2025-01-01")
    sent: list[CloudEvent] = []
    stop = threading.Event()

    def send(instance, seed):
        local = random.Random(seed)
        while not stop.is_set():
            batch = [usage(local.choice(["race-a", "race-b"]), quantity=str(local.randint(1, 1000)),
                           time=in_month(local.choice(months), local.randint(1, 28), local.randint(0, 23)))
                     for _ in range(local.randint(1, 20))]
            assert instance.ingest(batch, "http")["accepted"] == len(batch)
            sent.extend(batch)

    senders = [threading.Thread(target=send, args=(instance, n)) for n, instance in enumerate(instances)]
    for sender in senders:
        sender.start()
    for period in months:
        closer.close(period)
        settle(steps, closer, period)
    stop.set()
    for sender in senders:
        sender.join()
    steps.join()
    closer.close("2025-04")  # the next close picks up whatever raced the last one
    settle(steps, closer, "2025-04")
    assert len(sent) > 50
    for name in ("race-a", "race-b"):
        expected = sum(Decimal(e.get_data()["quantity"]) for e in sent if e.get_data()["tenant_id"] == name)
        assert minutes_billed(closer, name) == expected
    numbers = sorted(i["number"] for name in ("race-a", "race-b") for i in closer.invoices(name)["invoices"])
    assert numbers == [f"{NOW.year}-{n:06d}" for n in range(1, 9)]


def test_a_close_fans_out_in_chunks_and_numbers_without_gaps_under_redelivery(firestore_db, bucket, monkeypatch):
    monkeypatch.setattr(closing, "CHUNK", 3)
    steps = Steps(repeat=2, threaded=True)
    billing = make_billing(firestore_db, bucket, steps)
    names = [f"tenant-{n:02d}" for n in range(11)]
    for name in names:
        add_tenant(firestore_db, name, billing_start=f"{LAST_MONTH}-01" if name != "tenant-05" else None)
    finished, state = billing.close(LAST_MONTH)
    assert not finished and state["status"] == "closing"
    settle(steps, billing, LAST_MONTH)
    state = billing.period(LAST_MONTH)
    assert (state["tenants"], state["drafted"], state["issued"]) == (11, 10, 10)
    numbers = [billing.invoice(name, LAST_MONTH)["number"] for name in names if name != "tenant-05"]
    assert numbers == [f"{NOW.year}-{n:06d}" for n in range(1, 11)]  # no gaps, in tenant order
    assert firestore_db.document(f"invoice_counters/{NOW.year}").get().get("last") == 10


class HeldSteps:
    """Keeps a close's steps until the test delivers them, in the order it chooses."""

    def __init__(self):
        self.billing, self.held = None, []

    def __call__(self, event_type: str, data: dict) -> None:
        self.held.append((event_type, dict(data)))

    def deliver(self, event_type: str, **match) -> int:
        """Deliver (and drop) every held step of this type whose data has `match`; how many there were."""
        chosen = [(t, d) for t, d in self.held if t == event_type and match.items() <= d.items()]
        self.held = [step for step in self.held if step not in chosen]
        for chosen_type, data in chosen:
            self.billing.on_step(chosen_type, data)
        return len(chosen)

    def deliver_all(self) -> None:
        """Deliver what is held, and what that hands on, oldest first, until nothing is left."""
        while self.held:
            event_type, data = self.held.pop(0)
            self.billing.on_step(event_type, data)


def five_tenants_closing_in_chunks_of_two(db, bucket: str, monkeypatch):
    """Last month's close just asked for, its steps held: (billing, steps, tenant ids); chunks [0, 1], [2, 3], [4]."""
    monkeypatch.setattr(closing, "CHUNK", 2)
    steps = HeldSteps()
    billing = make_billing(db, bucket, steps)
    names = [f"tenant-{n}" for n in range(5)]
    for name in names:
        add_tenant(db, name, billing_start=f"{LAST_MONTH}-01")
    billing.close(LAST_MONTH)
    return billing, steps, names


def test_numbering_follows_drafting_chunk_by_chunk_whichever_finishes_second_hands_on(firestore_db, bucket,
                                                                                      monkeypatch):
    """Step k is numbered once chunk k is drafted and step k - 1 numbered: handed on by drafting when the step
    before was done first, by numbering when the chunk was drafted first, and not at all before both."""
    billing, steps, names = five_tenants_closing_in_chunks_of_two(firestore_db, bucket, monkeypatch)
    assert steps.deliver(closing.CHUNK_TYPE, chunk=0) == 1
    assert steps.deliver(closing.NUMBER_TYPE, step=0) == 1  # chunk 1 is not drafted yet: step 1 waits for it
    assert billing.period(LAST_MONTH)["issued"] == 2 and billing.period(LAST_MONTH)["status"] == "closing"
    assert not [s for s in steps.held if s[0] == closing.NUMBER_TYPE]
    billing.closer.on_event(closing.NUMBER_TYPE, {"period": LAST_MONTH, "step": 1, "run": "early"})
    assert billing.period(LAST_MONTH)["issued"] == 2  # sent before its chunk is drafted: nothing
    assert steps.deliver(closing.CHUNK_TYPE, chunk=1) == 1  # step 0 was done first: drafting hands on step 1
    assert steps.deliver(closing.CHUNK_TYPE, chunk=2) == 1  # step 1 is not numbered yet: no step 2 from here
    assert [d["step"] for t, d in steps.held if t == closing.NUMBER_TYPE] == [1]
    assert steps.deliver(closing.NUMBER_TYPE, step=1) == 1  # chunk 2 was drafted first: numbering hands on step 2
    assert steps.deliver(closing.NUMBER_TYPE, step=2) == 1
    assert billing.period(LAST_MONTH)["status"] == "closed"
    assert [billing.invoice(name, LAST_MONTH)["number"] for name in names] == [
        f"{NOW.year}-{n:06d}" for n in range(1, 6)]
    assert not [s for s in steps.held if s[0] in (closing.CHUNK_TYPE, closing.NUMBER_TYPE)]


def test_a_chunk_is_cut_once_so_a_resumed_close_drafts_the_same_tenants_and_numbers_every_draft(
        firestore_db, bucket, monkeypatch):
    """The last chunk is cut, then its delivery dies; tenants are created; the operator asks again. The chunk still
    holds the tenants it was cut with (the newcomers are the next close's), and every draft is numbered."""
    billing, steps, names = five_tenants_closing_in_chunks_of_two(firestore_db, bucket, monkeypatch)
    assert steps.deliver(closing.CHUNK_TYPE, chunk=0) == 1
    assert steps.deliver(closing.CHUNK_TYPE, chunk=1) == 1
    reads = billing.closer._page_reads

    def dies(*args):
        raise RuntimeError("the instance stopped")

    monkeypatch.setattr(billing.closer, "_page_reads", dies)
    with pytest.raises(RuntimeError):
        steps.deliver(closing.CHUNK_TYPE, chunk=2)  # cut [tenant-4], then died; its redelivery is lost too
    monkeypatch.setattr(billing.closer, "_page_reads", reads)
    # A chunk message that follows no full chunk (stray or forged) cuts nothing and changes no count.
    before = billing.period(LAST_MONTH)
    billing.closer.on_event(closing.CHUNK_TYPE, {"period": LAST_MONTH, "chunk": 7, "after": "", "run": "forged"})
    assert billing.period(LAST_MONTH) == before and not steps.deliver(closing.CHUNK_TYPE, chunk=8)
    for name in ("tenant-5", "tenant-6"):  # would make chunk 2 full and add a chunk 3, were it cut again
        add_tenant(firestore_db, name, billing_start=f"{LAST_MONTH}-01")
    billing.close(LAST_MONTH)  # the operator asks again: a new run walks the chunks
    steps.deliver_all()
    assert billing.period(LAST_MONTH)["status"] == "closed"
    assert [billing.invoice(name, LAST_MONTH)["number"] for name in names] == [
        f"{NOW.year}-{n:06d}" for n in range(1, 6)]
    for name in ("tenant-5", "tenant-6"):
        with pytest.raises(NotFound):
            billing.invoice(name, LAST_MONTH)


def test_a_close_interrupted_midway_resumes_without_gaps_or_doubles(billing, firestore_db):
    for name in ("alpha", "bravo", "charlie"):
        add_tenant(firestore_db, name, billing_start=f"{LAST_MONTH}-01")
    billing.periods.begin(LAST_MONTH, NOW)
    billing.closer.draft(firestore_db.document("tenants/alpha").get().to_dict(), LAST_MONTH)  # then the crash
    close(billing, LAST_MONTH)  # the operator asks again
    numbers = sorted(billing.invoice(t, LAST_MONTH)["number"] for t in ("alpha", "bravo", "charlie"))
    assert numbers == [f"{NOW.year}-00000{n}" for n in (1, 2, 3)]


def test_two_closes_at_once_number_each_invoice_once(billing, firestore_db):
    for name in ("alpha", "bravo", "charlie", "delta"):
        add_tenant(firestore_db, name, billing_start=f"{LAST_MONTH}-01")
    run_threads(2, lambda _: billing.close(LAST_MONTH))
    numbers = sorted(billing.invoice(t, LAST_MONTH)["number"] for t in ("alpha", "bravo", "charlie", "delta"))
    assert numbers == [f"{NOW.year}-00000{n}" for n in (1, 2, 3, 4)]
    assert firestore_db.document(f"invoice_counters/{NOW.year}").get().get("last") == 4


def test_a_period_skipped_by_the_closes_is_billed_as_late_usage(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, billing_start="2025-01-01")
    billing.ingest([usage(quantity="10", time=in_month("2025-01")), usage(quantity="7", time=in_month("2025-02"))],
                   "http")  # February's usage is counted before January's close reads anything
    close(billing, "2025-01")
    close(billing, "2025-03")  # February is never closed
    march = billing.invoice("acme", "2025-03")
    assert {"period": "2025-02", "meter": "workflow_minutes", "quantity": "7"} in march["late_usage"]
    assert {"period": "2025-02", "kind": "base_fee"} in march["late_usage"]
    assert minutes_billed(billing, "acme") == 17
    with pytest.raises(Conflict):  # no close would ever read it
        billing.report_sla("acme", {"period": "2025-02", "availability_pct": 99, "p95_latency_ms": 1})


def test_usage_from_before_the_year_1000_is_billed_like_any_backfill(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, billing_start="2025-01-01")
    close(billing, "2025-01")
    assert billing.ingest([usage(quantity="2", time="0999-05-01T00:00:00Z")], "http")["accepted"] == 1
    close(billing, "2025-02")
    assert billing.invoice("acme", "2025-02")["late_usage"] == [
        {"period": "0999-05", "meter": "workflow_minutes", "quantity": "2"}]


def test_steps_delivered_out_of_turn_change_nothing(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, "alpha", billing_start=f"{LAST_MONTH}-01")
    billing.periods.begin(LAST_MONTH, NOW)
    billing.closer.on_event(closing.NUMBER_TYPE, {"period": LAST_MONTH, "step": 0, "run": "forged"})
    assert billing.period(LAST_MONTH)["issued"] == 0  # no numbering before its chunk is drafted
    close(billing, LAST_MONTH)
    add_tenant(firestore_db, "late-comer", billing_start=f"{LAST_MONTH}-01")  # created after the close
    billing.closer.on_event(closing.CHUNK_TYPE, {"period": LAST_MONTH, "chunk": 0, "after": "", "run": "again"})
    with pytest.raises(NotFound):  # a redelivered chunk drafts nothing once the close is over
        billing.invoice("late-comer", LAST_MONTH)
    assert firestore_db.document("tenants/late-comer/billing/ledger").get().exists is False


def test_a_month_asked_to_close_while_the_one_before_is_closing_waits_and_then_closes(firestore_db, bucket):
    billing = make_billing(firestore_db, bucket)
    add_tenant(firestore_db, billing_start="2025-01-01")
    billing.ingest([usage(quantity="5", time=in_month("2025-01")), usage(quantity="6", time=in_month("2025-02"))],
                   "http")
    billing.periods.begin("2025-01", NOW)  # January's close has begun and is not done
    finished, state = billing.close("2025-02")
    assert not finished and state["status"] == "closing" and state["tenants"] == 0  # waiting, not refused
    with pytest.raises(Conflict):
        billing.report_sla("acme", {"period": "2025-02", "availability_pct": 99, "p95_latency_ms": 1})
    close(billing, "2025-01")  # January finishes, and February's close starts on its own
    assert billing.period("2025-02")["status"] == "closed"
    assert [i["period"] for i in billing.invoices("acme")["invoices"]] == ["2025-01", "2025-02"]
    assert minutes_billed(billing, "acme") == 11 and billing.invoice("acme", "2025-02")["late_usage"] == []
