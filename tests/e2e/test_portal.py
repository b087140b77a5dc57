"""The tenant portal in a real browser: Debian's Chromium driven by Playwright through the local stack's gateway,
as a customer uses it — a sign-in link, every page, a PDF download, a client made and deleted, the budget, the
language switch, a 360 px screen, JavaScript off — and axe-core's accessibility rules on every page.

Every page load records each request the page makes and each console message: no request may leave the stack's
origin, and no Content-Security-Policy violation may occur. `PORTAL_SCREENSHOTS=<folder>` (`make
portal-screenshots`) saves a PNG of each page there.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from pypdf import PdfReader

from tests.e2e.conftest import ROOT, RunningStack
from tests.e2e.portal_seed import Seeded, expire, link, seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = ROOT / ".tools" / "axe-core" / "axe.min.js"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = {"overview": "/portal", "usage": "/portal/usage", "invoices": "/portal/invoices", "clients": "/portal/clients",
         "budget": "/portal/budget", "webhooks": "/portal/webhooks"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def seeded(stack) -> Seeded:
    return seed(stack)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is needed: apt-get install chromium (see the README)"
    with sync_playwright() as playwright:
        # A fresh profile each launch (Playwright makes its own user data folder).
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


class Visit:
    """A browser context (its own cookies) that records every request and console message of its pages."""

    def __init__(self, browser, stack, **options):
        self.stack = stack
        self.context = browser.new_context(accept_downloads=True, **options)
        self.requests: list[str] = []
        self.console: list[str] = []
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.console.append(message.text))

    def go(self, path: str, status: int = 200):
        response = self.page.goto(self.stack.url + path)
        assert response.status == status, (path, response.status, self.page.inner_text("main")[:300])
        return response

    def sign_in(self, url: str) -> None:
        self.page.goto(url)
        self.page.get_by_role("button", name=re.compile("Continue|Verder")).click()
        self.page.wait_for_load_state()

    def post(self, path: str, form: dict, headers: dict | None = None):
        """A form post with this context's cookies, outside any page (as another site's form would be)."""
        return self.context.request.post(self.stack.url + path, form=form, headers=headers or {},
                                         max_redirects=0)

    def csrf(self) -> str:
        return self.page.locator("input[name=csrf]").first.get_attribute("value")

    def cookie(self) -> dict | None:
        return next((c for c in self.context.cookies() if c["name"] == "energent_portal"), None)

    def check_origin_and_policy(self) -> None:
        origin = urlsplit(self.stack.url)
        strays = [url for url in self.requests if urlsplit(url)[:2] != origin[:2]]
        assert strays == [], f"requests left the origin: {strays}"
        refused = [text for text in self.console if "Content Security Policy" in text or "Refused to" in text]
        assert refused == [], refused

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("PORTAL_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.check_origin_and_policy()
        self.context.close()


@pytest.fixture
def visit(browser, stack, seeded):
    opened = []

    def make(**options) -> Visit:
        opened.append(Visit(browser, stack, **options))
        return opened[-1]

    yield make
    for made in opened:
        made.close()


def api(stack, path: str, headers: dict | None = None):
    return requests.get(f"{stack.url}{path}", headers=headers or stack.operator(), timeout=10)


# --- signing in --------------------------------------------------------------------------------------------------

def test_a_link_signs_in_once_to_an_address_without_a_secret_and_a_used_link_shows_only_that(stack, visit, seeded):
    url = link(stack)
    first = visit()
    first.page.goto(url)
    assert first.page.title().startswith("Sign in")
    assert first.cookie() is None  # opening the link (as a mail scanner would) redeems nothing
    first.page.get_by_role("button", name="Continue to the portal").click()
    assert first.page.url == f"{stack.url}/portal"
    assert "code" not in first.page.url
    cookie = first.cookie()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP locally; `Secure` and `__Host-` everywhere else (portal/settings.py)
    remaining = cookie["expires"] - time.time()
    assert 3500 < remaining <= 3600
    upcoming = api(stack, "/v1/tenants/acme/invoices/upcoming").json()
    main = first.page.inner_text("main")
    assert "Acme BV" in main and "Active" in main and "Standard" in main
    assert seeded.invoices["acme"] in main
    assert f"€{float(upcoming['total']):,.2f}" in main  # the upcoming total, as the API says it now

    again = visit()
    again.page.goto(url)
    again.page.get_by_role("button", name="Continue to the portal").click()
    assert again.page.url == f"{stack.url}/portal/login"
    assert again.page.get_by_role("heading", level=1).inner_text() == "This sign-in link no longer works"
    assert again.cookie() is None
    body = again.page.inner_text("body")
    assert "Acme" not in body and seeded.invoices["acme"] not in body
    assert again.page.get_by_role("navigation", name="Portal").count() == 0
    # A link seen twice was likely stolen: the session it started ends as well.
    first.go("/portal", 401)
    assert first.page.get_by_role("heading", level=1).inner_text() == "You are signed out"


def test_the_language_switch_on_a_link_s_page_keeps_the_link(stack, visit):
    portal = visit()
    portal.page.goto(link(stack))
    portal.page.get_by_role("link", name="Nederlands").click()
    assert portal.page.get_by_role("heading", level=1).inner_text() == "Aanmelden bij het klantportaal"
    portal.page.get_by_role("button", name="Verder naar het portaal").click()
    assert portal.page.url == f"{stack.url}/portal"
    assert portal.page.get_by_role("heading", level=1).inner_text().startswith("Overzicht")


def test_an_expired_link_shows_only_that_it_no_longer_works(stack, visit):
    url = link(stack)
    expire(stack, url)
    late = visit()
    late.sign_in(url)
    assert late.page.get_by_role("heading", level=1).inner_text() == "This sign-in link no longer works"
    assert late.cookie() is None and "Acme" not in late.page.inner_text("body")
    late.go("/portal", 401)


def test_signing_out_ends_the_session_and_a_deleted_creator_client_ends_its_sessions(stack, visit):
    portal = visit()
    portal.sign_in(link(stack))
    portal.page.get_by_role("button", name="Sign out").click()
    assert portal.page.get_by_role("heading", level=1).inner_text() == "You are signed out"
    assert portal.cookie() is None
    portal.go("/portal", 401)

    made = requests.post(f"{stack.url}/v1/tenants/acme/clients", headers=stack.operator(), timeout=10,
                         json={"scopes": ["billing:read", "usage:read"], "name": "finance"}).json()
    token = requests.post(f"{stack.url}/v1/oauth/token", data={"grant_type": "client_credentials"}, timeout=10,
                          auth=(made["client_id"], made["client_secret"])).json()["access_token"]
    theirs = visit()
    theirs.sign_in(link(stack, "acme", {"Authorization": f"Bearer {token}"}))
    theirs.go("/portal/invoices")
    theirs.go("/portal/clients", 403)  # the client that made the link has no clients:write: neither has its session
    assert [a.inner_text() for a in theirs.page.locator("nav.tabs a").all()] == ["Overview", "Usage", "Invoices"]
    requests.delete(f"{stack.url}/v1/tenants/acme/clients/{made['client_id']}", headers=stack.operator(), timeout=10)
    theirs.go("/portal/invoices", 401)


# --- reading every page --------------------------------------------------------------------------------------

def test_every_page_reads_from_the_origin_alone_under_a_policy_without_unsafe_inline(stack, visit, seeded):
    portal = visit(viewport={"width": 1280, "height": 900})
    portal.sign_in(link(stack))
    pages = PAGES
    for name, path in pages.items():
        response = portal.go(path)
        headers = response.all_headers()
        policy = headers["content-security-policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy  # no script at all: default-src 'none' covers it
        assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
        assert portal.page.locator("script").count() == 0
        assert portal.page.locator("[style]").count() == 0
        assert portal.page.get_by_role("link", name="Skip to content").count() == 1
        assert portal.page.locator("main#main").count() == 1
        portal.screenshot(name)
    assert any(url.endswith("/portal/static/portal.css?v=" + url.rsplit("=", 1)[-1]) for url in portal.requests)
    portal.go("/portal/usage?period=" + seeded.last_month)
    portal.screenshot("usage-last-month")
    portal.page.goto(f"{stack.url}/portal/login?code=nothing-here")
    portal.screenshot("sign-in")


def test_usage_shows_each_day_as_a_bar_and_the_same_numbers_in_the_table(stack, visit, seeded):
    expected = api(stack, f"/v1/tenants/acme/usage?period={seeded.last_month}&granularity=day").json()
    portal = visit()
    portal.sign_in(link(stack))
    portal.go(f"/portal/usage?period={seeded.last_month}")
    charts = portal.page.locator("svg.chart")
    assert charts.count() == 1  # only workflow minutes were used last month
    days = calendar.monthrange(int(seeded.last_month[:4]), int(seeded.last_month[5:]))[1]
    assert charts.first.locator("rect.bar").count() == days
    assert charts.first.get_attribute("role") == "img"
    rows = portal.page.locator("table tbody tr")
    assert rows.count() == len(expected["days"])
    for row, day in zip(rows.all(), expected["days"], strict=True):
        quantity = day["meters"]["workflow_minutes"]["quantity"]
        assert row.locator("td").first.inner_text() == f"{int(quantity):,}"
        assert row.locator("time").get_attribute("datetime") == day["date"]
    total = expected["meters"]["workflow_minutes"]["quantity"]
    assert portal.page.locator("table tfoot td").first.inner_text() == f"{int(total):,}"


def test_an_invoice_downloads_as_its_pdf(stack, visit, seeded):
    portal = visit()
    portal.sign_in(link(stack))
    portal.go("/portal/invoices")
    number = seeded.invoices["acme"]
    with portal.page.expect_download() as downloading:
        portal.page.get_by_role("link", name=f"PDF of {number}").click()
    download = downloading.value
    assert download.suggested_filename == f"{number}.pdf"
    saved = Path(download.path())
    assert saved.read_bytes().startswith(b"%PDF")
    assert number in "".join(page.extract_text() for page in PdfReader(saved).pages)
    ubl = portal.context.request.get(f"{stack.url}/portal/documents/{number}/xml")
    assert ubl.status == 200 and b"<Invoice" in ubl.body() and number.encode() in ubl.body()
    assert ubl.headers["content-disposition"] == f'attachment; filename="{number}.xml"'
    assert ubl.headers["x-content-type-options"] == "nosniff" and ubl.headers["cache-control"] == "no-store"
    assert "unsafe-inline" not in ubl.headers["content-security-policy"]


# --- API clients: made, shown once, deleted ----------------------------------------------------------------------

def create_and_delete_a_client(stack, portal: Visit, name: str) -> None:
    portal.go("/portal/clients")
    portal.page.get_by_label("Name").fill(name)
    portal.page.get_by_label("Read usage").check()
    portal.page.get_by_role("button", name="Create").click()
    client_id = portal.page.locator("#new-client-id").inner_text()
    secret = portal.page.locator("#new-client-secret").inner_text()
    issued = requests.post(f"{stack.url}/v1/oauth/token", data={"grant_type": "client_credentials"}, timeout=10,
                           auth=(client_id, secret))
    assert issued.status_code == 200 and issued.json()["scope"] == "usage:read"
    portal.go("/portal/clients")
    assert secret not in portal.page.content()  # shown once
    assert portal.page.get_by_role("row", name=re.compile(name)).count() == 1
    portal.page.get_by_role("button", name=f"Delete client {name}").click()
    assert portal.page.get_by_role("status").inner_text() == "The client was deleted; its tokens no longer work."
    assert portal.page.get_by_role("row", name=re.compile(name)).count() == 0
    gone = api(stack, "/v1/tenants/acme/usage", {"Authorization": f"Bearer {issued.json()['access_token']}"})
    assert gone.status_code == 401


def test_a_client_is_created_with_its_secret_shown_once_and_deleted(stack, visit):
    portal = visit()
    portal.sign_in(link(stack))
    create_and_delete_a_client(stack, portal, "nightly-export")


def test_a_change_without_the_session_s_token_or_from_another_origin_is_refused(stack, visit):
    portal = visit()
    portal.sign_in(link(stack))
    portal.go("/portal/clients")
    token = portal.csrf()
    before = len(api(stack, "/v1/tenants/acme/clients").json()["clients"])
    form = {"name": "forged", "scope": "usage:read"}
    for refused in (portal.post("/portal/clients", form),
                    portal.post("/portal/clients", {**form, "csrf": ("y" if token[0] == "x" else "x") + token[1:]}),
                    portal.post("/portal/clients", {**form, "csrf": token}, {"Origin": "https://attacker.example"}),
                    portal.post("/portal/clients", {**form, "csrf": token}, {"Sec-Fetch-Site": "cross-site"})):
        assert refused.status == 403 and "Request refused" in refused.text()
    assert len(api(stack, "/v1/tenants/acme/clients").json()["clients"]) == before
    # Another session's token is no token for this one.
    other = visit()
    other.sign_in(link(stack))
    other.go("/portal/clients")
    assert other.csrf() != token
    assert portal.post("/portal/clients", {**form, "csrf": other.csrf()}).status == 403
    accepted = portal.post("/portal/clients", {**form, "csrf": token})
    assert accepted.status == 200 and "Client created" in accepted.text()
    created = re.search(r'id="new-client-id">([^<]+)<', accepted.text()).group(1)
    requests.delete(f"{stack.url}/v1/tenants/acme/clients/{created}", headers=stack.operator(), timeout=10)


# --- isolation: the tenant is the session's, whatever the address says --------------------------------------------

def test_no_typed_address_reaches_another_tenant(stack, visit, seeded):
    portal = visit()
    portal.sign_in(link(stack, "acme"))
    theirs = seeded.invoices["globex"]
    for path in (f"/portal/documents/{theirs}/pdf", f"/portal/documents/{theirs}/xml",
                 f"/portal/documents/..%2F..%2Fglobex%2Finvoices%2F{seeded.last_month}/pdf",
                 "/portal/tenants/globex", "/portal/v1/tenants/globex/invoices"):
        response = portal.context.request.get(stack.url + path)
        assert response.status == 404, path
        assert "Globex" not in response.text() and "DE136695976" not in response.text()
    for path in ("/portal?tenant_id=globex", "/portal/invoices?tenant=globex",
                 f"/portal/usage?tenant_id=globex&period={seeded.last_month}"):
        portal.go(path)
        text = portal.page.inner_text("main")
        assert "Globex" not in text and theirs not in text
    portal.go("/portal")
    assert "Acme BV" in portal.page.inner_text("main")
    # Deleting the other tenant's client through acme's session finds nothing, and leaves it alone.
    portal.go("/portal/clients")
    refused = portal.post(f"/portal/clients/{seeded.globex_client}/delete", {"csrf": portal.csrf()})
    assert refused.status == 404
    listed = api(stack, "/v1/tenants/globex/clients").json()["clients"]
    assert seeded.globex_client in [c["client_id"] for c in listed]


# --- languages, small screens, no JavaScript ---------------------------------------------------------------------

def test_dutch_from_the_browser_and_the_switch_keeps_the_choice(stack, visit, seeded):
    portal = visit(locale="nl-NL", extra_http_headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"})
    portal.sign_in(link(stack))
    assert portal.page.locator("html").get_attribute("lang") == "nl"
    assert portal.page.get_by_role("heading", level=1).inner_text().startswith("Overzicht")
    total = api(stack, f"/v1/tenants/acme/invoices/{seeded.last_month}").json()["total"]
    whole, cents = total.split(".")
    assert f"€ {int(whole):,}".replace(",", ".") + f",{cents}" in portal.page.inner_text("main")
    portal.page.get_by_role("link", name="English").click()
    assert portal.page.locator("html").get_attribute("lang") == "en"
    portal.page.get_by_role("link", name="Invoices", exact=True).click()
    assert portal.page.get_by_role("heading", level=1).inner_text() == "Invoices and credit notes"
    portal.page.get_by_role("link", name="Nederlands").click()
    portal.page.get_by_role("link", name="Gebruik", exact=True).click()
    assert portal.page.get_by_role("heading", level=1).inner_text().startswith("Gebruik in")
    portal.go(f"/portal/usage?period={seeded.last_month}")
    portal.page.get_by_role("link", name="English").click()  # the switch keeps the month shown
    assert portal.page.get_by_role("heading", level=1).inner_text().startswith("Usage in")
    assert f"period={seeded.last_month}" in portal.page.url
    portal.page.get_by_role("link", name="Nederlands").click()
    portal.screenshot("usage-nl")


def test_every_page_fits_a_360_pixel_screen(stack, visit):
    portal = visit(viewport={"width": 360, "height": 780}, device_scale_factor=2, is_mobile=True, has_touch=True)
    portal.sign_in(link(stack))
    for name, path in PAGES.items():
        portal.go(path)
        width = portal.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width} px wide"
        assert portal.page.get_by_role("navigation", name="Portal").is_visible()
        portal.screenshot(f"{name}-360px")


def test_without_javascript_every_page_reads_and_a_client_is_made_and_deleted(stack, visit):
    portal = visit(java_script_enabled=False)
    portal.sign_in(link(stack))
    assert portal.page.url == f"{stack.url}/portal"
    for path in PAGES.values():
        portal.go(path)
        assert portal.page.get_by_role("heading", level=1).count() == 1
    create_and_delete_a_client(stack, portal, "no-script")


# --- budget and webhooks (spend control) -------------------------------------------------------------------------

def test_the_budget_is_changed_and_a_webhook_added_and_deleted(stack, visit):
    portal = visit()
    portal.sign_in(link(stack))
    labels = [a.inner_text() for a in portal.page.locator("nav.tabs a").all()]
    assert "Budget" in labels and "Webhooks" in labels  # the operator's link holds billing:write
    portal.go("/portal/budget")
    portal.page.get_by_label(re.compile("Monthly limit")).fill("1250.00")
    portal.page.get_by_label("Notify and stop new workflows", exact=False).check()
    portal.page.get_by_role("button", name="Save").click()
    assert portal.page.get_by_role("status").inner_text() == "The budget was saved."
    stored = api(stack, "/v1/tenants/acme/budget").json()
    assert stored["monthly_limit"] == "1250.00" and stored["action"] == "block"
    assert portal.page.locator("#budget-limit").inner_text() == "€1,250.00"
    portal.screenshot("budget-set")
    spend = api(stack, "/v1/tenants/acme/spend").json()
    portal.go("/portal")
    card = portal.page.get_by_role("region", name="Spend against budget")
    assert f"€{float(spend['net']):,.2f} of €1,250.00 ({spend['budget']['used_pct']} %)" in card.inner_text()
    assert card.locator("meter").get_attribute("value") == spend["budget"]["used_pct"]
    portal.screenshot("overview-with-budget")
    portal.go("/portal/budget")
    portal.page.get_by_label(re.compile("Monthly limit")).fill("twelve")
    portal.page.get_by_role("button", name="Save").click()
    assert "Enter an amount" in portal.page.get_by_role("alert").inner_text()
    assert api(stack, "/v1/tenants/acme/budget").json()["monthly_limit"] == "1250.00"
    portal.go("/portal/webhooks")
    portal.page.get_by_label("Address (URL)").fill("http://127.0.0.1:9/energent")
    portal.page.get_by_role("button", name="Create").click()
    assert portal.page.locator("#new-webhook-secret").inner_text().startswith("whsec_")
    portal.page.get_by_role("button", name="Delete webhook http://127.0.0.1:9/energent").click()
    assert portal.page.get_by_role("status").inner_text() == "The webhook was deleted."


# --- accessibility ----------------------------------------------------------------------------------------------

def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.x A and AA rules on the page as it stands; only serious and critical violations."""
    page.evaluate(AXE.read_text())
    found = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag', values:
        ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})).violations
        .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))""")
    return [violation for violation in found if violation["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_or_critical_violation_on_any_page(stack, visit):
    assert AXE.is_file(), "axe-core is fetched by `make venv` into .tools/axe-core"
    report = {}
    for language, viewport in (("en", {"width": 1280, "height": 900}), ("nl", {"width": 360, "height": 780})):
        portal = visit(viewport=viewport, extra_http_headers={"Accept-Language": language})
        portal.page.goto(link(stack))
        report[f"{language} sign-in"] = axe_violations(portal.page)
        portal.page.get_by_role("button").click()
        for name, path in PAGES.items():
            portal.go(path)
            report[f"{language} {name}"] = axe_violations(portal.page)
        portal.go("/portal/documents/2000-000000/pdf", 404)
        report[f"{language} not found"] = axe_violations(portal.page)
    assert {page: found for page, found in report.items() if found} == {}, json.dumps(report, indent=1)


# --- the operator's CLI ------------------------------------------------------------------------------------------

def test_the_cli_prints_a_link_alone_that_signs_in(stack, visit, monkeypatch, capsys, tmp_path):
    from energent_cli.main import main

    monkeypatch.setenv("ENERGENT_API_URL", stack.url)
    monkeypatch.setenv("ENERGENT_CLIENT_ID", stack.values["OPERATOR_CLIENT_ID"])
    monkeypatch.setenv("ENERGENT_CLIENT_SECRET", stack.values["OPERATOR_CLIENT_SECRET"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["portal", "acme"]) == 0
    printed = capsys.readouterr()
    assert re.fullmatch(re.escape(stack.url) + r"/portal/login\?code=[A-Za-z0-9_-]{43}\n", printed.out)
    assert "works once" in printed.err
    portal = visit()
    portal.sign_in(printed.out.strip())
    assert portal.page.url == f"{stack.url}/portal" and "Acme BV" in portal.page.inner_text("main")
    assert main(["--json", "portal", "acme"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"url", "expires_at"}
    assert main(["portal", "nobody"]) == 1
    assert "does not exist" in capsys.readouterr().err
