"""Hostile input against the running stack (contract §8): every request below is answered 4xx with a problem
(the OAuth endpoints with their RFC 6749 error), never 5xx and never a hang — through the gateway and, where it
matters, at a function's own address. Each test asserts the status it means, not just "some 4xx"."""

import base64
import json
import uuid

import pytest
import requests

TIMEOUT = 20


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


HUGE = b"1e99999999999999999999"  # past Decimal's exponent limit


def problem(response: requests.Response, status: int, oauth: bool = False) -> dict:
    """The 4xx meant, with a problem body (or the OAuth endpoints' RFC 6749 error)."""
    assert response.status_code == status, (response.status_code, response.text[:300])
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
    b'{"tenant_id": "huge", "display_name": "H", "tier": "basic", "billing_start": ' + HUGE + b"}",
    b'{"tenant_id": "huge", "display_name": ' + HUGE + b', "tier": "basic"}',
    b'{"tenant_id": "long", "display_name": "L", "tier": "basic", "billing_start": ' + b"9" * 5000 + b"}",
    b'{"tenant_id": "trunc", "display_name": "T", "ti',                      # truncated
    b"\xff\xfe not utf-8",
    b"",
    b"null",
    b'"a string"',
    b'{"tenant_id": "\\ud800bad", "display_name": "S", "tier": "basic"}',   # lone surrogate
])
def test_malformed_tenant_bodies_are_400(stack, operator, raw):
    problem(post_json(stack, operator, "/v1/tenants", raw), 400)


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"reason": "a", "reason": "b"}',
                                 b'{"reason": []}', b'{"reason": "' + b"x" * 201 + b'"}', b'{"reason": "\\u0000"}',
                                 b'{"reason": "tier table", "extra": 1}', b"\xff", b"[]"])
def test_malformed_rerender_bodies_are_400_and_start_nothing(stack, operator, raw):
    problem(post_json(stack, operator, "/v1/tenants:rerender", raw), 400)


@pytest.mark.parametrize("method, path, raw", [
    ("PATCH", "/v1/tenants/hostile", b'{"tier": ' + HUGE + b"}"),
    ("PATCH", "/v1/tenants/hostile", b'{"billing_profile": {"legal_name": ' + HUGE + b"}}"),
    ("POST", "/v1/tenants/hostile/clients", b'{"scopes": ["usage:read"], "name": ' + HUGE + b"}"),
    ("POST", "/v1/tenants/hostile/clients", b'{"scopes": [' + HUGE + b"]}"),
    ("POST", "/v1/tenants:rerender", b'{"reason": ' + HUGE + b"}"),
    ("POST", "/v1/tenants/hostile/sla-reports", b'{"period": "2024-01", "availability_pct": ' + HUGE
     + b', "p95_latency_ms": 1}'),
    ("POST", "/v1/tenants/hostile/sla-reports", b'{"period": "2024-01", "availability_pct": 99, "p95_latency_ms": -'
     + HUGE + b"}"),
    ("POST", "/v1/tenants/hostile/sla-reports", b'{"period": "2024-01", "availability_pct": 0e-999999999, '
     b'"p95_latency_ms": 1}'),  # zero, but a billion digits written out
    ("POST", "/v1/tenants/hostile/invoices/2024-01:pay", b'{"reference": ' + HUGE + b"}"),
    ("POST", "/v1/tenants/hostile/invoices/2024-01:credit", b'{"reason": "r", "reissue": ' + HUGE + b"}"),
])
def test_a_number_with_a_huge_exponent_in_any_body_is_a_400(stack, operator, hostile_tenant, method, path, raw):
    response = requests.request(method, f"{stack.url}{path}", data=raw, timeout=TIMEOUT,
                                headers={**operator, "Content-Type": "application/json"})
    problem(response, 400)


def test_an_oversized_body_is_413(stack, operator):
    response = post_json(stack, operator, "/v1/tenants", b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    problem(response, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x",
                                          "application/json; charset=\u00e9"])
def test_wrong_content_types_are_415(stack, operator, content_type):
    raw = b'{"tenant_id": "ctype", "display_name": "C", "tier": "basic"}'
    response = requests.post(f"{stack.url}/v1/tenants", data=raw, timeout=TIMEOUT,
                             headers={**operator, "Content-Type": content_type.encode("utf-8")})
    problem(response, 415)


