"""What each page shows and does, over the public API (`TenantApi`): the tenant is always the session's.

Every view takes the page's context and the session's API and returns an answer; forms that the API refuses
come back with the API's reason beside the form, and what a person typed kept.
"""

from __future__ import annotations

import datetime
import re
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal, InvalidOperation

import flask

from energent_shared.tiers import TIERS
from portal import chart
from portal.api import ApiError, TenantApi, segment
from portal.web import Context, features, redirect, render, tenant_names

WEBHOOK_EVENTS = ("budget.crossed", "invoice.issued", "invoice.paid", "credit_note.issued")
PERIOD = re.compile(r"(2[0-9]{3})-(0[1-9]|1[0-2])")
THRESHOLD = re.compile(r"[0-9]{1,4}")  # ASCII digits: str.isdigit() takes "²" and "٣"
AMOUNT = re.compile(r"[0-9]{1,13}([.,][0-9]{1,2})?")
METER_ORDER = ("workflow_minutes", "workflow_runs", "peak_concurrent_workflows", "storage_gib_hours")
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="portal-api")




def optional(call, *args, feature: str | None = None, **kwargs):
    """The call's answer, or None when the API lacks the operation (and the feature is remembered absent) or
    the answer is 404 (nothing there, e.g. no budget set)."""
    try:
        found = call(*args, **kwargs)
    except ApiError as error:
        if error.route_missing and feature:
            features.learn(feature, False)
        if error.status == 404:
            return None
        raise
    if feature:
        features.learn(feature, True)
    return found


def tenant_of(api: TenantApi) -> dict:
    found = api.get()
    if isinstance(found.get("display_name"), str) and len(tenant_names) < 10_000:
        tenant_names[api.tenant_id] = found["display_name"]
    return found


# --- overview -------------------------------------------------------------------------------------------------

def overview(ctx: Context, api: TenantApi) -> flask.Response:
    """Status and tier, this month so far, spend against the budget, the latest invoice: read in parallel, each
    only when the session's scopes allow it. The month so far is the spend's net, VAT and total, which are the
    upcoming invoice's (the API guarantees it): pricing the open month once instead of twice halves the slowest
    call. Only where the API has no spend control is the upcoming invoice asked for."""
    spend_possible = (ctx.can("billing:read") or ctx.can("usage:read")) and features.get("spend") is not False
    jobs: dict[str, Future] = {"tenant": _pool.submit(tenant_of, api)}
    if spend_possible:
        jobs["spend"] = _pool.submit(optional, api.get, "/spend", feature="spend")
    if ctx.can("billing:read"):
        jobs["invoices"] = _pool.submit(api.pages, "/invoices", "invoices")
        if not spend_possible:
            jobs["upcoming"] = _pool.submit(optional, api.get, "/invoices/upcoming")
    found = {name: job.result() for name, job in jobs.items()}
    month = found.get("spend") or found.get("upcoming")
    if month is None and ctx.can("billing:read") and "upcoming" not in found:  # no spend control after all
        month = optional(api.get, "/invoices/upcoming")
    tenant = found["tenant"]
    ctx.tenant_name = tenant.get("display_name")
    invoices = [i for i in found.get("invoices") or [] if i.get("status") != "upcoming"]
    latest = invoices[-1] if invoices else None
    tier = TIERS.get(tenant.get("tier", ""))
    return render(ctx, "overview.html", tenant=tenant, tier=tier, upcoming=month, spend=found.get("spend"),
                  latest=latest, spend_known=found.get("spend") is not None)


# --- usage ----------------------------------------------------------------------------------------------------

def current_period() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m")


