"""Portal entry point (functions/registry.yaml): `portal_http` serves the tenant portal under /portal on the API's
own origin, through the gateway. Its paths are not bearer-secured at the gateway: the portal checks its session
cookie itself (portal/sessions.py) and calls the public API with the session's token (portal/api.py), so it can
do exactly what the session may. Pages and their headers: portal/web.py; what each page does: portal/views.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache

import flask
import functions_framework

from energent_shared.http import Problem, Router, http_function
from energent_shared.logging import get_logger, log_event
from portal import views
from portal.api import ApiError, TenantApi
from portal.sessions import LinkRefused, SessionEnded, Sessions, csrf_matches
from portal.settings import portal_settings
from portal.web import (
    SECURITY_HEADERS,
    Context,
    clear_session_cookie,
    context,
    redirect,
    remember_language,
    render,
    set_session_cookie,
    static_file,
)

logger = get_logger("portal")
router = Router()
MAX_FORM_BYTES = 16 * 1024


@cache
def sessions() -> Sessions:
    return Sessions(portal_settings())


def message(ctx: Context, status: int, title: str, lead: str, *, clear: bool = False, **values) -> flask.Response:
    response = render(ctx, "message.html", status, title=ctx.t(title), lead=ctx.t(lead, **values),
                      title_key=title)
    if clear:
        clear_session_cookie(response, ctx)
    return response


def cross_site(request: flask.Request, origin: str) -> bool:
    """A post that did not come from a page of this origin."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    given = request.headers.get("Origin")
    return given is not None and given != origin


def form_of(request: flask.Request) -> None:
    """A form a browser posted: url-encoded, with its length declared (browsers always declare it; a chunked body
    has none, and Werkzeug would read all of it into memory before any limit applied)."""
    if request.content_length is None:
        raise Problem(411, "a form is posted with a Content-Length")
    if request.content_length > MAX_FORM_BYTES:
        raise Problem(413, "the form is too large")
    if request.mimetype != "application/x-www-form-urlencoded":
        raise Problem(415, "forms are posted as application/x-www-form-urlencoded")


def signed_in(view: Callable[..., flask.Response], scope: str | None = None, changes: bool = False):
    """A page of a session: the session from its cookie, then (for a change) the origin and CSRF token, then the
    scope; the API's refusals as pages. The tenant is the session's: no URL names one."""

    def handle(request: flask.Request, **params) -> flask.Response:
        settings = portal_settings()
        ctx = context(request, settings)
        ctx.handle = request.cookies.get(settings.cookie_name)
        if changes:
            form_of(request)
        for attempt in (1, 2):
            try:
                ctx.access = sessions().access(ctx.handle)
            except SessionEnded:
                return message(ctx, 401, "signed_out_title", "signed_out_lead", clear=ctx.handle is not None)
            except ConnectionError as unreachable:
                log_event(logger, "portal.auth_unreachable", reason=str(unreachable))
                return message(ctx, 503, "failed_title", "failed_lead")
            if changes and (cross_site(request, settings.origin) or not csrf_matches(ctx.handle or "",
                                                                                      request.form.get("csrf"))):
                log_event(logger, "portal.post_refused", path=request.path, tenant_id=ctx.access.tenant_id)
                return message(ctx, 403, "refused_title", "refused_lead")
            if scope and not ctx.can(scope):
                return message(ctx, 403, "forbidden_title", "forbidden_lead", scope=scope)
            api = TenantApi(settings.api_url, ctx.access.token, ctx.access.tenant_id, settings.api_timeout_s)
            try:
                return view(ctx, api, **params)
            except ApiError as error:
                if error.status == 401 and attempt == 1:  # the token was revoked: does the session still hold?
                    sessions().forget(ctx.handle or "")
                    continue
                return api_refusal(ctx, error)
        return message(ctx, 401, "signed_out_title", "signed_out_lead", clear=True)

    handle.__name__ = view.__name__
    return handle


def api_refusal(ctx: Context, error: ApiError) -> flask.Response:
    if error.status == 401:
        return message(ctx, 401, "signed_out_title", "signed_out_lead", clear=True)
    if error.status == 403:
        return message(ctx, 403, "forbidden_title", "refused_by_api")
    if error.status in (404, 406):
        return message(ctx, 404, "not_found_title", "not_found_lead")
    log_event(logger, "portal.api_failed", status=error.status, detail=error.detail[:200])
    return message(ctx, 502, "failed_title", "failed_lead")


# --- sign-in and out ------------------------------------------------------------------------------------------

