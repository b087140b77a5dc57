"""Spend control end to end, from outside the stack: a tenant sets a budget with a hard cap and a webhook with its own
token; usage crosses its thresholds; each crossing reaches a receiver on 127.0.0.1 once, signed (verified with the
standardwebhooks package) within a minute; the tenant is blocked (its manifests, read back from the bucket, carry a
workflow limit of 0; its status unchanged) and unblocked within a minute of a raise; grants lower the spend; the
CLI shows all of it."""

import datetime
import json
import threading
import time
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
import requests
from standardwebhooks import Webhook

from energent_cli.main import main
from tests.e2e.conftest import RunningStack
from tests.support import wait_until

THIS_MONTH = datetime.datetime.now(datetime.UTC).strftime("%Y-%m")
PROFILE = {"legal_name": "Acme B.V.", "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam",
                                                  "country": "NL"}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("stack"), WEBHOOK_RETRY_SCALE="0.01")
    yield running
    running.stop()


class Receiver:
    def __init__(self):
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                                          "at": time.monotonic()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/energent"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def verified(self, secret: str) -> list[dict]:
        return [Webhook(secret).verify(r["body"], {k: r["headers"][k] for k in (
            "webhook-id", "webhook-timestamp", "webhook-signature")}) for r in list(self.received)]


@pytest.fixture(scope="module")
def receiver():
    made = Receiver()
    yield made
    made.server.shutdown()


def call(stack, method, path, headers, **kwargs) -> requests.Response:
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=30, **kwargs)


def tenant_token(stack, tenant_id: str, scopes: list[str]) -> dict:
    created = call(stack, "POST", f"/v1/tenants/{tenant_id}/clients", stack.operator(), json={"scopes": scopes})
    assert created.status_code == 201, created.text
    client = created.json()
    token = requests.post(f"{stack.url}/v1/oauth/token", data={"grant_type": "client_credentials"}, timeout=10,
                          auth=(client["client_id"], client["client_secret"])).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def minutes(stack, tenant_id: str, quantity: str) -> None:
    event = {"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//energent.ai/platform/e2e",
             "id": uuid.uuid4().hex, "data": {"tenant_id": tenant_id, "meter": "workflow_minutes",
                                              "quantity": quantity}}
    answer = call(stack, "POST", "/v1/usage", {**stack.operator(), "Content-Type": "application/cloudevents+json"},
                  data=json.dumps(event))
    assert answer.status_code == 202 and answer.json()["accepted"] == 1, answer.text


def workflow_limits(stack, tenant_id: str) -> dict:
    """The tenant-limits ConfigMap as the manifest bucket holds it."""
    name = quote(f"tenants/{tenant_id}/manifests/objects.json", safe="")
    url = f"{stack.values['STORAGE_EMULATOR_HOST']}/storage/v1/b/{stack.values['MANIFEST_BUCKET']}/o/{name}"
    listing = requests.get(url, params={"alt": "media"}, timeout=10)
    listing.raise_for_status()
    [found] = [o for o in listing.json()["items"] if o["kind"] == "ConfigMap" and
               o["metadata"]["name"] == "tenant-limits"]
    return found["data"]


