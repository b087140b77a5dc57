"""Spend control from the command line: budgets, live spend, webhooks and credit grants (the public API only).
Registered on the `energent` app by main.py."""

from __future__ import annotations

from typing import Annotated

import typer

from energent_cli.main import Failed, api, app, pages, q, record, show, table

budget_app = typer.Typer(help="A tenant's monthly budget: thresholds announced once, optionally a hard cap.",
                         no_args_is_help=True)
webhooks_app = typer.Typer(help="A tenant's webhooks (Standard Webhooks) and their deliveries.", no_args_is_help=True)
grants_app = typer.Typer(help="Credit grants: credit taken by the next invoices before VAT.", no_args_is_help=True)
for name, sub in (("budget", budget_app), ("webhooks", webhooks_app), ("grants", grants_app)):
    app.add_typer(sub, name=name)

BUDGET_FIELDS = ["tenant_id", "monthly_limit", "currency", "thresholds", "action", "version", "updated_at"]


@budget_app.command("set")
def budget_set(tenant_id: str,
               limit: Annotated[str, typer.Option("--limit", help="Monthly limit, net, e.g. 250.00")],
               threshold: Annotated[list[int] | None, typer.Option(
                   "--threshold", help="Percent of the limit to announce (repeat; default 50, 80, 100)")] = None,
               block: Annotated[bool, typer.Option("--block", help="At 100 %: a concurrent-workflow limit of 0 "
                                                               "until raised, removed or the month ends")] = False,
               ) -> None:
    """Set the budget (each time a new version)."""
    body: dict = {"monthly_limit": limit, "action": "block" if block else "notify"}
    if threshold:
        body["thresholds"] = threshold
    found = api().call("PUT", f"/v1/tenants/{q(tenant_id)}/budget", json=body)
    show(found, record(f"budget of {tenant_id}", found, BUDGET_FIELDS))


@budget_app.command("show")
def budget_show(tenant_id: str) -> None:
    """The budget in force."""
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}/budget")
    show(found, record(f"budget of {tenant_id}", found, BUDGET_FIELDS))


@budget_app.command("clear")
def budget_clear(tenant_id: str) -> None:
    """Remove the budget (a block it set is lifted within a minute)."""
    api().call("DELETE", f"/v1/tenants/{q(tenant_id)}/budget")
    show({}, f"budget of {tenant_id} removed")


@app.command("spend")
def spend(tenant_id: str) -> None:
    """What the open month costs so far, as its invoice would have it now, against the budget."""
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}/spend")
    vat = found["vat"]
    rows = [["net", f"{found['currency']} {found['net']}"],
            [f"VAT ({vat['treatment']}, {vat['rate']} %)", f"{found['currency']} {vat['amount']}"],
            ["total", f"{found['currency']} {found['total']}"], ["as of", found["as_of"]]]
    budget = found.get("budget")
    if budget:
        rows += [["budget", f"{found['currency']} {budget['monthly_limit']}"], ["used", f"{budget['used_pct']} %"],
                 ["state", budget["state"]]]
    show(found, table(f"spend of {tenant_id} in {found['period']}", ["", "value"], rows))


@webhooks_app.command("add")
def webhooks_add(tenant_id: str, url: Annotated[str, typer.Option("--url", help="https URL that receives events")],
                 event: Annotated[list[str] | None, typer.Option(
                     "--event", help="budget.crossed, invoice.issued, invoice.paid or credit_note.issued (repeat; "
                                     "default all)")] = None) -> None:
    """Register a webhook; its signing secret is printed this once."""
    body: dict = {"url": url, **({"events": event} if event else {})}
    found = api().call("POST", f"/v1/tenants/{q(tenant_id)}/webhooks", json=body)
    show(found, table(f"webhook {found['id']} (the secret is shown this once)", ["field", "value"],
                      [["id", found["id"]], ["url", found["url"]], ["events", ", ".join(found["events"])],
                       ["secret", found["secret"]]]))


@webhooks_app.command("list")
def webhooks_list(tenant_id: str) -> None:
    """The tenant's webhooks (never their secrets)."""
    found = pages(api(), f"/v1/tenants/{q(tenant_id)}/webhooks", "webhooks")
    show({"webhooks": found}, table(f"webhooks of {tenant_id}", ["id", "url", "events", "created"],
                                    [[w["id"], w["url"], ", ".join(w["events"]), w["created_at"]] for w in found]))


@webhooks_app.command("delete")
def webhooks_delete(tenant_id: str, webhook_id: str) -> None:
    """Remove a webhook."""
    api().call("DELETE", f"/v1/tenants/{q(tenant_id)}/webhooks/{q(webhook_id)}")
    show({}, f"webhook {webhook_id} removed")


@webhooks_app.command("deliveries")
def webhooks_deliveries(tenant_id: str, webhook_id: str) -> None:
    """The webhook's deliveries: one per event, with attempts and status."""
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}/webhooks/{q(webhook_id)}/deliveries")
    show(found, table(f"deliveries of {webhook_id}", ["event", "type", "attempts", "status", "last code", "next"],
                      [[d["event_id"], d["type"], d["attempts"], d["status"], d.get("last_status_code"),
                        d.get("next_attempt_at")] for d in found["deliveries"]]))


@grants_app.command("add")
def grants_add(tenant_id: str, amount: Annotated[str, typer.Option("--amount", help="e.g. 100.00")],
               reason: Annotated[str, typer.Option("--reason", help="Shown on the invoices that take it")],
               expires_on: Annotated[str | None, typer.Option("--expires-on", help="YYYY-MM-DD, inclusive")] = None,
               ) -> None:
    """Grant credit (operator)."""
    if not amount.strip():
        raise Failed("--amount must be an amount such as 100.00")
    body = {"amount": amount, "reason": reason, **({"expires_on": expires_on} if expires_on else {})}
    found = api().call("POST", f"/v1/tenants/{q(tenant_id)}/credit-grants", json=body)
    show(found, record(f"credit grant {found['id']}", found,
                       ["id", "amount", "remaining", "currency", "reason", "expires_on", "created_at"]))


@grants_app.command("list")
def grants_list(tenant_id: str) -> None:
    """The tenant's credit grants with what is left of each."""
    found = pages(api(), f"/v1/tenants/{q(tenant_id)}/credit-grants", "credit_grants")
    show({"credit_grants": found}, table(f"credit grants of {tenant_id}",
                                         ["id", "amount", "remaining", "expires", "reason"],
                                         [[g["id"], g["amount"], g["remaining"], g.get("expires_on"), g["reason"]]
                                          for g in found]))
