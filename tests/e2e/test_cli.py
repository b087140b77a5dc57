# ruff: noqa: RUF001 - a Greek customer, named in Greek letters
"""`energent`, the operators' CLI (contract §9), driven through its runner against a running stack. The stack runs
with LOCAL_FLUX=off: the test plays Flux, so it decides which tenant becomes active and which fails."""

import datetime
import io
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from pypdf import PdfReader

from energent_cli.main import main
from local.flux import flux_event
from tests.e2e.conftest import ROOT, RunningStack
from tests.support import wait_until

LAST_MONTH = (datetime.datetime.now(datetime.UTC).replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("stack"), LOCAL_FLUX="off")
    yield running
    running.stop()


@pytest.fixture
def cli(stack, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ENERGENT_API_URL", stack.url)
    monkeypatch.setenv("ENERGENT_CLIENT_ID", stack.values["OPERATOR_CLIENT_ID"])
    monkeypatch.setenv("ENERGENT_CLIENT_SECRET", stack.values["OPERATOR_CLIENT_SECRET"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        if code:  # shown with the test's log when it fails: what the command said on stderr
            logging.getLogger(__name__).warning("energent %s exited %d: %s", " ".join(args), code, captured.err)
        return code, captured.out, captured.err

    return run


def flux_reports(stack, tenant_id: str, succeeded: bool, message: str = "applied") -> None:
    time.sleep(1.1)  # Flux's timestamps have one-second resolution: report in a later second than the change
    event = flux_event(f"tenant-{tenant_id}", succeeded, message, revision="r", sequence=1)
    stack.publish("provisioning-events", json.dumps(event).encode(), {})


def test_a_tenant_followed_to_active_and_one_to_failed(stack, cli):
    results = {}

    def create(tenant_id):
        results[tenant_id] = cli("tenants", "create", tenant_id, "--name", tenant_id.title(), "--tier", "basic",
                                 "--billing-start", f"{LAST_MONTH}-01", "--wait", "--timeout", "60", "--json")

    threads = [threading.Thread(target=create, args=(name,)) for name in ("cli-good", "cli-bad")]
    for thread in threads:
        thread.start()
    for tenant_id in ("cli-good", "cli-bad"):  # Flux reports on manifests that exist
        wait_until(lambda t=tenant_id: requests.get(f"{stack.url}/v1/tenants/{t}", headers=stack.operator(),
                                                    timeout=10).ok, 30, what=f"{tenant_id} to be created")
    flux_reports(stack, "cli-good", True)
    flux_reports(stack, "cli-bad", False, "quota exceeded in namespace tenant-cli-bad")
    for thread in threads:
        thread.join()
    code, out, _ = results["cli-good"]
    assert code == 0 and json.loads(out)["status"] == "active"
    code, out, err = results["cli-bad"]
    assert code == 1 and "cli-bad failed: quota exceeded" in err
    code, out, _ = cli("--json", "tenants", "list", "--status", "failed")
    assert code == 0 and [t["tenant_id"] for t in json.loads(out)["tenants"]] == ["cli-bad"]
    code, out, _ = cli("tenants", "get", "cli-good")
    assert code == 0 and "cli-good" in out and "active" in out  # a table for people


def test_errors_show_the_problems_detail_and_exit_non_zero(cli):
    code, out, err = cli("tenants", "get", "no-such-tenant")
    assert code == 1 and out == "" and "tenant no-such-tenant does not exist" in err
    code, _, err = cli("tenants", "create", "Bad_Id", "--name", "x", "--tier", "basic")
    assert code == 1 and "tenant_id" in err


def test_usage_from_a_csv_with_bad_rows_counts_once_however_often_it_is_sent(stack, cli, tmp_path):
    cli("tenants", "create", "cli-usage", "--name", "Usage", "--tier", "standard")
    usage = tmp_path / "usage.csv"
    usage.write_text("tenant_id,meter,quantity,time\n"
                     f"cli-usage,workflow_minutes,10,{LAST_MONTH}-03T10:00:00Z\n"
                     f"cli-usage,workflow_minutes,10,{LAST_MONTH}-03T10:00:00Z\n"  # identical: counts separately
                     f"cli-usage,workflow_minutes,2.5,{LAST_MONTH}-04T10:00:00Z\n"
                     f"cli-usage,workflow_minutes,-1,{LAST_MONTH}-04T10:00:00Z\n"
                     f"cli-usage,coffee,1,{LAST_MONTH}-04T10:00:00Z\n"
                     "cli-usage,workflow_minutes\n", encoding="utf-8-sig")  # as spreadsheets save it
    code, out, _ = cli("usage", "send", str(usage), "--json")
    first = json.loads(out)
    assert code == 0 and (first["accepted"], first["duplicates"]) == (3, 0)
    reasons = " | ".join(r["reason"] for r in first["rejected"])
    assert len(first["rejected"]) == 3 and "2 columns where the header has 4" in reasons and "coffee" in reasons
    code, out, _ = cli("--json", "usage", "send", str(usage))
    assert json.loads(out)["accepted"] == 0 and json.loads(out)["duplicates"] == 3
    code, out, _ = cli("usage", "show", "cli-usage", "--period", LAST_MONTH, "--daily", "--json")
    days = {d["date"]: d["meters"]["workflow_minutes"]["quantity"] for d in json.loads(out)["days"]}
    assert days == {f"{LAST_MONTH}-03": "20", f"{LAST_MONTH}-04": "2.5"}


def test_clients_show_their_secret_once(cli):
    cli("tenants", "create", "cli-clients", "--name", "Clients", "--tier", "basic")
    code, out, _ = cli("clients", "create", "cli-clients", "--scope", "usage:read", "--scope", "billing:read",
                       "--json")
    created = json.loads(out)
    assert code == 0 and created["client_secret"] and sorted(created["scopes"]) == ["billing:read", "usage:read"]
    code, out, _ = cli("clients", "list", "cli-clients", "--json")
    assert created["client_secret"] not in out and created["client_id"] in out
    assert cli("clients", "delete", "cli-clients", created["client_id"])[0] == 0


def test_a_month_closed_held_issued_paid_and_credited_from_the_command_line(stack, cli, tmp_path):
    code, out, _ = cli("periods", "close", LAST_MONTH, "--wait", "--json")
    assert code == 0 and json.loads(out)["status"] == "closed" and json.loads(out)["held"] >= 1
    code, out, _ = cli("invoices", "list", "cli-good", "--json")
    assert [(i["period"], i["status"]) for i in json.loads(out)["invoices"]] == [(LAST_MONTH, "draft")]
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"legal_name": "Ελληνική Εταιρεία Λογισμικού Α.Ε.", "vat_id": "EL094259216",
                                   "address": {"line1": "Λεωφόρος Κηφισίας 44", "postal_code": "151 25",
                                               "city": "Μαρούσι", "country": "GR"}}), encoding="utf-8")
    code, out, err = cli("tenants", "update", "cli-good", "--profile", str(profile), "--json")
    assert code == 0, err
    deadline = time.monotonic() + 60
    while not (found := json.loads(cli("invoices", "get", "cli-good", LAST_MONTH, "--json")[1])).get("number"):
        assert time.monotonic() < deadline, "the held invoice was not issued within 60 s"
        time.sleep(0.5)
    number = found["number"]
    pdf = tmp_path / "invoice.pdf"
    cli("invoices", "get", "cli-good", LAST_MONTH, "--pdf", str(pdf), "--json")
    text = PdfReader(io.BytesIO(pdf.read_bytes())).pages[0].extract_text()
    assert number in text and "Ελληνική Εταιρεία Λογισμικού Α.Ε." in text
    code, out, _ = cli("invoices", "pay", "cli-good", LAST_MONTH, "--reference", "BANK-6", "--amount", "10.00",
                       "--json")
    assert code == 0 and json.loads(out)["status"] == "partially_paid"
    code, out, _ = cli("invoices", "credit", "cli-good", LAST_MONTH, "--reason", "wrong name", "--reissue", "--json")
    reissued = json.loads(out)["invoice"]
    assert code == 0 and reissued["replaces"] == number and reissued["balance_applied"] == "10.00"
    code, out, _ = cli("invoices", "pay", "cli-good", LAST_MONTH, "--reference", "BANK-7", "--json")
    assert json.loads(out)["status"] == "paid"
    code, _, err = cli("invoices", "pay", "cli-good", LAST_MONTH, "--reference", "BANK-7", "--amount", "1.00")
    assert code == 1 and "recorded" in err
    code, out, _ = cli("invoices", "credit", "cli-good", LAST_MONTH, "--reason", "goodwill", "--amount", "5.00",
                       "--json")
    note = json.loads(out)["credit_note"]
    assert code == 0 and (note["net"], note["invoice_number"]) == ("-5.00", reissued["number"])
    code, out, _ = cli("balance", "cli-good", "--json")
    assert code == 0 and json.loads(out)["amount"] == "5.00"  # credited after payment: owed back
    note_pdf = tmp_path / "note.pdf"
    code, out, _ = cli("documents", "get", "cli-good", note["number"], "--pdf", str(note_pdf), "--json")
    assert code == 0 and json.loads(out)["number"] == note["number"]
    assert note["number"] in PdfReader(io.BytesIO(note_pdf.read_bytes())).pages[0].extract_text()
    code, out, _ = cli("documents", "get", "cli-good", number)
    assert code == 0 and "credited" in out  # the replaced invoice, as a table for people
    code, out, _ = cli("periods", "show", LAST_MONTH, "--json")
    assert code == 0 and json.loads(out)["issued"] >= 1
    # The e-invoice, the journal and the VAT return.
    xml = tmp_path / "invoice.xml"
    code, _, err = cli("documents", "get", "cli-good", reissued["number"], "--xml", str(xml), "--json")
    assert code == 0, err
    assert b"<cbc:EndpointID schemeID=\"9933\">094259216</cbc:EndpointID>" in xml.read_bytes()  # Greek: the TIN
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    journal = tmp_path / "journal.csv"
    code, out, _ = cli("books", "journal", "--from", today, "--to", today, "--csv", str(journal), "--json")
    entries = json.loads(out)["entries"]
    assert code == 0 and {number, reissued["number"], note["number"]} <= {e["entry"] for e in entries}
    assert journal.read_text().splitlines()[0] == "date,entry,document_number,tenant_id,account,debit,credit,vat_code"
    quarter = f"{today[:4]}-Q{(int(today[5:7]) - 1) // 3 + 1}"
    code, out, _ = cli("books", "vat-return", quarter, "--json")
    assert code == 0 and any(item["vat_id"] == "EL094259216" for item in json.loads(out)["icp"])
    code, _, err = cli("books", "vat-return", "2026-Q5")
    assert code == 1 and "Q" in err