def test_budget_crossings_webhooks_and_the_block_from_outside(stack, receiver):
    operator = stack.operator()
    created = call(stack, "POST", "/v1/tenants", operator, json={
        "tenant_id": "spender", "display_name": "Spender", "tier": "standard", "billing_start": f"{THIS_MONTH}-01",
        "billing_profile": PROFILE})
    assert created.status_code == 202, created.text
    wait_until(lambda: call(stack, "GET", "/v1/tenants/spender", operator).json()["status"] == "active",
               timeout_s=60, what="the tenant to be active")
    assert workflow_limits(stack, "spender")["concurrent_workflows"] == "2"
    writer = tenant_token(stack, "spender", ["billing:write", "billing:read", "usage:read"])
    reader = tenant_token(stack, "spender", ["usage:read"])

    base = Decimal(call(stack, "GET", "/v1/tenants/spender/spend", reader).json()["net"])  # the month's base fee
    hook = call(stack, "POST", "/v1/tenants/spender/webhooks", writer,
                json={"url": receiver.url, "events": ["budget.crossed"]})
    assert hook.status_code == 201, hook.text
    hook = hook.json()
    assert "secret" not in call(stack, "GET", "/v1/tenants/spender/webhooks", writer).json()["webhooks"][0]
    limit = base + Decimal("20.00")
    budget = call(stack, "PUT", "/v1/tenants/spender/budget", writer,
                  json={"monthly_limit": str(limit), "action": "block"})
    assert budget.status_code == 200 and budget.json()["version"] == 1, budget.text

    def crossed() -> list[int]:
        return sorted(p["data"]["threshold_pct"] for p in receiver.verified(hook["secret"])
                      if p["type"] == "ai.energent.billing.budget.crossed.v1")

    wait_until(lambda: crossed() == [50, 80], timeout_s=60, what="the thresholds the base fee reached at once")
    sent = time.monotonic()
    minutes(stack, "spender", "99000")  # far past the limit at once
    wait_until(lambda: 100 in crossed(), timeout_s=60, what="the 100 % crossing at the receiver")
    delivered = next(r["at"] for r in receiver.received if b'"threshold_pct": 100' in r["body"]
                     or b'"threshold_pct":100' in r["body"])
    assert delivered - sent < 60
    assert crossed() == [50, 80, 100]  # each once

    wait_until(lambda: workflow_limits(stack, "spender")["concurrent_workflows"] == "0", timeout_s=60,
               what="the blocked tenant's manifests to carry a workflow limit of 0")
    tenant = call(stack, "GET", "/v1/tenants/spender", writer).json()
    assert tenant["spend_state"] == "blocked" and tenant["status"] in ("active", "updating")
    spend = call(stack, "GET", "/v1/tenants/spender/spend", reader).json()
    assert spend["budget"]["state"] == "blocked" and Decimal(spend["budget"]["used_pct"]) > 100
    assert minutes(stack, "spender", "10") is None  # usage is still accepted while blocked

    call(stack, "PUT", "/v1/tenants/spender/budget", writer,
         json={"monthly_limit": str(Decimal(spend["net"]) + 1000), "action": "block"})
    raised = time.monotonic()
    wait_until(lambda: workflow_limits(stack, "spender")["concurrent_workflows"] == "2", timeout_s=60,
               what="the tier's limit back after the raise")
    assert time.monotonic() - raised < 60
    assert call(stack, "GET", "/v1/tenants/spender", operator).json()["spend_state"] == "ok"

    log = call(stack, "GET", f"/v1/tenants/spender/webhooks/{hook['id']}/deliveries", writer).json()["deliveries"]
    assert sorted(d["status"] for d in log) == ["delivered"] * 3 and all(d["attempts"] == 1 for d in log)


def test_who_may_do_what(stack):
    operator = stack.operator()
    call(stack, "POST", "/v1/tenants", operator, json={"tenant_id": "scoped", "display_name": "Scoped",
                                                       "tier": "basic"})
    call(stack, "POST", "/v1/tenants", operator, json={"tenant_id": "other-one", "display_name": "Other",
                                                       "tier": "basic"})
    reader = tenant_token(stack, "scoped", ["billing:read"])
    usage_reader = tenant_token(stack, "scoped", ["usage:read"])
    assert call(stack, "PUT", "/v1/tenants/scoped/budget", reader, json={"monthly_limit": "5"}).status_code == 403
    assert call(stack, "PUT", "/v1/tenants/scoped/budget", operator, json={"monthly_limit": "5"}).status_code == 200
    assert call(stack, "GET", "/v1/tenants/scoped/budget", reader).status_code == 200
    assert call(stack, "GET", "/v1/tenants/scoped/budget", usage_reader).status_code == 403
    assert call(stack, "GET", "/v1/tenants/scoped/spend", usage_reader).status_code == 200
    assert call(stack, "GET", "/v1/tenants/other-one/spend", reader).status_code == 403
    assert call(stack, "GET", "/v1/tenants/scoped/credit-grants", reader).status_code == 200
    assert call(stack, "POST", "/v1/tenants/scoped/credit-grants", reader,
                json={"amount": "5", "reason": "x"}).status_code == 403
    assert call(stack, "POST", "/v1/tenants/scoped/webhooks", reader, json={"url": "https://example.com/h"}
                ).status_code == 403
    for body in ('{"monthly_limit": 1e99999999999999999999}', '{"monthly_limit": "5", "monthly_limit": "6"}',
                 '{"monthly_limit": "5", "thresholds": [[[[[]]]]]}', '[]'):
        answer = call(stack, "PUT", "/v1/tenants/scoped/budget", {**operator, "Content-Type": "application/json"},
                      data=body)
        assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("application/problem+json")
    past = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    assert call(stack, "POST", "/v1/tenants/scoped/credit-grants", operator,
                json={"amount": "5", "reason": "x", "expires_on": past}).status_code == 400
    assert call(stack, "DELETE", "/v1/tenants/scoped/budget", operator).status_code == 204
    assert call(stack, "GET", "/v1/tenants/scoped/budget", operator).status_code == 404


