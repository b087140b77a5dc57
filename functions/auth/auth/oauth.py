"""RFC 6749 request plumbing: form bodies, client authentication, and errors in the §5.2 shape."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import Response

from energent_shared.asgi import read_body
from energent_shared.http import Problem, caller_authorization, media_type

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> Response:
        body = json.dumps({"error": self.error, "error_description": self.description})
        return Response(body, self.status, {**NO_STORE, **self.headers}, "application/json")


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="energent"'})


async def read_form(request: Request) -> dict[str, str]:
    """A form body; every parameter at most once (RFC 6749 §3.1)."""
    if media_type(request) != FORM:
        raise OAuthError("invalid_request", f"Content-Type must be {FORM}")
    try:
        raw = await read_body(request, max_bytes=MAX_FORM_BYTES)
    except Problem as problem:
        raise OAuthError("invalid_request", problem.detail, problem.status) from None
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=32, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "body is not a valid UTF-8 form") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise OAuthError("invalid_request", f"parameter '{key}' is repeated")
        form[key] = value
    return form


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def client_credentials(request: Request, form: dict[str, str]) -> ClientCredentials:
    """HTTP Basic (RFC 6749 §2.3.1, form-encoded id and secret) or body fields — exactly one of them.

    A Bearer header is not client authentication: behind API Gateway it is the gateway's own identity.
    """
    found = caller_authorization(request)
    header = found[1] if found else ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "bearer":
        header = ""
    in_body = "client_id" in form or "client_secret" in form
    if header:
        if scheme.lower() != "basic":
            raise invalid_client("client authentication must use HTTP Basic or form fields")
        if in_body:
            raise OAuthError("invalid_request", "use one client authentication method, not both")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text, which b64decode refuses
            raise invalid_client("the Basic credentials are not valid base64") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise invalid_client("the Basic credentials must be client_id:client_secret")
        return ClientCredentials(unquote_plus(client_id), unquote_plus(secret))
    if not form.get("client_id") or not form.get("client_secret"):
        raise invalid_client("client authentication is required")
    return ClientCredentials(form["client_id"], form["client_secret"])