def test_keys_are_listed_and_rotated_and_the_console_script_is_installed(stack, cli):
    code, out, _ = cli("keys", "list", "--json")
    assert code == 0
    before = len(json.loads(out)["keys"])
    assert cli("keys", "rotate")[0] == 0
    deadline = time.monotonic() + 30
    while len(json.loads(cli("keys", "list", "--json")[1])["keys"]) == before:
        assert time.monotonic() < deadline, "the rotation never published a key"
        time.sleep(0.5)
    script = Path(sys.executable).parent / "energent"
    done = subprocess.run([str(script), "--json", "periods", "show", LAST_MONTH], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "ENERGENT_API_URL": stack.url,
                                                     "ENERGENT_CLIENT_ID": stack.values["OPERATOR_CLIENT_ID"],
                                                     "ENERGENT_CLIENT_SECRET": stack.values["OPERATOR_CLIENT_SECRET"],
                                                     "HOME": str(ROOT / ".local")})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["period"] == LAST_MONTH
    assert stack.values["OPERATOR_CLIENT_SECRET"] not in done.stdout + done.stderr


def test_every_tenant_rendered_again_and_followed_to_the_end(cli):
    assert cli("tenants", "create", "cli-rerender", "--name", "Rerender", "--tier", "basic")[0] == 0
    code, out, err = cli("--json", "tenants", "rerender", "--reason", "tier table v2", "--wait")
    assert code == 0, err
    run = json.loads(out)
    assert (run["status"], run["reason"], run["failed"]) == ("done", "tier table v2", 0) and run["tenants"] >= 1
    code, out, _ = cli("tenants", "rerender-status", run["run_id"], "--json")
    assert code == 0 and json.loads(out) == run
    code, _, err = cli("tenants", "rerender-status", "f" * 32)
    assert code != 0 and "does not exist" in err