@router.route("GET", "/portal/login")
def login_page(request: flask.Request) -> flask.Response:
    """The link's page: one button that posts the code (a GET redeems nothing; see portal/sessions.py)."""
    ctx = context(request, portal_settings())
    code = request.args.get("code", "")
    if not code or len(code) > 200:
        return message(ctx, 400, "link_gone_title", "link_gone_lead")
    return render(ctx, "login.html", code=code, explicit_lang=request.args.get("lang") in ("en", "nl"))


@router.route("POST", "/portal/login")
def login(request: flask.Request) -> flask.Response:
    settings = portal_settings()
    ctx = context(request, settings)
    form_of(request)
    if cross_site(request, settings.origin):
        return message(ctx, 403, "refused_title", "refused_lead")
    code = request.form.get("code", "")
    if not code or len(code) > 200:
        return message(ctx, 400, "link_gone_title", "link_gone_lead")
    try:
        handle, access = sessions().sign_in(code)
    except LinkRefused as refused:
        log_event(logger, "portal.link_refused", reason=str(refused))
        return message(ctx, 400, "link_gone_title", "link_gone_lead")
    except ConnectionError as unreachable:  # the link is still unused: it may be tried again
        log_event(logger, "portal.auth_unreachable", reason=str(unreachable))
        return message(ctx, 503, "failed_title", "failed_lead")
    log_event(logger, "portal.signed_in", tenant_id=access.tenant_id)
    response = redirect(ctx, "/portal")
    set_session_cookie(response, ctx, handle, max(1, int(access.session_ends_at - time.time())))
    if request.form.get("lang") in ("en", "nl"):  # chosen on the link's page: kept for the session's pages
        ctx.language = request.form["lang"]
        remember_language(response, ctx)
    return response


@router.route("POST", "/portal/logout")
def logout(request: flask.Request) -> flask.Response:
    settings = portal_settings()
    ctx = context(request, settings)
    form_of(request)
    handle = request.cookies.get(settings.cookie_name)
    if cross_site(request, settings.origin) or not handle or not csrf_matches(handle, request.form.get("csrf")):
        return message(ctx, 403, "refused_title", "refused_lead")
    try:
        sessions().sign_out(handle)
    except ConnectionError as unreachable:  # the session may still be live: say so, and keep the cookie to retry
        log_event(logger, "portal.sign_out_failed", reason=str(unreachable))
        return message(ctx, 503, "failed_title", "failed_lead")
    return message(ctx, 200, "signed_out_title", "signed_out_lead", clear=True)


# --- pages ----------------------------------------------------------------------------------------------------

router.route("GET", "/portal")(signed_in(views.overview))
router.route("GET", "/portal/usage")(signed_in(views.usage, "usage:read"))
router.route("GET", "/portal/invoices")(signed_in(views.invoices, "billing:read"))
router.route("GET", "/portal/documents/{number}/{kind}")(signed_in(views.document, "billing:read"))
router.route("GET", "/portal/clients")(signed_in(views.clients, "clients:write"))
router.route("POST", "/portal/clients")(signed_in(views.create_client, "clients:write", changes=True))
router.route("POST", "/portal/clients/{client_id}/delete")(signed_in(views.delete_client, "clients:write",
                                                                     changes=True))
router.route("GET", "/portal/budget")(signed_in(views.budget, "billing:write"))
router.route("POST", "/portal/budget")(signed_in(views.save_budget, "billing:write", changes=True))
router.route("POST", "/portal/budget/delete")(signed_in(views.remove_budget, "billing:write", changes=True))
router.route("GET", "/portal/webhooks")(signed_in(views.webhooks, "billing:write"))
router.route("POST", "/portal/webhooks")(signed_in(views.create_webhook, "billing:write", changes=True))
router.route("POST", "/portal/webhooks/{webhook_id}/delete")(signed_in(views.delete_webhook, "billing:write",
                                                                       changes=True))


@router.route("GET", "/portal/static/{name}")
def static(request: flask.Request, name: str) -> flask.Response:
    try:
        return static_file(name)
    except FileNotFoundError:
        return message(context(request, portal_settings()), 404, "not_found_title", "not_found_lead")


def secured(serve: Callable[[flask.Request], flask.Response]) -> Callable[[flask.Request], flask.Response]:
    """Every answer carries the security headers (downloads, problems and 500s too, not only pages) and says how
    long the portal took (`Server-Timing`, its API calls included): `make bench` reads it."""

    def answer(request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        response = serve(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["Server-Timing"] = f"portal;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    answer.__name__, answer.__doc__ = serve.__name__, serve.__doc__
    return answer


@functions_framework.http
@secured
@http_function
def portal_http(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/") or "/"
    try:
        handler, params = router.find(request.method, path)
    except Problem as problem:
        if problem.status != 404:
            raise
        return message(context(request, portal_settings()), 404, "not_found_title", "not_found_lead")
    return handler(request, **params)
