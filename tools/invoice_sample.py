"""Writes a sample invoice from the running local stack (`make dev`), as PDF and HTML, for a person to look at:
a customer in Germany (reverse charge) with usage last month, last month closed, the invoice fetched through the
gateway by Accept. Nothing of it is committed; it goes to build/.

    make invoice-sample      # then open build/invoice-sample.pdf
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build"


def main() -> None:
    env_file = ROOT / ".local" / "stack.env"
    if not env_file.exists():
        sys.exit("no running stack: start `make dev` in another terminal first")
    values = dict(line.split("=", 1) for line in shlex.split(env_file.read_text(), comments=True))
    url = values["GATEWAY_URL"]
    token = requests.post(f"{url}/v1/oauth/token", data={"grant_type": "client_credentials"}, timeout=10,
                          auth=(values["OPERATOR_CLIENT_ID"], values["OPERATOR_CLIENT_SECRET"])).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    now = datetime.datetime.now(datetime.UTC)
    period = (now.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
    tenant_id = f"sample-{uuid.uuid4().hex[:8]}"
    created = requests.post(f"{url}/v1/tenants", headers=headers, timeout=10, json={
        "tenant_id": tenant_id, "display_name": "Beispiel GmbH", "tier": "standard", "billing_start": f"{period}-01",
        "billing_profile": {"legal_name": "Beispiel GmbH", "vat_id": "DE123456788", "email": "buchhaltung@example.de",
                            "address": {"line1": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                                        "country": "DE"}}})
    created.raise_for_status()
    usage = [{"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//energent.ai/sample",
              "id": uuid.uuid4().hex, "time": f"{period}-{day:02d}T10:00:00Z",
              "data": {"tenant_id": tenant_id, "meter": meter, "quantity": quantity}}
             for day, meter, quantity in ((3, "workflow_minutes", "12500.5"), (9, "workflow_minutes", "18250"),
                                          (12, "peak_concurrent_workflows", "3"), (20, "storage_gib_hours", "21000"))]
    requests.post(f"{url}/v1/usage", headers={**headers, "Content-Type": "application/cloudevents-batch+json"},
                  data=json.dumps(usage), timeout=30).raise_for_status()
    before = requests.get(f"{url}/v1/billing/periods/{period}", headers=headers, timeout=30).json()
    if before.get("status") != "open":
        sys.exit(f"{period} was already closed (or closing) in this stack, so a new tenant gets no invoice for it; "
                 "restart `make dev` and run this first")
    closed = requests.post(f"{url}/v1/billing/periods/{period}:close", headers=headers, timeout=60)
    if closed.status_code == 409:
        sys.exit(f"{period} cannot be closed in this stack ({closed.json()['detail']}); restart `make dev`")
    closed.raise_for_status()
    deadline = time.monotonic() + 300
    while closed.json()["status"] != "closed":  # 202: the close goes on; follow it
        if time.monotonic() > deadline:
            sys.exit(f"{period} is still closing after 5 minutes")
        time.sleep(0.5)
        closed = requests.get(f"{url}/v1/billing/periods/{period}", headers=headers, timeout=30)
    invoice = f"{url}/v1/tenants/{tenant_id}/invoices/{period}"
    OUT.mkdir(exist_ok=True)
    for suffix, media in (("pdf", "application/pdf"), ("html", "text/html")):
        response = requests.get(invoice, headers={**headers, "Accept": media}, timeout=30)
        response.raise_for_status()
        (OUT / f"invoice-sample.{suffix}").write_bytes(response.content)
    print(f"wrote {OUT / 'invoice-sample.pdf'} and {OUT / 'invoice-sample.html'} (tenant {tenant_id}, {period})")


if __name__ == "__main__":
    main()
