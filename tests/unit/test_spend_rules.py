"""Spend control's pure rules: budgets, their state, check windows; the registry's schedules and the local
scheduler's reading of them."""

import datetime
import itertools
from decimal import Decimal

import pytest

from billing import budgets
from billing.crossings import window_end, window_of
from local.scheduler import matches
from tools import registry
from tools.registry import ROOT

BUDGET = {"monthly_limit": "200.00", "thresholds": [50, 80, 100, 150], "action": "notify", "version": 3}


@pytest.mark.parametrize("net, reached, used, state", [
    ("0", [], "0.00", "ok"), ("99.99", [], "50.00", "ok"), ("100.00", [50], "50.00", "warning"),
    ("160", [50, 80], "80.00", "warning"), ("199.999", [50, 80], "100.00", "warning"),
    ("200", [50, 80, 100], "100.00", "exceeded"), ("300.01", [50, 80, 100, 150], "150.01", "exceeded")])
def test_reached_thresholds_used_pct_and_state_follow_the_net(net, reached, used, state):
    assert budgets.reached(Decimal(net), BUDGET) == reached
    assert budgets.summary(Decimal(net), BUDGET) == {"monthly_limit": "200.00", "used_pct": used, "state": state,
                                                     "thresholds": [50, 80, 100, 150], "action": "notify",
                                                     "version": 3}


def test_block_happens_at_the_limit_whatever_the_thresholds():
    block = {**BUDGET, "thresholds": [], "action": "block"}
    assert not budgets.blocks(Decimal("199.99"), block) and budgets.blocks(Decimal("200.00"), block)
    assert budgets.state(Decimal("200.00"), block) == "blocked"
    assert not budgets.blocks(Decimal("1000"), BUDGET) and not budgets.blocks(Decimal("1000"), None)


def test_a_budget_defaults_to_notify_at_50_80_and_100():
    assert budgets.parse({"monthly_limit": "12.5"}) == {"monthly_limit": "12.50", "thresholds": [50, 80, 100],
                                                        "action": "notify"}
    assert budgets.parse({"monthly_limit": 1000, "thresholds": [], "action": "block"})["thresholds"] == []


def test_windows_cut_time_into_whole_windows():
    moment = datetime.datetime(2026, 3, 31, 23, 59, 55, tzinfo=datetime.UTC)
    window = window_of(moment, 10)
    assert window_end(window, 10) == datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)
    assert window_of(moment + datetime.timedelta(seconds=4.9), 10) == window
    assert window_of(moment + datetime.timedelta(seconds=5), 10) == window + 1


def test_the_registry_schedules_the_close_the_month_start_and_the_sweep():
    shipped = {s.name: s for s in registry.load().schedules}
    assert (shipped["monthly-close"].schedule, shipped["monthly-close"].topic) == ("0 2 1 * *", "billing-events")
    assert shipped["spend-month-start"].schedule == "0 0 1 * *" and shipped["spend-sweep"].schedule == "* * * * *"
    assert shipped["monthly-close"].event() == {
        "specversion": "1.0", "type": "ai.energent.billing.period.close.v1", "id": "monthly-close",
        "source": "//cloudscheduler.googleapis.com/energent-monthly-close", "datacontenttype": "application/json",
        "data": {}}


@pytest.mark.parametrize("schedule, message", [
    ({"name": "x-y", "schedule": "* * *", "topic": "spend-events", "type": "a.b.v1"}, "five-field cron"),
    ({"name": "x-y", "schedule": "* * * * *", "topic": "nope", "type": "a.b.v1"}, "not in the registry's topics"),
    ({"name": "x-y", "schedule": "* * * * *", "topic": "spend-events", "type": "A B"}, "not a CloudEvent type"),
    ({"name": "x-y", "schedule": "* * * * *", "topic": "spend-events"}, "exactly name, schedule, topic and type"),
])
def test_schedule_mistakes_are_named(schedule, message):
    document = {"topics": ["spend-events"], "schedules": [schedule], "deployments": []}
    with pytest.raises(registry.RegistryError, match=message):
        registry.parse(document, ROOT)


