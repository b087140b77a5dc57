"""energent: the operators' command line (CONTRACT §9). It speaks only the public API, through the gateway.

Tables for people, `--json` (before or after the command) for scripts: the API's JSON for what the command did,
and nothing else on stdout. Exit 0 on success; 1 with the problem's detail on stderr otherwise.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from energent_cli import usage_file
from energent_cli.api import Api, ApiError, profile

app = typer.Typer(help="Run the Energent control plane: tenants, clients, usage, periods, invoices, documents, "
                       "balances, the books, keys and portal links.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
tenants_app = typer.Typer(help="Tenants: create, list, read, change and delete.", no_args_is_help=True)
clients_app = typer.Typer(help="A tenant's API clients.", no_args_is_help=True)
usage_app = typer.Typer(help="Send usage from a file, show a tenant's usage.", no_args_is_help=True)
periods_app = typer.Typer(help="Close billing periods and follow a close.", no_args_is_help=True)
invoices_app = typer.Typer(help="Invoices: list, read, the upcoming one, pay, credit.", no_args_is_help=True)
documents_app = typer.Typer(help="Issued invoices and credit notes by number.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
books_app = typer.Typer(help="The books: the journal and the Dutch VAT return.", no_args_is_help=True)
for name, sub in (("tenants", tenants_app), ("clients", clients_app), ("usage", usage_app), ("periods", periods_app),
                  ("invoices", invoices_app), ("documents", documents_app), ("books", books_app), ("keys", keys_app)):
    app.add_typer(sub, name=name)

out = Console()
err = Console(stderr=True)
state = {"json": False}


class Failed(Exception):
    """The command did not do what was asked; the message says why (exit 1)."""


def api() -> Api:
    return Api(profile())


def q(segment: str) -> str:
    """A path segment as typed, escaped: `../other` must not reach another tenant's resource."""
    return quote(segment, safe="")


def show(data, table: Table | str | None = None) -> None:
    """The API's JSON with --json; else the table or line for people."""
    if state["json"]:
        out.file.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    elif table is not None:
        out.print(table)


def pages(client: Api, path: str, key: str, **params) -> list[dict]:
    """Every item of a list, following `next_page_token`."""
    found, token = [], ""
    while True:
        page = client.call("GET", path, params={"page_size": 100, **params, **({"page_token": token} if token else {})})
        found += page[key]
        token = page.get("next_page_token")
        if not token:
            return found


def table(title: str, columns: list[str], rows: list[list]) -> Table:
    view = Table(title=escape(title), title_justify="left", header_style="bold")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:  # whatever the API says is text, never Rich markup
        view.add_row(*("" if cell is None else escape(str(cell)) for cell in row))
    return view


def record(title: str, data: dict, fields: list[str]) -> Table:
    return table(title, ["field", "value"], [[field, json.dumps(data.get(field)) if isinstance(
        data.get(field), (dict, list)) else data.get(field)] for field in fields])


# --- tenants ------------------------------------------------------------------------------------------------------

TENANT_FIELDS = ["tenant_id", "display_name", "tier", "deployment_model", "status", "status_message", "billing_start",
                 "created_at", "updated_at"]
PROFILE_HELP = "The customer invoices name: a JSON file {legal_name, address: {line1, line2?, postal_code, city, " \
               "country}, vat_id?, email?}"
SITE_OPTION = typer.Option("--site", help="A hybrid tenant's site: JSON {peer_ips, peer_asn, cidrs}", exists=True,
                           dir_okay=False, readable=True)


