"""Billing entry points (functions/registry.yaml): `billing_handler` meters usage CloudEvents and runs the steps of
a close from billing-events; `on_tenant_event` issues a tenant's held drafts once its billing profile is set;
`billing_http` serves usage ingestion, usage and invoice reads, documents by number, payments, credit notes, the
customer balance, SLA reports and closes. Domain errors become problems here."""

from __future__ import annotations

import logging
import re
from functools import cache

import flask
import functions_framework

from billing import parties, periods, pricing
from billing.crossings import CheckWindows
from billing.documents import MEDIA, InvoiceFiles
from billing.errors import Conflict, Invalid, NotFound
from billing.secret_box import SecretBox
from billing.service import STEP_TYPES, Billing, build
from billing.settings import billing_settings
from billing.spend_control import SpendControl
from billing.store.budgets import Budgets
from billing.store.invoices import Invoices
from billing.store.spend_blocks import SpendBlocks
from billing.store.spend_checks import SpendChecks
from billing.store.spend_outbox import SpendOutbox
from billing.store.tenant_records import TenantCache
from billing.store.webhooks import Webhooks
from billing.usage import USAGE_TYPE
from billing.webhook_service import WebhookService
from energent_shared import clients, events, tenants
from energent_shared import secrets as secrets_lib
from energent_shared.clock import utcnow
from energent_shared.firestore import valid_tenant_id
from energent_shared.guard import default_guard
from energent_shared.http import (
    Problem,
    Router,
    http_function,
    json_response,
    read_body,
    read_json,
    tenant_id_param,
)
from energent_shared.logging import get_logger, log_event
from energent_shared.paging import page_size_param, page_token_param

logger = get_logger("billing")
router = Router()
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 1024 * 1024
CLOSE_WAIT_S = 20.0  # within the gateway's deadline for the close operation (api-spec.yaml)
EVENT_FIELDS = ("tenant_id", "period", "number", "status", "currency", "net", "vat", "total", "issue_date", "due_date",
                "amount_due", "amount_paid", "payment_reference", "invoice_number", "invoice_date", "replaces")
DOCUMENT_MEDIA = ["application/json", "application/pdf", "text/html", "application/xml"]
SUFFIXES = {"application/pdf": "pdf", "text/html": "html", "application/xml": "xml"}
WEBHOOK_ID = re.compile(r"wh-[0-9a-f]{16}")


def announce_on(topic: str):
    """Invoice events on tenant-events, in the contract's style: subject the tenant, a stable id per document and
    change, so a consumer that sees one twice can tell."""
    def announce(kind: str, document: dict) -> None:
        event = events.new_event(f"ai.energent.billing.invoice.{kind}.v1", "//energent.ai/billing",
                                 {k: document.get(k) for k in EVENT_FIELDS}, subject=document["tenant_id"])
        event["id"] = f"{document['number']}-{kind}"
        events.publish(topic, event)
    return announce


def publish_step(topic: str):
    def dispatch(event_type: str, data: dict) -> None:
        events.publish(topic, events.new_event(event_type, "//energent.ai/billing", data))
    return dispatch


@cache
def service() -> Billing:
    own = billing_settings()
    book = pricing.load(own.price_book)
    billing = build(clients.firestore(), InvoiceFiles(own.invoice_bucket, clients.storage, pricing.meters_of(book)),
                    publish_step(own.billing_events_topic), book, parties.load_seller(own.seller),
                    announce=announce_on(own.tenant_events_topic))
    billing.accepted = spend_windows().accepted  # each counted event: its tenant's spend check scheduled
    return billing


@cache
def spend_windows() -> CheckWindows:
    own = billing_settings()
    return CheckWindows(SpendChecks(clients.firestore()), Budgets(clients.firestore()),
                        publish_step(own.spend_events_topic), utcnow, own.spend_window_s, own.spend_margin_s)


@cache
def webhook_service() -> WebhookService:
    own = billing_settings()
    db = clients.firestore()
    box = SecretBox(secrets_lib.secret_name(own.webhook_key_secret)) if own.webhook_key_secret else None
    return WebhookService(Webhooks(db), Invoices(db, "EUR"), TenantCache(db), box,
                          publish_step(own.webhook_deliveries_topic), utcnow, local=own.local,
                          retry_scale=own.webhook_retry_scale)


