"""Spend control on the Firestore and Pub/Sub emulators: budgets by version, live spend as the upcoming invoice has
it, threshold crossings announced exactly once however many instances race across them, and the block."""

import datetime
import json
import queue
import random
import threading
import traceback
import uuid
from decimal import Decimal

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from billing import periods
from billing.crossings import CHECK_TYPE, CROSSED_TYPE, CheckWindows
from billing.errors import Invalid, NotFound
from billing.spend_control import SpendControl
from billing.store.budgets import Budgets
from billing.store.spend_blocks import SpendBlocks
from billing.store.spend_checks import SpendChecks
from billing.store.spend_outbox import SpendOutbox
from energent_shared import clients, events
from energent_shared.firestore import retryable
from local import provision
from tests.conftest import PROJECT
from tests.integration.test_billing import THIS_MONTH, add_tenant, make_billing, usage
from tests.support import run_threads, wait_until

START = f"{THIS_MONTH}-01"  # a whole month's base fee: basic 49.00


class Recorded:
    """Steps and events published in process (the tests that do not go through Pub/Sub)."""

    def __init__(self):
        self.steps, self.events = [], []

    def step(self, event_type: str, data: dict) -> None:
        self.steps.append((event_type, data))

    def event(self, payload: bytes) -> None:
        self.events.append(json.loads(payload))

    def crossed(self) -> list[int]:
        return sorted(e["data"]["threshold_pct"] for e in self.events if e["type"] == CROSSED_TYPE)


def make_control(db, billing, recorded: Recorded, clock=None) -> SpendControl:
    return SpendControl(billing, Budgets(db), SpendBlocks(db), SpendOutbox(db), SpendChecks(db), recorded.event,
                        recorded.step, clock or (lambda: datetime.datetime.now(datetime.UTC)), cache_s=0.5,
                        margin_s=0.2, sleep=lambda s: None)


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"invoices-{uuid.uuid4().hex[:10]}").name


@pytest.fixture
def billing(firestore_db, bucket):
    return make_billing(firestore_db, bucket)


@pytest.fixture
def recorded():
    return Recorded()


@pytest.fixture
def control(firestore_db, billing, recorded):
    return make_control(firestore_db, billing, recorded)


def minutes(quantity) -> list:
    return [usage(quantity=str(quantity))]


# --- budgets ------------------------------------------------------------------------------------------------------

def test_each_put_is_a_new_version_and_a_removed_budget_keeps_its_number(control, firestore_db):
    add_tenant(firestore_db, billing_start=START)
    with pytest.raises(NotFound):
        control.budget("acme")
    first = control.put_budget("acme", {"monthly_limit": "100.00"})
    assert first | {"updated_at": None} == {"tenant_id": "acme", "monthly_limit": "100.00", "currency": "EUR",
                                           "thresholds": [50, 80, 100], "action": "notify", "version": 1,
                                           "updated_at": None}
    second = control.put_budget("acme", {"monthly_limit": 250, "thresholds": [100, 90, 90], "action": "block"})
    assert (second["version"], second["monthly_limit"], second["thresholds"], second["action"]) == \
        (2, "250.00", [90, 100], "block")
    assert control.budget("acme")["version"] == 2
    control.remove_budget("acme")
    with pytest.raises(NotFound):
        control.budget("acme")
    with pytest.raises(NotFound):
        control.remove_budget("acme")
    assert control.put_budget("acme", {"monthly_limit": "10"})["version"] == 3
    versions = [s.to_dict() for s in firestore_db.collection("tenants/acme/budget_versions").stream()]
    assert [v["version"] for v in versions] == [1, 2, 3] and "removed_at" in versions[1]


