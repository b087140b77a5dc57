"""Billing: usage events ingested per second for one hot tenant (day-keyed counters, and the month-keyed layout
they replaced, reproduced as its write) and for many tenants, next to the raw Firestore write rate measured in
the same run; closing a period for 10,000 tenants through the fan-out, in tenants per second (emulators); and
invoice documents rendered per second, JSON + HTML + PDF with embedded fonts, next to the same without the PDF."""

from __future__ import annotations

import datetime
import logging
import os
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_EVENTS", "3000"))
TENANTS = int(os.environ.get("BENCH_TENANTS", "10000"))
THREADS = 8
INSTANCES = 4  # billing-events instances running the steps of a close at once
RENDERED = int(os.environ.get("BENCH_DOCUMENTS", "200"))  # issued invoices rendered for the documents figure
PROFILE = {"legal_name": "Zakład Usług Informatycznych Sp. z o.o.", "vat_id": "PL5260001246",
           "address": {"line1": "ul. Piotrkowska 104", "postal_code": "90-926", "city": "Łódź", "country": "PL"}}


def in_threads(items: list, work) -> float:
    """Seconds for THREADS threads to work through `items`."""
    chunks = [items[i::THREADS] for i in range(THREADS)]
    threads = [threading.Thread(target=lambda c=chunk: [work(item) for item in c]) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    logging.getLogger("energent").setLevel(logging.WARNING)
    sys.path[:0] = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / "billing")]
    from local.services import firestore_emulator, free_port, storage_emulator

    firestore, storage = firestore_emulator(free_port(), heap="2g").start(), storage_emulator(free_port()).start()
    try:
        firestore.wait_ready()
        storage.wait_ready()
        os.environ.update({"GOOGLE_CLOUD_PROJECT": "bench-billing", "FIRESTORE_EMULATOR_HOST": firestore.host,
                           "STORAGE_EMULATOR_HOST": storage.url})
        from concurrent.futures import ThreadPoolExecutor

        from cloudevents.http import CloudEvent

        from billing import parties, pricing
        from billing.documents import InvoiceFiles
        from billing.service import build
        from energent_shared import clients

        db = clients.firestore()
        bucket = clients.storage().create_bucket(f"bench-{uuid.uuid4().hex[:8]}").name
        instances = ThreadPoolExecutor(INSTANCES)
        steps = []

        def dispatch(event_type: str, data: dict) -> None:  # Pub/Sub push to INSTANCES instances
            steps.append(instances.submit(billing.closer.on_event, event_type, data))

        billing = build(db, InvoiceFiles(bucket, clients.storage), dispatch, pricing.load(ROOT / "config/pricing.json"),
                        parties.load_seller(ROOT / "config/seller.json"))
        now = datetime.datetime.now(datetime.UTC)
        last_month = (now.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
        tenant_ids = [f"t{i:04d}" for i in range(TENANTS)]
        batch = db.batch()
        for index, tenant_id in enumerate(tenant_ids):
            batch.set(db.document("tenants", tenant_id), {"tenant_id": tenant_id, "tier": "standard",
                                                          "status": "active", "billing_start": f"{last_month}-01",
                                                          "deployment_model": "multi-tenant", "deleted_at": None,
                                                          "display_name": tenant_id, "billing_profile": PROFILE})
            if index % 400 == 399:
                batch.commit()
                batch = db.batch()
        batch.commit()

        raw = in_threads(list(range(EVENTS)), lambda i: db.collection("raw").document(uuid.uuid4().hex).set(
            {"n": i, "at": now}))

        def usage(tenant_id: str) -> CloudEvent:
            return CloudEvent({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//bench",
                               "id": uuid.uuid4().hex, "time": f"{last_month}-20T00:00:00Z"},
                              {"tenant_id": tenant_id, "meter": "workflow_minutes", "quantity": "1.5"})

        hot = in_threads([usage("t0000") for _ in range(EVENTS)], lambda e: billing.ingest([e], "bench"))
        from billing.usage import validate

        day_keyed = in_threads([validate(usage("t0000"), billing.book, now) for _ in range(EVENTS)],
                               lambda u: billing.usage.record(u, "sum", "bench"))
        month_keyed = in_threads([usage("t0000") for _ in range(EVENTS)], month_keyed_write(db, last_month))

        def reported_after(delay: datetime.timedelta):
            """Usage of a hot tenant dated `delay` before it reaches billing: a tenant record read after the
            usage happened answers for it, anything newer needs a fresh read (deletions are checked exactly)."""
            def ingest(_):
                event = usage("t0002")
                event["time"] = (datetime.datetime.now(datetime.UTC) - delay).isoformat()
                billing.ingest([event], "bench")
            return ingest

        delayed = in_threads(list(range(EVENTS)), reported_after(datetime.timedelta(milliseconds=100)))
        undelayed = in_threads(list(range(EVENTS)), reported_after(datetime.timedelta(0)))
        others = tenant_ids[3:]  # t0000 is the hot tenant, t0001 takes the batches, t0002 the live usage
        many = in_threads([usage(others[i % len(others)]) for i in range(EVENTS)],
                          lambda e: billing.ingest([e], "bench"))
        batches = [[usage("t0001") for _ in range(1000)] for _ in range(max(1, EVENTS // 1000))]
        started = time.perf_counter()
        for chunk in batches:
            billing.ingest(chunk, "bench")
        batched = time.perf_counter() - started
        exact = billing.usage_of("t0000", last_month)["meters"]["workflow_minutes"]["quantity"]

        started = time.perf_counter()
        billing.close(last_month)
        drafted_s = None
        while (state := billing.period(last_month))["status"] != "closed":
            failed = [step for step in steps if step.done() and step.exception()]
            if failed:
                raise failed[0].exception()
            if drafted_s is None and state["tenants"] == TENANTS:
                drafted_s = time.perf_counter() - started
            time.sleep(0.2)
        close_s = time.perf_counter() - started
        closed = billing.period(last_month)
        instances.shutdown()
        issued = [billing.invoice(tenant_id, last_month) for tenant_id in tenant_ids[:RENDERED]]
        documents = rendering_rates([{k: v for k, v in i.items() if k not in ("payments", "amount_paid",
                                      "credit_notes", "credited_net", "credited_vat", "credited_total")}
                                     for i in issued])
    finally:
        firestore.stop()
        storage.stop()

    raw_rate = EVENTS / raw
    print(f"billing ({EVENTS} events per figure, {THREADS} threads; Firestore and Cloud Storage emulators)")
    print(f"{'measure':<50} {'per second':>12} {'x raw write':>12}")
    for name, seconds, count in (("raw Firestore document writes", raw, EVENTS),
                                 ("usage events, one hot tenant and meter", hot, EVENTS),
                                 ("  its counter write, keyed by day", day_keyed, EVENTS),
                                 ("  its counter write, keyed by month (before)", month_keyed, EVENTS),
                                 ("  the same, reported 100 ms after they happen", delayed, EVENTS),
                                 ("  the same, reported the moment they happen", undelayed, EVENTS),
                                 (f"usage events, spread over {TENANTS} tenants", many, EVENTS),
                                 ("usage events, batches of 1,000 over HTTP's path", batched, 1000 * len(batches))):
        rate = count / seconds
        print(f"{name:<50} {rate:>12,.0f} {rate / raw_rate:>12.2f}")
    expected = Decimal("1.5") * EVENTS * 2
    print(f"hot tenant total after {2 * EVENTS} events of 1.5: {exact} (expected {expected}: "
          f"{'exact' if Decimal(exact) == expected else 'WRONG'})")
    close_rate = TENANTS / close_s
    print(f"close {last_month} for {TENANTS} tenants ({INSTANCES} instances): {close_s:.1f} s, {close_rate:,.0f} "
          f"tenants/s ({close_rate / raw_rate:.2f}x one raw write per tenant), {closed['issued']} invoices numbered; "
          f"drafting took {drafted_s or close_s:.1f} s, numbering and storing the rest")
    with_pdf, without_pdf = documents
    print(f"invoice documents rendered ({RENDERED} issued invoices, one thread): {with_pdf:,.0f}/s as JSON + HTML + "
          f"PDF with embedded fonts, {without_pdf:,.0f}/s as JSON + HTML; with PDF {with_pdf / without_pdf:.3f}x "
          "the rate without")


def rendering_rates(invoices: list[dict]) -> tuple[float, float]:
    """Documents per second rendered as JSON + HTML + PDF, and as JSON + HTML only (the first PDF of the process,
    which prepares the fonts, is drawn before the clock starts)."""
    from billing.documents import render

    render(invoices[0], "pdf")
    rates = []
    for suffixes in (("json", "html", "pdf"), ("json", "html")):
        started = time.perf_counter()
        for document in invoices:
            for suffix in suffixes:
                render(document, suffix)
        rates.append(len(invoices) / (time.perf_counter() - started))
    return rates[0], rates[1]


def month_keyed_write(db, period: str):
    """The write a usage event made before counters were keyed by day: the event's key created and one of 16
    month-keyed shards advanced, in one batch (what the day-keyed layout is compared with)."""
    import random

    from google.cloud.firestore import Increment, Maximum

    def write(event) -> None:
        batch = db.batch()
        batch.create(db.collection("usage_events_before").document(uuid.uuid4().hex), {"id": event["id"]})
        shard = db.document("tenants", "t0000", "usage_shards_before",
                            f"{period}_{period}_workflow_minutes_{random.randrange(16):02d}")
        batch.set(shard, {"count": Increment(1), "sum_micros": Increment(1_500_000), "max_micros": Maximum(1_500_000)},
                  merge=True)
        batch.commit()
    return write


if __name__ == "__main__":
    main()