def shift(period: str, months: int) -> str:
    year, month = (int(part) for part in period.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def usage(ctx: Context, api: TenantApi) -> flask.Response:
    asked = ctx.request.args.get("period") or current_period()
    period = asked if PERIOD.fullmatch(asked) else current_period()
    found = api.get("/usage", period=period, granularity="day")
    t = ctx.t
    days = chart.days_of(period)
    by_day = {entry["date"]: entry["meters"] for entry in found.get("days", [])}
    meters, quiet = [], []
    ordered = sorted(found.get("meters", {}).items(),
                     key=lambda item: (METER_ORDER.index(item[0]) if item[0] in METER_ORDER else 99, item[0]))
    for index, (name, total) in enumerate(ordered):
        label = t.optional(f"meter_{name}", name)
        if Decimal(total.get("quantity", "0")) == 0:
            quiet.append(label)  # named under the charts, not drawn: a flat line says nothing
            continue
        unit = t.optional(f"unit_{total.get('unit', '')}", total.get("unit", ""))
        values = [(day, Decimal(by_day.get(day.isoformat(), {}).get(name, {}).get("quantity", "0"))) for day in days]
        peak_day, peak = max(values, key=lambda pair: (pair[1], -pair[0].day))
        description = t("chart_desc", meter=label, month=t.month(period), total=t.number(total["quantity"]),
                        unit=unit, peak_day=t.date(peak_day.isoformat()), peak=t.number(peak))
        meters.append({"name": name, "label": label, "unit": unit, "total": total["quantity"],
                       "values": values, "chart": chart.bar_chart(f"chart-{index}", label, description, values,
                                                                  t.number, lambda day: t.date(day.isoformat()))})
    rows = [{"date": day, "values": [by_day[day.isoformat()].get(m["name"], {}).get("quantity", "0")
                                     for m in meters]} for day in days if day.isoformat() in by_day]
    recent = [shift(current_period(), -offset) for offset in range(0, 13)]
    if period not in recent:
        recent.append(period)
    return render(ctx, "usage.html", period=period, meters=meters, rows=rows, months=recent, quiet=quiet,
                  previous=shift(period, -1), following=shift(period, 1) if period < current_period() else None,
                  any_usage=bool(rows))


# --- invoices and credit notes --------------------------------------------------------------------------------

def invoices(ctx: Context, api: TenantApi) -> flask.Response:
    listed = _pool.submit(api.pages, "/invoices", "invoices")
    notes = _pool.submit(api.pages, "/credit-notes", "credit_notes")
    balance = _pool.submit(optional, api.get, "/balance")
    issued = [i for i in listed.result() if i.get("status") != "upcoming"]
    return render(ctx, "invoices.html", invoices=list(reversed(issued)), notes=list(reversed(notes.result())),
                  balance=balance.result())


DOCUMENT_MEDIA = {"pdf": ("application/pdf", "pdf"), "xml": ("application/xml", "xml")}
NUMBER = re.compile(r"(CN-)?[0-9]{4}-[0-9]{6,12}")


def document(ctx: Context, api: TenantApi, number: str, kind: str) -> flask.Response:
    """The issued document's PDF or UBL, from the billing API by `Accept`, as an attachment named by its number."""
    if kind not in DOCUMENT_MEDIA or not NUMBER.fullmatch(number):
        raise ApiError(404, "no such document")
    media, suffix = DOCUMENT_MEDIA[kind]
    upstream = api.call("GET", f"/documents/{segment(number)}", accept=media)
    response = flask.Response(upstream.content, 200, content_type=upstream.headers.get("Content-Type", media))
    response.headers["Content-Disposition"] = f'attachment; filename="{number}.{suffix}"'
    return response


# --- API clients ----------------------------------------------------------------------------------------------

def clients(ctx: Context, api: TenantApi, *, created: dict | None = None, error: str | None = None,
            form: dict | None = None, status: int = 200) -> flask.Response:
    listed = api.pages("/clients", "clients")
    grantable = sorted(ctx.access.scopes) if ctx.access else []
    return render(ctx, "clients.html", status, clients=listed, created=created, error=error, form=form or {},
                  grantable=grantable, done=ctx.request.args.get("done"))


def create_client(ctx: Context, api: TenantApi) -> flask.Response:
    form = ctx.request.form
    scopes = [scope for scope in form.getlist("scope") if ctx.can(scope)]
    name = form.get("name", "").strip()
    kept = {"name": name, "scopes": scopes}
    if not scopes:
        return clients(ctx, api, error=ctx.t("choose_scope"), form=kept, status=400)
    try:
        created = api.post("/clients", {"scopes": scopes, **({"name": name} if name else {})})
    except ApiError as refused:
        if refused.status in (400, 403, 409):
            return clients(ctx, api, error=refused.detail, form=kept, status=refused.status)
        raise
    return clients(ctx, api, created=created)


def delete_client(ctx: Context, api: TenantApi, client_id: str) -> flask.Response:
    api.delete(f"/clients/{segment(client_id)}")
    return redirect(ctx, "/portal/clients?done=client_deleted")


# --- budget ---------------------------------------------------------------------------------------------------

def budget(ctx: Context, api: TenantApi, *, error: str | None = None, form: dict | None = None,
           status: int = 200) -> flask.Response:
    spend_job = _pool.submit(optional, api.get, "/spend", feature="spend")
    current = optional(api.get, "/budget")
    spend = spend_job.result()
    if spend is None and features.get("spend") is False:
        raise ApiError(404, "spend control is not available", route_missing=True)
    if form is None and current:
        form = {"monthly_limit": current.get("monthly_limit", ""),
                "thresholds": ", ".join(str(v) for v in current.get("thresholds", [])),
                "action": current.get("action", "notify")}
    return render(ctx, "budget.html", status, budget=current, spend=spend, error=error,
                  form=form or {"monthly_limit": "", "thresholds": "50, 80, 100", "action": "notify"},
                  currency=(spend or {}).get("currency", "EUR"), done=ctx.request.args.get("done"))


def parse_thresholds(text: str) -> list[int] | None:
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts or not all(THRESHOLD.fullmatch(part) and 1 <= int(part) <= 1000 for part in parts):
        return None
    return sorted({int(part) for part in parts})


def save_budget(ctx: Context, api: TenantApi) -> flask.Response:
    form = ctx.request.form
    kept = {"monthly_limit": form.get("monthly_limit", "").strip(), "thresholds": form.get("thresholds", "").strip(),
            "action": "block" if form.get("action") == "block" else "notify"}
    limit = kept["monthly_limit"].replace(" ", "")
    if not AMOUNT.fullmatch(limit):
        return budget(ctx, api, error=ctx.t("invalid_amount"), form=kept, status=400)
    try:
        amount = Decimal(limit.replace(",", "."))
    except InvalidOperation:
        return budget(ctx, api, error=ctx.t("invalid_amount"), form=kept, status=400)
    thresholds = parse_thresholds(kept["thresholds"]) if kept["thresholds"] else [50, 80, 100]
    if thresholds is None:
        return budget(ctx, api, error=ctx.t("invalid_thresholds"), form=kept, status=400)
    try:
        api.put("/budget", {"monthly_limit": f"{amount:.2f}", "thresholds": thresholds, "action": kept["action"]})
    except ApiError as refused:
        if refused.status in (400, 409):
            return budget(ctx, api, error=refused.detail, form=kept, status=refused.status)
        raise
    return redirect(ctx, "/portal/budget?done=budget_saved")


def remove_budget(ctx: Context, api: TenantApi) -> flask.Response:
    optional(api.delete, "/budget")
    return redirect(ctx, "/portal/budget?done=budget_removed")


# --- webhooks -------------------------------------------------------------------------------------------------

def webhooks(ctx: Context, api: TenantApi, *, created: dict | None = None, error: str | None = None,
             form: dict | None = None, status: int = 200) -> flask.Response:
    listed = optional(api.pages, "/webhooks", "webhooks", feature="spend")
    if listed is None:
        raise ApiError(404, "webhooks are not available", route_missing=True)
    return render(ctx, "webhooks.html", status, webhooks=listed, created=created, error=error,
                  form=form or {"url": "", "events": list(WEBHOOK_EVENTS)}, events=WEBHOOK_EVENTS,
                  done=ctx.request.args.get("done"))


def create_webhook(ctx: Context, api: TenantApi) -> flask.Response:
    form = ctx.request.form
    events = [event for event in form.getlist("event") if event in WEBHOOK_EVENTS]
    kept = {"url": form.get("url", "").strip(), "events": events}
    try:
        created = api.post("/webhooks", {"url": kept["url"], **({"events": events} if events else {})})
    except ApiError as refused:
        if refused.status in (400, 409):
            return webhooks(ctx, api, error=refused.detail, form=kept, status=refused.status)
        raise
    return webhooks(ctx, api, created=created)


def delete_webhook(ctx: Context, api: TenantApi, webhook_id: str) -> flask.Response:
    api.delete(f"/webhooks/{segment(webhook_id)}")
    return redirect(ctx, "/portal/webhooks?done=webhook_deleted")