@pytest.mark.parametrize("body, detail", [
    ({}, "monthly_limit must be"),
    ({"monthly_limit": "0"}, "more than 0"),
    ({"monthly_limit": "-1"}, "decimal string"),
    ({"monthly_limit": "1.001"}, "at most two decimals"),
    ({"monthly_limit": "1e3"}, "decimal string"),
    ({"monthly_limit": True}, "decimal string"),
    ({"monthly_limit": "10", "thresholds": [0]}, "1 to 1000"),
    ({"monthly_limit": "10", "thresholds": [1001]}, "1 to 1000"),
    ({"monthly_limit": "10", "thresholds": [True]}, "1 to 1000"),
    ({"monthly_limit": "10", "thresholds": [50.0]}, "1 to 1000"),
    ({"monthly_limit": "10", "thresholds": "50"}, "a list"),
    ({"monthly_limit": "10", "action": "stop"}, "notify or block"),
    ({"monthly_limit": "10", "currency": "USD"}, "unknown field"),
])
def test_a_bad_budget_is_refused_naming_the_field(control, firestore_db, body, detail):
    add_tenant(firestore_db)
    with pytest.raises(Invalid, match=detail):
        control.put_budget("acme", body)


def test_no_budget_for_a_tenant_that_does_not_exist(control):
    with pytest.raises(NotFound):
        control.put_budget("nobody", {"monthly_limit": "10"})


# --- live spend ---------------------------------------------------------------------------------------------------

def test_spend_is_the_upcoming_invoice_and_counts_every_event_accepted_before_it(control, billing, firestore_db):
    add_tenant(firestore_db, billing_start=START)
    found = control.spend("acme")
    assert (found["net"], found["vat"], found["total"]) == ("49.00", {"treatment": "standard", "rate": "21",
                                                                      "amount": "10.29"}, "59.29")
    assert "budget" not in found and found["period"] == THIS_MONTH and found["currency"] == "EUR"
    control.put_budget("acme", {"monthly_limit": "100.00", "action": "block"})
    for count in range(1, 6):  # read your writes: each answer holds the event accepted just before it
        assert billing.ingest(minutes(1200 if count == 1 else 100), "http")["accepted"] == 1
        found = control.spend("acme")
        upcoming = billing.upcoming("acme")
        assert (found["net"], found["vat"], found["total"]) == (upcoming["net"], upcoming["vat"], upcoming["total"])
    assert found["net"] == "55.00"  # 49.00 + (1600 - 1000) minutes at 0.01
    assert found["budget"] == {"monthly_limit": "100.00", "used_pct": "55.00", "state": "warning",
                               "thresholds": [50, 80, 100], "action": "block", "version": 1}


@pytest.mark.parametrize("extra, used, state", [
    (0, "49.00", "ok"), (3500, "74.00", "warning"), (6100, "100.00", "blocked"), (7100, "110.00", "blocked")])
def test_state_and_used_pct_follow_the_net_now(control, billing, firestore_db, extra, used, state):
    add_tenant(firestore_db, billing_start=START)
    control.put_budget("acme", {"monthly_limit": "100", "action": "block"})
    if extra:
        billing.ingest(minutes(extra), "http")
    assert (control.spend("acme")["budget"]["used_pct"], control.spend("acme")["budget"]["state"]) == (used, state)
    control.put_budget("acme", {"monthly_limit": "100"})
    assert control.spend("acme")["budget"]["state"] == {"blocked": "exceeded"}.get(state, state)


# --- crossings, in process ----------------------------------------------------------------------------------------

