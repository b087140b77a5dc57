"""Webhooks on the Firestore emulator and the Secret Manager stand-in, delivering to a receiver on 127.0.0.1: signed
as Standard Webhooks says (verified with the `standardwebhooks` package, not our code), retried with backoff until a
2xx or the last attempt, one delivery per event and webhook, the secret never readable from Firestore."""

import datetime
import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from billing import webhooks
from billing.errors import Invalid, NotFound
from billing.secret_box import SecretBox
from billing.store.invoices import Invoices
from billing.store.tenant_records import TenantCache
from billing.store.webhooks import Webhooks
from billing.webhook_service import ATTEMPT_TYPE, TICK_TYPE, WebhookService
from energent_shared import clients, events
from tests.integration.test_billing import LAST_MONTH, add_tenant, close, make_billing, usage
from tests.support import run_threads

KEY_SECRET = "projects/test/secrets/webhook-secret-key"


class Receiver:
    """An HTTP server on 127.0.0.1 answering each POST with the next status of `answers` (then the last one)."""

    def __init__(self, answers=(204,)):
        self.answers = list(answers)
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                              "body": body, "path": self.path, "at": time.time()})
                    status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/energent"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def box(firestore_db, secret_manager):
    clients.reset()  # settings read before the stand-in's address was set
    client = clients.secret_manager()
    client.create_secret(request={"parent": "projects/test", "secret_id": "webhook-secret-key",
                                  "secret": {"replication": {"automatic": {}}}})
    client.add_secret_version(request={"parent": KEY_SECRET, "payload": {"data": b"k" * 32}})
    return SecretBox(KEY_SECRET)


