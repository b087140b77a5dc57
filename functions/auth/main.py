"""Auth entry points (functions/registry.yaml): `auth_http` serves the OAuth2 and client API;
`rotate_signing_key` handles Secret Manager notifications on auth-events; `on_tenant_event` revokes the
clients of deleted tenants from tenant-events.

`auth_http` is asynchronous (functions-framework runs it on Starlette under uvicorn): one event loop lets
concurrent requests share their Firestore reads — the client and tenant records a token request reads, the
revocations an introspection checks. Work that blocks — Firestore writes, Secret Manager — runs in worker
threads.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache, wraps

import functions_framework
import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from auth.oauth import NO_STORE, OAuthError, client_credentials, read_form
from auth.service import Auth, introspection, tenant_deleted
from auth.settings import auth_settings
from auth.store import ClientStore, RevocationStore, SigningKeyStore
from energent_shared import clients, events, secrets, tenants
from energent_shared.asgi import asgi_function, json_response, read_body, read_json
from energent_shared.clock import rfc3339, utcnow
from energent_shared.config import settings
from energent_shared.firestore import valid_tenant_id
from energent_shared.guard import ALL_SCOPES, Guard, Principal, revoked_token
from energent_shared.http import Problem, Router, json_document, require_media_type, tenant_id_param
from energent_shared.logging import get_logger, log_event
from energent_shared.revocation import SharedReads

logger = get_logger("auth")
router = Router()


@cache
def service() -> Auth:
    config, own = settings(), auth_settings()
    db = clients.firestore()
    return Auth(own, config.token_issuer, config.token_audience, ClientStore(db, shared_reads), RevocationStore(db),
                SigningKeyStore(own.signing_key_secret, own.key_cache_ttl_s), db)


@cache
def guard() -> Guard:
    return Guard(service().verifier)


@clients.per_event_loop
def shared_reads() -> SharedReads:
    return SharedReads()


async def keys_loaded() -> None:
    """Verifying a token or publishing the JWKS needs the signing keys, listed off the event loop."""
    await service().keys_loaded()


async def operator_loaded() -> None:
    """Client authentication compares with the operator's credentials, from Secret Manager through a cache: once
    it has expired it is refilled here in a worker thread, as `keys_loaded` does for the keys. The portal's
    client likewise."""
    secret = auth_settings().operator_client_secret
    if not secret or not secrets.is_fresh(secret):
        await asyncio.to_thread(service().operator_credentials)
    portal = auth_settings().portal_client_secret
    if portal and not secrets.is_fresh(portal):
        await asyncio.to_thread(service().portal_credentials)


async def caller(request: Request, scope: str, tenant_id: str | None = None) -> Principal:
    """The guard's `require`, with the revocation check shared with concurrent requests."""
    await keys_loaded()
    claims = guard().claims(request)
    if (await shared_reads().revoked([claims]))[0]:
        raise revoked_token()
    return Guard.authorize(Principal.from_claims(claims), scope, tenant_id)


def oauth_endpoint(handler):
    """OAuth endpoints answer errors in RFC 6749 §5.2's shape, not as problems."""

    @wraps(handler)
    async def wrapped(request: Request, **params) -> Response:
        try:
            return await handler(request, **params)
        except OAuthError as error:
            return error.response()

    return wrapped


@router.route("POST", "/v1/oauth/token")
@oauth_endpoint
async def token(request: Request) -> Response:
    form = await read_form(request)
    given = client_credentials(request, form)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type not in GRANT_TYPES:
        raise OAuthError("unsupported_grant_type", f"grant_type must be one of {', '.join(GRANT_TYPES)}")
    await operator_loaded()
    if grant_type == "client_credentials":
        issued = await service().issue_token(given, form.get("scope"))
    else:  # the portal's sign-in links and sessions (auth/portal.py)
        issued = await service().portal_grant(given, grant_type, form)
    return json_response(issued, headers=NO_STORE)


GRANT_TYPES = ("client_credentials", "authorization_code", "refresh_token")


@router.route("POST", "/v1/oauth/introspect")
async def introspect(request: Request) -> Response:
    """RFC 7662. The caller's own revocation is read with the subject's (401 first if the caller's is revoked)."""
    await keys_loaded()
    claims = guard().claims(request)
    form = await _token_form(request)
    subject = service().valid_claims(form["token"])
    revoked = await shared_reads().revoked([claims, subject] if subject else [claims])
    if revoked[0]:
        raise revoked_token()
    Guard.authorize(Principal.from_claims(claims), "tokens:introspect")
    return json_response(introspection(subject, any(revoked[1:])), headers=NO_STORE)


@router.route("POST", "/v1/oauth/revoke")
@oauth_endpoint
async def revoke(request: Request) -> Response:
    form = await read_form(request)
    given = client_credentials(request, form)
    if not form.get("token"):
        raise OAuthError("invalid_request", "token is required")
    await operator_loaded()
    grant = await service().authenticate_client(given)
    if service().is_portal(grant):  # the portal signs out: its token is a session handle
        await asyncio.to_thread(service().end_portal_session, form["token"])
    else:
        await asyncio.to_thread(service().revoke, grant, form["token"])
    return Response(status_code=200, headers=NO_STORE)


async def _token_form(request: Request) -> dict[str, str]:
    try:
        form = await read_form(request)
    except OAuthError as error:
        raise Problem(error.status, error.description) from None
    if not form.get("token"):
        raise Problem(400, "token is required")
    return form


