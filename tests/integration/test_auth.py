"""The auth function under functions-framework, on the Firestore emulator and the Secret Manager stand-in."""

import asyncio
import base64
import json
import time
import uuid

import pytest
from functions_framework import create_app
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from starlette.testclient import TestClient

from auth.settings import auth_settings
from auth.store import ClientStore, SigningKeyStore
from energent_shared import clients, firestore, secrets
from local import provision
from tests.conftest import PROJECT, ROOT
from tests.support import CountingClient, run_threads

SOURCE = str(ROOT / "functions" / "auth" / "main.py")
ISSUER = "https://api.test.energent.ai"
SIGNING = f"projects/{PROJECT}/secrets/auth-signing-key"
OPERATOR = f"projects/{PROJECT}/secrets/operator-client"
OPERATOR_ID, OPERATOR_SECRET = "energent-operator", "operator-" + "s" * 40


@pytest.fixture
def env(firestore_db, secret_manager, monkeypatch):
    provision.secrets(secret_manager.address, {
        SIGNING: provision.new_signing_key(),
        OPERATOR: json.dumps({"client_id": OPERATOR_ID, "client_secret": OPERATOR_SECRET}).encode()})
    for name, value in {"SIGNING_KEY_SECRET": SIGNING, "OPERATOR_CLIENT_SECRET": OPERATOR, "TOKEN_ISSUER": ISSUER,
                        "KEY_ACTIVATION_DELAY_S": "0", "KEY_CACHE_TTL_S": "0"}.items():
        monkeypatch.setenv(name, value)
    auth_settings.cache_clear()
    secrets.invalidate()
    clients.reset()
    yield firestore_db
    auth_settings.cache_clear()


def auth_http():
    """The HTTP deployment as functions-framework builds it (an ASGI app), served in process."""
    return TestClient(create_app("auth_http", SOURCE, "http"))


@pytest.fixture
def http(env):
    with auth_http() as client:
        yield client


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def operator_token(http, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = http.post("/v1/oauth/token", data=form, headers=basic(OPERATOR_ID, OPERATOR_SECRET))
    assert response.status_code == 200, response.json()
    return response.json()["access_token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def add_tenant(db, tenant_id="acme", tier="premium", status="active"):
    db.document("tenants", tenant_id).set({"tenant_id": tenant_id, "tier": tier, "status": status})


def new_client(http, tenant_id="acme", scopes=("usage:read", "clients:write"), token=None):
    response = http.post(f"/v1/tenants/{tenant_id}/clients", json={"scopes": list(scopes), "name": "ci"},
                         headers=bearer(token or operator_token(http)))
    assert response.status_code == 201, response.json()
    return response.json()


def client_token(http, created, scope=None):
    form = {"grant_type": "client_credentials", "client_id": created["client_id"],
            "client_secret": created["client_secret"], **({"scope": scope} if scope else {})}
    return http.post("/v1/oauth/token", data=form)


def introspect(http, token):
    return http.post("/v1/oauth/introspect", data={"token": token},
                     headers=bearer(operator_token(http, "tokens:introspect"))).json()


# --- the token endpoint ---------------------------------------------------------------------------------------

def test_operator_token_verifies_with_an_independent_jose_library_from_the_jwks_alone(http):
    response = http.post("/v1/oauth/token", data={"grant_type": "client_credentials"},
                         headers=basic(OPERATOR_ID, OPERATOR_SECRET))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    jwks = http.get("/.well-known/jwks.json")
    assert jwks.headers["Cache-Control"] == "public, max-age=300"
    verified = jose_jwt.decode(body["access_token"], KeySet.import_key_set(jwks.json()), algorithms=["ES256"])
    assert verified.header["typ"] == "at+jwt" and verified.header["kid"] in {k["kid"] for k in jwks.json()["keys"]}
    claims = verified.claims
    assert {"iss", "sub", "client_id", "aud", "iat", "nbf", "exp", "jti", "scope"} <= set(claims)
    assert claims["iss"] == ISSUER and claims["aud"] == "energent-api" and claims["sub"] == OPERATOR_ID
    assert "tenant_id" not in claims
    assert set(claims["scope"].split()) == {"tenants:admin", "tokens:introspect", "usage:write", "clients:write",
                                            "usage:read", "billing:read", "billing:write"}


def test_client_authentication_by_form_fields_and_narrowed_scope(http):
    response = http.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": OPERATOR_ID,
                                                  "client_secret": OPERATOR_SECRET, "scope": "usage:read"})
    assert response.status_code == 200 and response.json()["scope"] == "usage:read"