@cache
def spend_control() -> SpendControl:
    own = billing_settings()
    db = clients.firestore()

    def publish_event(payload: bytes) -> None:
        events.publish_raw(own.tenant_events_topic, payload, {"content-type": events.STRUCTURED})

    return SpendControl(service(), Budgets(db), SpendBlocks(db), SpendOutbox(db), SpendChecks(db), publish_event,
                        publish_step(own.spend_events_topic), utcnow, cache_s=spend_windows().cache_s,
                        margin_s=own.spend_margin_s)


@router.route("POST", "/v1/usage")
def post_usage(request: flask.Request) -> flask.Response:
    default_guard().require(request, "usage:write")
    body = read_body(request, max_bytes=MAX_BATCH_BYTES)
    try:
        batch = events.from_http(request.content_type, dict(request.headers), body)
    except events.InvalidEnvelope as invalid:
        raise Problem(415 if invalid.unsupported else 400, str(invalid)) from None
    if len(batch) > MAX_BATCH_EVENTS:
        raise Problem(413, f"a batch holds at most {MAX_BATCH_EVENTS} events; this one has {len(batch)}")
    if not batch:
        raise Problem(400, "the batch is empty")
    return json_response(service().ingest(batch, via="http"), 202)


@router.route("GET", "/v1/tenants/{tenant_id}/usage")
def get_usage(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "usage:read", tenant_id_param(tenant_id))
    period = request.args.get("period") or periods.of(utcnow())
    return json_response(service().usage_of(tenant_id, period, request.args.get("granularity") or "month"))


@router.route("POST", "/v1/tenants/{tenant_id}/sla-reports")
def post_sla_report(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().report_sla(tenant_id_param(tenant_id), read_json(request)), 201)