@router.route("GET", "/.well-known/jwks.json")
async def jwks(request: Request) -> Response:
    await keys_loaded()
    return json_response(service().jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.route("GET", "/.well-known/openid-configuration")
async def discovery(request: Request) -> Response:
    issuer = settings().token_issuer
    return json_response({
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/v1/oauth/token",
        "introspection_endpoint": f"{issuer}/v1/oauth/introspect",
        "revocation_endpoint": f"{issuer}/v1/oauth/revoke",
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "scopes_supported": sorted(ALL_SCOPES),
        "access_token_signing_alg_values_supported": ["ES256"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
    }, headers={"Cache-Control": "public, max-age=300"})


@router.route("POST", "/v1/tenants/{tenant_id}/clients")
async def create_client(request: Request, tenant_id: str) -> Response:
    principal = await caller(request, "clients:write", tenant_id_param(tenant_id))
    body = await read_json(request)
    created = await asyncio.to_thread(service().create_client, tenant_id, body, principal.client_id,
                                      principal.scopes)
    return json_response(created, 201, headers={**NO_STORE,
                                                "Location": f"/v1/tenants/{tenant_id}/clients/{created['client_id']}"})


@router.route("GET", "/v1/tenants/{tenant_id}/clients")
async def list_clients(request: Request, tenant_id: str) -> Response:
    await caller(request, "clients:write", tenant_id_param(tenant_id))
    listed = await asyncio.to_thread(service().list_clients, tenant_id, request.query_params.get("page_size"),
                                     request.query_params.get("page_token"))
    return json_response(listed)


@router.route("DELETE", "/v1/tenants/{tenant_id}/clients/{client_id}")
async def delete_client(request: Request, tenant_id: str, client_id: str) -> Response:
    principal = await caller(request, "clients:write", tenant_id_param(tenant_id))
    await asyncio.to_thread(service().delete_client, tenant_id, client_id, principal.client_id)
    return Response(status_code=204)


@router.route("POST", "/v1/tenants/{tenant_id}/portal-sessions")
async def create_portal_session(request: Request, tenant_id: str) -> Response:
    """A one-time sign-in link to the tenant's portal (auth/portal.py): the operator, or the tenant with
    `billing:read`; the session acts with the creator's scopes."""
    principal = await caller(request, "billing:read", tenant_id_param(tenant_id))
    raw = await read_body(request, max_bytes=4096)
    if raw.strip():
        require_media_type(request, ("application/json",))
    body = json_document(raw) if raw.strip() else {}
    created = await asyncio.to_thread(service().open_portal_session, tenant_id, body, principal)
    return json_response(created, 201, headers=NO_STORE)


@router.route("POST", "/v1/keys:rotate")
async def rotate_keys(request: Request) -> Response:
    """Rotate now, exactly as Secret Manager's scheduled rotation does: its notification goes to auth-events, and
    the rotation deployment adds one key version (once, however often the message is delivered). 409 while the
    key of an earlier rotation has not activated yet."""
    principal = await caller(request, "tenants:admin")
    service().signing_keys.invalidate()  # as they are now: another instance may have rotated a moment ago
    await keys_loaded()
    pending = service().pending_key(utcnow())
    if pending is not None:
        raise Problem(409, f"signing key version {pending.number} was added by an earlier rotation and signs from "
                           f"{rfc3339(pending.activates_at, 'seconds')}; rotate again after that")
    secret = auth_settings().signing_key_secret
    notified_at = rfc3339(utcnow())
    message_id = await asyncio.to_thread(
        events.publish_raw, auth_settings().auth_events_topic, json.dumps({"name": secret}).encode(),
        {"eventType": "SECRET_ROTATE", "secretId": secret, "dataFormat": "JSON_V1", "timestamp": notified_at})
    log_event(logger, "key.rotation_requested", caller=principal.client_id, message_id=message_id)
    return json_response({"status": "rotating", "secret": secret, "requested_at": notified_at}, status=202)


@functions_framework.aio.http
@asgi_function
async def auth_http(request: Request) -> Response:
    handler, params = router.find(request.method, request.url.path)
    return await handler(request, **params)


@functions_framework.cloud_event
@events.event_function
def rotate_signing_key(push) -> None:
    """Secret Manager's own notification (not a CloudEvent): attributes eventType, secretId, timestamp."""
    try:
        message = events.pubsub_message(push)
    except events.InvalidEvent as invalid:
        log_event(logger, "rotation.malformed", reason=invalid.reason)
        return
    service().rotate(message)


@functions_framework.cloud_event
@events.event_function
def on_tenant_event(push) -> None:
    """Revokes every client of a tenant being deleted; other tenant events are not auth's concern."""
    try:
        event = events.from_pubsub_push(push)
    except events.InvalidEvent as invalid:
        log_event(logger, "tenant_event.malformed", reason=invalid.reason)
        return
    data = event.get_data()
    status = data.get("status") if isinstance(data, dict) else None
    # Clients stop working as soon as deletion starts, not only when the namespace is gone.
    going = event["type"] == tenants.UPDATED and status in tenants.GONE
    if event["type"] != tenants.DELETED and not going:
        return
    tenant_id = event.get("subject")
    if not valid_tenant_id(tenant_id):
        log_event(logger, "tenant_event.malformed", reason="subject is not a tenant id", event_id=event["id"])
        return
    tenant_deleted(ClientStore(clients.firestore()), tenant_id)