def test_thresholds_reached_when_a_version_is_set_are_announced_at_once_and_again_for_a_new_version(
        control, billing, recorded, firestore_db):
    add_tenant(firestore_db, billing_start=START)
    billing.ingest(minutes(4200), "http")  # net 81.00
    control.put_budget("acme", {"monthly_limit": "100.00"})
    first = [data for kind, data in recorded.steps if kind == CHECK_TYPE]
    assert len(first) == 2 and first[0]["not_before"] < first[1]["not_before"]  # at once, and after every cache
    for data in first:
        control.on_step(CHECK_TYPE, data)
    assert recorded.crossed() == [50, 80]
    event = next(e for e in recorded.events if e["data"]["threshold_pct"] == 80)
    assert event["source"] == "//energent.ai/billing" and event["subject"] == "acme"
    assert {k: event["data"][k] for k in ("tenant_id", "period", "threshold_pct", "net", "monthly_limit")} == \
        {"tenant_id": "acme", "period": THIS_MONTH, "threshold_pct": 80, "net": "81.00", "monthly_limit": "100.00"}
    control.on_step(CHECK_TYPE, first[0])  # a redelivery announces nothing again
    assert recorded.crossed() == [50, 80]
    control.put_budget("acme", {"monthly_limit": "100.00"})  # version 2: counts from that moment
    for kind, data in recorded.steps[2:]:
        control.on_step(kind, data)
    assert recorded.crossed() == [50, 50, 80, 80]


def test_a_new_period_starts_afresh(firestore_db, bucket, recorded):
    add_tenant(firestore_db, billing_start="2020-01-01")
    moment = {"now": datetime.datetime.now(datetime.UTC)}
    billing = make_billing(firestore_db, bucket, clock=lambda: moment["now"])
    control = make_control(firestore_db, billing, recorded, clock=lambda: moment["now"])
    control.put_budget("acme", {"monthly_limit": "60.00", "thresholds": [80]})
    control.check("acme", THIS_MONTH)
    assert recorded.crossed() == [80]  # the base fee alone is 49.00 of 60.00
    control.check("acme", THIS_MONTH)
    assert recorded.crossed() == [80]
    moment["now"] = periods.end(THIS_MONTH) + datetime.timedelta(hours=1)
    control.check("acme", periods.of(moment["now"]))
    assert [e["data"]["period"] for e in recorded.events if e["type"] == CROSSED_TYPE] == \
        [THIS_MONTH, periods.of(moment["now"])]


def test_block_at_the_limit_and_lifted_when_raised_or_removed(control, billing, recorded, firestore_db):
    add_tenant(firestore_db, billing_start=START)
    control.put_budget("acme", {"monthly_limit": "60.00", "thresholds": [], "action": "block"})
    control.check("acme", THIS_MONTH)
    assert [e["type"] for e in recorded.events] == []
    billing.ingest(minutes(2100), "http")  # 49.00 + 11.00: at the limit
    control.check("acme", THIS_MONTH)
    control.check("acme", THIS_MONTH)
    blocked = [e for e in recorded.events if e["type"].endswith("spend.blocked.v1")]
    assert len(blocked) == 1 and blocked[0]["data"]["generation"] == 1
    assert control.spend("acme")["budget"]["state"] == "blocked"
    control.put_budget("acme", {"monthly_limit": "61.00", "action": "block"})  # raised above the spend
    control.check("acme", THIS_MONTH)
    control.put_budget("acme", {"monthly_limit": "60.00", "action": "block"})
    control.check("acme", THIS_MONTH)
    control.remove_budget("acme")
    control.check("acme", THIS_MONTH)
    assert [(e["type"].split(".")[-2], e["data"]["generation"]) for e in recorded.events
            if "spend" in e["type"]] == [("blocked", 1), ("unblocked", 2), ("blocked", 3), ("unblocked", 4)]
    assert SpendBlocks(firestore_db).get("acme")["blocked"] is False


def test_a_check_that_leaves_the_block_as_it_is_takes_no_lock(firestore_db, monkeypatch):
    """Concurrent checks of one tenant mostly change nothing; a transaction each would queue them on the block's
    lock (the emulator aborts a wait of 2 s), so only a change opens one."""
    opened = []
    transaction = firestore_db.transaction
    monkeypatch.setattr(firestore_db, "transaction", lambda **kw: opened.append(kw) or transaction(**kw))
    blocks = SpendBlocks(firestore_db)

    def event(generation: int) -> bytes:
        return json.dumps({"generation": generation}).encode()

    assert blocks.change("acme", False, event) is None
    assert opened == []
    assert blocks.change("acme", True, event) is not None
    assert len(opened) == 1
    assert blocks.change("acme", True, event) is None
    assert len(opened) == 1 and blocks.get("acme")["generation"] == 1


