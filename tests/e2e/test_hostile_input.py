"""Hostile input against the running stack (contract §8): every request below is answered 4xx with a problem
(the OAuth endpoints with their RFC 6749 error), never 5xx and never a hang — through the gateway and, where it
matters, at a function's own address."""

import base64
import json
import uuid

import pytest
import requests

TIMEOUT = 20


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def problem(response: requests.Response, oauth: bool = False) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    if oauth:
        assert body.get("error"), body
    else:
        assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
        assert body["status"] == response.status_code and body["detail"], body
    return body


@pytest.fixture(scope="module")
def operator(stack):
    return stack.operator()


@pytest.fixture(scope="module")
def hostile_tenant(stack, operator):
    requests.post(f"{stack.url}/v1/tenants", headers=operator, timeout=TIMEOUT,
                  json={"tenant_id": "hostile", "display_name": "Hostile", "tier": "basic"})
    return "hostile"


def post_json(stack, operator, path, raw: bytes, content_type="application/json"):
    return requests.post(f"{stack.url}{path}", data=raw, timeout=TIMEOUT,
                         headers={**operator, "Content-Type": content_type})


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,                                         # nested 100,000 deep
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"tenant_id": "dup", "tenant_id": "dup2", "display_name": "D", "tier": "basic"}',  # repeated key
    b'{"tenant_id": "typed", "display_name": "T", "tier": []}',               # wrong JSON type
    b'{"tenant_id": "typed", "display_name": ["T"], "tier": "basic"}',
    b'{"tenant_id": "weekly", "display_name": "W", "tier": "basic", "billing_start": "2024-W01-1"}',
    '{"tenant_id": "digits", "display_name": "D", "tier": "basic", "billing_start": "\u0662\u0660\u0662\u0664-01-01"}'
    .encode(),
    b'{"tenant_id": "big", "display_name": "B", "tier": "basic", "billing_start": 1e999999}',
    b'{"tenant_id": "trunc", "display_name": "T", "ti',                      # truncated
    b"\xff\xfe not utf-8",
    b"",
    b"null",
    b'"a string"',
    b'{"tenant_id": "\\ud800bad", "display_name": "S", "tier": "basic"}',   # lone surrogate
])
def test_malformed_tenant_bodies_are_4xx(stack, operator, raw):
    problem(post_json(stack, operator, "/v1/tenants", raw))


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"reason": "a", "reason": "b"}',
                                 b'{"reason": []}', b'{"reason": "' + b"x" * 201 + b'"}', b'{"reason": "\\u0000"}',
                                 b'{"reason": "tier table", "extra": 1}', b"\xff", b"[]"])
def test_malformed_rerender_bodies_are_4xx_and_start_nothing(stack, operator, raw):
    problem(post_json(stack, operator, "/v1/tenants:rerender", raw))


def test_an_oversized_body_is_413(stack, operator):
    response = post_json(stack, operator, "/v1/tenants", b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    assert response.status_code == 413 and problem(response)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x",
                                          "application/json; charset=\u00e9"])
def test_wrong_content_types_are_4xx(stack, operator, content_type):
    raw = b'{"tenant_id": "ctype", "display_name": "C", "tier": "basic"}'
    response = requests.post(f"{stack.url}/v1/tenants", data=raw, timeout=TIMEOUT,
                             headers={**operator, "Content-Type": content_type.encode("utf-8")})
    problem(response)


@pytest.mark.parametrize("path", ["/v1/tenants/%C3%A9t%C3%A9", "/v1/tenants/ACME", "/v1/tenants/%00abc",
                                  "/v1/tenants/a%2Fb%2Fc", "/v1/tenants/" + "a" * 2000,
                                  "/v1/billing/periods/%D9%A2%D9%A0%D9%A2%D9%A4-01:close",
                                  "/v1/billing/periods/2024-01%0A:close",
                                  "/v1/tenants/hostile/invoices/%D9%A2%D9%A0%D9%A2%D9%A4-01",
                                  "/v1/tenants/hostile/usage?period=%D9%A2%D9%A0%D9%A2%D9%A4-01",
                                  "/v1/tenants/hostile/usage?period=2024-01%0A",
                                  "/v1/tenants?page_size=%C2%B2", "/v1/tenants?page_size=101",
                                  "/v1/tenants?page_size=0", "/v1/tenants?page_token=%FF%FE",
                                  "/v1/rerenders/%C3%A9" + "0" * 30, "/v1/rerenders/" + "A" * 32,
                                  "/v1/rerenders/" + "0" * 33])
def test_bad_path_segments_and_parameters_are_4xx(stack, operator, hostile_tenant, path):
    method = requests.post if path.endswith(":close") else requests.get
    problem(method(f"{stack.url}{path}", headers=operator, timeout=TIMEOUT))