@pytest.mark.parametrize("data, headers, status, error", [
    ({"grant_type": "client_credentials"}, basic(OPERATOR_ID, "wrong"), 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, basic("cl_000000000000000000000000", "x"), 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
    ({}, basic(OPERATOR_ID, OPERATOR_SECRET), 400, "invalid_request"),
    ({"grant_type": "password"}, basic(OPERATOR_ID, OPERATOR_SECRET), 400, "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "scope": "fly"}, basic(OPERATOR_ID, OPERATOR_SECRET), 400,
     "invalid_scope"),
    ({"grant_type": "client_credentials", "client_id": OPERATOR_ID}, basic(OPERATOR_ID, OPERATOR_SECRET), 400,
     "invalid_request"),
])
def test_token_errors_follow_rfc6749_section_5_2(http, data, headers, status, error):
    response = http.post("/v1/oauth/token", data=data, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_token_requests_must_be_forms_with_single_parameters(http):
    as_json = http.post("/v1/oauth/token", json={"grant_type": "client_credentials"},
                        headers=basic(OPERATOR_ID, OPERATOR_SECRET))
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    repeated = http.post("/v1/oauth/token", content="grant_type=client_credentials&grant_type=client_credentials",
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  **basic(OPERATOR_ID, OPERATOR_SECRET)})
    assert repeated.json()["error_description"] == "parameter 'grant_type' is repeated"


def test_failed_client_authentication_is_logged_without_the_secret(http, capsys):
    http.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(OPERATOR_ID, "hunter2-xyz"))
    logged = capsys.readouterr().out
    assert "client.authentication_failed" in logged and "hunter2-xyz" not in logged


# --- tenant clients --------------------------------------------------------------------------------------------

def test_tenant_clients_need_a_live_tenant(http, env):
    token = operator_token(http)
    missing = http.post("/v1/tenants/acme/clients", json={"scopes": ["usage:read"]}, headers=bearer(token))
    assert missing.status_code == 404 and missing.json()["detail"] == "tenant acme does not exist"
    add_tenant(env, status="deleted")
    gone = http.post("/v1/tenants/acme/clients", json={"scopes": ["usage:read"]}, headers=bearer(token))
    assert gone.status_code == 409
    bad_id = http.post("/v1/tenants/ACME/clients", json={"scopes": ["usage:read"]}, headers=bearer(token))
    assert bad_id.status_code == 400 and "invalid tenant id" in bad_id.json()["detail"]


def test_a_tenant_client_secret_is_shown_once_and_stored_only_as_a_hash(http, env):
    add_tenant(env)
    created = new_client(http)
    assert created["client_secret"] and created["scopes"] == ["clients:write", "usage:read"]
    stored = env.document("oauth_clients", created["client_id"]).get().to_dict()
    assert created["client_secret"] not in json.dumps(stored, default=str)
    assert stored["secret_hash"].startswith("sha256:")
    listed = http.get("/v1/tenants/acme/clients", headers=bearer(operator_token(http))).json()
    assert [c["client_id"] for c in listed["clients"]] == [created["client_id"]]
    assert "client_secret" not in listed["clients"][0] and "secret_hash" not in listed["clients"][0]
    assert listed["next_page_token"] == ""


def test_tenant_tokens_carry_tenant_and_tier_and_narrow_on_request(http, env):
    add_tenant(env, tier="standard")
    created = new_client(http)
    response = client_token(http, created, scope="usage:read")
    claims = introspect(http, response.json()["access_token"])
    assert claims["active"] is True
    assert (claims["tenant_id"], claims["tier"], claims["scope"]) == ("acme", "standard", "usage:read")
    widened = client_token(http, created, scope="usage:read billing:read")
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope"


def test_a_tenant_token_stays_in_its_tenant_and_grants_only_what_it_holds(http, env):
    add_tenant(env)
    add_tenant(env, "globex")
    admin = new_client(http, scopes=["clients:write", "usage:read"])
    token = client_token(http, admin).json()["access_token"]
    other = http.post("/v1/tenants/globex/clients", json={"scopes": ["usage:read"]}, headers=bearer(token))
    assert other.status_code == 403
    assert http.get("/v1/tenants/globex/clients", headers=bearer(token)).status_code == 403
    wider = http.post("/v1/tenants/acme/clients", json={"scopes": ["billing:read"]}, headers=bearer(token))
    assert wider.status_code == 403 and "lacks billing:read" in wider.json()["detail"]
    platform = http.post("/v1/tenants/acme/clients", json={"scopes": ["usage:write"]}, headers=bearer(token))
    assert platform.status_code == 400
    assert http.post("/v1/oauth/introspect", data={"token": token}, headers=bearer(token)).status_code == 403
    own = http.post("/v1/tenants/acme/clients", json={"scopes": ["usage:read"]}, headers=bearer(token))
    assert own.status_code == 201


