"""The CLI's pure parts: usage files into events and batches, profiles, and what it prints."""

import json
import os
import stat
from pathlib import Path

import pytest

from energent_cli import usage_file
from energent_cli.api import ApiError, Profile, _retry_after, checkout, profile
from local.stack import write_env


def test_csv_rows_become_events_with_ids_derived_from_content_and_occurrence():
    text = ("tenant_id,meter,quantity,time\n" + "acme,workflow_minutes,10,2026-10-03T10:00:00Z\n" * 2
            + "acme,workflow_minutes\n")
    events = list(usage_file.read(text, "usage.csv"))
    assert [type(e).__name__ for e in events] == ["dict", "dict", "BadRow"]
    assert events[0]["id"] != events[1]["id"]  # identical rows count separately
    assert [e["id"] for e in usage_file.read(text, "usage.csv") if isinstance(e, dict)] == [
        e["id"] for e in events[:2]]  # and the same file gives the same ids again
    assert events[2].line == 4 and "2 columns" in events[2].reason


def test_a_bad_header_is_one_bad_row_and_json_lines_keep_their_ids():
    assert [b.reason[:20] for b in usage_file.read("tenant,meter\nx,y\n", "u.csv")] == ["the header must be t"]
    lines = json.dumps({"id": "mine", "data": {"tenant_id": "acme", "meter": "m", "quantity": 1}}) + "\nnot json\n"
    found = list(usage_file.read(lines, "u.jsonl"))
    assert found[0]["id"] == "mine" and found[0]["type"] == usage_file.USAGE_TYPE and found[1].line == 2


def test_batches_stay_within_1000_events_and_a_mebibyte():
    small = [{"id": str(n), "data": {"q": 1}} for n in range(2500)]
    assert [len(b) for b in usage_file.batches(small)] == [1000, 1000, 500]
    large = [{"id": str(n), "data": {"pad": "x" * 5000}} for n in range(400)]
    for batch in usage_file.batches(large):
        assert len(json.dumps(batch).encode()) <= 1024 * 1024


def fake_checkout(root):
    """A folder shaped like a checkout with a running stack's file."""
    (root / "functions").mkdir(parents=True)
    (root / "functions" / "registry.yaml").write_text("deployments: []\n")
    (root / "Makefile").write_text("test:\n")
    write_env(root / ".local" / "stack.env", {"GATEWAY_URL": "http://gw", "OPERATOR_CLIENT_ID": "op",
                                               "OPERATOR_CLIENT_SECRET": "s3cret"})
    return root


def test_profiles_come_from_the_environment_or_the_running_stack(tmp_path):
    fake_checkout(tmp_path)
    (tmp_path / "sub").mkdir()
    assert profile({}, tmp_path / "sub") == Profile("http://gw", "op", "s3cret")
    given = profile({"ENERGENT_API_URL": "https://api/", "ENERGENT_CLIENT_ID": "c", "ENERGENT_CLIENT_SECRET": "x"})
    assert given == Profile("https://api", "c", "x")
    assert Profile("u", "c", "one").key != Profile("u", "c", "two").key  # a new secret is a new cache entry


def test_retry_after_is_read_defensively():
    assert _retry_after("2", 1) == 2.0 and _retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1) == 1.0
    assert _retry_after("-5", 2) == 2.0 and _retry_after("99999", 1) == 30.0


def test_a_stack_file_outside_the_checkout_is_never_read(tmp_path):
    """One planted in a parent folder (/tmp/.local/stack.env) would capture every call made below it."""
    write_env(tmp_path / ".local" / "stack.env", {"GATEWAY_URL": "http://evil", "OPERATOR_CLIENT_ID": "op",
                                                   "OPERATOR_CLIENT_SECRET": "x"})
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ApiError, match="no API configured"):
        profile({}, tmp_path / "elsewhere")
    # Inside a checkout without a running stack, a planted file further up is not read either.
    inside = tmp_path / "work" / "checkout"
    (inside / "functions").mkdir(parents=True)
    (inside / "functions" / "registry.yaml").write_text("deployments: []\n")
    (inside / "Makefile").write_text("test:\n")
    with pytest.raises(ApiError, match="no API configured"):
        profile({}, inside)
    assert checkout(inside / "functions") == inside and checkout(tmp_path / "elsewhere") is None


def test_a_stack_file_others_could_read_or_write_is_refused(tmp_path):
    root = fake_checkout(tmp_path)
    (root / ".local" / "stack.env").chmod(0o644)
    with pytest.raises(ApiError, match="mode 600"):
        profile({}, root)


def test_the_stack_file_is_private_from_its_first_byte(tmp_path, monkeypatch):
    """Created 0600 whatever the umask, never written first and narrowed after; a stale temporary file of
    another mode is replaced, not reused."""
    previous = os.umask(0)
    try:
        target = tmp_path / ".local" / "stack.env"
        target.parent.mkdir()
        stale = target.with_suffix(".tmp")
        stale.write_text("old")
        stale.chmod(0o666)
        modes = []
        real_open = os.open

        def watching_open(path, flags, mode=0o777, *args, **kwargs):
            modes.append((Path(path).name, flags & os.O_CREAT and mode))
            return real_open(path, flags, mode, *args, **kwargs)

        monkeypatch.setattr(os, "open", watching_open)
        write_env(target, {"OPERATOR_CLIENT_SECRET": "s"})
    finally:
        os.umask(previous)
    assert modes == [("stack.tmp", 0o600)]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and not stale.exists()
    assert target.read_text() == "OPERATOR_CLIENT_SECRET=s\n"


def test_a_stack_file_swapped_for_a_link_or_under_a_shared_folder_is_refused(tmp_path):
    root = fake_checkout(tmp_path / "checkout")
    elsewhere = tmp_path / "attacker.env"
    write_env(elsewhere, {"GATEWAY_URL": "http://evil", "OPERATOR_CLIENT_ID": "op", "OPERATOR_CLIENT_SECRET": "x"})
    (root / ".local" / "stack.env").unlink()
    (root / ".local" / "stack.env").symlink_to(elsewhere)
    with pytest.raises(ApiError, match="not yours alone"):
        profile({}, root)  # a link is never followed, even to a private file
    (root / ".local" / "stack.env").unlink()
    write_env(root / ".local" / "stack.env", {"GATEWAY_URL": "http://gw", "OPERATOR_CLIENT_ID": "op",
                                               "OPERATOR_CLIENT_SECRET": "s"})
    (root / ".local").chmod(0o777)  # as in /tmp: anyone could put a file there
    with pytest.raises(ApiError, match="not yours alone"):
        profile({}, root)
    (root / ".local").chmod(0o775)  # a group-writable checkout (a user-private group's umask) is fine
    assert profile({}, root).url == "http://gw"


def test_a_billing_profile_is_read_from_a_json_file(tmp_path):
    import pytest

    from energent_cli.main import Failed, read_profile

    good = tmp_path / "profile.json"
    good.write_text('{"legal_name": "Zakład Usług", "address": {"line1": "ul. 1", "postal_code": "90-926", '
                    '"city": "Łódź", "country": "PL"}, "vat_id": "PL5260001246"}', encoding="utf-8-sig")
    assert read_profile(good)["address"]["city"] == "Łódź"
    for content, reason in (("[1]", "must hold a JSON object"), ("{nope", "is not a JSON document")):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(Failed, match=reason):
            read_profile(bad)
    with pytest.raises(Failed, match="cannot read"):
        read_profile(tmp_path / "missing.json")
