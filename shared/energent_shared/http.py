"""HTTP plumbing for functions-framework handlers: JSON bodies with limits, RFC 9457 problems, request ids,
routing of one deployment's paths, and the wrapper that ties them to logging and trace correlation."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import flask

from energent_shared import jsonio
from energent_shared import logging as log
from energent_shared.config import settings
from energent_shared.errors import DomainError, Unavailable
from energent_shared.jsonio import json_default

PROBLEM_JSON = "application/problem+json"
_STATUS_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error the client can act on, answered as `application/problem+json` (RFC 9457)."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
                 headers: dict[str, str] | None = None, **extensions: Any):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _STATUS_TITLES.get(status, "Error")
        self.type = type_
        self.headers = headers or {}
        self.extensions = extensions

    def body(self) -> dict:
        return {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail,
                **self.extensions}


def problem_response(problem: Problem) -> flask.Response:
    response = flask.Response(json.dumps(problem.body()), status=problem.status, mimetype=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, default=json_default), status=status, mimetype="application/json")
    if headers:
        response.headers.update(headers)
    return response


def parse_json(raw: bytes) -> Any:
    """A request body as strict JSON (`jsonio.parse_json`); 400 with the reason otherwise."""
    try:
        return jsonio.parse_json(raw)
    except jsonio.InvalidJson as invalid:
        raise Problem(400, f"body is {invalid}") from None


def media_type(request: HeadersOf) -> str:
    """The request's media type without parameters, lower case (Flask and Starlette requests alike)."""
    return request.headers.get("Content-Type", "").partition(";")[0].strip().lower()