@pytest.mark.parametrize("cron, moment, expected", [
    ("* * * * *", (2026, 5, 17, 13, 7), True),
    ("0 2 1 * *", (2026, 5, 1, 2, 0), True), ("0 2 1 * *", (2026, 5, 1, 2, 1), False),
    ("0 2 1 * *", (2026, 5, 2, 2, 0), False), ("0 0 1 * *", (2027, 1, 1, 0, 0), True),
    ("*/15 * * * *", (2026, 5, 1, 9, 45), True), ("*/15 * * * *", (2026, 5, 1, 9, 46), False),
    ("0 9 * * 1-5", (2026, 5, 16, 9, 0), False),  # a Saturday
])
def test_the_local_scheduler_reads_cron_as_cloud_scheduler_does(cron, moment, expected):
    assert matches(cron, datetime.datetime(*moment, tzinfo=datetime.UTC)) is expected


def _grant(grant_id, remaining, expires_on=None, created_at="2026-01-01T00:00:00Z"):
    return {"grant_id": grant_id, "remaining": remaining, "expires_on": expires_on, "created_at": created_at,
            "reason": grant_id}


def test_grants_take_oldest_expiry_first_no_expiry_last_and_stop_at_zero():
    from billing import grants

    draft = {"lines": [{"kind": "base_fee", "amount": "49.00"}], "subtotal": "49.00", "sla_credit": "4.90",
             "net": "44.10", "total": "44.10"}
    found, taken = grants.apply(draft, [_grant("none-old", "100.00", created_at="2020-01-01T00:00:00Z"),
                                        _grant("late", "10.00", "2099-12-31"), _grant("soon", "30.00", "2099-01-31"),
                                        _grant("empty", "0.00", "2098-01-01")], "2026-05")
    assert [(line.get("grant_id"), line["amount"]) for line in found["lines"][1:]] == [
        ("soon", "-30.00"), ("late", "-10.00"), ("none-old", "-4.10")]
    assert found["net"] == "0.00" and [(g["grant_id"], str(a)) for g, a in taken] == [
        ("soon", "30.00"), ("late", "10.00"), ("none-old", "4.10")]


def test_a_grant_is_usable_through_its_expiry_day_inclusive():
    from billing import grants

    assert grants.usable(_grant("g", "1.00", "2026-05-31"), "2026-05")
    assert not grants.usable(_grant("g", "1.00", "2026-05-30"), "2026-05")
    assert grants.usable(_grant("g", "1.00"), "2999-12") and not grants.usable(_grant("g", "0.00"), "2026-05")


def test_grants_recompute_the_vat_of_a_settled_draft():
    from billing import grants

    draft = {"lines": [], "net": "100.00", "total": "121.00", "vat": {"treatment": "standard", "rate": "21",
                                                                       "amount": "21.00"}}
    found, _ = grants.apply(draft, [_grant("g", "50.00")], "2026-05")
    assert (found["net"], found["vat"]["amount"], found["total"]) == ("50.00", "10.50", "60.50")