def test_listing_pages_through_every_client(http, env):
    add_tenant(env)
    token = operator_token(http)
    made = {new_client(http, token=token)["client_id"] for _ in range(5)}
    seen, page_token = [], ""
    while True:
        page = http.get(f"/v1/tenants/acme/clients?page_size=2&page_token={page_token}", headers=bearer(token)).json()
        seen += [c["client_id"] for c in page["clients"]]
        page_token = page["next_page_token"]
        if not page_token:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert http.get("/v1/tenants/acme/clients?page_size=0", headers=bearer(token)).status_code == 400
    assert http.get("/v1/tenants/acme/clients?page_token=%%%", headers=bearer(token)).status_code == 400
    assert http.get("/v1/tenants/acme/clients", params={"page_token": "\xffR"},
                    headers=bearer(token)).status_code == 400  # found by schemathesis: once a 500


def test_deleting_a_client_makes_its_tokens_inactive(http, env):
    add_tenant(env)
    created = new_client(http)
    token = client_token(http, created).json()["access_token"]
    assert http.get("/v1/tenants/acme/clients", headers=bearer(token)).status_code == 200
    operator = operator_token(http)
    assert http.delete(f"/v1/tenants/acme/clients/{created['client_id']}", headers=bearer(operator)).status_code == 204
    assert introspect(http, token) == {"active": False}
    refused = http.get("/v1/tenants/acme/clients", headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["detail"] == "token has been revoked"
    assert client_token(http, created).status_code == 401
    again = http.delete(f"/v1/tenants/acme/clients/{created['client_id']}", headers=bearer(operator))
    assert again.status_code == 404


def test_a_tenant_being_deleted_gets_no_token_from_the_next_request_on(http, env, capsys):
    add_tenant(env)
    created = new_client(http)
    assert client_token(http, created).status_code == 200  # the instance now knows the client's tenant
    for gone in ("deleting", "deleted"):
        add_tenant(env, status=gone)
        refused = client_token(http, created)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        add_tenant(env)
        assert client_token(http, created).status_code == 200
    env.document("tenants", "acme").delete()
    assert client_token(http, created).status_code == 401
    assert capsys.readouterr().out.count('"reason": "tenant_gone"') == 3


def test_the_tenant_read_for_a_token_is_the_one_the_client_record_names(http, env):
    """The instance remembers which tenant a client belongs to, to read both records at once; the client's own
    record, read with it, still decides which tenant counts."""
    add_tenant(env)
    add_tenant(env, "globex", status="deleting")
    created = new_client(http)
    assert client_token(http, created).status_code == 200  # remembered: acme
    env.document("oauth_clients", created["client_id"]).update({"tenant_id": "globex"})
    assert client_token(http, created).status_code == 401
    add_tenant(env, "globex", tier="basic")
    claims = introspect(http, client_token(http, created).json()["access_token"])
    assert (claims["tenant_id"], claims["tier"]) == ("globex", "basic")


def test_a_known_client_and_its_tenant_are_read_in_one_read(env):
    add_tenant(env)
    env.document("oauth_clients", "cl_" + "a" * 24).set({"client_id": "cl_" + "a" * 24, "tenant_id": "acme",
                                                          "active": True})

    async def main():
        counting = CountingClient()
        store = ClientStore(env, lambda: firestore.SharedReads(lambda: counting))
        first = await store.with_tenant("cl_" + "a" * 24)
        second = await store.with_tenant("cl_" + "a" * 24)
        missing = await store.with_tenant("cl_" + "b" * 24)
        return counting.reads, first, second, missing

    reads, first, second, missing = asyncio.run(main())
    assert first == second and first[1]["tenant_id"] == "acme" and missing == (None, None)
    assert reads == [1, 1, 2, 1]  # client, then tenant; then both at once; an unknown client alone


# --- introspection and revocation ------------------------------------------------------------------------------

def test_introspection_says_inactive_for_anything_not_valid(http):
    for token in ("garbage", operator_token(http)[:-4] + "AAAA"):
        assert introspect(http, token) == {"active": False}
    assert http.post("/v1/oauth/introspect", data={"token": "x"}).status_code == 401


def test_a_client_revokes_its_own_token_and_only_its_own(http, env):
    add_tenant(env)
    created = new_client(http)
    token = client_token(http, created).json()["access_token"]
    operator = operator_token(http)
    other = http.post("/v1/oauth/revoke", data={"token": operator},
                      headers=basic(created["client_id"], created["client_secret"]))
    assert other.status_code == 200 and introspect(http, operator)["active"] is True
    assert http.post("/v1/oauth/revoke", data={"token": "junk"},
                     headers=basic(created["client_id"], created["client_secret"])).status_code == 200
    own = http.post("/v1/oauth/revoke", data={"token": token},
                    headers=basic(created["client_id"], created["client_secret"]))
    assert own.status_code == 200 and introspect(http, token) == {"active": False}
    refused = http.post("/v1/oauth/revoke", data={"token": token}, headers=basic(created["client_id"], "nope"))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_discovery_document(http):
    doc = http.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == ISSUER and doc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert doc["token_endpoint"].endswith("/v1/oauth/token") and "client_credentials" in doc["grant_types_supported"]
    assert doc["revocation_endpoint"].endswith("/v1/oauth/revoke")
    assert doc["introspection_endpoint"].endswith("/v1/oauth/introspect")


# --- events: rotation and tenant deletion ------------------------------------------------------------------------

def push(app_client, topic: str, data: bytes, attributes: dict, message_id: str | None = None):
    envelope = {"subscription": f"projects/{PROJECT}/subscriptions/s", "message": {
        "data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id or uuid.uuid4().hex,
        "publishTime": "2026-11-29T10:00:00.000Z"}}
    return app_client.post(f"/projects/{PROJECT}/topics/{topic}", json=envelope)


def rotate_notice(secret=SIGNING, event_type="SECRET_ROTATE", timestamp="2026-11-29T10:00:00.000000Z"):
    return {"eventType": event_type, "secretId": secret, "dataFormat": "JSON_API_V1", "timestamp": timestamp}


def kids(http) -> list[str]:
    return [k["kid"] for k in http.get("/.well-known/jwks.json").json()["keys"]]


def test_rotation_adds_one_key_however_often_the_notice_arrives(http, env, secret_manager):
    rotation = create_app("rotate_signing_key", SOURCE, "cloudevent").test_client()
    old_token = operator_token(http)
    before = kids(http)
    for _ in range(3):
        assert push(rotation, "auth-events", b"{}", rotate_notice(), message_id="m-1").status_code == 200
    after = kids(http)
    assert len(before) == 1 and len(after) == 2 and before[0] in after
    new_kid = (set(after) - set(before)).pop()
    new_token = operator_token(http)
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] == new_kid
    assert introspect(http, old_token)["active"] is True
    assert secret_manager.store.calls["AddSecretVersion"] == 2 + 1  # two seeded secrets, one rotation