def test_a_crossing_whose_publisher_died_is_published_by_the_sweep_once(control, billing, recorded, firestore_db):
    add_tenant(firestore_db, billing_start=START)
    control.put_budget("acme", {"monthly_limit": "60.00", "thresholds": [50]})
    failing = {"left": 1}

    def flaky(payload: bytes) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise RuntimeError("publish failed")
        recorded.event(payload)

    control.publish_event = flaky
    control.check("acme", THIS_MONTH)
    assert recorded.crossed() == []
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
    control.clock = lambda: later
    assert control.sweep()["published"] == 1
    assert control.sweep()["published"] == 0
    assert recorded.crossed() == [50]


def test_a_lost_check_is_published_again_by_the_sweep(control, billing, recorded, firestore_db):
    add_tenant(firestore_db, billing_start=START)
    control.put_budget("acme", {"monthly_limit": "60.00"})
    lost = []
    windows = CheckWindows(SpendChecks(firestore_db), Budgets(firestore_db), lambda t, d: lost.append(d),
                           control.clock, window_s=1, margin_s=0)
    windows.accepted("acme")
    assert len(lost) == 1
    recorded.steps.clear()
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
    control.clock = lambda: later
    assert control.sweep()["checks"] == 1
    assert [d["window"] for kind, d in recorded.steps] == [lost[0]["window"]]
    control.on_step(CHECK_TYPE, recorded.steps[0][1])
    assert control.sweep()["checks"] == 0


def test_a_resend_of_events_counted_before_their_check_was_scheduled_schedules_it(billing, firestore_db):
    add_tenant(firestore_db, billing_start=START)
    batch = minutes(100)
    billing.accepted = lambda tenant_id: None  # counted, then the delivery failed before its spend check
    assert billing.ingest(batch, "http")["accepted"] == 1
    checked: list[str] = []
    billing.accepted = checked.append
    assert billing.ingest(batch, "http")["duplicates"] == 1
    assert checked == ["acme"]


def test_the_sweep_finds_what_is_overdue_behind_a_backlog_of_what_is_not(firestore_db):
    """More markers and records not yet due than the sweep takes at once, listed first by id: the overdue ones are
    still found, oldest first."""
    now = datetime.datetime.now(datetime.UTC)
    checks, outbox = SpendChecks(firestore_db), SpendOutbox(firestore_db)
    for n in range(5):
        checks.mark(f"a{n}", 1, now + datetime.timedelta(minutes=5))
        outbox.ref(f"a{n}").set({**outbox.record(f"a{n}", b"{}"), "created_at": now})
    for n, age in enumerate((3, 9)):
        checks.mark(f"z{n}", 1, now - datetime.timedelta(minutes=age))
        outbox.ref(f"z{n}").set({**outbox.record(f"z{n}", b"{}"), "created_at": now - datetime.timedelta(minutes=age)})
    checks.evaluated("z0", 1)
    assert [m["tenant_id"] for m in checks.overdue(now - datetime.timedelta(seconds=30), limit=3)] == ["z1"]
    assert outbox.stale(now - datetime.timedelta(seconds=20), limit=3) == ["z1", "z0"]


# --- crossings raced on the real Pub/Sub emulator -----------------------------------------------------------------