@router.route("POST", "/v1/billing/periods/{period}:close")
def close_period(request: flask.Request, period: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    finished, state = service().close(period, wait_s=CLOSE_WAIT_S)
    if finished:
        return json_response(state)
    return json_response(state, 202, headers={"Location": f"/v1/billing/periods/{period}"})


@router.route("GET", "/v1/billing/periods/{period}")
def get_period(request: flask.Request, period: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().period(period))


@router.route("GET", "/v1/tenants/{tenant_id}/invoices")
def list_invoices(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    return json_response(service().invoices(tenant_id, page_size_param(request.args.get("page_size")),
                                            request.args.get("page_token")))


@router.route("GET", "/v1/tenants/{tenant_id}/invoices/upcoming")  # before {period}: routes match in order
def get_upcoming_invoice(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    return json_response(service().upcoming(tenant_id))


def _media(request: flask.Request, what: str) -> str:
    """JSON by default; the document's PDF, HTML or UBL (application/xml) when the caller's Accept prefers it."""
    if not request.headers.get("Accept"):
        return "application/json"
    media = request.accept_mimetypes.best_match(DOCUMENT_MEDIA)
    if media is None:
        raise Problem(406, f"{what} is available as {', '.join(DOCUMENT_MEDIA)}")
    return media


def _file(body: bytes, media: str, number: str) -> flask.Response:
    suffix = SUFFIXES[media]
    response = flask.Response(body, 200, content_type=MEDIA[suffix])
    response.headers["Content-Disposition"] = f'inline; filename="{number}.{suffix}"'
    return response


@router.route("GET", "/v1/tenants/{tenant_id}/invoices/{period}")
def get_invoice(request: flask.Request, tenant_id: str, period: str) -> flask.Response:
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    media = _media(request, "this invoice")
    found = service().invoice(tenant_id, period)
    if media == "application/json":
        return json_response(found)
    return _file(service().document(tenant_id, period, SUFFIXES[media]), media, found["number"])


@router.route("GET", "/v1/tenants/{tenant_id}/documents/{number}")
def get_document(request: flask.Request, tenant_id: str, number: str) -> flask.Response:
    """Any issued invoice (current, replaced, credited) or credit note of the tenant, by number."""
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    media = _media(request, "this document")
    if media == "application/json":
        return json_response(service().by_number(tenant_id, number))
    return _file(service().archived(tenant_id, number, SUFFIXES[media]), media, number)


@router.route("POST", "/v1/tenants/{tenant_id}/documents/{number}:pay")
def pay_document(request: flask.Request, tenant_id: str, number: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().pay_number(tenant_id_param(tenant_id), number, read_json(request)))


@router.route("GET", "/v1/billing/journal")
def get_journal(request: flask.Request) -> flask.Response:
    """The books' journal (operator): JSON, or CSV for Accept: text/csv."""
    default_guard().require(request, "tenants:admin")
    rows = service().journal(request.args.get("from"), request.args.get("to"))
    if request.headers.get("Accept") and request.accept_mimetypes.best_match(
            ["application/json", "text/csv"]) == "text/csv":
        from billing.journal import to_csv

        return flask.Response(to_csv(rows), 200, content_type="text/csv; charset=utf-8")
    return json_response({"entries": rows})


@router.route("GET", "/v1/billing/vat-returns/{quarter}")
def get_vat_return(request: flask.Request, quarter: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().vat_return(quarter))


@router.route("GET", "/v1/tenants/{tenant_id}/balance")
def get_balance(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    return json_response(service().balance(tenant_id))


@router.route("POST", "/v1/tenants/{tenant_id}/invoices/{period}:pay")
def pay_invoice(request: flask.Request, tenant_id: str, period: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().pay(tenant_id_param(tenant_id), period, read_json(request)))


@router.route("POST", "/v1/tenants/{tenant_id}/invoices/{period}:credit")
def credit_invoice(request: flask.Request, tenant_id: str, period: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().credit(tenant_id_param(tenant_id), period, read_json(request),
                                          key=request.headers.get("Idempotency-Key")), 201)


@router.route("GET", "/v1/tenants/{tenant_id}/credit-notes")
def list_credit_notes(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    token = page_token_param(request.args.get("page_token"))
    return json_response(service().credit_notes(tenant_id, page_size_param(request.args.get("page_size")), token))


# --- spend control: budgets, live spend ----------------------------------------------------------------------

@router.route("PUT", "/v1/tenants/{tenant_id}/budget")
def put_budget(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:write", tenant_id_param(tenant_id))
    return json_response(spend_control().put_budget(tenant_id, read_json(request)))


@router.route("GET", "/v1/tenants/{tenant_id}/budget")
def get_budget(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require_any(request, ("billing:read", "billing:write"), tenant_id_param(tenant_id))
    return json_response(spend_control().budget(tenant_id))


@router.route("DELETE", "/v1/tenants/{tenant_id}/budget")
def delete_budget(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:write", tenant_id_param(tenant_id))
    spend_control().remove_budget(tenant_id)
    return flask.Response(status=204)


@router.route("GET", "/v1/tenants/{tenant_id}/spend")
def get_spend(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require_any(request, ("usage:read", "billing:read"), tenant_id_param(tenant_id))
    return json_response(spend_control().spend(tenant_id))


@router.route("POST", "/v1/tenants/{tenant_id}/credit-grants")
def post_credit_grant(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(spend_control().add_grant(tenant_id_param(tenant_id), read_json(request)), 201)


@router.route("GET", "/v1/tenants/{tenant_id}/credit-grants")
def list_credit_grants(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require_any(request, ("billing:read", "billing:write"), tenant_id_param(tenant_id))
    token = page_token_param(request.args.get("page_token"))
    return json_response(spend_control().grants(tenant_id, page_size_param(request.args.get("page_size")), token))


# --- webhooks -----------------------------------------------------------------------------------------------

@router.route("POST", "/v1/tenants/{tenant_id}/webhooks")
def post_webhook(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:write", tenant_id_param(tenant_id))
    return json_response(webhook_service().add(tenant_id, read_json(request)), 201)


@router.route("GET", "/v1/tenants/{tenant_id}/webhooks")
def list_webhooks(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:write", tenant_id_param(tenant_id))
    token = page_token_param(request.args.get("page_token"))
    return json_response(webhook_service().listing(tenant_id, page_size_param(request.args.get("page_size")), token))


@router.route("DELETE", "/v1/tenants/{tenant_id}/webhooks/{webhook_id}")
def delete_webhook(request: flask.Request, tenant_id: str, webhook_id: str) -> flask.Response:
    default_guard().require(request, "billing:write", tenant_id_param(tenant_id))
    webhook_service().remove(tenant_id, _webhook_id(webhook_id))
    return flask.Response(status=204)


@router.route("GET", "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries")
def list_webhook_deliveries(request: flask.Request, tenant_id: str, webhook_id: str) -> flask.Response:
    default_guard().require(request, "billing:write", tenant_id_param(tenant_id))
    return json_response(webhook_service().deliveries(tenant_id, _webhook_id(webhook_id)))


def _webhook_id(webhook_id: str) -> str:
    if not WEBHOOK_ID.fullmatch(webhook_id):
        raise Problem(404, f"no webhook {webhook_id[:40]!r}")
    return webhook_id


@functions_framework.http
@http_function
def billing_http(request: flask.Request) -> flask.Response:
    return router.dispatch(request)


@functions_framework.cloud_event
@events.event_function
def billing_handler(push) -> None:
    """Usage events are counted exactly once (a redelivery is a duplicate); malformed ones are recorded as
    rejected and acknowledged. Steps of a close are idempotent. Storage errors raise, so Pub/Sub delivers again;
    a request that can never succeed (a malformed step, a period not yet ended) is logged and acknowledged."""
    try:
        event = events.from_pubsub_push(push)
    except events.InvalidEvent as invalid:
        service().ingest([invalid], via="pubsub")
        return
    if event["type"] == USAGE_TYPE or event["type"] not in STEP_TYPES:
        service().ingest([event], via="pubsub")
        return
    data = event.get_data()
    try:
        service().on_step(event["type"], data)
    except (Invalid, NotFound, Conflict) as refused:  # can never succeed: acknowledged
        log_event(logger, "period.close_refused", severity=logging.WARNING, type=event["type"], detail=str(refused))
    except Exception as error:  # Pub/Sub delivers the step again; the alert on a failed close counts these
        log_event(logger, "period.close_step_failed", severity=logging.ERROR, type=event["type"],
                  period=data.get("period") if isinstance(data, dict) else None, error=type(error).__name__)
        raise


@functions_framework.cloud_event
@events.event_function
def on_tenant_event(push) -> None:
    """A tenant changed (tenant-events): once it has a billing profile, its drafts held for one are issued, oldest
    period first. Billing's own invoice events on the same topic, and anything malformed, are acknowledged."""
    try:
        event = events.from_pubsub_push(push)
    except events.InvalidEvent as invalid:
        log_event(logger, "tenant_event.malformed", reason=invalid.reason)
        return
    if event["type"] not in (tenants.CREATED, tenants.UPDATED, tenants.ACTIVATED):
        return
    tenant_id = event.get("subject")
    if not valid_tenant_id(tenant_id):
        log_event(logger, "tenant_event.malformed", reason="subject is not a tenant id", event_id=event["id"])
        return
    try:
        issued = service().issue_held(tenant_id)
    except NotFound:
        return  # not a tenant (any more): nothing is held for it
    if issued:
        log_event(logger, "invoice.held_issued", tenant_id=tenant_id, numbers=[i["number"] for i in issued])


@functions_framework.cloud_event
@events.event_function
def on_spend_step(push) -> None:
    """spend-events: a tenant's spend check (crossings announced once, the block set or lifted), the month's start
    (every tenant with a budget checked) and the minute's sweep. A step that can never succeed is acknowledged;
    a storage or publishing error raises, so Pub/Sub delivers the step again (every step is safe to repeat)."""
    try:
        event = events.from_pubsub_push(push)
        found = spend_control().on_step(event["type"], event.get_data())
    except (events.InvalidEvent, Invalid) as refused:
        log_event(logger, "spend.step_refused", severity=logging.WARNING, detail=str(refused)[:300])
        return
    except Exception as error:
        log_event(logger, "spend.step_failed", severity=logging.ERROR, error=type(error).__name__)
        raise
    if found and found.get("announced"):
        log_event(logger, "spend.checked", **{k: v for k, v in found.items() if k != "net"})


@functions_framework.cloud_event
@events.event_function
def on_webhook_event(push) -> None:
    """tenant-events: each of billing's events a tenant's webhooks asked for becomes one delivery per webhook (once,
    however often the event comes), its first attempt published at once. Other events are acknowledged."""
    try:
        event = events.from_pubsub_push(push)
    except events.InvalidEvent as invalid:
        log_event(logger, "webhook.event_malformed", reason=invalid.reason)
        return
    created = webhook_service().fan_out(event)
    if created:
        log_event(logger, "webhook.deliveries_created", type=event["type"], deliveries=created)


@functions_framework.cloud_event
@events.event_function
def deliver_webhook(push) -> None:
    """webhook-deliveries: one attempt of one delivery (signed afresh, at most once per attempt number), or the
    minute's tick that publishes the attempts falling due. A malformed step is acknowledged; a storage or
    publishing error raises, so Pub/Sub delivers the step again."""
    try:
        event = events.from_pubsub_push(push)
        webhook_service().on_step(event["type"], event.get_data())
    except (events.InvalidEvent, Invalid) as refused:
        log_event(logger, "webhook.step_refused", severity=logging.WARNING, detail=str(refused)[:300])
