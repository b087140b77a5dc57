"""Two customers with a month of usage and an issued invoice each, on a running stack (tests/e2e/conftest.py):
what the portal's browser tests, `make portal-screenshots` and the portal benchmark look at."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

PROFILES = {
    "acme": {"legal_name": "Acme B.V.", "vat_id": "NL100000009B01", "email": "billing@acme.example",
             "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL"}},
    "globex": {"legal_name": "Globex GmbH", "vat_id": "DE136695976", "email": "billing@globex.example",
               "address": {"line1": "Friedrichstrasse 1", "postal_code": "10117", "city": "Berlin", "country": "DE"}},
}


@dataclass(frozen=True)
class Seeded:
    last_month: str
    this_month: str
    invoices: dict[str, str]  # tenant -> number of last month's invoice
    globex_client: str  # a client of the other tenant, which acme's portal must never reach


def months() -> tuple[str, str]:
    today = datetime.datetime.now(datetime.UTC).date()
    return (today.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m"), today.strftime("%Y-%m")


def usage_events(tenant_id: str, scale: int) -> list[dict]:
    """Every other day of last month and every day of this month up to now: minutes, runs and a peak."""
    last, this = months()
    now = datetime.datetime.now(datetime.UTC)
    events = []
    for day in range(1, 29, 2):
        events.append((f"{last}-{day:02d}T10:00:00Z", "workflow_minutes", 90 * scale + day * 37 % 211))
    for day in range(1, now.day + 1):
        moment = min(now - datetime.timedelta(minutes=2),
                     datetime.datetime.fromisoformat(f"{this}-{day:02d}T09:00:00+00:00"))
        if moment.strftime("%Y-%m") != this:  # the month's first minutes: nothing of this month to send yet
            continue
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        events += [(stamp, "workflow_minutes", 40 * scale + day * 53 % 317), (stamp, "workflow_runs", 1),
                   (stamp, "peak_concurrent_workflows", 1 + day % 2)]
    return [{"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//energent.ai/portal-seed",
             "id": f"{tenant_id}-{index}", "time": stamp,
             "data": {"tenant_id": tenant_id, "meter": meter, "quantity": str(quantity)}}
            for index, (stamp, meter, quantity) in enumerate(events)]


def seed(stack) -> Seeded:
    last, this = months()
    operator = stack.operator()
    for tenant_id, name, tier, scale in (("acme", "Acme BV", "standard", 3), ("globex", "Globex GmbH", "premium", 1)):
        response = requests.post(f"{stack.url}/v1/tenants", headers=operator, timeout=30, json={
            "tenant_id": tenant_id, "display_name": name, "tier": tier, "billing_start": f"{last}-01",
            "billing_profile": PROFILES[tenant_id]})
        assert response.status_code == 202, response.text
        sent = requests.post(f"{stack.url}/v1/usage", data=json.dumps(usage_events(tenant_id, scale)), timeout=60,
                             headers={**operator, "Content-Type": "application/cloudevents-batch+json"})
        assert sent.status_code == 202 and not sent.json()["rejected"], sent.text
    for tenant_id in ("acme", "globex"):
        deadline = time.monotonic() + 60
        while requests.get(f"{stack.url}/v1/tenants/{tenant_id}", headers=operator,
                           timeout=10).json()["status"] != "active":
            assert time.monotonic() < deadline, f"{tenant_id} did not become active"
            time.sleep(0.3)
    closed = requests.post(f"{stack.url}/v1/billing/periods/{last}:close", headers=operator, timeout=60)
    assert closed.status_code in (200, 202), closed.text
    deadline = time.monotonic() + 60
    while requests.get(f"{stack.url}/v1/billing/periods/{last}", headers=operator, timeout=10).json()[
            "status"] != "closed":
        assert time.monotonic() < deadline, "the close did not finish"
        time.sleep(0.5)
    numbers = {tenant_id: requests.get(f"{stack.url}/v1/tenants/{tenant_id}/invoices/{last}", headers=operator,
                                       timeout=10).json()["number"] for tenant_id in ("acme", "globex")}
    client = requests.post(f"{stack.url}/v1/tenants/globex/clients", headers=operator, timeout=10,
                           json={"scopes": ["usage:read"], "name": "globex-reporting"})
    assert client.status_code == 201, client.text
    return Seeded(last, this, numbers, client.json()["client_id"])


def link(stack, tenant_id: str = "acme", headers: dict | None = None) -> str:
    response = requests.post(f"{stack.url}/v1/tenants/{tenant_id}/portal-sessions", timeout=10,
                             headers=headers or stack.operator())
    assert response.status_code == 201, response.text
    return response.json()["url"]


def expire(stack, url: str) -> None:
    """Moves a link's expiry into the past, as ten minutes would (the code is stored under its SHA-256)."""
    code = parse_qs(urlsplit(url).query)["code"][0]
    digest = hashlib.sha256(code.encode()).hexdigest()
    document = (f"http://{stack.values['FIRESTORE_EMULATOR_HOST']}/v1/projects/{stack.project}/databases/(default)/"
                f"documents/portal_codes/{digest}")
    response = requests.patch(document, params={"updateMask.fieldPaths": "expires_at"}, timeout=10,
                              json={"fields": {"expires_at": {"timestampValue": "2020-01-01T00:00:00Z"}}})
    response.raise_for_status()