@pytest.mark.parametrize("path, status", [
    ("/v1/tenants/%C3%A9t%C3%A9", 400), ("/v1/tenants/ACME", 400), ("/v1/tenants/%00abc", 400),
    ("/v1/tenants/a%2Fb%2Fc", 404), ("/v1/tenants/" + "a" * 2000, 400),
    ("/v1/billing/periods/%D9%A2%D9%A0%D9%A2%D9%A4-01:close", 400), ("/v1/billing/periods/2024-01%0A:close", 400),
    ("/v1/billing/periods/0000-01:close", 400), ("/v1/billing/periods/9999-12:close", 400),
    ("/v1/billing/periods/1999-12:close", 400), ("/v1/billing/periods/9999-12", 400),
    ("/v1/tenants/hostile/invoices/%D9%A2%D9%A0%D9%A2%D9%A4-01", 400), ("/v1/tenants/hostile/invoices/9999-12", 400),
    ("/v1/tenants/hostile/usage?period=%D9%A2%D9%A0%D9%A2%D9%A4-01", 400),
    ("/v1/tenants/hostile/usage?period=2024-01%0A", 400), ("/v1/tenants/hostile/usage?period=9999-12", 400),
    ("/v1/tenants/hostile/usage?period=0000-01", 400),
    ("/v1/tenants?page_size=%C2%B2", 400), ("/v1/tenants?page_size=101", 400), ("/v1/tenants?page_size=0", 400),
    ("/v1/tenants?page_token=%FF%FE", 400),
    ("/v1/tenants/hostile/credit-notes?page_token=" + "a" * 41, 400),
    ("/v1/tenants/hostile/credit-grants?page_token=" + "a" * 41, 400),
    ("/v1/tenants/hostile/webhooks?page_token=" + "a" * 41, 400),
    ("/v1/rerenders/%C3%A9" + "0" * 30, 400), ("/v1/rerenders/" + "A" * 32, 400), ("/v1/rerenders/" + "0" * 33, 400),
    ("/v1/billing/journal?from=2026-13-01&to=2026-12-01", 400), ("/v1/billing/journal?from=2026-12-01", 400),
    ("/v1/billing/journal?from=2026-12-02&to=2026-12-01", 400),
    ("/v1/billing/journal?from=%D9%A2%D9%A0%D9%A2%D9%A6-01-01&to=2026-12-01", 400),
    ("/v1/billing/vat-returns/2026-Q5", 400), ("/v1/billing/vat-returns/1999-Q1", 400),
    ("/v1/billing/vat-returns/2026-q1", 400),
])
def test_bad_path_segments_and_parameters_are_4xx(stack, operator, hostile_tenant, path, status):
    method = requests.post if path.endswith(":close") else requests.get
    problem(method(f"{stack.url}{path}", headers=operator, timeout=TIMEOUT), status)


@pytest.mark.parametrize("header, value", [
    ("X-Request-Id", "caf\u00e9".encode()),
    ("X-Request-Id", b"\xff\xfe\xfd"),
    ("Traceparent", "00-\u00e9\u00e9-xx-01".encode()),
    ("Accept", "application/\u00e9".encode()),
    ("X-Cloud-Trace-Context", b"\xc3\x28/1;o=1"),
])
def test_non_ascii_headers_never_break_a_request(stack, operator, hostile_tenant, header, value):
    response = requests.get(f"{stack.url}/v1/tenants/hostile", timeout=TIMEOUT, headers={**operator, header: value})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("alg", ["\u00e9\u00e9", "\u4e2d\u6587", "ES256\u0000", "x" * 5000])