class Steps:
    """webhook-deliveries in process: attempts queued, run by `drain` with their real waits."""

    def __init__(self):
        self.queue: queue.Queue = queue.Queue()

    def __call__(self, event_type: str, data: dict) -> None:
        self.queue.put((event_type, data))

    def drain(self, service: WebhookService, until=lambda: False, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not until():
            assert time.monotonic() < deadline, "the deliveries did not get there in time"
            try:
                event_type, data = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            service.on_step(event_type, data)


@pytest.fixture
def steps():
    return Steps()


def service_for(db, box, steps, **settings) -> WebhookService:
    return WebhookService(Webhooks(db), Invoices(db), TenantCache(db), box, steps,
                          lambda: datetime.datetime.now(datetime.UTC), local=True, **settings)


@pytest.fixture
def service(firestore_db, box, steps):
    return service_for(firestore_db, box, steps, retry_scale=0.002)


def crossing(tenant_id="acme", threshold=80) -> events.CloudEvent:
    event = events.new_event("ai.energent.billing.budget.crossed.v1", "//energent.ai/billing", {
        "tenant_id": tenant_id, "period": "2026-05", "threshold_pct": threshold, "net": "81.00",
        "monthly_limit": "100.00"}, subject=tenant_id)
    return events.from_structured(json.loads(events.to_structured_json(event)))


def verified(secret: str, request: dict) -> dict:
    """The payload, verified by the standardwebhooks package against the request's own headers."""
    return Webhook(secret).verify(request["body"], {k: request["headers"][k] for k in (
        "webhook-id", "webhook-timestamp", "webhook-signature")})


def test_a_crossing_is_delivered_signed_as_standard_webhooks_says(service, steps, receiver, firestore_db):
    add_tenant(firestore_db)
    created = service.add("acme", {"url": receiver.url, "events": ["budget.crossed"]})
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 6 + 32
    event = crossing()
    assert service.fan_out(event) == 1 and service.fan_out(event) == 0  # once per event and webhook
    steps.drain(service, until=lambda: len(receiver.received) == 1)
    request = receiver.received[0]
    payload = verified(created["secret"], request)
    assert payload["type"] == "ai.energent.billing.budget.crossed.v1" and payload["id"] == event["id"]
    assert payload["data"]["threshold_pct"] == 80 and payload["subject"] == "acme"
    assert request["headers"]["webhook-id"] == event["id"]
    assert request["headers"]["content-type"] == "application/cloudevents+json"
    assert abs(int(request["headers"]["webhook-timestamp"]) - time.time()) < 30
    with pytest.raises(Exception):  # noqa: B017 - another secret does not verify
        Webhook(webhooks.new_secret()).verify(request["body"], request["headers"])
    log = service.deliveries("acme", created["id"])["deliveries"]
    assert log == [{"event_id": event["id"], "type": "budget.crossed", "attempts": 1, "status": "delivered",
                    "last_status_code": 204}]


def test_failed_attempts_are_retried_each_signed_afresh_until_a_2xx(firestore_db, box, steps):
    add_tenant(firestore_db)
    receiver = Receiver(answers=(500, 503, 200))
    try:
        service = service_for(firestore_db, box, steps, retry_scale=0.05)
        created = service.add("acme", {"url": receiver.url})
        service.fan_out(crossing())
        steps.drain(service, until=lambda: len(receiver.received) == 1)
        log = service.deliveries("acme", created["id"])["deliveries"][0]
        assert (log["status"], log["attempts"], log["last_status_code"]) == ("pending", 1, 500)
        assert "next_attempt_at" in log
        steps.drain(service, until=lambda: len(receiver.received) == 3)
    finally:
        receiver.close()
    # Each attempt carries its own timestamp and a signature over it, which verifies on its own.
    assert all(verified(created["secret"], r)["id"] == receiver.received[0]["headers"]["webhook-id"]
               for r in receiver.received)
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert gaps[0] >= 15 * 0.05 * 0.8 and gaps[1] >= 60 * 0.05 * 0.8  # backoff grows: 15 s, then 60 s (scaled)
    log = service.deliveries("acme", created["id"])["deliveries"][0]
    assert (log["status"], log["attempts"], log["last_status_code"]) == ("delivered", 3, 200)


def test_a_delivery_that_never_succeeds_is_failed_after_its_last_attempt(firestore_db, box, steps):
    add_tenant(firestore_db)
    receiver = Receiver(answers=(302,))  # a redirect is never followed: it is a failed attempt
    try:
        service = service_for(firestore_db, box, steps, retry_scale=0.0005)
        created = service.add("acme", {"url": receiver.url})
        service.fan_out(crossing())

        def over():
            found = service.deliveries("acme", created["id"])["deliveries"]
            return found and found[0]["status"] == "failed"
        steps.drain(service, until=over, timeout_s=30)
    finally:
        receiver.close()
    log = service.deliveries("acme", created["id"])["deliveries"][0]
    assert (log["status"], log["attempts"], log["last_status_code"]) == ("failed", webhooks.MAX_ATTEMPTS, 302)
    assert len(receiver.received) == webhooks.MAX_ATTEMPTS and "next_attempt_at" not in log


def test_an_attempt_step_delivered_twice_attempts_once(service, steps, receiver, firestore_db):
    add_tenant(firestore_db)
    service.add("acme", {"url": receiver.url})
    service.fan_out(crossing())
    event_type, data = steps.queue.get_nowait()
    run_threads(6, lambda i: service.on_step(event_type, dict(data)))
    assert len(receiver.received) == 1


def test_later_retries_wait_for_the_tick(firestore_db, box, steps):
    add_tenant(firestore_db)
    receiver = Receiver(answers=(500, 500, 500, 200))
    try:
        service = service_for(firestore_db, box, steps)  # the real schedule: 15 s, 60 s, 240 s
        moment = {"now": datetime.datetime.now(datetime.UTC)}
        service.clock = lambda: moment["now"]
        service.sleep = lambda s: moment.update(now=moment["now"] + datetime.timedelta(seconds=s))
        created = service.add("acme", {"url": receiver.url})
        service.fan_out(crossing())
        steps.drain(service, until=lambda: len(receiver.received) == 2 and steps.queue.empty())
        log = service.deliveries("acme", created["id"])["deliveries"][0]
        assert (log["attempts"], log["status"]) == (2, "pending")  # the next, a minute away, is the tick's
        for _ in range(2):
            due = events.parse_time(service.deliveries("acme", created["id"])["deliveries"][0]["next_attempt_at"])
            moment["now"] = due - datetime.timedelta(minutes=2)
            service.on_step(TICK_TYPE, {})
            assert steps.queue.empty()  # nothing falls due within the next minute yet
            moment["now"] = due - datetime.timedelta(seconds=30)
            service.on_step(TICK_TYPE, {})
            assert [t for t, _ in list(steps.queue.queue)] == [ATTEMPT_TYPE]
            attempts = len(receiver.received)
            steps.drain(service, until=lambda attempts=attempts: len(receiver.received) == attempts + 1)
    finally:
        receiver.close()
    assert service.deliveries("acme", created["id"])["deliveries"][0]["status"] == "delivered"


def test_invoice_events_carry_the_document_and_only_subscribed_types_are_delivered(firestore_db, bucket_name, box,
                                                                                  steps, receiver):
    billing = make_billing(firestore_db, bucket_name)
    service = service_for(firestore_db, box, steps)
    published = []
    billing.announce = billing.closer.announce = lambda kind, document: published.append(events.from_structured({
        "specversion": "1.0", "id": f"{document['number']}-{kind}", "source": "//energent.ai/billing",
        "type": f"ai.energent.billing.invoice.{kind}.v1", "subject": document["tenant_id"],
        "data": {"tenant_id": document["tenant_id"], "number": document["number"]}}))
    add_tenant(firestore_db, billing_start=f"{LAST_MONTH}-01")
    issued_hook = service.add("acme", {"url": receiver.url, "events": ["invoice.issued", "credit_note.issued"]})
    paid_hook = service.add("acme", {"url": receiver.url + "?paid", "events": ["invoice.paid"]})
    billing.ingest([usage(quantity="1500", time=f"{LAST_MONTH}-10T12:00:00Z")], "http")
    close(billing, LAST_MONTH)
    billing.pay("acme", LAST_MONTH, {"reference": "BANK-1"})
    billing.credit("acme", LAST_MONTH, {"reason": "goodwill", "amount": "1.00"})
    assert sum(service.fan_out(event) for event in published) == 3
    steps.drain(service, until=lambda: len(receiver.received) == 3)
    by_type = {}
    for request in receiver.received:
        hook = paid_hook if "paid" in request["path"] else issued_hook
        payload = verified(hook["secret"], request)
        by_type[payload["type"]] = payload["data"]
    invoice = billing.invoice("acme", LAST_MONTH)
    assert by_type["ai.energent.billing.invoice.issued.v1"]["number"] == invoice["number"]
    assert by_type["ai.energent.billing.invoice.issued.v1"]["lines"] == invoice["lines"]
    assert by_type["ai.energent.billing.invoice.paid.v1"]["payments"][0]["reference"] == "BANK-1"
    note = by_type["ai.energent.billing.credit_note.issued.v1"]
    assert note["invoice_number"] == invoice["number"] and note["net"] == "-1.00"


@pytest.fixture
def bucket_name(emulators):
    return clients.storage().create_bucket(f"invoices-{uuid.uuid4().hex[:10]}").name


def test_the_secret_is_shown_once_and_firestore_holds_only_what_cannot_sign(service, firestore_db, receiver):
    add_tenant(firestore_db)
    created = service.add("acme", {"url": receiver.url})
    listed = service.listing("acme")["webhooks"]
    assert listed == [{"id": created["id"], "url": receiver.url, "events": sorted(webhooks.EVENT_TYPES),
                       "created_at": created["created_at"]}]
    stored = json.dumps([s.to_dict() for s in firestore_db.collection("tenants/acme/webhooks").stream()], default=str)
    key = created["secret"].removeprefix("whsec_")
    assert created["secret"] not in stored and key not in stored
    record = firestore_db.document(f"tenants/acme/webhooks/{created['id']}").get().to_dict()
    other = SecretBox(KEY_SECRET)
    assert other.open(record["secret"], f"acme/{created['id']}") == created["secret"]
    with pytest.raises(Exception):  # noqa: B017 - bound to its webhook: another's context does not open it
        other.open(record["secret"], "acme/wh-0000000000000000")
    service.remove("acme", created["id"])
    assert service.listing("acme")["webhooks"] == []
    assert firestore_db.document(f"tenants/acme/webhooks/{created['id']}").get().get("secret") is None
    with pytest.raises(NotFound):
        service.remove("acme", created["id"])


@pytest.mark.parametrize("url, local", [
    ("http://example.com/hook", False), ("http://127.0.0.1:8080/x", False), ("https://127.0.0.1/x", False),
    ("https://10.0.0.5/x", False), ("https://169.254.169.254/latest", False), ("https://[::1]/x", False),
    ("https://[::ffff:10.0.0.1]/x", False), ("https://100.64.1.1/x", False), ("https://user:pw@example.com/x", False),
    ("https://metadata.google.internal/x", False), ("https://localhost/x", True), ("ftp://example.com/x", True),
    ("http://10.0.0.1:80/x", True),
])
def test_urls_that_could_reach_inside_are_refused(service, firestore_db, url, local):
    add_tenant(firestore_db)
    service.local = local
    with pytest.raises(Invalid):
        service.add("acme", {"url": url})


def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(service, steps, firestore_db, receiver):
    """In the cloud a host name is resolved and checked at every attempt: `localhost` resolves to loopback."""
    from billing.delivery import post

    outcome = post("https://localhost:9/x", b"{}", {}, local=False)
    assert outcome.status is None and "not public" in outcome.error
    outcome = post(receiver.url, b"{}", {}, local=False)  # plain http to 127.0.0.1 is for the local stack only
    assert outcome.status is None and not receiver.received