def require_media_type(request: HeadersOf, media_types: tuple[str, ...]) -> None:
    found = media_type(request)
    if found not in media_types:
        raise Problem(415, f"Content-Type must be {' or '.join(media_types)}, got {found[:60] or 'none'!r}")
    for parameter in request.headers.get("Content-Type", "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Problem(415, f"the body must be UTF-8, got charset {value.strip()[:30]!r}")


def body_limit(declared_length: int | None, max_bytes: int | None) -> int:
    """The byte limit for a body; 413 at once if its declared length is already past it."""
    limit = max_bytes if max_bytes is not None else settings().max_body_bytes
    if declared_length is not None and declared_length > limit:
        raise Problem(413, f"body is {declared_length} bytes; the limit is {limit} bytes")
    return limit


def check_read_length(raw: bytes, limit: int) -> bytes:
    if len(raw) > limit:
        raise Problem(413, f"body is larger than the limit of {limit} bytes")
    return raw


def json_document(raw: bytes, expect: type = dict) -> Any:
    """A JSON body (see `parse_json`) that must be of the `expect`ed top-level type."""
    if not raw.strip():
        raise Problem(400, "body is empty; a JSON document is required")
    body = parse_json(raw)
    if not isinstance(body, expect):
        raise Problem(400, f"body must be a JSON {_JSON_TYPE_NAMES.get(expect, expect.__name__)}, "
                           f"got {_json_type_name(body)}")
    return body


def read_body(request: flask.Request, *, max_bytes: int | None = None) -> bytes:
    """The raw body, refused with 413 past the limit without reading more than the limit."""
    limit = body_limit(request.content_length, max_bytes)
    return check_read_length(request.stream.read(limit + 1), limit)


def read_json(request: flask.Request, *, expect: type = dict, max_bytes: int | None = None,
              media_types: tuple[str, ...] = ("application/json",), optional: bool = False) -> Any:
    """The request's JSON body, checked for media type, size, encoding, syntax and top-level type; `optional`:
    an empty body stands for an empty `expect`."""
    raw = read_body(request, max_bytes=max_bytes)
    if optional and not raw:
        return expect()
    require_media_type(request, media_types)
    return json_document(raw, expect)


_JSON_TYPE_NAMES: dict[type, str] = {dict: "object", list: "array", str: "string"}


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(request) -> str:
    """The caller's `X-Request-Id` if it is sane, else the execution id functions-framework logs with the request
    (it makes one up when the request carries none), else a fresh one; echoed on every response."""
    for header in ("X-Request-Id", "Function-Execution-Id"):
        given = request.headers.get(header, "")
        if _REQUEST_ID.match(given):
            return given
    return uuid.uuid4().hex


class HeadersOf(Protocol):
    """What the helpers here read of a request, Flask's and Starlette's alike."""

    @property
    def headers(self) -> Any: ...


def caller_authorization(request: HeadersOf) -> tuple[str, str] | None:
    """The caller's own `Authorization` as (header name, value).

    Behind API Gateway a backend with `jwt_audience` receives the gateway's identity token in `Authorization`
    and the caller's header moved to `X-Forwarded-Authorization`, so the forwarded one wins.
    """
    for header in ("X-Forwarded-Authorization", "Authorization"):
        value = request.headers.get(header)
        if value:
            return header, value
    return None


def tenant_id_param(tenant_id: str) -> str:
    """A tenant id from a path, or 400: it becomes a namespace name, so nothing else gets through."""
    from energent_shared.firestore import TENANT_ID

    if not TENANT_ID.fullmatch(tenant_id):
        raise Problem(400, f"invalid tenant id {tenant_id!r}: must match {TENANT_ID.pattern}")
    return tenant_id


Handler = Callable[..., Any]  # a Flask view, or an asynchronous Starlette one (auth)


class Router:
    """Routes one HTTP deployment's paths (API Gateway appends the path to the backend address).

    Templates use OpenAPI's `{name}` segments, so they read exactly as in `api-spec.yaml`.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern, str, dict[str, Handler]]] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for _pattern, known, methods in self._routes:
                if known == template:
                    methods[method.upper()] = handler
                    return handler
            self._routes.append((_compile(template), template, {method.upper(): handler}))
            return handler

        return register

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler of `method` on `path` and the path's parameters, or a 404/405 problem."""
        for pattern, _template, methods in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(method)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                raise Problem(405, f"{method} is not allowed on {path}; allowed: {allowed}",
                              headers={"Allow": allowed})
            return handler, match.groupdict()
        raise Problem(404, f"no such resource: {path}")

    def dispatch(self, request: flask.Request) -> flask.Response:
        handler, params = self.find(request.method, request.path)
        return handler(request, **params)

    def templates(self) -> dict[str, set[str]]:
        return {template: set(methods) for _pattern, template, methods in self._routes}


def _compile(template: str) -> re.Pattern:
    parts = re.split(r"\{([a-z_]+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/:]+)" for i, part in enumerate(parts))
    return re.compile(regex)


def http_function(handler: Handler) -> Callable[[flask.Request], flask.Response]:
    """Wraps a functions-framework HTTP handler: trace-correlated logs, request id, problems as RFC 9457,
    and a 500 that names the request id but never the internals."""

    def wrapped(request: flask.Request) -> flask.Response:
        rid, token = begin_request(request)
        try:
            try:
                response = handler(request)
            except Exception as error:
                response = problem_response(as_problem(error, rid))
            response.headers["X-Request-Id"] = rid
            return response
        finally:
            log.reset_trace(token)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def begin_request(request) -> tuple[str, Any]:
    """(request id, trace token): call `log.reset_trace(token)` when the request is done."""
    return request_id(request), log.set_trace(log.parse_trace(request.headers.get("traceparent"),
                                                              request.headers.get("X-Cloud-Trace-Context")))


def as_problem(error: Exception, rid: str) -> Problem:
    """What to answer for an exception raised by a handler: a Problem as it is, a domain error with its status;
    anything else is logged, and the caller gets a 500 naming the request id, never the internals. Call it while
    handling `error`."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, DomainError):
        retry = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Unavailable) else None
        return Problem(error.status, str(error), headers=retry)
    log.get_logger("http").exception("unhandled error", extra={"json_fields": {"request_id": rid}})
    return Problem(500, f"internal error; request id {rid}")
