"""Spend control (emulators): a hot tenant's ingest rate with a budget and a webhook set, divided by the rate
without; GET .../spend for a tenant with 1,000,000 events in the period (p50, p95); webhook deliveries per second
to a receiver on 127.0.0.1; and the delay from the usage that crossed a threshold to the webhook's delivery (p95),
through Pub/Sub as deployed (checks after a 10 s window + 2 s, production's settings).

The million events are pre-filled as the counters they leave (usage_shards: one per day, meter and shard, holding
count and sums), which is all that spend reads: sending a million events through HTTP first would measure ingestion,
not spend. Spend is timed in process, as the function computes it (no HTTP in front)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_EVENTS", "3000"))
THREADS = 8
SPEND_CALLS = int(os.environ.get("BENCH_SPEND_CALLS", "60"))
DELIVERIES = int(os.environ.get("BENCH_DELIVERIES", "300"))
CROSSING_TENANTS = int(os.environ.get("BENCH_CROSSINGS", "12"))


def in_threads(items: list, work) -> float:
    chunks = [items[i::THREADS] for i in range(THREADS)]
    threads = [threading.Thread(target=lambda c=chunk: [work(item) for item in c]) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


class Receiver:
    def __init__(self):
        self.times: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.times.setdefault(json.loads(body)["subject"] + "/" + self.headers["webhook-id"],
                                          time.monotonic())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    logging.getLogger("energent").setLevel(logging.WARNING)
    sys.path[:0] = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / "billing")]
    from local import provision
    from local.secret_manager import SecretManagerStandIn
    from local.services import firestore_emulator, free_port, pubsub_emulator

    firestore, pubsub = firestore_emulator(free_port(), heap="1g").start(), pubsub_emulator(free_port()).start()
    secret_manager = SecretManagerStandIn().start()
    try:
        firestore.wait_ready()
        pubsub.wait_ready()
        project = f"bench-spend-{uuid.uuid4().hex[:6]}"
        os.environ.update({"GOOGLE_CLOUD_PROJECT": project, "FIRESTORE_EMULATOR_HOST": firestore.host,
                           "PUBSUB_EMULATOR_HOST": pubsub.host, "SECRET_MANAGER_EMULATOR_HOST": secret_manager.address})
        provision.topics(pubsub.url, project, ["spend-events", "tenant-events", "webhook-deliveries"])
        figures = run(project)
    finally:
        secret_manager.stop()
        firestore.stop()
        pubsub.stop()
    print("spend control (Firestore, Pub/Sub emulators and the Secret Manager stand-in; "
          f"{EVENTS} events per ingest figure, {THREADS} threads)")
    for line in figures:
        print(line)


def run(project: str) -> list[str]:
    from cloudevents.http import CloudEvent

    from billing import parties, pricing
    from billing.crossings import CheckWindows
    from billing.documents import InvoiceFiles
    from billing.secret_box import SecretBox
    from billing.service import build
    from billing.spend_control import SpendControl
    from billing.store.budgets import Budgets
    from billing.store.invoices import Invoices
    from billing.store.spend_blocks import SpendBlocks
    from billing.store.spend_checks import SpendChecks
    from billing.store.spend_outbox import SpendOutbox
    from billing.store.tenant_records import TenantCache
    from billing.store.webhooks import Webhooks
    from billing.webhook_service import WebhookService
    from energent_shared import clients, events

    db = clients.firestore()
    now = datetime.datetime.now(datetime.UTC)
    period = now.strftime("%Y-%m")
    book = pricing.load(ROOT / "config/pricing.json")

    def publisher(topic):
        return lambda event_type, data: events.publish(topic, events.new_event(event_type, "//energent.ai/billing",
                                                                              data))

    def publish_event(payload: bytes) -> None:
        events.publish_raw("tenant-events", payload, {"content-type": events.STRUCTURED})

    billing = build(db, InvoiceFiles("unused", clients.storage), lambda *a: None, book,
                    parties.load_seller(ROOT / "config/seller.json"))
    windows = CheckWindows(SpendChecks(db), Budgets(db), publisher("spend-events"), billing.clock)
    billing.accepted = windows.accepted
    control = SpendControl(billing, Budgets(db), SpendBlocks(db), SpendOutbox(db), SpendChecks(db), publish_event,
                           publisher("spend-events"), billing.clock)
    sm = clients.secret_manager()
    sm.create_secret(request={"parent": f"projects/{project}", "secret_id": "webhook-secret-key",
                              "secret": {"replication": {"automatic": {}}}})
    sm.add_secret_version(request={"parent": f"projects/{project}/secrets/webhook-secret-key",
                                   "payload": {"data": os.urandom(32)}})
    receiver = Receiver()
    hooks = WebhookService(Webhooks(db), Invoices(db), TenantCache(db),
                           SecretBox(f"projects/{project}/secrets/webhook-secret-key"), publisher("webhook-deliveries"),
                           billing.clock, local=True)

    tenants = ["plain", "watched", "million", "hooked"] + [f"cross-{i:02d}" for i in range(CROSSING_TENANTS)]
    for tenant_id in tenants:
        db.document("tenants", tenant_id).set({
            "tenant_id": tenant_id, "display_name": tenant_id, "tier": "standard", "status": "active",
            "deployment_model": "multi-tenant", "billing_start": f"{period}-01", "deleted_at": None,
            "created_at": now, "billing_profile": None, "tier_history": [{"tier": "standard", "at": now}]})
    control.put_budget("watched", {"monthly_limit": "1000000", "action": "block"})
    hooks.add("watched", {"url": receiver.url})

    def usage(tenant_id: str, quantity: str = "1.5") -> CloudEvent:
        return CloudEvent({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//bench",
                           "id": uuid.uuid4().hex}, {"tenant_id": tenant_id, "meter": "workflow_minutes",
                                                     "quantity": quantity})

    rates: dict[str, list[float]] = {"plain": [], "watched": []}
    for _ in range(2):  # interleaved, best of two: the machine is shared
        for tenant_id in ("plain", "watched"):
            seconds = in_threads([usage(tenant_id) for _ in range(EVENTS)], lambda e: billing.ingest([e], "bench"))
            rates[tenant_id].append(EVENTS / seconds)
    plain_rate, watched_rate = max(rates["plain"]), max(rates["watched"])

    # A million events of this month, as counters: 1,000,000 events over the days so far, all four meters.
    days = [f"{period}-{d:02d}" for d in range(1, now.day + 1)]
    per_doc = 1_000_000 // (len(days) * 4 * 16)
    batch, written = db.batch(), 0
    for day in days:
        for meter in book.meters:
            for shard in range(16):
                batch.set(db.document("tenants", "million", "usage_shards", f"{day}_{meter}_{shard:02d}"), {
                    "tenant_id": "million", "period": period, "day": day, "meter": meter, "count": per_doc,
                    "units": per_doc, "micros": 0, "max_micros": 2_000_000, "written_at": now})
                written += 1
                if written % 400 == 0:
                    batch.commit()
                    batch = db.batch()
    batch.commit()
    control.put_budget("million", {"monthly_limit": "500.00"})
    p50, p95 = _spend_ms(control, "million")
    # The same after the daily rollup: the days before today in one rollup document, today's counters live.
    billing.usage.roll_up("million", now.date().isoformat())
    left = len(list(db.collection("tenants/million/usage_shards").stream()))
    rolled_p50, rolled_p95 = _spend_ms(control, "million")

    # Webhook deliveries per second: DELIVERIES events to one webhook, attempts made by THREADS workers.
    hooks.publish_step = lambda *a: None
    hooked = hooks.add("hooked", {"url": receiver.url})
    for n in range(DELIVERIES):
        event = events.new_event("ai.energent.billing.budget.crossed.v1", "//energent.ai/billing",
                                 {"tenant_id": "hooked", "threshold_pct": n}, subject="hooked")
        hooks.fan_out(events.from_structured(json.loads(events.to_structured_json(event))))
    keys = [d.id for d in db.collection("webhook_deliveries").stream() if d.get("webhook_id") == hooked["id"]]
    delivered_s = in_threads(keys, lambda key: hooks.attempt(key, 0))
    delivered = sum(1 for k in receiver.times if k.startswith("hooked/"))

    # Crossing to delivery, through Pub/Sub: usage crosses 80 % of each tenant's limit at a random moment.
    hooks.publish_step = publisher("webhook-deliveries")
    crossing_latency = through_pubsub(project, control, hooks, billing, receiver, usage)
    return [
        f"{'hot tenant ingest, no budget':<58} {plain_rate:>10,.0f} events/s",
        f"{'hot tenant ingest, budget (block) and webhook set':<58} {watched_rate:>10,.0f} events/s "
        f"({watched_rate / plain_rate:.2f}x)",
        f"{'GET spend, 1,000,000 events this month (counters)':<58} p50 {p50:,.0f} ms, p95 {p95:,.0f} ms "
        f"({written} counter documents, {SPEND_CALLS} calls)",
        f"{'  the same after the daily rollup':<58} p50 {rolled_p50:,.0f} ms, p95 {rolled_p95:,.0f} ms "
        f"({left} documents: the rollup and today's counters)",
        f"{'webhook deliveries to a receiver on 127.0.0.1':<58} {delivered / delivered_s:>10,.0f}/s "
        f"({delivered} delivered, signed, {THREADS} workers)",
        f"{'usage crossing a threshold -> webhook delivered':<58} p50 {statistics.median(crossing_latency):.1f} s, "
        f"p95 {_p95(crossing_latency):.1f} s, max {max(crossing_latency):.1f} s ({len(crossing_latency)} crossings; "
        "10 s window + 2 s)",
    ]


def _spend_ms(control, tenant_id: str) -> tuple[float, float]:
    """p50 and p95 in ms of SPEND_CALLS calls of GET spend's work."""
    times = []
    for _ in range(SPEND_CALLS):
        started = time.perf_counter()
        control.spend(tenant_id)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, _p95(times) * 1000


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def through_pubsub(project, control, hooks, billing, receiver, usage) -> list[float]:
    """Consumers pull spend-events, tenant-events and webhook-deliveries as the deployments would be pushed them."""
    import random

    from google.cloud import pubsub_v1

    from energent_shared import events

    subscriber = pubsub_v1.SubscriberClient()
    handlers = {"spend-events": lambda e: control.on_step(e["type"], e.get_data()),
                "tenant-events": hooks.fan_out,
                "webhook-deliveries": lambda e: hooks.on_step(e["type"], e.get_data())}
    stop = threading.Event()
    paths = {}
    for topic in handlers:
        path = subscriber.subscription_path(project, f"{topic}-bench")
        subscriber.create_subscription(request={"name": path, "topic": f"projects/{project}/topics/{topic}",
                                                "ack_deadline_seconds": 60})
        paths[topic] = path

    def consume(topic: str) -> None:
        while not stop.is_set():
            response = subscriber.pull(request={"subscription": paths[topic], "max_messages": 10}, timeout=5)
            for received in response.received_messages:
                event = events.from_pubsub_message(events.PubSubMessage(
                    received.message.data, dict(received.message.attributes), received.message.message_id))
                threading.Thread(target=lambda e=event, a=received.ack_id: (handlers[topic](e), subscriber.acknowledge(
                    request={"subscription": paths[topic], "ack_ids": [a]}))).start()

    workers = [threading.Thread(target=consume, args=(topic,), daemon=True) for topic in handlers for _ in range(2)]
    for worker in workers:
        worker.start()
    sent: dict[str, float] = {}
    tenants = [f"cross-{i:02d}" for i in range(CROSSING_TENANTS)]
    for tenant_id in tenants:
        control.put_budget(tenant_id, {"monthly_limit": "1000.00", "thresholds": [80]})
        hooks.add(tenant_id, {"url": receiver.url, "events": ["budget.crossed"]})
    time.sleep(12)  # every instance's budget cache has seen the budgets (production: 10 s)
    for tenant_id in tenants:
        time.sleep(random.uniform(0, 3))
        sent[tenant_id] = time.monotonic()
        billing.ingest([usage(tenant_id, "1000000")], "bench")  # standard: about 7,150.00, past 800.00 at once
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(1 for k in receiver.times if k.split("/")[0] in sent) < len(sent):
        time.sleep(0.2)
    stop.set()
    return [receiver.times[k] - sent[k.split("/")[0]] for k in receiver.times if k.split("/")[0] in sent]


if __name__ == "__main__":
    main()
