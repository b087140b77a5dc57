"""Auth end to end: through the gateway as API Gateway would verify, and at the function directly."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from tests.support import SigningKey, wait_until


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def header_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def private_key(stack):
    pem = stack.secret_manager().access_secret_version(
        request={"name": stack.values["SIGNING_KEY_SECRET"] + "/versions/1"}).payload.data
    return serialization.load_pem_private_key(pem, password=None)


def forged_tokens(stack) -> dict[str, str]:
    real = stack.operator_token()
    kid = header_of(real)["kid"]
    key = private_key(stack)
    now = int(time.time())
    claims = {"iss": stack.url, "aud": "energent-api", "sub": "energent-operator", "client_id": "energent-operator",
              "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex,
              "scope": "tenants:admin clients:write usage:read"}
    headers = {"kid": kid, "typ": "at+jwt"}

    def signed(**changes):
        return jwt.encode({**claims, **changes}, key, algorithm="ES256", headers=headers)

    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_input = f"{b64(json.dumps({'alg': 'HS256', **headers}).encode())}.{b64(json.dumps(claims).encode())}"
    hs256 = f"{hs_input}.{b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())}"
    header, _, signature = real.split(".")
    foreign = SigningKey(kid=kid)
    foreign_unknown = SigningKey()
    return {
        "alg none": jwt.encode(claims, None, algorithm="none", headers=headers),
        "HS256 signed with the public key": hs256,
        "foreign key under a known kid": jwt.encode(claims, foreign.private, algorithm="ES256", headers=headers),
        "tampered payload": f"{header}.{b64(json.dumps({**claims, 'scope': 'tenants:admin'}).encode())}.{signature}",
        "expired": signed(exp=now - 5, iat=now - 700, nbf=now - 700),
        "not yet valid": signed(nbf=now + 300),
        "wrong iss": signed(iss="https://attacker.example"),
        "wrong aud": signed(aud="another-api"),
        "unknown kid": jwt.encode(claims, foreign_unknown.private, algorithm="ES256",
                                  headers={"kid": foreign_unknown.kid, "typ": "at+jwt"}),
    }


@pytest.fixture(scope="module")
def forged(stack):
    return forged_tokens(stack)


@pytest.fixture(scope="module")
def tenant(stack):
    stack.put_document("tenants/acme", {"tenant_id": "acme", "tier": "premium", "status": "active"})
    stack.put_document("tenants/globex", {"tenant_id": "globex", "tier": "basic", "status": "active"})
    return "acme"


CASES = ["alg none", "HS256 signed with the public key", "foreign key under a known kid", "tampered payload",
         "expired", "not yet valid", "wrong iss", "wrong aud", "unknown kid"]


@pytest.mark.parametrize("case", CASES)
def test_forged_tokens_are_refused_at_the_gateway(stack, forged, tenant, case):
    response = requests.get(f"{stack.url}/v1/tenants/acme/clients", timeout=10,
                            headers={"Authorization": f"Bearer {forged[case]}"})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("case", CASES)
def test_forged_tokens_are_refused_by_the_function_called_directly(stack, forged, tenant, case):
    response = requests.get(f"{stack.values['AUTH_FUNCTION_URL']}/v1/tenants/acme/clients", timeout=10,
                            headers={"Authorization": f"Bearer {forged[case]}"})
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"] == "application/problem+json"


def test_the_real_key_with_right_claims_is_accepted_so_the_matrix_means_something(stack, tenant):
    response = requests.get(f"{stack.url}/v1/tenants/acme/clients", timeout=10,
                            headers={"Authorization": f"Bearer {stack.operator_token()}"})
    assert response.status_code == 200


def create_client(stack, tenant_id, scopes):
    response = requests.post(f"{stack.url}/v1/tenants/{tenant_id}/clients", json={"scopes": scopes}, timeout=10,
                             headers={"Authorization": f"Bearer {stack.operator_token()}"})
    assert response.status_code == 201, response.text
    return response.json()


def client_token(stack, created) -> requests.Response:
    return requests.post(f"{stack.url}/v1/oauth/token", timeout=10,
                         data={"grant_type": "client_credentials"},
                         auth=(created["client_id"], created["client_secret"]))


def test_revoked_tokens_and_tokens_of_deleted_clients_are_refused_end_to_end(stack, tenant):
    created = create_client(stack, "acme", ["clients:write"])
    first = client_token(stack, created).json()["access_token"]
    second = client_token(stack, created).json()["access_token"]
    revoked = requests.post(f"{stack.url}/v1/oauth/revoke", data={"token": first}, timeout=10,
                            auth=(created["client_id"], created["client_secret"]))
    assert revoked.status_code == 200
    listing = f"{stack.url}/v1/tenants/acme/clients"
    assert requests.get(listing, headers={"Authorization": f"Bearer {first}"}, timeout=10).status_code == 401
    assert requests.get(listing, headers={"Authorization": f"Bearer {second}"}, timeout=10).status_code == 200
    deleted = requests.delete(f"{listing}/{created['client_id']}", timeout=10,
                              headers={"Authorization": f"Bearer {stack.operator_token()}"})
    assert deleted.status_code == 204
    assert requests.get(listing, headers={"Authorization": f"Bearer {second}"}, timeout=10).status_code == 401


def test_a_tenant_token_never_reaches_another_tenant_or_operator_actions(stack, tenant):
    created = create_client(stack, "acme", ["clients:write", "usage:read"])
    token = client_token(stack, created).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{stack.url}/v1/tenants/globex/clients", headers=auth, timeout=10).status_code == 403
    assert requests.post(f"{stack.url}/v1/tenants/globex/clients", json={"scopes": ["usage:read"]}, headers=auth,
                         timeout=10).status_code == 403
    assert requests.post(f"{stack.url}/v1/oauth/introspect", data={"token": token}, headers=auth,
                         timeout=10).status_code == 403
    assert requests.get(f"{stack.url}/v1/tenants/acme/clients", headers=auth, timeout=10).status_code == 200


def test_rotation_through_pubsub_keeps_old_tokens_working_and_signs_new_ones_with_the_new_key(stack, tenant):
    old_token = stack.operator_token()
    old_kid = header_of(old_token)["kid"]
    notice = {"eventType": "SECRET_ROTATE", "secretId": stack.values["SIGNING_KEY_SECRET"],
              "dataFormat": "JSON_API_V1", "timestamp": "2026-11-29T10:00:00.000000Z"}
    body = json.dumps({"name": stack.values["SIGNING_KEY_SECRET"], "rotation": {"rotationPeriod": "2592000s"}})
    for _ in range(2):  # Secret Manager, like Pub/Sub, may deliver twice
        stack.publish("auth-events", body.encode(), notice)

    def jwks_kids():
        return [k["kid"] for k in requests.get(f"{stack.url}/.well-known/jwks.json", timeout=10).json()["keys"]]

    kids = wait_until(lambda: found if len(found := jwks_kids()) == 2 else None)
    assert old_kid in kids
    new_kid = next(kid for kid in kids if kid != old_kid)
    new_token = wait_until(lambda: t if header_of(t := stack.operator_token())["kid"] == new_kid else None)
    listing = f"{stack.url}/v1/tenants/acme/clients"
    for token in (old_token, new_token):
        assert requests.get(listing, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    # The operator asks for one more, through the API: the same notice, the same path, one more key. Its
    # notification follows the redelivered one, so once its key is out, the redelivery has been handled too.
    reader = client_token(stack, create_client(stack, "acme", ["usage:read"])).json()["access_token"]
    tenant_token = {"Authorization": f"Bearer {reader}"}
    assert requests.post(f"{stack.url}/v1/keys:rotate", headers=tenant_token, timeout=10).status_code == 403
    rotated = requests.post(f"{stack.url}/v1/keys:rotate", timeout=10,
                            headers={"Authorization": f"Bearer {stack.operator_token()}"})
    assert rotated.status_code == 202, rotated.text
    wait_until(lambda: len(jwks_kids()) >= 3, what="the requested rotation's key")
    versions = list(stack.secret_manager().list_secret_versions(request={"parent": stack.values["SIGNING_KEY_SECRET"]}))
    assert len(versions) == 3 and len(jwks_kids()) == 3  # the redelivered notice added none


@pytest.mark.parametrize("function, path", [("AUTH", "/v1/tenants/acme/clients"), ("PROVISIONER", "/v1/tenants"),
                                            ("BILLING", "/v1/tenants/acme/usage")])
def test_a_forged_gateway_userinfo_header_alone_grants_nothing(stack, tenant, function, path):
    """In every mode the function verifies the caller's token itself: anyone who may invoke the function URL
    could write the gateway's userinfo header (contract §8)."""
    operator = {"client_id": "x", "sub": "x", "jti": "a", "scope": "tenants:admin usage:write usage:read",
                "iss": stack.url, "aud": "energent-api"}
    forged = b64(json.dumps(operator).encode())
    response = requests.get(f"{stack.values[f'{function}_FUNCTION_URL']}{path}", timeout=10,
                            headers={"X-Apigateway-Api-Userinfo": forged})
    assert response.status_code == 401, response.text


def test_a_deleted_tenants_tokens_are_dead_the_moment_delete_answers(stack):
    operator = {"Authorization": f"Bearer {stack.operator_token()}"}
    created = requests.post(f"{stack.url}/v1/tenants", headers=operator, timeout=10,
                            json={"tenant_id": "short-lived", "display_name": "Short", "tier": "basic"})
    assert created.status_code == 202
    client = create_client(stack, "short-lived", ["usage:read"])
    token = client_token(stack, client).json()["access_token"]
    usage = f"{stack.url}/v1/tenants/short-lived/usage"
    assert requests.get(usage, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    assert requests.delete(f"{stack.url}/v1/tenants/short-lived", headers=operator, timeout=10).status_code == 202
    assert requests.get(usage, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401
    introspected = requests.post(f"{stack.url}/v1/oauth/introspect", data={"token": token}, timeout=10,
                                 headers={"Authorization": f"Bearer {stack.operator_token('tokens:introspect')}"})
    assert introspected.json() == {"active": False}
