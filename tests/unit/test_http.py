import json
from decimal import Decimal

import flask
import pytest

from energent_shared import errors
from energent_shared.http import Problem, Router, http_function, parse_json, read_json
from energent_shared.jsonio import OutOfRangeNumber, json_default
from energent_shared.paging import page_size_param, page_token_param

app = flask.Flask(__name__)


def request(body: bytes = b"", content_type: str | None = "application/json", path: str = "/", method: str = "POST",
            headers: dict | None = None):
    environ = {"CONTENT_TYPE": content_type} if content_type else {}
    ctx = app.test_request_context(path, method=method, data=body, headers=headers or {}, environ_base=environ)
    ctx.push()
    return flask.request


def problem_of(call) -> Problem:
    with pytest.raises(Problem) as caught:
        call()
    return caught.value


def test_parse_json_keeps_fractions_exact():
    assert parse_json(b'{"q": 0.1, "n": 3}') == {"q": Decimal("0.1"), "n": 3}


@pytest.mark.parametrize("text", ["1e99999999999999999999", "-1e-99999999999999999999", "0e99999999999999999999",
                                  "0e-999999999", "0.0e-1001", "1e1001", "1e-1001", "1." + "0" * 1001,
                                  "1" * 1001, "-" + "9" * 1001])
def test_numbers_beyond_any_range_are_kept_apart_not_raised(text):
    """Decimal refuses (or would work without bound on) such exponents; the document is still read, and the
    number is neither a number nor a string to whatever checks the field."""
    found = parse_json(f'{{"q": {text}, "ok": 1.5}}'.encode())
    assert found["ok"] == Decimal("1.5") and found["q"] == OutOfRangeNumber(text)
    assert not isinstance(found["q"], (int, Decimal, str))
    assert json.dumps(found, default=json_default) == json.dumps({"q": text, "ok": "1.5"})


def test_numbers_within_range_stay_exact():
    found = parse_json(b'[1e1000, 1e-1000, 12.000001, 0e1000, ' + b"9" * 1000 + b"]")
    assert found[:4] == [Decimal("1e1000"), Decimal("1e-1000"), Decimal("12.000001"), Decimal(0)]
    assert found[4] == int("9" * 1000)


@pytest.mark.parametrize("raw, fragment", [
    (b'{"q": NaN}', "NaN is not valid JSON"),
    (b'{"q": Infinity}', "Infinity is not valid JSON"),
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b'{"a": ', "line 1 column 7"),
    (b'\xff\xfe{}', "not valid UTF-8"),
])
def test_parse_json_rejects_with_a_precise_detail(raw, fragment):
    problem = problem_of(lambda: parse_json(raw))
    assert problem.status == 400
    assert fragment in problem.detail


def test_read_json_refuses_oversize_bodies_by_declared_length():
    problem = problem_of(lambda: read_json(request(b'{"a": "' + b"x" * 100 + b'"}'), max_bytes=50))
    assert problem.status == 413
    assert "the limit is 50 bytes" in problem.detail


def test_read_json_refuses_wrong_top_level_type():
    problem = problem_of(lambda: read_json(request(b"[1, 2]")))
    assert (problem.status, problem.detail) == (400, "body must be a JSON object, got array")


def test_read_json_refuses_other_media_types():
    problem = problem_of(lambda: read_json(request(b"a=1", "application/x-www-form-urlencoded")))
    assert problem.status == 415
    assert "application/x-www-form-urlencoded" in problem.detail


def test_read_json_refuses_an_empty_body():
    assert problem_of(lambda: read_json(request(b"  "))).detail == "body is empty; a JSON document is required"


def test_read_json_accepts_charset_parameter():
    assert read_json(request(b'{"a": 1}', "application/json; charset=utf-8")) == {"a": 1}


def make_router() -> Router:
    router = Router()
    router.route("GET", "/v1/tenants/{tenant_id}")(lambda req, tenant_id: flask.jsonify(t=tenant_id))
    router.route("DELETE", "/v1/tenants/{tenant_id}")(lambda req, tenant_id: flask.Response(status=204))
    router.route("POST", "/v1/billing/periods/{period}:close")(lambda req, period: flask.jsonify(p=period))
    return router


