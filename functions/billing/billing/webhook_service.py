"""Webhooks over their adapters: registering them (the secret shown once, stored sealed), turning billing's events on
tenant-events into one delivery per webhook, attempting each delivery (signed afresh, SSRF-safe) until a 2xx or the
last retry, and the delivery log.

Timing: an event arrives on tenant-events moments after it is published; its delivery is created and its first
attempt published at once (well within 30 s). A failed attempt publishes the next one with its time when that is
within a minute (the first retry: 15 s), and the handler waits for it; later ones wait for the minute's tick, which
publishes what falls due within the next minute. Every step is safe to repeat: an attempt runs only if it claims the
delivery for its attempt number.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from billing import webhooks
from billing.crossings import CROSSED_TYPE, SOURCE, wait_until
from billing.errors import Invalid, NotFound
from billing.outcome import Outcome
from billing.secret_box import SecretBox
from billing.store.invoices import Invoices
from billing.store.tenant_records import TenantCache
from billing.store.webhooks import Webhooks, delivery_key
from energent_shared.clock import rfc3339
from energent_shared.firestore import valid_tenant_id
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")
ATTEMPT_TYPE = "ai.energent.billing.webhook.attempt.v1"  # {key, attempt, not_before}
TICK_TYPE = "ai.energent.billing.webhook.tick.v1"  # Cloud Scheduler, every minute
WAIT_S = 45.0  # a retry due within this long is published with its time; later ones wait for the tick
INVOICE_ISSUED = "ai.energent.billing.invoice.issued.v1"
INVOICE_PAID = "ai.energent.billing.invoice.paid.v1"
INVOICE_CREDITED = "ai.energent.billing.invoice.credited.v1"  # announces a credit note: credit_note.issued


@dataclass
class WebhookService:
    webhooks: Webhooks
    invoices: Invoices
    tenants: TenantCache
    box: SecretBox | None  # None where secrets are neither sealed nor opened (the fan-out)
    publish_step: Callable[[str, dict], None]  # onto webhook-deliveries
    clock: Callable[[], datetime.datetime]
    local: bool = False
    retry_scale: float = 1.0
    send: Callable[[str, bytes, dict[str, str], bool], Outcome] = lambda *args: _post(*args)
    sleep: Callable[[float], None] = time.sleep
    user_agent: str = "Energent-Webhooks/1"

    # --- the API ------------------------------------------------------------------------------------------------

    def _tenant(self, tenant_id: str) -> None:
        tenant = self.tenants.get(tenant_id, as_of=self.clock())
        if tenant is None or tenant.get("status") == "deleted":
            raise NotFound(f"tenant {tenant_id} does not exist")

    def add(self, tenant_id: str, body: dict) -> dict:
        """A new webhook: 201 with its secret, shown this once."""
        given = webhooks.parse(body, self.local)
        self._tenant(tenant_id)
        if len(self.webhooks.active(tenant_id)) >= webhooks.MAX_WEBHOOKS:
            raise Invalid(f"a tenant has at most {webhooks.MAX_WEBHOOKS} webhooks; delete one first")
        if self.box is None:
            raise RuntimeError("webhooks are registered where their secrets can be sealed")
        webhook_id = f"wh-{uuid.uuid4().hex[:16]}"
        secret = webhooks.new_secret()
        record = {**given, "webhook_id": webhook_id, "tenant_id": tenant_id, "active": True,
                  "created_at": rfc3339(self.clock(), "milliseconds"),
                  "secret": self.box.seal(secret, f"{tenant_id}/{webhook_id}")}
        self.webhooks.add(tenant_id, record)
        log_event(logger, "webhook.added", tenant_id=tenant_id, webhook_id=webhook_id, events=given["events"])
        return {**webhooks.view(record), "secret": secret}

    def listing(self, tenant_id: str, size: int = 50, page_token: str | None = None) -> dict:
        self._tenant(tenant_id)
        found = self.webhooks.active(tenant_id)
        if page_token:
            ids = [w["webhook_id"] for w in found]
            if page_token not in ids:
                raise Invalid("page_token is not valid")
            found = found[ids.index(page_token) + 1:]
        page = found[:size]
        return {"webhooks": [webhooks.view(w) for w in page],
                "next_page_token": page[-1]["webhook_id"] if len(found) > size else ""}

    def remove(self, tenant_id: str, webhook_id: str) -> None:
        if not self.webhooks.remove(tenant_id, webhook_id):
            raise NotFound(f"tenant {tenant_id} has no webhook {webhook_id}")
        log_event(logger, "webhook.removed", tenant_id=tenant_id, webhook_id=webhook_id)

    def deliveries(self, tenant_id: str, webhook_id: str) -> dict:
        found = self.webhooks.collection(tenant_id).document(webhook_id).get().to_dict()
        if found is None:
            raise NotFound(f"tenant {tenant_id} has no webhook {webhook_id}")
        return {"deliveries": [_delivery_view(d) for d in self.webhooks.deliveries(tenant_id, webhook_id)]}

    # --- events into deliveries ---------------------------------------------------------------------------------

    def payload(self, event) -> tuple[str, dict] | None:
        """(webhook event name, the structured CloudEvent to POST) for one of billing's events; None for others.
        Invoice and credit note events carry the document's JSON."""
        kind, tenant_id, data = event["type"], event.get("subject"), event.get_data()
        if event.get("source") != SOURCE or not valid_tenant_id(tenant_id) or not isinstance(data, dict):
            return None
        document: Mapping
        if kind == CROSSED_TYPE:
            name, document = "budget.crossed", data
        elif kind in (INVOICE_ISSUED, INVOICE_PAID, INVOICE_CREDITED):
            number = data.get("number")
            if not isinstance(number, str):
                return None
            # A payment shows the invoice as it stands now; an issue, the document as issued.
            found = self.invoices.current(tenant_id, number) if kind == INVOICE_PAID else \
                self.invoices.issued_document(tenant_id, number)
            if found is None:
                return None
            name = {INVOICE_ISSUED: "invoice.issued", INVOICE_PAID: "invoice.paid",
                    INVOICE_CREDITED: "credit_note.issued"}[kind]
            document = found[1]
        else:
            return None
        return name, {"specversion": "1.0", "id": event["id"], "source": SOURCE, "type": webhooks.EVENT_TYPES[name],
                      "subject": tenant_id, "time": event.get("time") or rfc3339(self.clock()),
                      "datacontenttype": "application/json", "data": document}

    def fan_out(self, event) -> int:
        """One delivery per webhook of the event's tenant that asked for its type (created once per event and
        webhook); each first attempt published at once. Returns how many deliveries this call created."""
        found = self.payload(event)
        if found is None:
            return 0
        name, payload = found
        tenant_id = payload["subject"]
        body = json.dumps(payload, sort_keys=True, default=str)
        created = 0
        for webhook in self.webhooks.active(tenant_id):
            if name not in webhook["events"]:
                continue
            now = self.clock()
            key = delivery_key(tenant_id, webhook["webhook_id"], payload["id"])
            if not self.webhooks.create_delivery(key, {
                    "tenant_id": tenant_id, "webhook_id": webhook["webhook_id"], "event_id": payload["id"],
                    "type": name, "event": body, "attempts": 0, "status": "pending", "last_status_code": None,
                    "last_error": None, "next_attempt_at": now, "created_at": now,
                    "due_at": now + datetime.timedelta(minutes=1)}):  # the tick's, should this step be lost
                continue
            created += 1
            self._publish_attempt(key, 0, now)
        return created

    def _publish_attempt(self, key: str, attempt: int, not_before: datetime.datetime) -> None:
        try:
            self.publish_step(ATTEMPT_TYPE, {"key": key, "attempt": attempt, "not_before": rfc3339(not_before)})
        except Exception:
            logger.exception("a webhook attempt was not published; the tick publishes it",
                             extra={"json_fields": {"key": key}})

    # --- attempts -----------------------------------------------------------------------------------------------

    def on_step(self, event_type: str, data: object) -> None:
        if event_type == TICK_TYPE:
            self.tick()
            return
        if event_type != ATTEMPT_TYPE or not isinstance(data, dict) or not isinstance(data.get("key"), str) or \
                type(data.get("attempt")) is not int:
            raise Invalid("a webhook attempt step needs data.key and data.attempt")
        wait_until(data.get("not_before"), self.clock, self.sleep)
        self.attempt(data["key"], data["attempt"])

    def attempt(self, key: str, attempt: int) -> str | None:
        """Attempt delivery `key` once more (if `attempt` is still its next one); returns its status after."""
        now = self.clock()
        delivery = self.webhooks.claim(key, attempt, now)
        if delivery is None:
            return None
        tenant_id, webhook_id = delivery["tenant_id"], delivery["webhook_id"]
        webhook = self.webhooks.get(tenant_id, webhook_id)
        if webhook is None or not webhook.get("secret") or self.box is None:
            self.webhooks.record(key, {"status": "failed", "last_error": "the webhook was removed",
                                       "next_attempt_at": None})
            return "failed"
        body = delivery["event"].encode()
        secret = self.box.open(webhook["secret"], f"{tenant_id}/{webhook_id}")
        timestamp = int(time.time())
        headers = {"Content-Type": "application/cloudevents+json", "User-Agent": self.user_agent,
                   "webhook-id": delivery["event_id"], "webhook-timestamp": str(timestamp),
                   "webhook-signature": webhooks.sign(secret, delivery["event_id"], timestamp, body)}
        outcome = self.send(webhook["url"], body, headers, self.local)
        attempts = attempt + 1
        done = {"attempts": attempts, "last_status_code": outcome.status, "last_error": outcome.error,
                "last_attempt_at": self.clock()}
        if outcome.delivered:
            self.webhooks.record(key, {**done, "status": "delivered", "next_attempt_at": None})
            log_event(logger, "webhook.delivered", tenant_id=tenant_id, webhook_id=webhook_id, attempts=attempts)
            return "delivered"
        delay = webhooks.retry_delay_s(attempts, self.retry_scale)
        if delay is None:
            self.webhooks.record(key, {**done, "status": "failed", "next_attempt_at": None})
            log_event(logger, "webhook.failed", severity=logging.WARNING, tenant_id=tenant_id, webhook_id=webhook_id,
                      attempts=attempts, last_status_code=outcome.status)
            return "failed"
        due = self.clock() + datetime.timedelta(seconds=delay)
        if delay <= WAIT_S:
            self.webhooks.record(key, {**done, "next_attempt_at": due, "due_at": due + datetime.timedelta(minutes=1)})
            self._publish_attempt(key, attempts, due)
        else:
            self.webhooks.record(key, {**done, "next_attempt_at": due, "due_at": due})
        return "pending"

    def tick(self) -> int:
        """Publish every attempt falling due within the next minute (with its time), and any whose step was lost."""
        now = self.clock()
        due = self.webhooks.due(now + datetime.timedelta(minutes=1))
        for delivery in due:
            if delivery["status"] != "pending":
                continue
            when = max(delivery["next_attempt_at"], now)
            self.webhooks.deferred(delivery["key"], when + datetime.timedelta(minutes=5))
            self._publish_attempt(delivery["key"], delivery["attempts"], when)
        return len(due)


def _post(url: str, body: bytes, headers: dict[str, str], local: bool) -> Outcome:
    from billing.delivery import post  # ssl and http.client only where deliveries are made

    return post(url, body, headers, local)


def _delivery_view(delivery: dict) -> dict:
    shown = {"event_id": delivery["event_id"], "type": delivery["type"], "attempts": delivery["attempts"],
             "status": delivery["status"], "last_status_code": delivery.get("last_status_code")}
    if delivery["status"] == "pending" and delivery.get("next_attempt_at") is not None:
        shown["next_attempt_at"] = rfc3339(delivery["next_attempt_at"], "seconds")
    return shown