def read_profile(file: Path) -> dict:
    """A billing profile from a JSON file (checked by the API, which names any field it refuses)."""
    try:
        found = json.loads(file.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise Failed(f"cannot read {file}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Failed(f"{file.name} is not a JSON document: {error}") from None
    if not isinstance(found, dict):
        raise Failed(f"{file.name} must hold a JSON object: the billing profile")
    return found


def site_file(file: Path) -> dict:
    """A hybrid tenant's site from a JSON file (checked by the API, which names any field it refuses)."""
    try:
        found = json.loads(file.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise Failed(f"cannot read {file}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Failed(f"{file.name} is not a JSON document: {error}") from None
    if not isinstance(found, dict):
        raise Failed(f"{file.name} must hold a JSON object: the site {{peer_ips, peer_asn, cidrs}}")
    return found


def poll(fetch: Callable[[], dict], done: Callable[[dict], bool], timeout_s: float, still: Callable[[dict], str],
         shown: Callable[[dict], object] = lambda _: None, first: dict | None = None) -> dict:
    """Fetch every half second (starting from `first`, if given) until `done` says so, showing each answer; past
    `timeout_s`, fail with what `still` says of the last one."""
    deadline = time.monotonic() + timeout_s
    current = fetch() if first is None else first
    while True:
        shown(current)
        if done(current):
            return current
        if time.monotonic() > deadline:
            raise Failed(still(current))
        time.sleep(0.5)
        current = fetch()


def follow_tenant(client: Api, tenant_id: str, until: tuple[str, ...], timeout_s: float) -> dict:
    """Poll the tenant's status with a live line until it reaches one of `until` or `failed`."""
    def reached(current: dict) -> bool:
        if current["status"] == "failed" and "failed" not in until:
            raise Failed(f"{tenant_id} failed: {current.get('status_message') or 'no message from Flux'}")
        return current["status"] in until

    with err.status(f"{tenant_id}: waiting") as line:
        return poll(lambda: client.call("GET", f"/v1/tenants/{q(tenant_id)}"), reached, timeout_s,
                    lambda current: f"{tenant_id} is still {current['status']} after {timeout_s:.0f} s; "
                                    f"follow it with `energent tenants get {tenant_id}`",
                    lambda current: line.update(escape(f"{tenant_id}: {current['status']}")))


@tenants_app.command("create")
def tenants_create(tenant_id: str, name: Annotated[str, typer.Option("--name", help="Display name")],
                   tier: Annotated[str, typer.Option("--tier", help="basic, standard, premium or enterprise")],
                   dedicated: Annotated[bool, typer.Option("--dedicated", help="A cluster of its own")] = False,
                   hybrid: Annotated[bool, typer.Option("--hybrid", help="Connected to its site (--site)")] = False,
                   site: Annotated[Path | None, SITE_OPTION] = None,
                   billing_start: Annotated[str | None, typer.Option("--billing-start", help="YYYY-MM-DD")] = None,
                   profile: Annotated[Path | None, typer.Option("--profile", help=PROFILE_HELP)] = None,
                   wait: Annotated[bool, typer.Option("--wait", help="Follow until active or failed")] = False,
                   timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait")] = 300) -> None:
    """Create a tenant."""
    if dedicated and hybrid:
        raise Failed("a tenant is --dedicated or --hybrid, not both")
    if hybrid != (site is not None):
        raise Failed("a hybrid tenant needs its site: give --hybrid and --site FILE.json together")
    client = api()
    body = {"tenant_id": tenant_id, "display_name": name, "tier": tier,
            "deployment_model": "dedicated" if dedicated else "hybrid" if hybrid else "multi-tenant"}
    if site is not None:
        body["site"] = site_file(site)
    if billing_start:
        body["billing_start"] = billing_start
    if profile is not None:
        body["billing_profile"] = read_profile(profile)
    created = client.call("POST", "/v1/tenants", json=body)
    if wait:
        created = follow_tenant(client, tenant_id, ("active",), timeout)
    show(created, record(f"tenant {tenant_id}", created, TENANT_FIELDS))


@tenants_app.command("list")
def tenants_list(status: Annotated[str | None, typer.Option("--status", help="Only tenants in this status")] = None,
                 ) -> None:
    """Every tenant (page by page), or those in one status."""
    found = pages(api(), "/v1/tenants", "tenants", **({"status": status} if status else {}))
    show({"tenants": found}, table("tenants", ["id", "name", "tier", "model", "status", "billing start"],
                                   [[t["tenant_id"], t["display_name"], t["tier"], t["deployment_model"], t["status"],
                                     t.get("billing_start")] for t in found]))


@tenants_app.command("get")
def tenants_get(tenant_id: str) -> None:
    """One tenant."""
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}")
    show(found, record(f"tenant {tenant_id}", found, [*TENANT_FIELDS, "billing_profile", "site"]))


@tenants_app.command("update")
def tenants_update(tenant_id: str, tier: Annotated[str | None, typer.Option("--tier")] = None,
                   name: Annotated[str | None, typer.Option("--name")] = None,
                   profile: Annotated[Path | None, typer.Option("--profile", help=PROFILE_HELP)] = None,
                   site: Annotated[Path | None, SITE_OPTION] = None,
                   site_state: Annotated[str | None, typer.Option(
                       "--site-state", help="enabled: let a quarantined site's BGP sessions back; quarantined: cut "
                                            "them off")] = None) -> None:
    """Change a tenant's tier, name and/or billing profile (setting the profile issues its held invoices), or a hybrid
    tenant's site, or whether its BGP sessions are on."""
    body: dict = {k: v for k, v in (("tier", tier), ("display_name", name), ("site_state", site_state))
                  if v is not None}
    if profile is not None:
        body["billing_profile"] = read_profile(profile)
    if site is not None:
        body["site"] = site_file(site)
    if not body:
        raise Failed("nothing to change: give --tier, --name, --profile, --site and/or --site-state")
    changed = api().call("PATCH", f"/v1/tenants/{q(tenant_id)}", json=body)
    show(changed, record(f"tenant {tenant_id}", changed, TENANT_FIELDS))


@tenants_app.command("site")
def tenants_site(tenant_id: str) -> None:
    """What a hybrid tenant's network team configures on its side: the platform's VPN addresses and ASN, and per
    tunnel its BGP addresses and pre-shared key (shown in full: hand them over by a channel fit for keys)."""
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}/site")
    platform = found["platform"]
    rows = [["platform ASN", platform["asn"]], ["customer ASN", found["site"]["peer_asn"]],
            ["routes the platform advertises", ", ".join(platform["advertised_ranges"])],
            ["customer ranges", ", ".join(found["site"]["cidrs"])]]
    for tunnel in found["tunnels"]:
        rows += [[f"{tunnel['name']}: platform VPN address", tunnel["platform_vpn_address"]],
                 [f"{tunnel['name']}: customer VPN address", tunnel["peer_ip"]],
                 [f"{tunnel['name']}: IKE version", tunnel["ike_version"]],
                 [f"{tunnel['name']}: pre-shared key", tunnel["pre_shared_key"]],
                 [f"{tunnel['name']}: BGP platform / customer",
                  f"{tunnel['bgp']['platform_address']} / {tunnel['bgp']['peer_address']} "
                  f"({tunnel['bgp']['link_local_range']})"]]
    show(found, table(f"site of {tenant_id} ({found['status']})", ["setting", "value"], rows))


@tenants_app.command("delete")
def tenants_delete(tenant_id: str, wait: Annotated[bool, typer.Option("--wait", help="Follow until deleted")] = False,
                   timeout: Annotated[float, typer.Option("--timeout")] = 300) -> None:
    """Delete a tenant (its tokens stop working at once)."""
    client = api()
    deleted = client.call("DELETE", f"/v1/tenants/{q(tenant_id)}")
    if wait:
        deleted = follow_tenant(client, tenant_id, ("deleted",), timeout)
    show(deleted, record(f"tenant {tenant_id}", deleted, TENANT_FIELDS))


RERENDER_FIELDS = ["run_id", "status", "reason", "tenants", "rerendered", "unchanged", "failed", "failed_tenants",
                   "started_at", "finished_at"]


@tenants_app.command("rerender")
def tenants_rerender(reason: Annotated[str, typer.Option("--reason", help="Why, for the record")] = "platform change",
                     wait: Annotated[bool, typer.Option("--wait", help="Follow until every tenant is done")] = False,
                     timeout: Annotated[float, typer.Option("--timeout")] = 3600) -> None:
    """Render every tenant's manifests again after a tier-table or platform change."""
    client = api()
    run = client.call("POST", "/v1/tenants:rerender", json={"reason": reason})
    if wait:
        with Progress(TextColumn("re-rendering: {task.completed} tenants"), console=err, transient=True,
                      disable=state["json"]) as progress:
            task = progress.add_task("rerender", total=None)
            run = poll(lambda: client.call("GET", f"/v1/rerenders/{q(run['run_id'])}"),
                       lambda current: current["status"] == "done", timeout,
                       lambda current: f"the re-render is still running after {timeout:.0f} s; follow it with "
                                       f"`energent tenants rerender-status {current['run_id']}`",
                       lambda current: progress.update(task, completed=current["tenants"]), first=run)
    show(run, record(f"re-render {run['run_id']}", run, RERENDER_FIELDS))
    if run["status"] == "done" and run["failed"]:
        raise Failed(f"{run['failed']} tenant(s) could not be re-rendered: {', '.join(run['failed_tenants'])}")


@tenants_app.command("rerender-status")
def tenants_rerender_status(run_id: str) -> None:
    """A re-render run's progress."""
    run = api().call("GET", f"/v1/rerenders/{q(run_id)}")
    show(run, record(f"re-render {run_id}", run, RERENDER_FIELDS))


# --- clients ------------------------------------------------------------------------------------------------------

@clients_app.command("create")
def clients_create(tenant_id: str, scope: Annotated[list[str], typer.Option("--scope", help="Repeat for more")],
                   name: Annotated[str | None, typer.Option("--name")] = None) -> None:
    """Create a client; its secret is shown this once."""
    created = api().call("POST", f"/v1/tenants/{q(tenant_id)}/clients",
                         json={"scopes": scope, **({"name": name} if name else {})})
    show(created, record("new client (the secret is shown only now)", created,
                         ["client_id", "client_secret", "scopes"]))


@clients_app.command("list")
def clients_list(tenant_id: str) -> None:
    """A tenant's clients (never their secrets)."""
    found = {"clients": pages(api(), f"/v1/tenants/{q(tenant_id)}/clients", "clients")}
    show(found, table(f"clients of {tenant_id}", ["client id", "name", "scopes", "created"],
                      [[c.get("client_id"), c.get("name"), " ".join(c.get("scopes", [])), c.get("created_at")]
                       for c in found["clients"]]))


@clients_app.command("delete")
def clients_delete(tenant_id: str, client_id: str) -> None:
    """Delete a client; its tokens stop working."""
    api().call("DELETE", f"/v1/tenants/{q(tenant_id)}/clients/{q(client_id)}")
    if not state["json"]:  # the API answers 204 without a body: nothing to print as JSON
        out.print(escape(f"deleted {client_id}"))


# --- usage --------------------------------------------------------------------------------------------------------

@usage_app.command("send")
def usage_send(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Send usage from JSON lines of CloudEvents or a CSV (tenant_id,meter,quantity[,time][,id]). Sending the
    same file again counts nothing twice."""
    client = api()
    try:  # utf-8-sig: spreadsheets write a byte-order mark before the header
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise Failed(f"{file.name} is not UTF-8 text (byte {error.start})") from None
    parsed = list(usage_file.read(text, file.name))
    events = [item for item in parsed if isinstance(item, dict)]
    summary = {"accepted": 0, "duplicates": 0, "conflicts": [],
               "rejected": [{"id": f"line {bad.line}", "reason": bad.reason}
                            for bad in parsed if isinstance(bad, usage_file.BadRow)]}
    with Progress(TextColumn("sending usage"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=state["json"]) as progress:
        task = progress.add_task("send", total=len(events))
        for batch in usage_file.batches(events):
            # Longer than the gateway's 60 s deadline: a retry must never overtake an attempt still running.
            answer = client.call("POST", "/v1/usage", retries=5, timeout_s=75, data=json.dumps(batch),
                                 headers={"Content-Type": "application/cloudevents-batch+json"})
            summary["accepted"] += answer["accepted"]
            summary["duplicates"] += answer["duplicates"]
            summary["conflicts"] += answer.get("conflicts", [])
            summary["rejected"] += answer["rejected"]
            progress.advance(task, len(batch))
    problems = [["rejected", r["id"], r["reason"]] for r in summary["rejected"]] + \
               [["conflict", c["id"], c["reason"]] for c in summary["conflicts"]]
    show(summary, table(f"{file.name}: {summary['accepted']} accepted, {summary['duplicates']} duplicates, "
                        f"{len(summary['conflicts'])} conflicts, {len(summary['rejected'])} rejected",
                        ["outcome", "event", "reason"], problems))


@usage_app.command("show")
def usage_show(tenant_id: str, period: Annotated[str | None, typer.Option("--period", help="YYYY-MM")] = None,
               daily: Annotated[bool, typer.Option("--daily", help="Per day too")] = False) -> None:
    """A tenant's usage in a period (default: this UTC month)."""
    period = period or datetime.datetime.now(datetime.UTC).strftime("%Y-%m")
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}/usage",
                       params={"period": period, **({"granularity": "day"} if daily else {})})
    meters = sorted(found["meters"])
    if daily:
        rows = [[day["date"], *(day["meters"][m]["quantity"] for m in meters)] for day in found.get("days", [])]
        show(found, table(f"usage of {tenant_id} in {period}, per day", ["date", *meters], rows))
    else:
        show(found, table(f"usage of {tenant_id} in {period}", ["meter", "quantity", "unit"],
                          [[m, found["meters"][m]["quantity"], found["meters"][m]["unit"]] for m in meters]))


# --- periods ------------------------------------------------------------------------------------------------------

def period_table(found: dict) -> Table:
    return record(f"period {found['period']}", found, ["status", "tenants", "drafted", "issued", "started_at",
                                                        "closed_at"])


@periods_app.command("close")
def periods_close(period: str, wait: Annotated[bool, typer.Option("--wait", help="Follow until closed")] = False,
                  timeout: Annotated[float, typer.Option("--timeout")] = 3600) -> None:
    """Close a period into invoices for every tenant."""
    client = api()
    found = client.call("POST", f"/v1/billing/periods/{q(period)}:close")
    if wait and found["status"] != "closed":
        with Progress(TextColumn("closing {task.fields[period]}: {task.fields[stage]}"), BarColumn(),
                      MofNCompleteColumn(), console=err, transient=True, disable=state["json"]) as progress:
            task = progress.add_task("close", total=None, period=period, stage="drafting")
            found = poll(lambda: client.call("GET", f"/v1/billing/periods/{q(period)}"),
                         lambda current: current["status"] == "closed", timeout,
                         lambda _: f"{period} is still closing after {timeout:.0f} s; follow it with "
                                   f"`energent periods show {period}`",
                         lambda current: progress.update(task, total=current["drafted"] or None,
                                                         completed=current["issued"],
                                                         stage="numbering" if current["issued"] else "drafting"),
                         first=found)
    show(found, period_table(found))


@periods_app.command("show")
def periods_show(period: str) -> None:
    """A period's close and its progress."""
    found = api().call("GET", f"/v1/billing/periods/{q(period)}")
    show(found, period_table(found))


# --- invoices -----------------------------------------------------------------------------------------------------

INVOICE_FIELDS = ["number", "tenant_id", "period", "status", "net", "vat", "total", "balance_applied", "amount_paid",
                  "credited_net", "amount_due", "issue_date", "due_date", "payment_reference", "replaces",
                  "replaced_by", "warnings"]
CREDIT_NOTE_FIELDS = ["number", "tenant_id", "period", "invoice_number", "invoice_date", "reason", "net", "vat",
                      "total", "issue_date"]


def invoice_table(found: dict) -> Table:
    if "invoice_number" in found:
        view = record(f"credit note {found['number']}", found, CREDIT_NOTE_FIELDS)
    else:
        view = record(f"invoice {found.get('number') or '(' + found.get('status', 'upcoming') + ')'}", found,
                      [field for field in INVOICE_FIELDS if found.get(field) not in (None, [], "")])
    for line in found.get("lines", []):
        view.add_row(line.get("kind", ""), escape(f"{line['amount']}  {line['description']}"))
    for payment in found.get("payments", []):
        view.add_row("payment", escape(f"{payment['amount']}  {payment['reference']}  {payment['paid_at']}"))
    return view


def write_document(client: Api, path: str, media: str, file: Path) -> None:
    document = client.call("GET", path, raw=True, headers={"Accept": media})
    file.write_bytes(document.content)
    if not state["json"]:
        err.print(f"wrote {file}")


@books_app.command("journal")
def books_journal(start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD")],
                  end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (included)")],
                  csv: Annotated[Path | None, typer.Option("--csv", help="Write the journal as CSV to this file")]
                  = None) -> None:
    """One balanced entry per invoice, credit note and payment from --from through --to."""
    client = api()
    path = f"/v1/billing/journal?from={q(start)}&to={q(end)}"
    if csv is not None:
        write_document(client, path, "text/csv", csv)
    found = client.call("GET", path)
    show(found, table(f"journal {start} to {end}", ["date", "entry", "account", "debit", "credit", "VAT"],
                      [[r["date"], r["entry"], r["account"], r["debit"], r["credit"], r.get("vat_code") or ""]
                       for r in found["entries"]]))


@books_app.command("vat-return")
def books_vat_return(quarter: Annotated[str, typer.Argument(help="The quarter, YYYY-Qn")]) -> None:
    """The Dutch VAT return of a quarter (boxes 1a and 3b) and the ICP listing."""
    found = api().call("GET", f"/v1/billing/vat-returns/{q(quarter)}")
    rows = [["1a", found["boxes"]["1a"]["turnover"], found["boxes"]["1a"]["vat"]],
            ["3b", found["boxes"]["3b"]["turnover"], ""],
            ["outside the return (services outside the EU)", found["outside_return"]["turnover"], ""]]
    rows += [[f"ICP {item['vat_id']} ({item['country']})", item["turnover"], ""] for item in found["icp"]]
    show(found, table(f"VAT return {found['period']}", ["box", "turnover", "VAT"], rows))


@invoices_app.command("list")
def invoices_list(tenant_id: str) -> None:
    """Every invoice of the tenant: paid, credited and replaced ones, and drafts held for a billing profile."""
    found = {"invoices": pages(api(), f"/v1/tenants/{q(tenant_id)}/invoices", "invoices")}
    show(found, table(f"invoices of {tenant_id}", ["number", "period", "status", "total", "due", "due date"],
                      [[i.get("number") or "(held)", i["period"], i["status"], f"{i['currency']} {i['total']}",
                        i.get("amount_due"), i.get("due_date")] for i in found["invoices"]]))


@invoices_app.command("get")
def invoices_get(tenant_id: str, period: str,
                 pdf: Annotated[Path | None, typer.Option("--pdf", help="Write the PDF to this file")] = None) -> None:
    """One invoice; with --pdf its PDF as well."""
    client = api()
    found = client.call("GET", f"/v1/tenants/{q(tenant_id)}/invoices/{q(period)}")
    if pdf is not None:
        write_document(client, f"/v1/tenants/{q(tenant_id)}/invoices/{q(period)}", "application/pdf", pdf)
    show(found, invoice_table(found))


@invoices_app.command("upcoming")
def invoices_upcoming(tenant_id: str) -> None:
    """The open period's invoice as it stands now."""
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}/invoices/upcoming")
    show(found, invoice_table(found))


@invoices_app.command("pay")
def invoices_pay(tenant_id: str, period: str, reference: Annotated[str, typer.Option("--reference")],
                 amount: Annotated[str | None, typer.Option("--amount", help="What was paid, e.g. 120.50 "
                                                            "(default: what is due)")] = None) -> None:
    """Record a payment (once per reference: the same again changes nothing); more than is due goes to the
    customer's balance."""
    body = {"reference": reference, **({"amount": amount} if amount is not None else {})}
    # A payment is recorded once per reference, so a retry after a lost answer is safe.
    found = api().call("POST", f"/v1/tenants/{q(tenant_id)}/invoices/{q(period)}:pay", json=body, retries=3)
    show(found, invoice_table(found))


@invoices_app.command("credit")
def invoices_credit(tenant_id: str, period: str, reason: Annotated[str, typer.Option("--reason")],
                    amount: Annotated[str | None, typer.Option("--amount", help="Net amount to credit, e.g. 25.00 "
                                                               "(default: all that is left)")] = None,
                    reissue: Annotated[bool, typer.Option("--reissue", help="Issue it again from current data")]
                    = False) -> None:
    """A credit note for part or all of the invoice, optionally reissuing it."""
    body = {"reason": reason, "reissue": reissue, **({"amount": amount} if amount is not None else {})}
    # One key for this credit and every retry of it: a retry after a lost answer never credits twice.
    found = api().call("POST", f"/v1/tenants/{q(tenant_id)}/invoices/{q(period)}:credit", json=body, retries=3,
                       headers={"Idempotency-Key": uuid.uuid4().hex})
    note, current = found["credit_note"], found["invoice"]
    show(found, table("credited", ["document", "number", "total", "status", "due"],
                      [["credit note", note["number"], note["total"], "", ""],
                       ["invoice", current["number"], current["total"], current["status"],
                        current.get("amount_due")]]))


# --- documents and balances ---------------------------------------------------------------------------------------

@documents_app.command("get")
def documents_get(tenant_id: str, number: str,
                  pdf: Annotated[Path | None, typer.Option("--pdf", help="Write the PDF to this file")] = None,
                  xml: Annotated[Path | None, typer.Option("--xml", help="Write the e-invoice (UBL) to this file")]
                  = None) -> None:
    """An issued invoice or credit note by number, as it stands now; its files as issued."""
    client = api()
    path = f"/v1/tenants/{q(tenant_id)}/documents/{q(number)}"
    found = client.call("GET", path)
    for file, media in ((pdf, "application/pdf"), (xml, "application/xml")):
        if file is not None:
            write_document(client, path, media, file)
    show(found, invoice_table(found))


@app.command("balance")
def balance(tenant_id: str) -> None:
    """The customer's balance: money owed to the customer, applied to its next invoice."""
    found = api().call("GET", f"/v1/tenants/{q(tenant_id)}/balance")
    show(found, table(f"balance of {tenant_id}: {found['currency']} {found['amount']}",
                      ["at", "amount", "document", "reason"],
                      [[e.get("at"), e["amount"], e.get("document_number"), e.get("reason")]
                       for e in found["entries"]]))


# --- the tenant portal -------------------------------------------------------------------------------------------

@app.command("portal")
def portal(tenant_id: str) -> None:
    """A one-time sign-in link to the tenant's portal, on stdout alone: it works once, within 10 minutes, and
    opens a session of an hour with every tenant permission. Send it to the customer; never post it anywhere."""
    found = api().call("POST", f"/v1/tenants/{q(tenant_id)}/portal-sessions")
    if state["json"]:
        show(found)
        return
    out.file.write(found["url"] + "\n")  # whole, on one line: no wrapping, no markup
    err.print(f"works once, until {escape(found['expires_at'])}")


# --- keys ---------------------------------------------------------------------------------------------------------

@keys_app.command("list")
def keys_list() -> None:
    """The published signing keys."""
    found = api().call("GET", "/.well-known/jwks.json")
    show(found, table("signing keys", ["kid", "alg", "curve"],
                      [[k["kid"], k.get("alg"), k.get("crv")] for k in found["keys"]]))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a signing key now, as a scheduled rotation does."""
    found = api().call("POST", "/v1/keys:rotate")
    show(found, f"rotation requested at {found.get('requested_at')}: the new key is published at once and "
                "signs after the activation delay")


# --- spend control: budget, spend, webhooks, grants (their commands live in spend.py) ------------------------

from energent_cli import spend as _spend_commands  # noqa: E402,F401 - registers its commands on `app`

# --- running ------------------------------------------------------------------------------------------------------

def main(args: list[str] | None = None) -> int:
    """Run with `args` (default: the command line); `--json` may stand anywhere. Returns the exit code."""
    args = list(sys.argv[1:] if args is None else args)
    state["json"] = "--json" in args
    args = [arg for arg in args if arg != "--json"]
    try:
        app(args=args, prog_name="energent", standalone_mode=False)
    except (ApiError, Failed) as error:
        sys.stderr.write(f"error: {error}\n")  # as the API said it: never wrapped, never markup
        return 1
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except Exception as error:  # click's usage errors
        import click

        if isinstance(error, click.ClickException):
            error.show()
            return error.exit_code
        raise
    return 0


def run() -> None:
    sys.exit(main())
