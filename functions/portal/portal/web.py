"""Pages as HTTP answers: templates, the language, and the headers every portal answer carries.

**Content-Security-Policy** `default-src 'none'`: the page may load only the portal's own stylesheet and icon
(`style-src 'self'; img-src 'self'`), may run no script at all (there is none: every page works as plain HTML),
may post forms only to itself, may not be framed, and has no `<base>`. Nothing on a page is inline but the SVG
charts, whose colours come from the stylesheet by class, so `unsafe-inline` is never needed. Every answer is
`no-store` (pages hold account data and one-time secrets), `nosniff`, `Referrer-Policy: strict-origin` (the sign-in
page's URL holds the code: no request ever carries more than the origin, while posts still carry a real `Origin`
header, which `no-referrer` would turn into `null`), and cross-origin isolated from openers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

import flask
import jinja2

from portal import i18n
from portal.sessions import Access, csrf_token
from portal.settings import PortalSettings

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
LANG_COOKIE = "energent_portal_lang"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
tenant_names: dict[str, str] = {}  # tenant id -> display name, as the overview last read it (views.tenant_of)
NAVIGATION = (  # (path, message, scope needed to see it)
    ("/portal", "overview", None),
    ("/portal/usage", "usage", "usage:read"),
    ("/portal/invoices", "invoices", "billing:read"),
    ("/portal/clients", "clients", "clients:write"),
    ("/portal/budget", "budget", "billing:write"),
    ("/portal/webhooks", "webhooks", "billing:write"),
)


FEATURE_TTL_S = 300


class Features:
    """Which optional parts of the API exist (spend control may not be deployed yet): learnt from the answers
    and remembered for a few minutes, so a page does not ask twice."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bool | None:
        found = self._known.get(name)
        return found[1] if found and found[0] > time.monotonic() else None

    def learn(self, name: str, present: bool) -> None:
        with self._lock:
            self._known[name] = (time.monotonic() + FEATURE_TTL_S, present)


features = Features()


@cache
def templates() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                     trim_blocks=True, lstrip_blocks=True)
    environment.globals["asset_version"] = asset_version()
    return environment


@cache
def asset_version() -> str:
    """The static files' digest: their URLs change exactly when they do, so they may be cached for a year."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class Context:
    """What every page needs: the request, the language, and the session when there is one."""

    request: flask.Request
    settings: PortalSettings
    language: str
    access: Access | None = None
    handle: str | None = None
    tenant_name: str | None = None

    @property
    def t(self) -> i18n.Translator:
        return i18n.Translator(self.language)

    def can(self, scope: str | None) -> bool:
        return scope is None or (self.access is not None and scope in self.access.scopes)

    def navigation(self) -> list[dict]:
        spend = features.get("spend") is not False  # no budget or webhook pages while the API lacks them
        return [{"path": path, "label": self.t(key), "current": self.request.path.rstrip("/") == path}
                for path, key, scope in NAVIGATION
                if self.can(scope) and (scope != "billing:write" or spend)]

    def language_links(self) -> list[dict]:
        here = self.request.path if self.request.path.startswith("/portal") else "/portal"  # never another origin
        # The month shown, and on the sign-in page its code (or the switch would break the link it is on).
        kept = {key: self.request.args[key] for key in ("period", "code") if key in self.request.args}
        return [{"href": f"{here}?{urlencode({**kept, 'lang': code})}", "code": code,
                 "label": {"en": "English", "nl": "Nederlands"}[code], "current": code == self.language}
                for code in i18n.LANGUAGES]


def context(request: flask.Request, settings: PortalSettings) -> Context:
    asked = request.args.get("lang")
    return Context(request, settings, i18n.negotiate(asked, request.cookies.get(LANG_COOKIE),
                                                     request.headers.get("Accept-Language")))


def secure(response: flask.Response, settings: PortalSettings) -> flask.Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    if settings.secure_cookies:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response


def render(ctx: Context, template: str, status: int = 200, **values) -> flask.Response:
    t = ctx.t
    html = templates().get_template(template).render(
        t=t, lang=ctx.language, nav=ctx.navigation() if ctx.access else [], languages=ctx.language_links(),
        session=ctx.access, csrf=csrf_token(ctx.handle) if ctx.handle else "",
        tenant_name=ctx.tenant_name or (tenant_names.get(ctx.access.tenant_id) if ctx.access else None),
        session_end=time.strftime("%H:%M", time.gmtime(ctx.access.session_ends_at)) if ctx.access else "",
        **values)
    response = flask.Response(html, status, content_type="text/html; charset=utf-8")
    response.headers["Content-Language"] = ctx.language
    response.headers["Vary"] = "Cookie, Accept-Language"
    if ctx.request.args.get("lang") in i18n.LANGUAGES:
        remember_language(response, ctx)
    return secure(response, ctx.settings)


def remember_language(response: flask.Response, ctx: Context) -> None:
    response.set_cookie(LANG_COOKIE, ctx.language, max_age=365 * 86400, path="/portal", httponly=True,
                        secure=ctx.settings.secure_cookies, samesite="Lax")


def redirect(ctx: Context, location: str) -> flask.Response:
    """303 to a path of the portal (never to anything the request named)."""
    response = flask.Response("", 303, headers={"Location": location})
    return secure(response, ctx.settings)


def set_session_cookie(response: flask.Response, ctx: Context, handle: str, max_age: int) -> None:
    response.set_cookie(ctx.settings.cookie_name, handle, max_age=max_age, path="/", httponly=True,
                        secure=ctx.settings.secure_cookies, samesite="Lax")


def clear_session_cookie(response: flask.Response, ctx: Context) -> None:
    response.delete_cookie(ctx.settings.cookie_name, path="/", httponly=True,
                           secure=ctx.settings.secure_cookies, samesite="Lax")


def static_file(name: str) -> flask.Response:
    media = {"css": "text/css; charset=utf-8", "svg": "image/svg+xml"}
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file() or name.rsplit(".", 1)[-1] not in media:
        raise FileNotFoundError(name)
    response = flask.Response(path.read_bytes(), 200, content_type=media[name.rsplit(".", 1)[-1]])
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
