"""Browser sessions over auth's portal sessions (functions/auth/auth/portal.py).

- **Sign-in.** `GET /portal/login?code=...` answers a page with one button; its POST redeems the code at the token
  endpoint as the portal's client. The GET changes nothing on purpose: mail scanners and link previews fetch links,
  and a link they fetched must still work for the person it was sent to. The page is `Referrer-Policy:
  strict-origin` (no request carries its URL) and loads nothing but the portal's stylesheet, and after the POST
  the browser is redirected to a URL without the code.
- **The cookie** holds the session handle auth returned (256 random bits; auth stores only its hash), HttpOnly, on
  Path=/, SameSite=Lax (Strict would drop it on the redirect that follows a link opened from a mail client),
  `Secure` and `__Host-` outside the local stack (no sibling subdomain can set one), living no longer than the
  session. The handle alone is worth
  nothing at the token endpoint: only the portal's client, with its secret from Secret Manager, may use it there.
- **Access tokens** are fetched with the handle (`grant_type=refresh_token`) and kept in this instance's memory by
  the handle's hash until a minute before they expire; another instance simply fetches its own. A refused refresh
  (the session ended, its creator client was deleted, the tenant is going) ends the browser session.
- **CSRF.** Every form that changes something carries HMAC-SHA256(handle, "csrf"): a synchronizer token derived
  from the session's own secret, so it needs no storage, differs per session and cannot be computed without the
  cookie. Posts whose `Origin` is another origin, or whose `Sec-Fetch-Site` says cross-site, are refused before
  the token is even compared (sign-in has no session yet: that check is its protection). SameSite=Lax keeps the
  cookie off cross-site posts as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass

import requests

from portal.api import http
from portal.settings import PortalSettings

TOKEN_MARGIN_S = 60
MAX_CACHED = 5000
_CSRF_MESSAGE = b"energent portal csrf v1"


class SessionEnded(Exception):
    """No session, or one that auth no longer honours."""


class LinkRefused(Exception):
    """The sign-in link is unknown, expired or used; the reason, for the log only."""


@dataclass(frozen=True)
class Access:
    token: str
    expires_at: float
    tenant_id: str
    scopes: frozenset[str]
    client_id: str  # the client that opened the session (the operator's id for operator links)
    session_ends_at: float


def _claims(token: str) -> dict:
    """The payload of a token auth just handed us over TLS: read for display, verified by the API on every use."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def csrf_token(handle: str) -> str:
    mac = hmac.new(handle.encode(), _CSRF_MESSAGE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_matches(handle: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(handle).encode(), str(given).encode())


class Sessions:
    def __init__(self, settings: PortalSettings):
        self.settings = settings
        self._cache: dict[str, Access] = {}
        self._lock = threading.Lock()

    def _token_request(self, form: dict[str, str]) -> dict:
        client_id, secret = self.settings.client()
        try:
            response = http().post(f"{self.settings.api_url}/v1/oauth/token", data=form, auth=(client_id, secret),
                                   timeout=self.settings.api_timeout_s)
        except requests.RequestException as error:
            raise ConnectionError(f"the token endpoint is unreachable: {type(error).__name__}") from None
        if response.status_code == 400 and response.headers.get("Content-Type", "").startswith("application/json"):
            body = response.json()
            if body.get("error") == "invalid_grant":
                raise LinkRefused(body.get("error_description", "invalid_grant"))
        if response.status_code != 200:
            raise ConnectionError(f"the token endpoint answered {response.status_code}")
        return response.json()

    def _remember(self, handle: str, issued: dict, now: float) -> Access:
        claims = _claims(issued["access_token"])
        access = Access(issued["access_token"], now + issued["expires_in"], issued["tenant_id"],
                        frozenset(issued["scope"].split()), claims["client_id"],
                        now + issued["refresh_token_expires_in"])
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[self._key(handle)] = access
        return access

    @staticmethod
    def _key(handle: str) -> str:
        return hashlib.sha256(handle.encode()).hexdigest()

    def sign_in(self, code: str) -> tuple[str, Access]:
        """(handle, access) for a sign-in code; `LinkRefused` if the link no longer works."""
        issued = self._token_request({"grant_type": "authorization_code", "code": code})
        return issued["refresh_token"], self._remember(issued["refresh_token"], issued, time.time())

    def access(self, handle: str | None) -> Access:
        """A valid access token of the session the cookie names; `SessionEnded` if there is none."""
        if not handle or len(handle) > 200:
            raise SessionEnded("no session")
        now = time.time()
        cached = self._cache.get(self._key(handle))
        if cached is not None and cached.expires_at - TOKEN_MARGIN_S > now:
            return cached
        try:
            issued = self._token_request({"grant_type": "refresh_token", "refresh_token": handle})
        except LinkRefused as refused:
            self.forget(handle)
            raise SessionEnded(str(refused)) from None
        return self._remember(handle, issued, now)

    def forget(self, handle: str) -> None:
        with self._lock:
            self._cache.pop(self._key(handle), None)

    def sign_out(self, handle: str) -> None:
        """Ends the session at auth (every token of it stops working at once), then here."""
        self.forget(handle)
        client_id, secret = self.settings.client()
        try:
            answer = http().post(f"{self.settings.api_url}/v1/oauth/revoke", data={"token": handle, "token_type_hint":
                                 "refresh_token"}, auth=(client_id, secret), timeout=self.settings.api_timeout_s)
        except requests.RequestException as error:
            raise ConnectionError(f"auth did not answer: {type(error).__name__}") from None
        if answer.status_code != 200:  # RFC 7009: 200 whether or not the handle was live; anything else failed
            raise ConnectionError(f"auth answered {answer.status_code} to the sign-out")
