"""Billing entry points (functions/registry.yaml): `billing_handler` meters usage CloudEvents and closes periods
from billing-events; `billing_http` serves usage ingestion, usage and invoice reads, SLA reports and closes."""

from __future__ import annotations

import datetime
import os
from functools import cache
from pathlib import Path

import flask
import functions_framework

from billing import periods, pricing
from billing.service import Billing
from billing.store import PeriodStatus, TenantCache, UsageStore
from billing.usage import CLOSE_TYPE
from energent_shared import clients, events
from energent_shared.guard import default_guard
from energent_shared.http import Problem, Router, http_function, json_response, read_body, read_json, tenant_id_param
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")
router = Router()
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 1024 * 1024
# The build step puts the repository's config/ beside main.py; from a checkout it is two levels up.
PRICE_BOOK = next(p for p in (Path(__file__).parent / "config" / "pricing.json",
                              Path(__file__).resolve().parents[2] / "config" / "pricing.json") if p.exists())


@cache
def service() -> Billing:
    bucket = os.environ.get("INVOICE_BUCKET")
    if not bucket:
        raise RuntimeError("INVOICE_BUCKET is not set")
    db = clients.firestore()
    return Billing(pricing.load(Path(os.environ.get("PRICE_BOOK", PRICE_BOOK))), UsageStore(db), PeriodStatus(db),
                   TenantCache(db), db, bucket, clients.storage)


@router.route("POST", "/v1/usage")
def post_usage(request: flask.Request) -> flask.Response:
    default_guard().require(request, "usage:write")
    body = read_body(request, max_bytes=MAX_BATCH_BYTES)
    batch = events.from_http(request.content_type, dict(request.headers), body)
    if len(batch) > MAX_BATCH_EVENTS:
        raise Problem(413, f"a batch holds at most {MAX_BATCH_EVENTS} events; this one has {len(batch)}")
    if not batch:
        raise Problem(400, "the batch is empty")
    return json_response(service().ingest(batch, via="http"), 202)


@router.route("GET", "/v1/tenants/{tenant_id}/usage")
def get_usage(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "usage:read", tenant_id_param(tenant_id))
    period = request.args.get("period") or periods.of(datetime.datetime.now(datetime.UTC))
    return json_response(service().usage_of(tenant_id, period))


@router.route("POST", "/v1/tenants/{tenant_id}/sla-reports")
def post_sla_report(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().report_sla(tenant_id_param(tenant_id), read_json(request)), 201)


@router.route("POST", "/v1/billing/periods/{period}:close")
def close_period(request: flask.Request, period: str) -> flask.Response:
    default_guard().require(request, "tenants:admin")
    return json_response(service().close(period))


@router.route("GET", "/v1/tenants/{tenant_id}/invoices")
def list_invoices(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    return json_response(service().invoices(tenant_id, request.args.get("page_size"), request.args.get("page_token")))


@router.route("GET", "/v1/tenants/{tenant_id}/invoices/{period}")
def get_invoice(request: flask.Request, tenant_id: str, period: str) -> flask.Response:
    default_guard().require(request, "billing:read", tenant_id_param(tenant_id))
    return json_response(service().invoice(tenant_id, period))


@functions_framework.http
@http_function
def billing_http(request: flask.Request) -> flask.Response:
    return router.dispatch(request)


@functions_framework.cloud_event
@events.event_function
def billing_handler(push) -> None:
    """Usage events are counted exactly once (a redelivery is a duplicate); malformed ones are recorded as
    rejected and acknowledged. Storage errors raise, so Pub/Sub delivers again."""
    try:
        event = events.from_pubsub_push(push)
    except events.InvalidEvent as invalid:
        service().ingest([invalid], via="pubsub")
        return
    if event["type"] == CLOSE_TYPE:
        data = event.get_data() if isinstance(event.get_data(), dict) else {}
        # Cloud Scheduler's payload is fixed, so without a period the month that just ended is closed.
        period = data.get("period") or periods.preceding(periods.of(datetime.datetime.now(datetime.UTC)))
        try:
            service().close(period)
        except Problem as problem:  # not ended, or malformed: retrying would not change that
            log_event(logger, "period.close_refused", period=period, detail=problem.detail)
        return
    service().ingest([event], via="pubsub")
