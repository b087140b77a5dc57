"""The portal's pure parts: languages and their number formats, the server-drawn chart, CSRF tokens, forms."""

import datetime
import importlib.util
import re
from decimal import Decimal

import flask
import pytest

from portal import chart, i18n, sessions, views
from portal.api import ApiError, segment
from tests.conftest import ROOT


@pytest.mark.parametrize("asked, cookie, header, chosen", [
    (None, None, None, "en"),
    (None, None, "nl-NL,nl;q=0.9,en;q=0.8", "nl"),
    (None, None, "de-DE,nl;q=0.5,en;q=0.7", "en"),
    (None, None, "de-DE,fr;q=0.9", "en"),
    (None, None, "en;q=0,nl", "nl"),
    (None, "nl", "en", "nl"),
    ("en", "nl", "nl", "en"),
    ("xx", None, "nl", "nl"),
    (None, None, "nl;q=garbage, ,;;", "en"),
])
def test_the_language_is_the_switch_then_the_cookie_then_the_browser(asked, cookie, header, chosen):
    assert i18n.negotiate(asked, cookie, header) == chosen


def test_numbers_money_and_dates_in_each_language():
    en, nl = i18n.Translator("en"), i18n.Translator("nl")
    assert en.number("1234567.5") == "1,234,567.5" and nl.number("1234567.5") == "1.234.567,5"
    assert en.number("1690.000000") == "1,690" and nl.number("0.25") == "0,25"
    assert en.money("1234.5") == "€1,234.50" and nl.money("1234.5") == "€ 1.234,50"
    assert en.money("-12.3") == "-€12.30" and nl.money("-12.3") == "€ -12,30"
    assert en.date("2026-11-03") == "3 November 2026" and nl.date("2026-11-03T10:00:00Z") == "3 november 2026"
    assert en.month("2026-02") == "February 2026" and nl.month("2026-02") == "februari 2026"
    assert en("spent_of", spent="a", limit="b", pct="1") == "a of b (1 %)"
    assert nl.optional("meter_new_meter", "new_meter") == "new_meter"


def test_both_languages_say_everything():
    assert set(i18n.MESSAGES["en"]) == set(i18n.MESSAGES["nl"])
    for key, text in i18n.MESSAGES["en"].items():
        assert re.findall(r"{(\w+)}", text) == re.findall(r"{(\w+)}", i18n.MESSAGES["nl"][key]), key


def test_the_chart_draws_a_bar_per_day_escapes_its_text_and_styles_nothing_inline():
    days = chart.days_of("2026-02")
    assert len(days) == 28 and days[-1] == datetime.date(2026, 2, 28)
    values = [(day, Decimal(day.day % 3)) for day in days]
    drawn = str(chart.bar_chart("c1", "<Minutes>", "a & b", values, str, lambda day: day.isoformat()))
    assert drawn.count("<rect") == 28 and "style=" not in drawn and "<script" not in drawn
    assert "&lt;Minutes&gt;" in drawn and "a &amp; b" in drawn
    assert 'aria-labelledby="c1-title c1-desc"' in drawn and 'role="img"' in drawn
    # Whole numbers below 4 get a line per number (0, 1, 2), never fractions of a run.
    assert re.findall(r'text-anchor="end">([^<]+)<', drawn) == ["0", "1", "2"]
    assert [chart.nice_ceiling(Decimal(v)) for v in ("0", "0.3", "7", "26", "1690", "2500")] == [
        Decimal(1), Decimal("0.5"), Decimal(10), Decimal(50), Decimal(2000), Decimal(2500)]


def test_csrf_tokens_belong_to_their_session():
    one, other = "a" * 43, "b" * 43
    assert sessions.csrf_matches(one, sessions.csrf_token(one))
    assert sessions.csrf_token(one) != sessions.csrf_token(other)
    assert not sessions.csrf_matches(one, sessions.csrf_token(other))
    assert not sessions.csrf_matches(one, None) and not sessions.csrf_matches(one, "")
    assert one not in sessions.csrf_token(one)


def test_forms_and_months():
    assert views.parse_thresholds("80, 50;100") == [50, 80, 100]
    assert views.parse_thresholds("0, 50") is None and views.parse_thresholds("1001") is None
    assert views.parse_thresholds("fifty") is None
    # Digits of other scripts and numbers too long to convert are not thresholds (str.isdigit() would take them).
    for hostile in ("²", "٣", "5" * 5000, "50, ²"):
        assert views.parse_thresholds(hostile) is None, hostile
    assert views.shift("2026-01", -1) == "2025-12" and views.shift("2026-12", 1) == "2027-01"
    assert segment("../globex/invoices") == "..%2Fglobex%2Finvoices"
    for dots in (".", "..", ""):  # an HTTP client resolves dot segments: /clients/.. would be another route
        with pytest.raises(ApiError):
            segment(dots)
    assert not views.PERIOD.fullmatch("2026-05\n") and not views.NUMBER.fullmatch("2026-000001\n")


@pytest.fixture
def portal_main(monkeypatch):
    """The portal's entry point as deployed outside the local stack, loaded under a name of its own."""
    from energent_shared import config
    from portal.settings import portal_settings

    monkeypatch.setenv("TOKEN_ISSUER", "https://api.example.com")
    monkeypatch.setenv("PORTAL_CLIENT_SECRET", "projects/p/secrets/portal-client")
    monkeypatch.setenv("ENVIRONMENT", "dev")
    config.settings.cache_clear()
    portal_settings.cache_clear()
    spec = importlib.util.spec_from_file_location("portal_entry_point", ROOT / "functions" / "portal" / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    config.settings.cache_clear()
    portal_settings.cache_clear()


@pytest.mark.parametrize("method, headers, body, status", [
    ("POST", {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"},
     b"6\r\ncode=x\r\n0\r\n\r\n", 411),  # no declared length: not read into memory
    ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, b"code=" + b"x" * 17000, 413),
    ("POST", {"Content-Type": "text/plain"}, b"code=x", 415),
    ("PUT", {"Content-Type": "application/x-www-form-urlencoded"}, b"code=x", 405),
])
def test_refused_requests_are_answered_with_the_portal_s_security_headers(portal_main, method, headers, body, status):
    app = flask.Flask("portal-test")
    with app.test_request_context("/portal/login", method=method, headers=headers, data=body):
        response = portal_main.portal_http(flask.request)
    assert response.status_code == status
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Frame-Options"] == "DENY"
    assert "portal;dur=" in response.headers["Server-Timing"]


def test_the_session_cookie_outside_the_local_stack_is_a_host_cookie(portal_main):
    """__Host-: Secure, Path=/ and no Domain, so no sibling subdomain can plant a session of its own."""
    from portal.settings import portal_settings
    from portal.web import Context, set_session_cookie

    app = flask.Flask("portal-test")
    with app.test_request_context("/portal/login", method="POST"):
        response = flask.Response("")
        set_session_cookie(response, Context(flask.request, portal_settings(), "en"), "h" * 43, 60)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-energent_portal=") and "Secure" in cookie and "Path=/;" in cookie
    assert "Domain" not in cookie and "HttpOnly" in cookie