def test_router_binds_path_parameters_including_custom_methods():
    router = make_router()
    assert router.dispatch(request(path="/v1/tenants/acme", method="GET")).json == {"t": "acme"}
    assert router.dispatch(request(path="/v1/billing/periods/2026-10:close")).json == {"p": "2026-10"}


def test_router_answers_405_with_allow_and_404_for_unknown_paths():
    router = make_router()
    problem = problem_of(lambda: router.dispatch(request(path="/v1/tenants/acme", method="PUT")))
    assert problem.status == 405
    assert problem.headers["Allow"] == "DELETE, GET"
    assert problem_of(lambda: router.dispatch(request(path="/v1/tenants/acme/x", method="GET"))).status == 404


def test_http_function_turns_problems_into_problem_json_with_request_id():
    handler = http_function(lambda req: (_ for _ in ()).throw(Problem(409, "tenant acme exists")))
    response = handler(request(headers={"X-Request-Id": "abc-123"}))
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json == {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "tenant acme exists"}
    assert response.headers["X-Request-Id"] == "abc-123"


def test_http_function_hides_internal_errors(capsys):
    def broken(req):
        raise RuntimeError("password=hunter2 leaked?")

    response = http_function(broken)(request(headers={"X-Request-Id": "bad id with spaces"}))
    body = json.loads(response.get_data())
    assert response.status_code == 500
    assert "hunter2" not in body["detail"]
    rid = response.headers["X-Request-Id"]
    assert rid != "bad id with spaces" and rid in body["detail"]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert logged[-1]["severity"] == "ERROR" and logged[-1]["request_id"] == rid


@pytest.mark.parametrize("raw", ["²", "0", "101", "99999999999999999999", "-1", "1.5", " 5"])
def test_page_size_outside_ascii_digits_and_range_is_a_400(raw):
    with pytest.raises(errors.Invalid):
        page_size_param(raw)


def test_a_page_token_is_none_for_the_first_page_and_refused_when_longer_than_any_token():
    assert page_token_param(None) is None and page_token_param("") is None
    assert page_token_param("a" * 40) == "a" * 40
    with pytest.raises(errors.Invalid, match="page_token is not valid"):
        page_token_param("a" * 41)


@pytest.mark.parametrize("error, status", [(errors.Invalid("x"), 400), (errors.Forbidden("x"), 403),
                                           (errors.NotFound("x"), 404), (errors.Conflict("x"), 409),
                                           (errors.Unavailable("x", 7), 503)])
def test_a_domain_error_is_answered_with_its_status_and_message(error, status):
    def handler(request):
        raise error

    response = http_function(handler)(request(b"", path="/v1/x", method="GET"))
    assert response.status_code == status and response.json["detail"] == "x"
    assert response.headers.get("Retry-After") == ("7" if status == 503 else None)


def test_json_nested_too_deeply_is_a_400():
    with pytest.raises(Problem) as caught:
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    assert caught.value.status == 400 and "nested too deeply" in caught.value.detail


def test_body_fields_are_checked_one_way_everywhere():
    from energent_shared import fields

    fields.only({"a": 1}, {"a", "b"})
    with pytest.raises(errors.Invalid, match=r"^unknown field\(s\): c, d$"):
        fields.only({"a": 1, "d": 2, "c": 3}, {"a"})
    with pytest.raises(errors.Invalid, match=r"^billing_profile has unknown field\(s\): iban$"):
        fields.only({"iban": "x"}, {"legal_name"}, "billing_profile")
    assert fields.text({"name": "  Acme  "}, "name", 10) == "Acme"
    assert fields.text({}, "name", 10, required=False) is None
    assert fields.text({"name": None}, "name", 10, required=False) is None
    for bad in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 11}, {"name": "a\u0000b"}, {"name": "a\nb"},
                {"name": 5}, {"name": ["x"]}):
        with pytest.raises(errors.Invalid, match=r"^a.name must be a non-blank string of at most 10 printable"):
            fields.text(bad, "name", 10, within="a")
