"""Billing: usage events ingested per second for one hot tenant (gathered into shared commits; each in a commit of
its own, as before; and the month-keyed layout before that, reproduced as its write), for many tenants one at a time
and in HTTP batches, next to the raw Firestore write rate measured warm in the same run (before and after them), with
the Firestore operations each costs (counted at the client: benchmarks/firestore_ops.py) and their list price; the
bytes stored per million events; the daily rollup and closing a period for 10,000 tenants through the fan-out, in
tenants per second and operations per tenant (emulators); and invoice documents rendered per second, JSON + HTML +
PDF with embedded fonts, next to the same without the PDF."""

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
ARCHIVED = int(os.environ.get("BENCH_ARCHIVED_STEPS", "10"))  # numbering steps (100 invoices each) archived, timed
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
    from benchmarks.firestore_ops import PRICES, PRICES_AS_OF, count, storage_bytes
    from local.services import firestore_emulator, free_port, storage_emulator

    firestore, storage = firestore_emulator(free_port(), heap="2g").start(), storage_emulator(free_port()).start()
    try:
        firestore.wait_ready()
        storage.wait_ready()
        os.environ.update({"GOOGLE_CLOUD_PROJECT": "bench-billing", "FIRESTORE_EMULATOR_HOST": firestore.host,
                           "STORAGE_EMULATOR_HOST": storage.url})
        from concurrent.futures import ThreadPoolExecutor

        from cloudevents.http import CloudEvent

        from billing import closing, parties, pricing
        from billing.documents import InvoiceFiles
        from billing.service import TENANT_PAGE, build
        from billing.store.tenant_records import TenantCache
        from energent_shared import clients
        from energent_shared.firestore import put_directory_entry

        db = clients.firestore()
        ops = count(db)
        bucket = clients.storage().create_bucket(f"bench-{uuid.uuid4().hex[:8]}").name
        instances = ThreadPoolExecutor(INSTANCES)
        steps = []
        # Archive steps (rendering and storing each invoice's documents) run on instances of their own in the cloud;
        # on these two cores they would take the CPU the close runs on, so they wait until the close is done and a
        # sample of them is timed on its own.
        archive_steps: list[dict] = []

        def dispatch(event_type: str, data: dict) -> None:  # Pub/Sub push to INSTANCES instances
            if event_type == closing.ARCHIVE_TYPE:
                archive_steps.append(data)
            else:
                steps.append(instances.submit(billing.on_step, event_type, data))

        billing = build(db, InvoiceFiles(bucket, clients.storage), dispatch, pricing.load(ROOT / "config/pricing.json"),
                        parties.load_seller(ROOT / "config/seller.json"))
        now = datetime.datetime.now(datetime.UTC)
        last_month = (now.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
        tenant_ids = [f"t{i:04d}" for i in range(TENANTS)]
        for start in range(0, TENANTS, 200):  # records with their directory entries, as the provisioner writes them
            batch = db.batch()
            for tenant_id in tenant_ids[start:start + 200]:
                batch.set(db.document("tenants", tenant_id), {"tenant_id": tenant_id, "tier": "standard",
                                                              "status": "active", "billing_start": f"{last_month}-01",
                                                              "deployment_model": "multi-tenant", "deleted_at": None,
                                                              "display_name": tenant_id, "billing_profile": PROFILE})
                put_directory_entry(batch, tenant_id, None, db=db)
            batch.commit()

        def raw_writes() -> float:
            return in_threads(list(range(EVENTS)), lambda i: db.collection("raw").document(uuid.uuid4().hex).set(
                {"n": i, "at": now}))

        # The emulator's JVM compiles its write path as it runs (the first thousands of writes are ~30 % slower), and
        # the machine drifts: the reference is measured warm, before and after the ingest figures, and averaged.
        raw_writes()
        raw_before = raw_writes()

        def usage(tenant_id: str, day: int = 20) -> CloudEvent:
            return CloudEvent({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//bench",
                               "id": uuid.uuid4().hex, "time": f"{last_month}-{day:02d}T00:00:00Z"},
                              {"tenant_id": tenant_id, "meter": "workflow_minutes", "quantity": "1.5"})

        def measured(items: list, work) -> tuple[float, object]:
            before = ops.snapshot()
            seconds = in_threads(items, work)
            return seconds, ops.snapshot() - before

        hot, hot_ops = measured([usage("t0000") for _ in range(EVENTS)], lambda e: billing.ingest([e], "bench"))
        from billing.usage import validate

        alone, alone_ops = measured([validate(usage("t0000"), billing.book, now) for _ in range(EVENTS)],
                                    lambda u: billing.usage.record_many([(u, "sum", "bench")]))
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
        billing.tenants = TenantCache(db, page=TENANT_PAGE)  # an instance that has seen none of them (no page read)
        many, many_ops = measured([usage(others[i % len(others)]) for i in range(EVENTS)],
                                  lambda e: billing.ingest([e], "bench"))
        # The same tenants again: each instance remembers the tenants whose usage it counts (TenantCache).
        warm, warm_ops = measured([usage(others[i % len(others)]) for i in range(EVENTS)],
                                  lambda e: billing.ingest([e], "bench"))
        raw_after = raw_writes()
        raw = (raw_before + raw_after) / 2
        batches = [[usage("t0001", day=1 + n % 28) for n in range(1000)] for _ in range(max(1, EVENTS // 1000))]
        before = ops.snapshot()
        started = time.perf_counter()
        for chunk in batches:
            billing.ingest(chunk, "bench")
        batched = time.perf_counter() - started
        batched_ops = ops.snapshot() - before
        exact = billing.usage_of("t0000", last_month)["meters"]["workflow_minutes"]["quantity"]
        stored = {name: [s for s in db.collection(name).stream()] for name in ("usage_events",)}
        counters = list(db.collection_group("usage_shards").stream())
        record_bytes = sum(storage_bytes(s, indexed=False) for s in stored["usage_events"])
        record_bytes_indexed = sum(storage_bytes(s, indexed=True) for s in stored["usage_events"])
        counter_bytes = sum(storage_bytes(s, indexed=True) for s in counters)
        events_stored = len(stored["usage_events"])

        # The daily rollup, as Cloud Scheduler starts it: last month's days are all over by a day.
        before = ops.snapshot()
        started = time.perf_counter()
        billing.rollups.clock = lambda: datetime.datetime.now(datetime.UTC)
        rolled_pages = []
        billing.rollups.dispatch = lambda kind, data: rolled_pages.append(data)
        billing.rollups.on_event({"before": now.date().isoformat()})
        while rolled_pages:
            billing.rollups.on_event(rolled_pages.pop(0))
        rollup_s = time.perf_counter() - started
        rollup_ops = ops.snapshot() - before
        rollup_bytes = sum(storage_bytes(s, indexed=True) for s in db.collection_group("usage_shards").stream())

        before = ops.snapshot()
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
        close_ops = ops.snapshot() - before
        closed = billing.period(last_month)
        while not all(step.done() for step in list(steps)):
            time.sleep(0.2)
        failed = [step for step in steps if step.exception()]
        if failed:
            raise failed[0].exception()
        instances.shutdown()
        sample = sorted(archive_steps, key=lambda data: data["step"])[:ARCHIVED]
        before = ops.snapshot()
        started = time.perf_counter()
        for data in sample:  # one instance rendering, as the close hands them on
            billing.closer.on_event(closing.ARCHIVE_TYPE, data)
        archived_s = time.perf_counter() - started
        archive_ops = ops.snapshot() - before
        archived = sum(len(billing.closer.periods.ref(last_month).collection("numbering")
                           .document(f"{data['step']:06d}").get().get("invoices")) for data in sample)
        issued = [billing.invoice(tenant_id, last_month) for tenant_id in tenant_ids[:RENDERED]]
        documents = rendering_rates([{k: v for k, v in i.items() if k not in ("payments", "amount_paid",
                                      "credit_notes", "credited_net", "credited_vat", "credited_total")}
                                     for i in issued])
    finally:
        firestore.stop()
        storage.stop()

    raw_rate = EVENTS / raw
    print(f"billing ({EVENTS} events per figure, {THREADS} threads; Firestore and Cloud Storage emulators)")
    print(f"{'measure':<52} {'per second':>10} {'x raw write':>11} {'writes/event':>13} {'commits/event':>14}")
    for name, seconds, count_of, spent in (
            ("raw Firestore document writes (the reference)", raw, EVENTS, None),
            ("  measured before the ingest figures", raw_before, EVENTS, None),
            ("  measured after the many-tenant figures", raw_after, EVENTS, None),
            ("usage events one at a time, one hot tenant (Pub/Sub)", hot, EVENTS, hot_ops),
            ("  each in a commit of its own (before)", alone, EVENTS, alone_ops),
            ("  its counter write, keyed by month (before that)", month_keyed, EVENTS, None),
            ("  the same, reported 100 ms after they happen", delayed, EVENTS, None),
            ("  the same, reported the moment they happen", undelayed, EVENTS, None),
            (f"usage events one at a time, {TENANTS} tenants, first sight", many, EVENTS, many_ops),
            ("  the same tenants again (their records remembered)", warm, EVENTS, warm_ops),
            ("usage events, batches of 1,000 over HTTP's path", batched, 1000 * len(batches), batched_ops)):
        rate = count_of / seconds
        per = f"{(spent.writes + spent.deletes) / count_of:>13.3f} {spent.commits / count_of:>14.3f}" if spent else ""
        print(f"{name:<52} {rate:>10,.0f} {rate / raw_rate:>11.2f} {per}")
    expected = Decimal("1.5") * EVENTS * 2
    print(f"hot tenant total after {2 * EVENTS} events of 1.5: {exact} (expected {expected}: "
          f"{'exact' if Decimal(exact) == expected else 'WRONG'})")
    print(f"Firestore prices: europe-west4 list prices ({PRICES_AS_OF}), USD: reads ${PRICES['read']}, writes "
          f"${PRICES['write']}, deletes ${PRICES['delete']} per 100,000; storage ${PRICES['gib_month']}/GiB-month")
    for name, spent, events in (("one at a time (Pub/Sub), many tenants", many_ops, EVENTS),
                                ("one at a time (Pub/Sub), many tenants remembered", warm_ops, EVENTS),
                                ("batches of 1,000 (HTTP)", batched_ops, 1000 * len(batches))):
        print(f"ingest {name}: {spent.reads / events:.2f} reads, {spent.writes / events:.3f} writes per event; "
              f"${spent.cost() / events * 1e6:.2f} per million events")
    per_million = 1e6 / events_stored
    print(f"stored per million events: exactly-once records {record_bytes * per_million / 1e6:,.0f} MB with their "
          f"fields exempt from indexes ({record_bytes_indexed * per_million / 1e6:,.0f} MB if indexed), counters "
          f"{counter_bytes * per_million / 1e6:,.1f} MB before the rollup and "
          f"{rollup_bytes * per_million / 1e6:,.2f} MB after it; records kept for ever: "
          f"${record_bytes * per_million / 2**30 * PRICES['gib_month']:.3f} per million events and month")
    print(f"daily rollup of {TENANTS} tenants: {rollup_s:.1f} s, {TENANTS / rollup_s:,.0f} tenants/s; "
          f"{rollup_ops.reads / TENANTS:.2f} reads, {rollup_ops.writes / TENANTS:.2f} writes, "
          f"{rollup_ops.deletes / TENANTS:.2f} deletes per tenant")
    close_rate = TENANTS / close_s
    print(f"close {last_month} for {TENANTS} tenants ({INSTANCES} instances): {close_s:.1f} s to closed, "
          f"{close_rate:,.0f} tenants/s ({close_rate / raw_rate:.3f}x one raw write per tenant), {closed['issued']} "
          f"invoices numbered; drafting took {drafted_s or close_s:.1f} s")
    print(f"  per closed tenant: {close_ops.reads / TENANTS:.2f} reads, {close_ops.writes / TENANTS:.2f} writes, "
          f"{close_ops.deletes / TENANTS:.2f} deletes; ${close_ops.cost() / TENANTS * 1000:.4f} per 1,000 tenants "
          "closed")
    print(f"  archived after it (JSON, HTML, PDF and UBL stored and announced, one instance rendering): {archived} "
          f"invoices of {len(sample)} numbering steps in {archived_s:.1f} s, {archived / archived_s:,.1f} invoices/s; "
          f"{archive_ops.reads / archived:.2f} reads, {archive_ops.writes / archived:.2f} writes per invoice")
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