def test_other_notifications_and_other_secrets_are_ignored(http, env, secret_manager):
    rotation = create_app("rotate_signing_key", SOURCE, "cloudevent").test_client()
    push(rotation, "auth-events", b"{}", rotate_notice(event_type="SECRET_VERSION_ADD"))
    push(rotation, "auth-events", b"{}", rotate_notice(secret=OPERATOR))
    assert len(kids(http)) == 1


def test_a_disabled_version_leaves_the_jwks(http, env):
    rotation = create_app("rotate_signing_key", SOURCE, "cloudevent").test_client()
    push(rotation, "auth-events", b"{}", rotate_notice())
    assert len(kids(http)) == 2
    clients.secret_manager().disable_secret_version(request={"name": f"{SIGNING}/versions/1"})
    assert len(kids(http)) == 1


def test_with_an_activation_delay_a_new_key_is_published_before_it_signs(env, monkeypatch):
    monkeypatch.setenv("KEY_ACTIVATION_DELAY_S", "300")
    auth_settings.cache_clear()
    rotation = create_app("rotate_signing_key", SOURCE, "cloudevent").test_client()
    with auth_http() as http:
        signing_kid = kids(http)[0]
        push(rotation, "auth-events", b"{}", rotate_notice())
        assert len(kids(http)) == 2
        token = operator_token(http)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"] == signing_kid