class PubSubStage:
    """spend-events and tenant-events on the emulator; `instances` consumers take spend-events steps from a pull
    subscription, each delivered to two of them at once (as two instances would after a redelivery). Steps that
    fail because contention outlasted their transaction's retries are delivered again, as Pub/Sub would after the
    5xx; any other error fails the test."""

    def __init__(self, emulators, controls: list[SpendControl]):
        suffix = uuid.uuid4().hex[:6]
        self.steps_topic, self.events_topic = f"spend-events-{suffix}", f"tenant-events-{suffix}"
        provision.topics(emulators["pubsub"].url, PROJECT, [self.steps_topic, self.events_topic])
        from google.cloud import pubsub_v1

        self.subscriber = pubsub_v1.SubscriberClient()
        self.steps_sub = self._subscribe(self.steps_topic)
        self.events_sub = self._subscribe(self.events_topic)
        self.controls = controls
        self.busy = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.workers = [threading.Thread(target=self._work, daemon=True) for _ in range(4)]
        for worker in self.workers:
            worker.start()

    def _subscribe(self, topic: str) -> str:
        path = self.subscriber.subscription_path(PROJECT, f"{topic}-pull")
        self.subscriber.create_subscription(request={"name": path, "topic": events.topic_path(topic),
                                                     "ack_deadline_seconds": 60})
        return path

    def publish_step(self, event_type: str, data: dict) -> None:
        events.publish(self.steps_topic, events.new_event(event_type, "//energent.ai/billing", data))

    def publish_event(self, payload: bytes) -> None:
        events.publish_raw(self.events_topic, payload, {"content-type": events.STRUCTURED})

    def _work(self) -> None:
        while not self.stop.is_set():
            response = self.subscriber.pull(request={"subscription": self.steps_sub, "max_messages": 5}, timeout=5)
            if not response.received_messages:
                continue
            with self.lock:
                self.busy += 1
            try:
                for received in response.received_messages:
                    step = events.from_pubsub_message(events.PubSubMessage(
                        received.message.data, dict(received.message.attributes), received.message.message_id))
                    twice = random.sample(self.controls, 2)
                    run_threads(2, lambda i, step=step, twice=twice: twice[i].on_step(step["type"], step.get_data()))
                self.subscriber.acknowledge(request={"subscription": self.steps_sub,
                                                     "ack_ids": [r.ack_id for r in response.received_messages]})
            except Exception as error:
                if retryable(error):  # contention outlasted the retries: answered 5xx, delivered again
                    self.subscriber.modify_ack_deadline(request={
                        "subscription": self.steps_sub, "ack_deadline_seconds": 0,
                        "ack_ids": [r.ack_id for r in response.received_messages]})
                else:  # the test fails on it, showing where it came from
                    self.errors.append("".join(traceback.format_exception(error)))
            finally:
                with self.lock:
                    self.busy -= 1

    def drain_events(self, sentinel: str) -> list[dict]:
        """Every event on tenant-events up to the sentinel published after all checks ended."""
        self.publish_event(json.dumps({"specversion": "1.0", "id": sentinel, "source": "//tests",
                                       "type": "test.sentinel.v1"}).encode())
        found, seen = [], False
        while not seen:
            response = self.subscriber.pull(request={"subscription": self.events_sub, "max_messages": 100},
                                            timeout=10)
            for received in response.received_messages:
                event = json.loads(received.message.data)
                seen = seen or event["id"] == sentinel
                found.append(event)
            if response.received_messages:
                self.subscriber.acknowledge(request={"subscription": self.events_sub,
                                                     "ack_ids": [r.ack_id for r in response.received_messages]})
        return [e for e in found if e["id"] != sentinel]

    def close(self) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(10)


