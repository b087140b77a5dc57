"""`http` for async handlers: functions-framework serves a function decorated with `functions_framework.aio.http`
on Starlette under uvicorn, where one event loop answers many requests at once. Limits, problems, request ids
and trace correlation are those of `http`; only reading the body and building responses differ.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from energent_shared import logging as log
from energent_shared.http import (
    PROBLEM_JSON,
    Problem,
    as_problem,
    begin_request,
    body_limit,
    check_read_length,
    json_document,
    require_media_type,
)
from energent_shared.jsonio import json_default

AsyncHandler = Callable[..., Awaitable[Response]]


async def read_body(request: Request, *, max_bytes: int | None = None) -> bytes:
    """The raw body, refused with 413 past the limit without reading more than the limit."""
    declared = request.headers.get("Content-Length")
    limit = body_limit(int(declared) if declared and declared.isdigit() else None, max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return check_read_length(b"".join(chunks), limit)


async def read_json(request: Request, *, expect: type = dict, max_bytes: int | None = None,
                    media_types: tuple[str, ...] = ("application/json",)) -> Any:
    """The request's JSON body, checked for media type, size, encoding, syntax and top-level type."""
    require_media_type(request, media_types)
    return json_document(await read_body(request, max_bytes=max_bytes), expect)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, default=json_default), status, headers, "application/json")


def problem_response(problem: Problem) -> Response:
    return Response(json.dumps(problem.body()), problem.status, problem.headers, PROBLEM_JSON)


def asgi_function(handler: AsyncHandler) -> Callable[[Request], Awaitable[Response]]:
    """`http.http_function` for an async handler."""

    async def wrapped(request: Request) -> Response:
        rid, token = begin_request(request)
        try:
            try:
                response = await handler(request)
            except Exception as error:
                response = problem_response(as_problem(error, rid))
            response.headers["X-Request-Id"] = rid
            return response
        finally:
            log.reset_trace(token)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped
