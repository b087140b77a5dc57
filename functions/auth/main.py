"""Auth entry points (functions/registry.yaml): `auth_http` serves the OAuth2 and client API;
`rotate_signing_key` handles Secret Manager notifications on auth-events; `on_tenant_event` revokes the
clients of deleted tenants from tenant-events."""

from __future__ import annotations

from functools import cache, wraps

import flask
import functions_framework

from auth.oauth import NO_STORE, OAuthError, client_credentials, read_form
from auth.service import Auth, tenant_deleted
from auth.settings import auth_settings
from auth.store import ClientStore, RevocationStore, SigningKeyStore
from energent_shared import clients, events
from energent_shared.config import settings
from energent_shared.firestore import valid_tenant_id
from energent_shared.guard import ALL_SCOPES, Guard, Principal
from energent_shared.http import Problem, Router, http_function, json_response, read_json, tenant_id_param
from energent_shared.logging import get_logger, log_event
from energent_shared.revocation import is_revoked

logger = get_logger("auth")
router = Router()
TENANT_DELETED = "ai.energent.tenant.deleted.v1"
TENANT_UPDATED = "ai.energent.tenant.updated.v1"
GONE = ("deleting", "deleted")


@cache
def service() -> Auth:
    config, own = settings(), auth_settings()
    db = clients.firestore()
    return Auth(own, config.token_issuer, config.token_audience, ClientStore(db), RevocationStore(db),
                SigningKeyStore(own.signing_key_secret, own.key_cache_ttl_s), db)


@cache
def guard() -> Guard:
    return Guard(service().verifier, trust_userinfo=settings().trust_gateway_userinfo, is_revoked=is_revoked)


def oauth_endpoint(handler):
    """OAuth endpoints answer errors in RFC 6749 §5.2's shape, not as problems."""

    @wraps(handler)
    def wrapped(request: flask.Request, **params) -> flask.Response:
        try:
            return handler(request, **params)
        except OAuthError as error:
            return error.response()

    return wrapped


@router.route("POST", "/v1/oauth/token")
@oauth_endpoint
def token(request: flask.Request) -> flask.Response:
    form = read_form(request)
    given = client_credentials(request, form)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
    return json_response(service().issue_token(given, form.get("scope")), headers=NO_STORE)


@router.route("POST", "/v1/oauth/introspect")
def introspect(request: flask.Request) -> flask.Response:
    caller = guard().claims(request)
    form = _token_form(request)
    answer = service().introspect(form["token"], caller)  # 401 first if the caller's own token is revoked
    Guard.authorize(Principal.from_claims(caller), "tokens:introspect")
    return json_response(answer, headers=NO_STORE)


@router.route("POST", "/v1/oauth/revoke")
@oauth_endpoint
def revoke(request: flask.Request) -> flask.Response:
    form = read_form(request)
    given = client_credentials(request, form)
    if not form.get("token"):
        raise OAuthError("invalid_request", "token is required")
    service().revoke(given, form["token"])
    return flask.Response(status=200, headers=NO_STORE)


def _token_form(request: flask.Request) -> dict[str, str]:
    try:
        form = read_form(request)
    except OAuthError as error:
        raise Problem(error.status, error.description) from None
    if not form.get("token"):
        raise Problem(400, "token is required")
    return form


@router.route("GET", "/.well-known/jwks.json")
def jwks(request: flask.Request) -> flask.Response:
    return json_response(service().jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.route("GET", "/.well-known/openid-configuration")
def discovery(request: flask.Request) -> flask.Response:
    issuer = settings().token_issuer
    return json_response({
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/v1/oauth/token",
        "introspection_endpoint": f"{issuer}/v1/oauth/introspect",
        "revocation_endpoint": f"{issuer}/v1/oauth/revoke",
        "grant_types_supported": ["client_credentials"],
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
def create_client(request: flask.Request, tenant_id: str) -> flask.Response:
    caller = guard().require(request, "clients:write", tenant_id_param(tenant_id))
    body = read_json(request)
    created = service().create_client(tenant_id, body, caller.client_id, caller.scopes)
    return json_response(created, 201, headers={**NO_STORE,
                                                "Location": f"/v1/tenants/{tenant_id}/clients/{created['client_id']}"})


@router.route("GET", "/v1/tenants/{tenant_id}/clients")
def list_clients(request: flask.Request, tenant_id: str) -> flask.Response:
    guard().require(request, "clients:write", tenant_id_param(tenant_id))
    return json_response(service().list_clients(tenant_id, request.args.get("page_size"),
                                                request.args.get("page_token")))


@router.route("DELETE", "/v1/tenants/{tenant_id}/clients/{client_id}")
def delete_client(request: flask.Request, tenant_id: str, client_id: str) -> flask.Response:
    caller = guard().require(request, "clients:write", tenant_id_param(tenant_id))
    service().delete_client(tenant_id, client_id, caller.client_id)
    return flask.Response(status=204)


@functions_framework.http
@http_function
def auth_http(request: flask.Request) -> flask.Response:
    return router.dispatch(request)


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
    data = event.get_data() if isinstance(event.get_data(), dict) else {}
    # Clients stop working as soon as deletion starts, not only when the namespace is gone.
    if event["type"] != TENANT_DELETED and not (event["type"] == TENANT_UPDATED and data.get("status") in GONE):
        return
    tenant_id = event.get("subject")
    if not valid_tenant_id(tenant_id):
        log_event(logger, "tenant_event.malformed", reason="subject is not a tenant id", event_id=event["id"])
        return
    tenant_deleted(ClientStore(clients.firestore()), tenant_id)
