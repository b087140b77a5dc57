"""Portal sessions (functions/auth/auth/portal.py): one-time links redeemed by the portal's client, on the auth
function under functions-framework, the Firestore emulator and the Secret Manager stand-in."""

import datetime
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from auth.settings import auth_settings
from energent_shared import clients, secrets
from energent_shared.guard import TENANT_SCOPES
from local import provision
from tests.conftest import PROJECT
from tests.integration.test_auth import (
    ISSUER,
    OPERATOR,
    OPERATOR_ID,
    OPERATOR_SECRET,
    SIGNING,
    add_tenant,
    auth_http,
    basic,
    bearer,
    new_client,
    operator_token,
)
from tests.support import run_threads

PORTAL = f"projects/{PROJECT}/secrets/portal-client"
PORTAL_ID, PORTAL_SECRET = "energent-portal", "portal-" + "p" * 40


@pytest.fixture
def env(firestore_db, secret_manager, monkeypatch):
    provision.secrets(secret_manager.address, {
        SIGNING: provision.new_signing_key(),
        OPERATOR: json.dumps({"client_id": OPERATOR_ID, "client_secret": OPERATOR_SECRET}).encode(),
        PORTAL: json.dumps({"client_id": PORTAL_ID, "client_secret": PORTAL_SECRET}).encode()})
    for name, value in {"SIGNING_KEY_SECRET": SIGNING, "OPERATOR_CLIENT_SECRET": OPERATOR,
                        "PORTAL_CLIENT_SECRET": PORTAL, "TOKEN_ISSUER": ISSUER, "KEY_ACTIVATION_DELAY_S": "0",
                        "KEY_CACHE_TTL_S": "0"}.items():
        monkeypatch.setenv(name, value)
    auth_settings.cache_clear()
    secrets.invalidate()
    clients.reset()
    add_tenant(firestore_db, "acme")
    add_tenant(firestore_db, "globex")
    yield firestore_db
    auth_settings.cache_clear()


@pytest.fixture
def http(env):
    with auth_http() as client:
        yield client


def open_link(http, tenant_id="acme", token=None):
    response = http.post(f"/v1/tenants/{tenant_id}/portal-sessions", headers=bearer(token or operator_token(http)))
    assert response.status_code == 201, response.json()
    return response.json()


def code_of(link: dict) -> str:
    return parse_qs(urlsplit(link["url"]).query)["code"][0]


def redeem(http, code, client=(PORTAL_ID, PORTAL_SECRET)):
    return http.post("/v1/oauth/token", data={"grant_type": "authorization_code", "code": code},
                     headers=basic(*client))


def refresh(http, handle):
    return http.post("/v1/oauth/token", data={"grant_type": "refresh_token", "refresh_token": handle},
                     headers=basic(PORTAL_ID, PORTAL_SECRET))


def active(http, token) -> bool:
    response = http.post("/v1/oauth/introspect", data={"token": token},
                         headers=bearer(operator_token(http, "tokens:introspect")))
    assert response.status_code == 200
    return response.json()["active"]


def test_a_link_is_a_code_on_the_issuer_s_portal_stored_only_as_its_hash(http, env):
    link = open_link(http)
    assert link["url"].startswith(f"{ISSUER}/portal/login?code=")
    expires = datetime.datetime.fromisoformat(link["expires_at"])
    assert datetime.timedelta(minutes=9) < expires - datetime.datetime.now(datetime.UTC) <= datetime.timedelta(
        minutes=10)
    code = code_of(link)
    assert len(code) >= 43  # 256 bits
    stored = [snapshot.to_dict() for snapshot in env.collection("portal_codes").stream()]
    assert len(stored) == 1 and code not in json.dumps(stored, default=str)


def test_the_portal_redeems_a_link_once_for_a_session_of_the_tenant_with_every_tenant_scope(http, env):
    issued = redeem(http, code_of(open_link(http)))
    assert issued.status_code == 200, issued.json()
    assert issued.headers["Cache-Control"] == "no-store"
    body = issued.json()
    assert body["tenant_id"] == "acme"
    assert set(body["scope"].split()) == TENANT_SCOPES
    assert 0 < body["expires_in"] <= 900 and 3500 < body["refresh_token_expires_in"] <= 3600
    claims = http.post("/v1/oauth/introspect", data={"token": body["access_token"]},
                       headers=bearer(operator_token(http, "tokens:introspect"))).json()
    assert claims["active"] and claims["tenant_id"] == "acme" and claims["client_id"] == OPERATOR_ID
    assert claims["sid"] and body["refresh_token"] not in json.dumps(
        [s.to_dict() for s in env.collection("portal_sessions").stream()], default=str)
    # The session reaches its own tenant only.
    assert http.get("/v1/tenants/acme/clients", headers=bearer(body["access_token"])).status_code == 200
    assert http.get("/v1/tenants/globex/clients", headers=bearer(body["access_token"])).status_code == 403
    # Fresh access tokens from the handle, until the session ends.
    again = refresh(http, body["refresh_token"])
    assert again.status_code == 200 and again.json()["tenant_id"] == "acme"
    assert "refresh_token" not in again.json()