def test_while_a_new_key_is_pending_rotations_add_nothing_and_the_api_answers_409(env, monkeypatch,
                                                                                   secret_manager):
    monkeypatch.setenv("KEY_ACTIVATION_DELAY_S", "300")
    auth_settings.cache_clear()
    rotation = create_app("rotate_signing_key", SOURCE, "cloudevent").test_client()
    with auth_http() as http:
        push(rotation, "auth-events", b"{}", rotate_notice())
        added = secret_manager.store.calls["AddSecretVersion"]
        refused = http.post("/v1/keys:rotate", headers=bearer(operator_token(http)))
        assert refused.status_code == 409, refused.text
        assert "version 2" in refused.json()["detail"] and "signs from" in refused.json()["detail"]
        # Another notification (Secret Manager's schedule, or a second request that raced the first) adds nothing.
        for timestamp in ("2026-11-29T10:01:00.000000Z", "2026-11-29T10:02:00.000000Z"):
            assert push(rotation, "auth-events", b"{}", rotate_notice(timestamp=timestamp)).status_code == 200
        assert secret_manager.store.calls["AddSecretVersion"] == added and len(kids(http)) == 2


def test_rotations_racing_each_other_add_one_key(http, env, secret_manager):
    """Two notifications (a schedule and a request, say) handled at the same moment on two instances."""
    apps = [create_app("rotate_signing_key", SOURCE, "cloudevent").test_client() for _ in range(4)]
    added = secret_manager.store.calls["AddSecretVersion"]
    answers = run_threads(len(apps), lambda n: push(apps[n], "auth-events", b"{}", rotate_notice(
        timestamp=f"2026-11-29T10:0{n}:00.000000Z")).status_code)
    assert answers == [200] * 4
    assert secret_manager.store.calls["AddSecretVersion"] == added + 1 and len(kids(http)) == 2


def test_once_the_new_key_is_active_a_rotation_adds_the_next(http, env, secret_manager):
    rotation = create_app("rotate_signing_key", SOURCE, "cloudevent").test_client()
    for timestamp in ("2026-11-29T10:01:00.000000Z", "2026-11-29T10:02:00.000000Z"):
        push(rotation, "auth-events", b"{}", rotate_notice(timestamp=timestamp))
    assert len(kids(http)) == 3  # no activation delay: each key signs at once, and the older ones stay published


def test_tenant_deletion_revokes_every_client(http, env):
    add_tenant(env)
    tokens = [client_token(http, new_client(http)).json()["access_token"] for _ in range(3)]
    events = create_app("on_tenant_event", SOURCE, "cloudevent").test_client()
    deleted = {"specversion": "1.0", "id": "e-1", "source": "//energent.ai/provisioner", "subject": "acme",
               "type": "ai.energent.tenant.deleted.v1", "datacontenttype": "application/json",
               "data": {"tenant_id": "acme", "status": "deleted"}}
    for _ in range(2):  # redelivered
        response = push(events, "tenant-events", json.dumps(deleted).encode(),
                        {"content-type": "application/cloudevents+json"}, message_id="t-1")
        assert response.status_code == 200
    assert all(introspect(http, token) == {"active": False} for token in tokens)
    assert http.get("/v1/tenants/acme/clients", headers=bearer(operator_token(http))).json()["clients"] == []


def test_malformed_tenant_events_are_acknowledged_not_retried(env):
    events = create_app("on_tenant_event", SOURCE, "cloudevent").test_client()
    assert push(events, "tenant-events", b"not json", {"content-type": "application/cloudevents+json"}).status_code \
        == 200


def test_tokens_expire(env, monkeypatch):
    monkeypatch.setenv("TOKEN_TTL_S", "60")
    auth_settings.cache_clear()
    with auth_http() as http:
        token = operator_token(http)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == 60 and claims["exp"] > time.time()


def test_a_revoked_caller_is_refused_introspection_even_without_the_scope(http, env):
    add_tenant(env)
    created = new_client(http, scopes=["usage:read"])
    token = client_token(http, created).json()["access_token"]
    http.post("/v1/oauth/revoke", data={"token": token}, headers=basic(created["client_id"], created["client_secret"]))
    response = http.post("/v1/oauth/introspect", data={"token": token}, headers=bearer(token))
    assert response.status_code == 401 and response.json()["detail"] == "token has been revoked"


def test_the_key_store_says_when_listing_the_keys_would_call_secret_manager(env, secret_manager):
    now = [1000.0]
    store = SigningKeyStore(SIGNING, ttl_s=30, clock=lambda: now[0])
    assert not store.is_fresh()
    store.versions()
    calls = secret_manager.store.calls["ListSecretVersions"]
    assert store.is_fresh()
    now[0] += 29
    assert store.is_fresh() and store.versions() and secret_manager.store.calls["ListSecretVersions"] == calls
    now[0] += 2
    assert not store.is_fresh()
    store.versions()
    assert store.is_fresh()
    store.invalidate()
    assert not store.is_fresh()