def test_a_jwt_header_with_a_strange_alg_is_a_401_at_the_gateway_and_the_function(stack, alg):
    header = b64(json.dumps({"alg": alg, "typ": "at+jwt", "kid": "k"}).encode())
    token = f"{header}.{b64(b'{}')}.{b64(b'sig')}"
    for base in (stack.url, stack.values["PROVISIONER_FUNCTION_URL"]):
        response = requests.get(f"{base}/v1/tenants", timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (base, response.text)
        response.headers["WWW-Authenticate"].encode("latin-1")  # a header a client can read


@pytest.mark.parametrize("form, status, error", [
    ({"grant_type": "client_credentials", "client_id": "\u00e9\u00e9", "client_secret": "x"}, 401, "invalid_client"),
    ({"grant_type": "client_credentials\u00e9", "client_id": "a", "client_secret": "b"}, 400,
     "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "client_id": "a" * 10_000, "client_secret": "b"}, 401, "invalid_client"),
    ({"grant_type": "client_credentials", "scope": "\u4e2d " * 100, "client_id": "a", "client_secret": "b"}, 401,
     "invalid_client"),
])
def test_hostile_token_requests_get_an_oauth_error(stack, form, status, error):
    found = problem(requests.post(f"{stack.url}/v1/oauth/token", data=form, timeout=TIMEOUT), status, oauth=True)
    assert found["error"] == error


@pytest.mark.parametrize("endpoint", ["token", "revoke"])
@pytest.mark.parametrize("header", [b"Basic " + base64.b64encode(c) for c in
                                    (b"\xff\xfe:\x00", "\u00e9:\u00e9".encode(), b"no-colon", b"=" * 50)]
                         + [b"Basic \xe9AAA", "Basic \u00e9\u00e9\u00e9\u00e9".encode(), b"Basic ====", b"Basic"])
def test_hostile_basic_credentials_get_an_oauth_error(stack, endpoint, header):
    form = {"grant_type": "client_credentials"} if endpoint == "token" else {"token": "x"}
    response = requests.post(f"{stack.url}/v1/oauth/{endpoint}", data=form, timeout=TIMEOUT,
                             headers={"Authorization": header})
    assert problem(response, 401, oauth=True)["error"] == "invalid_client"


@pytest.mark.parametrize("body", [
    {"period": "2024-01", "availability_pct": 1e308 * 10, "p95_latency_ms": 1},
    {"period": "2024-01", "availability_pct": 99, "p95_latency_ms": "1e999999"},
    {"period": "\u0662\u0660\u0662\u0664-01", "availability_pct": 99, "p95_latency_ms": 1},
    {"period": "2024-01", "availability_pct": [], "p95_latency_ms": {}},
    {"period": None, "availability_pct": True, "p95_latency_ms": 1},
])
def test_hostile_sla_reports_are_400(stack, operator, hostile_tenant, body):
    raw = json.dumps(body, allow_nan=True).encode()
    problem(post_json(stack, operator, "/v1/tenants/hostile/sla-reports", raw), 400)


def test_a_huge_number_in_an_sla_report_is_a_400_not_a_megabyte(stack, operator, hostile_tenant):
    raw = b'{"period": "2024-01", "availability_pct": 99, "p95_latency_ms": 1e999999}'
    response = post_json(stack, operator, "/v1/tenants/hostile/sla-reports", raw)
    problem(response, 400)
    assert len(response.content) < 2000


def test_hostile_usage_is_rejected_with_reasons_never_counted(stack, hostile_tenant):
    writer = stack.operator("usage:write")
    events = [{"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//hostile", "id": uuid.uuid4().hex,
               "data": {"tenant_id": "hostile", "meter": "workflow_minutes", "quantity": quantity}}
              for quantity in ("1_000", "\u0661\u0662\u0663", " 12", "1e3", "10000000000001", [], {"a": 1}, "HUGE")]
    events.append({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//hostile", "id": "m",
                   "data": {"tenant_id": "hostile", "meter": [], "quantity": 1}})
    events.append({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//hostile", "id": "t",
                   "time": "0001-01-01T00:30:00+01:00",
                   "data": {"tenant_id": "hostile", "meter": "workflow_minutes", "quantity": 1}})
    raw = json.dumps(events).encode().replace(b'"HUGE"', HUGE)  # a JSON number no Decimal can hold
    response = requests.post(f"{stack.url}/v1/usage", data=raw, timeout=TIMEOUT,
                             headers={**writer, "Content-Type": "application/cloudevents-batch+json"})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 0 and len(response.json()["rejected"]) == len(events)
    assert "quantity 1e99999999999999999999 is out of range (at most 10^12)" in [
        r["reason"] for r in response.json()["rejected"]]


@pytest.mark.parametrize("body", [{"reference": "\u0000" * 10}, {"reference": ["x"]}, {"reference": "x" * 1000},
                                  {"reference": "x", "paid_at": "2024-W01-1"}, {"reason": {}, "reissue": "yes"}])
def test_hostile_invoice_actions_are_400(stack, operator, hostile_tenant, body):
    for action in ("pay", "credit"):
        problem(post_json(stack, operator, f"/v1/tenants/hostile/invoices/2024-01:{action}",
                          json.dumps(body).encode()), 400)