def test_the_cli_sets_and_shows_budgets_spend_grants_and_webhooks(stack, receiver, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ENERGENT_API_URL", stack.url)
    monkeypatch.setenv("ENERGENT_CLIENT_ID", stack.values["OPERATOR_CLIENT_ID"])
    monkeypatch.setenv("ENERGENT_CLIENT_SECRET", stack.values["OPERATOR_CLIENT_SECRET"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    call(stack, "POST", "/v1/tenants", stack.operator(), json={
        "tenant_id": "cli-spend", "display_name": "CLI", "tier": "basic", "billing_start": f"{THIS_MONTH}-01"})
    code, out, _ = cli("--json", "budget", "set", "cli-spend", "--limit", "100", "--threshold", "90", "--block")
    assert code == 0 and json.loads(out)["thresholds"] == [90] and json.loads(out)["action"] == "block"
    code, out, _ = cli("budget", "show", "cli-spend")
    assert code == 0 and "100.00" in out and "block" in out
    code, out, _ = cli("--json", "grants", "add", "cli-spend", "--amount", "9.00", "--reason", "welcome")
    assert code == 0 and json.loads(out)["remaining"] == "9.00"
    code, out, _ = cli("--json", "spend", "cli-spend")
    found = json.loads(out)
    assert code == 0 and found["net"] == "40.00" and found["budget"]["used_pct"] == "40.00"  # 49.00 - 9.00
    code, out, _ = cli("spend", "cli-spend")
    assert code == 0 and "EUR 40.00" in out and "40.00 %" in out
    code, out, _ = cli("grants", "list", "cli-spend")
    assert code == 0 and "welcome" in out and "9.00" in out
    code, out, _ = cli("--json", "webhooks", "add", "cli-spend", "--url", receiver.url, "--event", "invoice.paid")
    hook = json.loads(out)
    assert code == 0 and hook["secret"].startswith("whsec_") and hook["events"] == ["invoice.paid"]
    code, out, _ = cli("--json", "webhooks", "list", "cli-spend")
    assert code == 0 and [w["id"] for w in json.loads(out)["webhooks"]] == [hook["id"]] and hook["secret"] not in out
    code, out, _ = cli("webhooks", "list", "cli-spend")
    assert code == 0 and "invoice.paid" in out and "whsec_" not in out
    code, out, _ = cli("--json", "webhooks", "deliveries", "cli-spend", hook["id"])
    assert code == 0 and json.loads(out) == {"deliveries": []}
    assert cli("webhooks", "delete", "cli-spend", hook["id"])[0] == 0
    code, _, err = cli("webhooks", "delete", "cli-spend", hook["id"])
    assert code == 1 and "no webhook" in err
    assert cli("budget", "clear", "cli-spend")[0] == 0
    code, _, err = cli("budget", "show", "cli-spend")
    assert code == 1 and "no budget" in err
    code, _, err = cli("budget", "set", "cli-spend", "--limit", "-5")
    assert code == 1 and "monthly_limit" in err

