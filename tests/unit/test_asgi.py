"""The async HTTP plumbing: the same limits, problems and request ids as the Flask one."""

import asyncio
import json

import pytest
from starlette.requests import Request

from energent_shared.asgi import asgi_function, json_response, read_body, read_json
from energent_shared.http import Problem


def request(body: bytes = b"", headers: dict[str, str] | None = None, chunk: int = 1024) -> Request:
    pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [{"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
                for i, piece in enumerate(pieces)]

    async def receive():
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    return Request(scope, receive)


def problem_of(awaitable) -> Problem:
    with pytest.raises(Problem) as caught:
        asyncio.run(awaitable)
    return caught.value


def test_a_body_within_the_limit_is_read_whole_from_its_chunks():
    assert asyncio.run(read_body(request(b"x" * 5000, chunk=1000), max_bytes=5000)) == b"x" * 5000


def test_a_body_past_the_limit_is_refused_by_its_declared_length_or_while_streaming():
    declared = problem_of(read_body(request(b"x" * 11, {"Content-Length": "11"}), max_bytes=10))
    assert (declared.status, declared.detail) == (413, "body is 11 bytes; the limit is 10 bytes")
    streamed = problem_of(read_body(request(b"x" * 5000, chunk=100), max_bytes=1000))
    assert (streamed.status, streamed.detail) == (413, "body is larger than the limit of 1000 bytes")


@pytest.mark.parametrize(("body", "content_type", "status", "detail"), [
    (b"{}", "text/plain", 415, "Content-Type must be application/json, got 'text/plain'"),
    (b" ", "application/json", 400, "body is empty; a JSON document is required"),
    (b"[1]", "application/json; charset=utf-8", 400, "body must be a JSON object, got array"),
    (b'{"a": 1, "a": 2}', "application/json", 400, "body is not valid JSON: duplicate key 'a'"),
])
def test_json_bodies_are_checked_as_strictly_as_in_flask(body, content_type, status, detail):
    problem = problem_of(read_json(request(body, {"Content-Type": content_type})))
    assert (problem.status, problem.detail) == (status, detail)


def test_asgi_function_answers_problems_as_problem_json_with_the_request_id():
    async def conflict(req):
        raise Problem(409, "tenant acme exists")

    response = asyncio.run(asgi_function(conflict)(request(headers={"X-Request-Id": "abc-123"})))
    assert response.status_code == 409 and response.media_type == "application/problem+json"
    assert json.loads(response.body) == {"type": "about:blank", "title": "Conflict", "status": 409,
                                         "detail": "tenant acme exists"}
    assert response.headers["X-Request-Id"] == "abc-123"


def test_asgi_function_hides_internal_errors_and_reuses_the_execution_id(capsys):
    async def broken(req):
        raise RuntimeError("password=hunter2 leaked?")

    response = asyncio.run(asgi_function(broken)(request(headers={"Function-Execution-Id": "exec42"})))
    body = json.loads(response.body)
    assert response.status_code == 500 and "hunter2" not in body["detail"]
    assert response.headers["X-Request-Id"] == "exec42" and "exec42" in body["detail"]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert logged[-1]["severity"] == "ERROR" and logged[-1]["request_id"] == "exec42"


def test_json_responses_carry_decimals_and_times_as_strings():
    import datetime
    from decimal import Decimal

    response = json_response({"amount": Decimal("1.10"), "at": datetime.date(2026, 11, 1)}, 201, {"X-A": "b"})
    assert (response.status_code, response.headers["X-A"]) == (201, "b")
    assert json.loads(response.body) == {"amount": "1.10", "at": "2026-11-01"}