def test_crossings_raced_by_many_threads_and_instances_are_published_exactly_once(firestore_db, bucket, emulators):
    """Sixteen threads on four ingesting instances send usage across 50, 80 and 100 % of the limit in bursts;
    every check step goes through the emulator to two instances at once. Each threshold is published once."""
    add_tenant(firestore_db, billing_start=START)
    stage_controls: list[SpendControl] = []
    stage = PubSubStage(emulators, stage_controls)
    try:
        ingesting = []
        for _ in range(4):
            billing = make_billing(firestore_db, bucket)
            windows = CheckWindows(SpendChecks(firestore_db), Budgets(firestore_db), stage.publish_step,
                                   billing.clock, window_s=1.0, margin_s=0.3, cache_s=0.5)
            billing.accepted = windows.accepted
            ingesting.append(billing)
            stage_controls.append(SpendControl(billing, Budgets(firestore_db), SpendBlocks(firestore_db),
                                               SpendOutbox(firestore_db), SpendChecks(firestore_db),
                                               stage.publish_event, stage.publish_step, billing.clock, cache_s=0.5,
                                               margin_s=0.3))
        stage_controls[0].put_budget("acme", {"monthly_limit": "100.00", "action": "block"})
        sent = queue.Queue()
        for _ in range(16 * 25):
            sent.put(20)  # 400 events of 20 minutes: 8,000 minutes, net 49.00 + 70.00

        def send(thread: int) -> None:
            billing = ingesting[thread % 4]
            while True:
                try:
                    quantity = sent.get_nowait()
                except queue.Empty:
                    return
                assert billing.ingest(minutes(quantity), "http")["accepted"] == 1

        run_threads(16, send)

        def settled():
            pending = list(firestore_db.collection("spend_checks").where(
                filter=FieldFilter("evaluated", "==", False)).stream())
            return not pending and stage.busy == 0
        wait_until(settled, timeout_s=90, interval_s=0.2, what="every check to have run")
        wait_until(lambda: stage.busy == 0 and settled(), timeout_s=30, what="the last delivery to finish")
        published = stage.drain_events(f"sentinel-{uuid.uuid4().hex}")
    finally:
        stage.close()
    assert not stage.errors, "\n".join(stage.errors)  # whole tracebacks: a repr would be cut
    crossed = [e for e in published if e["type"] == CROSSED_TYPE]
    assert sorted(e["data"]["threshold_pct"] for e in crossed) == [50, 80, 100]
    assert len({e["id"] for e in crossed}) == 3
    assert Decimal(crossed[-1]["data"]["net"]) >= Decimal("50")
    blocked = [e for e in published if e["type"].endswith("spend.blocked.v1")]
    assert len(blocked) == 1 and blocked[0]["data"]["generation"] == 1
    markers = list(firestore_db.collection("spend_checks").stream())
    assert 1 <= len(markers) < 100  # once per window, not once per event


def test_the_month_s_start_checks_every_tenant_with_a_budget_and_lifts_last_month_s_blocks(firestore_db, bucket,
                                                                                             recorded):
    moment = {"now": datetime.datetime.now(datetime.UTC)}
    billing = make_billing(firestore_db, bucket, clock=lambda: moment["now"])
    control = make_control(firestore_db, billing, recorded, clock=lambda: moment["now"])
    for tenant_id in ("blocked-one", "watched-one"):
        add_tenant(firestore_db, tenant_id, billing_start=START)
        control.put_budget(tenant_id, {"monthly_limit": "60.00", "thresholds": [90], "action": "block"})
    billing.ingest([usage("blocked-one", quantity="3000")], "http")  # 49.00 + 20.00
    control.check("blocked-one", THIS_MONTH)
    assert SpendBlocks(firestore_db).get("blocked-one")["blocked"] is True
    moment["now"] = periods.end(THIS_MONTH) + datetime.timedelta(seconds=1)
    recorded.steps.clear()
    from billing.crossings import PERIOD_STARTED_TYPE

    control.on_step(PERIOD_STARTED_TYPE, {})
    checks = [data for kind, data in recorded.steps if kind == CHECK_TYPE]
    assert sorted(d["tenant_id"] for d in checks) == ["blocked-one", "watched-one"]
    assert {d["period"] for d in checks} == {periods.of(moment["now"])}
    for data in checks:
        control.on_step(CHECK_TYPE, data)
    assert SpendBlocks(firestore_db).get("blocked-one")["blocked"] is False  # the new month's net: 49.00 of 60.00
    assert [e["type"].rsplit(".", 2)[-2] for e in recorded.events if "spend." in e["type"]] == ["blocked",
                                                                                                 "unblocked"]