@pytest.mark.parametrize("address, allowed", [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("127.0.0.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("240.0.0.1", False), ("192.0.2.10", False), ("::1", False), ("fe80::1", False), ("fc00::1", False),
    ("fd00:ec2::254", False), ("::ffff:10.0.0.1", False), ("::ffff:93.184.216.34", True),
    ("2002:0a00:0001::1", False), ("64:ff9b::a00:1", False), ("ff02::1", False), ("::", False),
    # IPv4-compatible and -translated forms, NAT64 local use, site-local, unassigned and documentation IPv6
    ("::127.0.0.1", False), ("::ffff:0:7f00:1", False), ("64:ff9b:1::a9fe:a9fe", False), ("fec0::1", False),
    ("5f00::1", False), ("3fff::1", False), ("2001:db8::1", False), ("2002:5db8:d822::1", True),
])
def test_a_delivery_connects_only_to_public_unicast_addresses(address, allowed):
    import ipaddress

    from billing.webhooks import public

    assert public(ipaddress.ip_address(address)) is allowed


def test_signatures_verify_with_the_standard_webhooks_package():
    from standardwebhooks import Webhook

    from billing import webhooks

    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(__import__("base64").b64decode(secret[6:])) >= 24
    body = b'{"specversion":"1.0","id":"e1"}'
    timestamp = int(datetime.datetime.now(datetime.UTC).timestamp())
    headers = {"webhook-id": "e1", "webhook-timestamp": str(timestamp),
               "webhook-signature": webhooks.sign(secret, "e1", timestamp, body)}
    assert Webhook(secret).verify(body, headers) == {"specversion": "1.0", "id": "e1"}


def test_retries_back_off_from_15_seconds_to_over_an_hour_in_six_attempts():
    import random

    from billing import webhooks

    for seed in range(50):
        rng = random.Random(seed)
        delays = [webhooks.retry_delay_s(n, rng=rng) for n in range(1, webhooks.MAX_ATTEMPTS)]
        assert delays[0] <= 20 and all(b > a for a, b in itertools.pairwise(delays))
        assert sum(delays) >= 3600 and webhooks.MAX_ATTEMPTS >= 5
    assert webhooks.retry_delay_s(webhooks.MAX_ATTEMPTS) is None
    assert webhooks.retry_delay_s(1, scale=0.01, rng=random.Random(1)) < 0.2


@pytest.mark.parametrize("url", ["https://127.1/hook", "https://0x7f.1/hook", "https://2130706433/hook",
                                 "https://metadata.google.internal./x", "https://localhost./x", "https://10.1/x"])
def test_addresses_written_another_way_and_trailing_dots_are_refused_when_a_webhook_is_added(url):
    from billing.errors import Invalid
    from billing.webhooks import check_url

    with pytest.raises(Invalid):
        check_url(url, local=False)


def test_an_attempt_ends_at_its_deadline_however_slowly_the_receiver_drips(monkeypatch):
    """A receiver that sends a byte every half second keeps every read within its own timeout; the attempt still
    ends when its whole time is up."""
    import socket
    import threading
    import time

    from billing import delivery

    monkeypatch.setattr(delivery, "TIMEOUT_S", 1.0)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def drip():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        while not stop.is_set():
            try:
                connection.sendall(b"x")
            except OSError:
                break
            time.sleep(0.5)
        connection.close()

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    outcome = delivery.post(f"http://127.0.0.1:{port}/hook", b"{}", {}, local=True)
    took = time.monotonic() - started
    stop.set()
    server.close()
    assert outcome.status is None and "no answer within" in outcome.error
    assert took < 2.0, took


def test_a_delivery_tries_the_next_checked_address_when_one_does_not_connect():
    import socket
    import threading
    import time

    from billing import delivery

    unused = socket.create_server(("127.0.0.1", 0))
    closed_port = unused.getsockname()[1]
    unused.close()  # nothing listens there any more: connection refused
    listening = socket.create_server(("127.0.0.1", 0))
    listening.settimeout(5)
    port = listening.getsockname()[1]
    accepted = []

    def accept():
        connection, _ = listening.accept()
        accepted.append(True)
        connection.close()  # no TLS: the handshake fails, after the connection was made

    threading.Thread(target=accept, daemon=True).start()
    with pytest.raises(OSError):
        delivery._connected("example.com", closed_port, ["127.0.0.1"], time.monotonic() + 2)
    with pytest.raises(OSError):
        delivery._connected("example.com", port, ["127.0.0.2", "127.0.0.1"], time.monotonic() + 2)
    listening.close()
    assert accepted == [True]
