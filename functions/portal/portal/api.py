"""The public API as the portal calls it: the same gateway any client uses, with the session's access token.

The portal holds no data and reads no database: everything it shows or changes goes through these calls, so a
session can do exactly what its token may — the tenant in every path is the session's, never one from a URL.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import quote

import requests

_local = threading.local()


def http() -> requests.Session:
    """One connection pool per thread: pages fetch their parts in parallel."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        # One pool serves every visitor: nothing an answer sets may be kept for the next visitor's calls.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


class ApiError(Exception):
    """The API refused or failed: its status and the problem's detail (or the OAuth error's description)."""

    def __init__(self, status: int, detail: str, route_missing: bool = False):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.route_missing = route_missing  # 404 from the gateway itself: the API has no such operation (yet)


def segment(value: str) -> str:
    """A path segment as given, escaped, so `../x` or `a/b` stays one segment of the session's tenant; `.` and `..`
    name nothing (an HTTP client would resolve them as dot segments, into another route)."""
    if value in ("", ".", ".."):
        raise ApiError(404, "no such item")
    return quote(value, safe="")


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason or str(response.status_code)
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error_description") or body.get("title") or body)[:500]
    return str(body)[:500]


@dataclass(frozen=True)
class TenantApi:
    """The API for one session: base URL, the session's token and tenant."""

    base_url: str
    token: str
    tenant_id: str
    timeout_s: float = 20

    def path(self, suffix: str = "") -> str:
        return f"/v1/tenants/{segment(self.tenant_id)}{suffix}"

    def call(self, method: str, suffix: str, *, json: Any = None, params: dict | None = None,
             accept: str = "application/json") -> requests.Response:
        try:
            response = http().request(method, self.base_url + self.path(suffix), json=json, params=params,
                                      headers={"Authorization": f"Bearer {self.token}", "Accept": accept},
                                      timeout=self.timeout_s, allow_redirects=False)
        except requests.RequestException as error:
            raise ApiError(502, f"the API is unreachable: {type(error).__name__}") from None
        if response.status_code >= 400:
            detail = _detail(response)
            # The gateway answers a path it does not route with its own problem: the operation does not exist.
            missing = response.status_code == 404 and (detail.startswith("no such resource")
                                                        or "not defined by this API" in detail)
            raise ApiError(response.status_code, detail, route_missing=missing)
        return response

    def get(self, suffix: str = "", **params) -> Any:
        return self.call("GET", suffix, params=params or None).json()

    def post(self, suffix: str, body: dict) -> Any:
        return self.call("POST", suffix, json=body).json()

    def put(self, suffix: str, body: dict) -> Any:
        return self.call("PUT", suffix, json=body).json()

    def delete(self, suffix: str) -> None:
        self.call("DELETE", suffix)

    def pages(self, suffix: str, key: str, most: int = 1000) -> list[dict]:
        """Every item of a list (following `next_page_token`), at most `most`."""
        found: list[dict] = []
        token = ""
        while len(found) < most:
            page = self.get(suffix, page_size=100, **({"page_token": token} if token else {}))
            found += page.get(key, [])
            token = page.get("next_page_token") or ""
            if not token:
                break
        return found[:most]
