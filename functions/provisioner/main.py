"""Provisioner entry points (functions/registry.yaml): `provisioner_http` serves the tenant API;
`on_flux_event` takes Flux's notifications from provisioning-events and moves tenants on."""

from __future__ import annotations

from functools import cache

import flask
import functions_framework

from energent_shared import clients, events
from energent_shared.errors import NotFound
from energent_shared.firestore import valid_tenant_id
from energent_shared.guard import default_guard
from energent_shared.http import Router, http_function, json_response, read_json, tenant_id_param
from energent_shared.logging import get_logger, log_event
from energent_shared.tenants import EVENT_SOURCE
from provisioner import flux, routes
from provisioner.psks import PreSharedKeys
from provisioner.service import RERENDER_STEP, InvalidStep, Provisioner, view
from provisioner.settings import provisioner_settings
from provisioner.store import ManifestStore, RerenderRuns, TenantStore

logger = get_logger("provisioner")
router = Router()
ADMIN = "tenants:admin"


@cache
def service() -> Provisioner:
    own = provisioner_settings()
    return Provisioner(TenantStore(clients.firestore()), ManifestStore(own.platform.manifest_bucket), own.platform,
                       own.tenant_events_topic, events.publish, RerenderRuns(clients.firestore()),
                       lambda step: events.publish(own.provisioning_events_topic,
                                                   events.new_event(RERENDER_STEP, EVENT_SOURCE, step)),
                       PreSharedKeys(own.platform.tenants_project))  # hybrid tunnels' keys: the tenants' project


def check_routes() -> None:
    """The route watchdog's run (provisioner.routes): on the platform's VPN router, when the platform has one. A
    check that fails is logged as an ERROR (an alert) and acknowledged: the next minute's run is the retry."""
    platform = provisioner_settings().platform
    if not platform.vpn_addresses:
        log_event(logger, "routes.skipped", reason="no HA VPN gateway configured (HYBRID_VPN_ADDRESSES)")
        return
    try:
        service().check_routes(routes.RouterRoutes(platform.project, platform.region, platform.vpn_router))
    except Exception:
        logger.exception("route check failed", extra={"json_fields": {"event": "routes.check_failed"}})


@router.route("POST", "/v1/tenants")
def create_tenant(request: flask.Request) -> flask.Response:
    default_guard().require(request, ADMIN)
    created = service().create(read_json(request))
    return json_response(created, 202, headers={"Location": f"/v1/tenants/{created['tenant_id']}"})


@router.route("GET", "/v1/tenants")
def list_tenants(request: flask.Request) -> flask.Response:
    default_guard().require(request, ADMIN)
    return json_response(service().list(request.args.get("page_size"), request.args.get("page_token"),
                                        request.args.get("status")))


@router.route("GET", "/v1/tenants/{tenant_id}")
def get_tenant(request: flask.Request, tenant_id: str) -> flask.Response:
    """The operator reads any tenant, deleted ones included; a tenant reads only itself."""
    principal = default_guard().require_own_or(request, ADMIN, tenant_id_param(tenant_id))
    record = service().get(tenant_id)
    if principal.is_tenant and record["status"] == "deleted":
        raise NotFound(f"tenant {tenant_id} does not exist")
    return json_response(view(record))


@router.route("GET", "/v1/tenants/{tenant_id}/site")
def get_site(request: flask.Request, tenant_id: str) -> flask.Response:
    """A hybrid tenant's connection as the customer's side configures it, pre-shared keys included (operator)."""
    default_guard().require(request, ADMIN)
    return json_response(service().site(tenant_id_param(tenant_id)), headers={"Cache-Control": "no-store"})


@router.route("PATCH", "/v1/tenants/{tenant_id}")
def patch_tenant(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, ADMIN)
    status, body = service().patch(tenant_id_param(tenant_id), read_json(request))
    return json_response(body, status)


@router.route("DELETE", "/v1/tenants/{tenant_id}")
def delete_tenant(request: flask.Request, tenant_id: str) -> flask.Response:
    default_guard().require(request, ADMIN)
    return json_response(service().delete(tenant_id_param(tenant_id)), 202)


@router.route("POST", "/v1/tenants:rerender")
def rerender_tenants(request: flask.Request) -> flask.Response:
    """Every tenant's manifests rendered again (after a tier-table or platform change), in the background."""
    default_guard().require(request, ADMIN)
    run = service().start_rerender(read_json(request, optional=True))
    return json_response(run, 202, headers={"Location": f"/v1/rerenders/{run['run_id']}"})


@router.route("GET", "/v1/rerenders/{run_id}")
def get_rerender(request: flask.Request, run_id: str) -> flask.Response:
    default_guard().require(request, ADMIN)
    return json_response(service().rerender_run(run_id))


@functions_framework.http
@http_function
def provisioner_http(request: flask.Request) -> flask.Response:
    return router.dispatch(request)


@functions_framework.cloud_event
@events.event_function
def on_flux_event(push) -> None:
    """Flux's events are plain JSON messages, not CloudEvents. Unknown, malformed or stale ones are logged and
    acknowledged: redelivering them would change nothing. The steps of a re-render run (structured CloudEvents)
    share the topic; a step that fails on storage raises, so Pub/Sub delivers it again."""
    try:
        message = events.pubsub_message(push)
        if message.attribute("content-type") == events.STRUCTURED:
            step = events.from_pubsub_message(message)
            if step["type"] == routes.ROUTES_CHECK:  # Cloud Scheduler, every minute (infra/modules/functions)
                check_routes()
                return
            if step["type"] != RERENDER_STEP:
                raise flux.Ignored(f"a {step['type'][:100]!r} event is not for the provisioner")
            service().rerender_step(step.get_data())
            return
        outcome = flux.parse(message.data)
    except (events.InvalidEvent, flux.Ignored, InvalidStep) as ignored:
        log_event(logger, "flux.ignored", reason=str(ignored))
        return
    service().on_flux(outcome)


SPEND_BLOCKED = "ai.energent.billing.spend.blocked.v1"
SPEND_UNBLOCKED = "ai.energent.billing.spend.unblocked.v1"


@functions_framework.cloud_event
@events.event_function
def on_spend_event(push) -> None:
    """tenant-events: billing blocked or unblocked a tenant for its spend (`data.generation` numbers billing's
    changes); the tenant's manifests are rendered with the workflow limit that follows and delivered. Every other
    event on the topic, and anything malformed, is acknowledged; a storage error raises, so Pub/Sub delivers again."""
    try:
        event = events.from_pubsub_push(push)
    except events.InvalidEvent as invalid:
        log_event(logger, "spend_event.malformed", reason=invalid.reason)
        return
    if event["type"] not in (SPEND_BLOCKED, SPEND_UNBLOCKED) or event.get("source") != "//energent.ai/billing":
        return
    data, tenant_id = event.get_data(), event.get("subject")
    generation = data.get("generation") if isinstance(data, dict) else None
    if not valid_tenant_id(tenant_id) or type(generation) is not int or generation < 1:
        log_event(logger, "spend_event.malformed", reason="needs subject (a tenant) and data.generation")
        return
    try:
        service().spend_block(tenant_id, event["type"] == SPEND_BLOCKED, generation)
    except NotFound:
        log_event(logger, "spend_event.unknown_tenant", tenant_id=tenant_id)