def test_a_link_used_again_is_refused_and_ends_the_session_it_started(http, env):
    code = code_of(open_link(http))
    first = redeem(http, code).json()
    second = redeem(http, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert "already used" in second.json()["error_description"]
    assert not active(http, first["access_token"])
    assert refresh(http, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_an_expired_link_and_an_unknown_one_are_refused(http, env):
    code = code_of(open_link(http))
    for snapshot in env.collection("portal_codes").stream():
        snapshot.reference.update({"expires_at": datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)})
    expired = redeem(http, code)
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]
    unknown = redeem(http, "x" * 43)
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"


def test_racing_redemptions_of_one_link_start_exactly_one_session(http, env):
    code = code_of(open_link(http))
    statuses = run_threads(6, lambda _: redeem(http, code).status_code)
    assert sorted(statuses) == [200] + [400] * 5


def test_only_the_portal_redeems_links_and_the_portal_gets_no_token_of_its_own(http, env):
    code = code_of(open_link(http))
    refused = redeem(http, code, client=(OPERATOR_ID, OPERATOR_SECRET))
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    assert redeem(http, code, client=(PORTAL_ID, "wrong")).status_code == 401
    own = http.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(PORTAL_ID,
                                                                                                  PORTAL_SECRET))
    assert own.status_code == 400 and own.json()["error"] == "unauthorized_client"
    assert redeem(http, code).status_code == 200  # the refused attempts did not use it up


def client_token(http, created, scope=None):
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = http.post("/v1/oauth/token", data=form, headers=basic(created["client_id"], created["client_secret"]))
    return response.json()["access_token"]


def test_a_tenant_client_opens_its_own_portal_with_its_own_scopes_and_the_session_dies_with_it(http, env):
    created = new_client(http, "acme", scopes=("billing:read", "usage:read"))
    token = client_token(http, created)
    assert http.post("/v1/tenants/globex/portal-sessions", headers=bearer(token)).status_code == 403
    narrow = client_token(http, created, "usage:read")
    assert http.post("/v1/tenants/acme/portal-sessions", headers=bearer(narrow)).status_code == 403
    session = redeem(http, code_of(open_link(http, "acme", token))).json()
    assert set(session["scope"].split()) == {"billing:read", "usage:read"}
    # A session cannot open another, which would outlive it.
    assert http.post("/v1/tenants/acme/portal-sessions",
                     headers=bearer(session["access_token"])).status_code == 403
    assert active(http, session["access_token"])
    deleted = http.delete(f"/v1/tenants/acme/clients/{created['client_id']}", headers=bearer(operator_token(http)))
    assert deleted.status_code == 204
    assert not active(http, session["access_token"])
    assert refresh(http, session["refresh_token"]).json()["error"] == "invalid_grant"


def test_signing_out_and_the_session_s_end_stop_its_tokens(http, env):
    first = redeem(http, code_of(open_link(http))).json()
    revoked = http.post("/v1/oauth/revoke", data={"token": first["refresh_token"]},
                        headers=basic(PORTAL_ID, PORTAL_SECRET))
    assert revoked.status_code == 200
    assert not active(http, first["access_token"])
    assert refresh(http, first["refresh_token"]).json()["error"] == "invalid_grant"

    second = redeem(http, code_of(open_link(http))).json()
    assert active(http, second["access_token"])
    for snapshot in env.collection("portal_sessions").stream():
        snapshot.reference.update({"ends_at": datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)})
    assert not active(http, second["access_token"])
    assert "ended" in refresh(http, second["refresh_token"]).json()["error_description"]


def test_a_tenant_being_deleted_ends_its_sessions_and_gets_no_link(http, env):
    session = redeem(http, code_of(open_link(http))).json()
    env.document("tenants/acme").update({"status": "deleting"})
    assert not active(http, session["access_token"])
    assert refresh(http, session["refresh_token"]).json()["error"] == "invalid_grant"
    assert http.post("/v1/tenants/acme/portal-sessions", headers=bearer(operator_token(http))).status_code == 409
    assert http.post("/v1/tenants/nobody/portal-sessions", headers=bearer(operator_token(http))).status_code == 404


def test_revoking_the_token_that_asked_for_links_ends_what_it_opened(http, env):
    """RFC 7009 for the creator's token: its sessions stop at once, its unused links give nothing, and the revocation
    outlives the token itself while a session of it could."""
    created = new_client(http, "acme", scopes=("billing:read",))
    token = client_token(http, created)
    session = redeem(http, code_of(open_link(http, "acme", token))).json()
    unused = code_of(open_link(http, "acme", token))
    assert active(http, session["access_token"])
    revoked = http.post("/v1/oauth/revoke", data={"token": token},
                        headers=basic(created["client_id"], created["client_secret"]))
    assert revoked.status_code == 200
    assert not active(http, session["access_token"])
    assert refresh(http, session["refresh_token"]).json()["error"] == "invalid_grant"
    assert "revoked" in redeem(http, unused).json()["error_description"]
    entry = next(env.collection("revoked_tokens").stream()).to_dict()
    longest_session = max(s.to_dict()["ends_at"] for s in env.collection("portal_sessions").stream())
    assert entry["expire_at"] >= longest_session
    # The client's other tokens, and sessions they open, are untouched.
    again = redeem(http, code_of(open_link(http, "acme", client_token(http, created)))).json()
    assert active(http, again["access_token"])