@pytest.mark.parametrize("header, value", [
    ("X-Request-Id", "caf\u00e9".encode()),
    ("X-Request-Id", b"\xff\xfe\xfd"),
    ("Traceparent", "00-\u00e9\u00e9-xx-01".encode()),
    ("Accept", "application/\u00e9".encode()),
    ("X-Cloud-Trace-Context", b"\xc3\x28/1;o=1"),
])
def test_non_ascii_headers_never_break_a_request(stack, operator, hostile_tenant, header, value):
    response = requests.get(f"{stack.url}/v1/tenants/hostile", timeout=TIMEOUT, headers={**operator, header: value})
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("alg", ["\u00e9\u00e9", "\u4e2d\u6587", "ES256\u0000", "x" * 5000])
def test_a_jwt_header_with_a_strange_alg_is_a_401_at_the_gateway_and_the_function(stack, alg):
    header = b64(json.dumps({"alg": alg, "typ": "at+jwt", "kid": "k"}).encode())
    token = f"{header}.{b64(b'{}')}.{b64(b'sig')}"
    for base in (stack.url, stack.values["PROVISIONER_FUNCTION_URL"]):
        response = requests.get(f"{base}/v1/tenants", timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (base, response.text)
        response.headers["WWW-Authenticate"].encode("latin-1")  # a header a client can read


@pytest.mark.parametrize("form", [
    {"grant_type": "client_credentials", "client_id": "\u00e9\u00e9", "client_secret": "x"},
    {"grant_type": "client_credentials\u00e9", "client_id": "a", "client_secret": "b"},
    {"grant_type": "client_credentials", "client_id": "a" * 10_000, "client_secret": "b"},
    {"grant_type": "client_credentials", "scope": "\u4e2d " * 100, "client_id": "a", "client_secret": "b"},
])
def test_hostile_token_requests_get_an_oauth_error(stack, form):
    problem(requests.post(f"{stack.url}/v1/oauth/token", data=form, timeout=TIMEOUT), oauth=True)


def test_hostile_basic_credentials_get_an_oauth_error(stack):
    for credentials in (b"\xff\xfe:\x00", "\u00e9:\u00e9".encode(), b"no-colon", b"=" * 50):
        response = requests.post(f"{stack.url}/v1/oauth/token", data={"grant_type": "client_credentials"},
                                 timeout=TIMEOUT, headers={"Authorization": b"Basic " + base64.b64encode(credentials)})
        problem(response, oauth=True)


@pytest.mark.parametrize("body", [
    {"period": "2024-01", "availability_pct": 1e308 * 10, "p95_latency_ms": 1},
    {"period": "2024-01", "availability_pct": 99, "p95_latency_ms": "1e999999"},
    {"period": "\u0662\u0660\u0662\u0664-01", "availability_pct": 99, "p95_latency_ms": 1},
    {"period": "2024-01", "availability_pct": [], "p95_latency_ms": {}},
    {"period": None, "availability_pct": True, "p95_latency_ms": 1},
])
def test_hostile_sla_reports_are_4xx(stack, operator, hostile_tenant, body):
    raw = json.dumps(body, allow_nan=True).encode()
    problem(post_json(stack, operator, "/v1/tenants/hostile/sla-reports", raw))


def test_a_huge_number_in_an_sla_report_is_a_400_not_a_megabyte(stack, operator, hostile_tenant):
    raw = b'{"period": "2024-01", "availability_pct": 99, "p95_latency_ms": 1e999999}'
    response = post_json(stack, operator, "/v1/tenants/hostile/sla-reports", raw)
    assert response.status_code == 400 and len(response.content) < 2000


def test_hostile_usage_is_rejected_with_reasons_never_counted(stack, hostile_tenant):
    writer = stack.operator("usage:write")
    events = [{"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//hostile", "id": uuid.uuid4().hex,
               "data": {"tenant_id": "hostile", "meter": "workflow_minutes", "quantity": quantity}}
              for quantity in ("1_000", "\u0661\u0662\u0663", " 12", "1e3", "10000000000001", [], {"a": 1})]
    events.append({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//hostile", "id": "m",
                   "data": {"tenant_id": "hostile", "meter": [], "quantity": 1}})
    events.append({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//hostile", "id": "t",
                   "time": "0001-01-01T00:30:00+01:00",
                   "data": {"tenant_id": "hostile", "meter": "workflow_minutes", "quantity": 1}})
    response = requests.post(f"{stack.url}/v1/usage", data=json.dumps(events), timeout=TIMEOUT,
                             headers={**writer, "Content-Type": "application/cloudevents-batch+json"})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 0 and len(response.json()["rejected"]) == len(events)


@pytest.mark.parametrize("body", [{"reference": "\u0000" * 10}, {"reference": ["x"]}, {"reference": "x" * 1000},
                                  {"reference": "x", "paid_at": "2024-W01-1"}, {"reason": {}, "reissue": "yes"}])
def test_hostile_invoice_actions_are_4xx(stack, operator, hostile_tenant, body):
    for action in ("pay", "credit"):
        problem(post_json(stack, operator, f"/v1/tenants/hostile/invoices/2024-01:{action}",
                          json.dumps(body).encode()))
