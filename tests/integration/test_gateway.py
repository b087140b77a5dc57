"""The local gateway in front of a real functions-framework backend, verifying JWTs as API Gateway does."""

import base64
import json
import threading

import pytest
import requests
from werkzeug.serving import make_server

from local.gateway import Gateway, operations, render_spec
from tests.support import AUDIENCE, ISSUER, JwksServer, SigningKey

SPEC = """
swagger: "2.0"
info: {title: t, version: "1"}
securityDefinitions:
  energent_jwt:
    type: oauth2
    flow: application
    tokenUrl: "${issuer}/v1/oauth/token"
    x-google-issuer: "${issuer}"
    x-google-jwks_uri: "${jwks}"
    x-google-audiences: "${audience}"
security: [{energent_jwt: []}]
x-google-backend:
  address: https://${region}-${project_id}.cloudfunctions.net/energent-echo-${environment}
  path_translation: APPEND_PATH_TO_ADDRESS
paths:
  /v1/tenants/{tenant_id}:
    get: {operationId: getTenant, responses: {"200": {description: ok}}}
  /v1/billing/periods/{period}:close:
    post: {operationId: closePeriod, responses: {"200": {description: ok}}}
  /.well-known/jwks.json:
    get: {operationId: jwks, security: [], responses: {"200": {description: ok}}}
  /v1/down:
    get:
      operationId: down
      security: []
      x-google-backend: {address: "https://${region}-${project_id}.cloudfunctions.net/energent-down-${environment}"}
      responses: {"200": {description: ok}}
"""


@pytest.fixture(scope="module")
def key():
    return SigningKey()


@pytest.fixture(scope="module")
def gateway(echo_backend, key):
    jwks = JwksServer(key)
    values = {"issuer": ISSUER, "jwks": jwks.url, "audience": AUDIENCE, "project_id": "p", "region": "r",
              "environment": "test"}
    app = Gateway(render_spec(SPEC, values), {"echo": echo_backend.url, "down": "http://127.0.0.1:9"}, "test")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    jwks.close()


def test_spec_operations_know_their_backend_and_security():
    spec = render_spec(SPEC, {"issuer": ISSUER, "jwks": "x", "audience": AUDIENCE, "project_id": "p", "region": "r",
                              "environment": "test"})
    found = {(op.method, op.path): (op.backend, op.secured) for op in operations(spec, "test")}
    assert found[("GET", "/v1/tenants/{tenant_id}")] == ("echo", True)
    assert found[("GET", "/.well-known/jwks.json")] == ("echo", False)
    assert found[("GET", "/v1/down")] == ("down", False)


def test_secured_operations_need_a_token(gateway):
    response = requests.get(f"{gateway}/v1/tenants/acme", timeout=10)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"


def test_invalid_tokens_stop_at_the_gateway(gateway, key):
    for token in (key.token(exp=1), key.token(aud="elsewhere"), SigningKey().token(), "abc"):
        response = requests.get(f"{gateway}/v1/tenants/acme", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 401, token


def test_verified_claims_and_the_callers_authorization_are_passed_on(gateway, key):
    token = key.token(tenant_id="acme")
    response = requests.get(f"{gateway}/v1/tenants/acme?view=full", timeout=10,
                            headers={"Authorization": f"Bearer {token}", "X-Request-Id": "r-1"})
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["path"] == "/v1/tenants/acme?view=full"
    userinfo = echoed["headers"]["X-Apigateway-Api-Userinfo"]
    claims = json.loads(base64.urlsafe_b64decode(userinfo + "=" * (-len(userinfo) % 4)))
    assert claims["tenant_id"] == "acme" and claims["iss"] == ISSUER
    assert echoed["headers"]["X-Forwarded-Authorization"] == f"Bearer {token}"
    assert "Authorization" not in echoed["headers"]
    assert response.headers["X-Request-Id"] == "r-1"


def test_custom_method_paths_route_and_bodies_pass_through(gateway, key):
    response = requests.post(f"{gateway}/v1/billing/periods/2026-10:close", data=b'{"a": 1}', timeout=10,
                             headers={"Authorization": f"Bearer {key.token()}", "Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["body"] == '{"a": 1}'


def test_public_operations_pass_without_token_and_strip_forged_userinfo(gateway):
    forged = base64.urlsafe_b64encode(b'{"scope": "tenants:admin"}').decode()
    response = requests.get(f"{gateway}/.well-known/jwks.json", headers={"X-Apigateway-Api-Userinfo": forged},
                            timeout=10)
    assert response.status_code == 200
    assert "X-Apigateway-Api-Userinfo" not in response.json()["headers"]


def test_unknown_paths_methods_and_dead_backends(gateway):
    assert requests.get(f"{gateway}/v2/nothing", timeout=10).status_code == 404
    response = requests.delete(f"{gateway}/.well-known/jwks.json", timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert requests.get(f"{gateway}/v1/down", timeout=10).status_code == 502
    assert requests.get(f"{gateway}/healthz", timeout=10).status_code == 200


def test_each_cookie_a_backend_sets_reaches_the_caller_in_its_own_header(gateway):
    """Joined into one header, two cookies with `Expires=Wed, 21 Oct ...` dates could not be parsed apart."""
    response = requests.get(f"{gateway}/.well-known/jwks.json?cookies=2", timeout=10)
    cookies = response.raw.headers.getlist("Set-Cookie")
    assert len(cookies) == 2 and cookies[0].startswith("cookie0=value0;") and cookies[1].startswith("cookie1=value1;")
    assert all("HttpOnly" in cookie and "Expires=" in cookie for cookie in cookies)
    assert {cookie.name for cookie in response.cookies} == {"cookie0", "cookie1"}


def test_a_cookie_set_for_one_caller_never_reaches_the_backend_with_another_caller(gateway):
    """The gateway's connection pool must not act as a browser: what a backend set for one caller stays with them."""
    first = requests.get(f"{gateway}/.well-known/jwks.json?cookies=1", timeout=10)
    assert first.cookies.get("cookie0") == "value0"
    other = requests.get(f"{gateway}/.well-known/jwks.json", timeout=10).json()
    assert "Cookie" not in other["headers"]
    theirs = requests.get(f"{gateway}/.well-known/jwks.json", headers={"Cookie": "mine=1"}, timeout=10).json()
    assert theirs["headers"]["Cookie"] == "mine=1"
