"""Billing at scale on the emulators: writes per event on both ingest paths (counted at the client's API), duplicates
inside a batch, commits within Firestore's 500 writes, and rollups racing stragglers, closes and their own
redelivery — every event still billed exactly once."""

import datetime
import random
import threading
import uuid
from decimal import Decimal

import pytest

from benchmarks.firestore_ops import count
from billing import rollups
from billing.store import usage_counters
from energent_shared import clients
from tests.integration.test_billing import (
    Steps,
    add_tenant,
    close,
    in_month,
    make_billing,
    minutes_billed,
    settle,
    usage,
)
from tests.support import run_threads


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"invoices-{uuid.uuid4().hex[:10]}").name


@pytest.fixture
def billing(firestore_db, bucket):
    return make_billing(firestore_db, bucket)


def counters(db, tenant_id="acme"):
    return {snapshot.id: snapshot.to_dict() for snapshot in db.collection(f"tenants/{tenant_id}/usage_shards").stream()}


def live(db, tenant_id="acme"):
    return [name for name in counters(db, tenant_id) if not name.startswith(usage_counters.ROLLUP_PREFIX)]


def quantity(billing, period, tenant_id="acme", meter="workflow_minutes") -> Decimal:
    return Decimal(billing.usage_of(tenant_id, period)["meters"][meter]["quantity"])


# --- writes per event ------------------------------------------------------------------------------------------

def test_a_batch_costs_one_write_per_event_and_one_per_tenant_day_and_meter(billing, firestore_db):
    add_tenant(firestore_db)
    add_tenant(firestore_db, "bravo")
    ops = count(firestore_db)
    batch = [usage("acme", quantity="1.5", time=in_month("2025-03", day)) for day in (1, 1, 2)] + \
            [usage("bravo", quantity="2", time=in_month("2025-03", 1)) for _ in range(4)] + \
            [usage("bravo", meter="workflow_runs", quantity=None, time=in_month("2025-03", 1))]
    before = ops.snapshot()
    assert billing.ingest(batch, "http")["accepted"] == 8
    spent = ops.snapshot() - before
    assert (spent.writes, spent.commits) == (8 + 4, 1)  # 8 records; (acme, 1st), (acme, 2nd), (bravo, 1st) x 2 meters
    assert quantity(billing, "2025-03") == Decimal("4.5") and quantity(billing, "2025-03", "bravo") == 8


def test_a_commit_sent_twice_by_the_client_is_counted_once_and_answered_as_accepted(billing, firestore_db,
                                                                                     monkeypatch):
    add_tenant(firestore_db)
    batch = [usage(quantity="2", time=in_month("2025-03", day)) for day in (1, 2, 2)]
    # The client library sends a commit again when its answer was lost: the second one carries the same records.
    attempt = uuid.uuid4()
    monkeypatch.setattr(usage_counters.uuid, "uuid4", lambda: attempt)
    assert billing.ingest(batch, "http")["accepted"] == 3
    assert billing.ingest(batch, "http")["accepted"] == 3  # its own records: counted now, not duplicates
    assert quantity(billing, "2025-03") == 6
    monkeypatch.undo()
    resent = billing.ingest(batch, "http")  # a resend is another commit: duplicates, as ever
    assert (resent["accepted"], resent["duplicates"]) == (0, 3) and quantity(billing, "2025-03") == 6


def test_a_duplicate_inside_a_batch_counts_once_and_the_first_stands(billing, firestore_db):
    add_tenant(firestore_db)
    when = in_month("2025-03", 3)
    result = billing.ingest([usage(quantity="3", event_id="same", time=when), usage(quantity="3", time=when),
                             usage(quantity="3", event_id="same", time=when),
                             usage(quantity="4", event_id="same", time=when)], "http")
    assert (result["accepted"], result["duplicates"]) == (2, 1)
    assert [c["reason"].split("another ")[1] for c in result["conflicts"]] == ["quantity; the first stands"]
    assert quantity(billing, "2025-03") == 6
    (shard,) = [c for c in counters(firestore_db).values() if c["day"] == "2025-03-03"]
    assert shard["count"] == 2  # the group's increment left the repeats out
    again = billing.ingest([usage(quantity="3", event_id="same", time=when), usage(quantity="1", time=when)], "http")
    assert (again["accepted"], again["duplicates"]) == (1, 1)  # a commit that met a counted record, committed again
    assert quantity(billing, "2025-03") == 7


def test_a_resend_that_loses_every_commit_to_deliveries_of_its_own_events_still_answers_each(billing, firestore_db,
                                                                                              bucket, monkeypatch):
    """A batch resent while Pub/Sub still delivers its events: before each of its commits another instance counts one
    of them, so each commit fails on a record written meanwhile, far more often than a fixed number of tries."""
    add_tenant(firestore_db)
    resent = [usage(quantity=str(n), time=in_month("2025-03", 4)) for n in range(1, 13)]
    other_instance = make_billing(firestore_db, bucket)
    delivered = iter(resent[:2 * usage_counters.STALLED_ATTEMPTS])
    add_writes = usage_counters.write_protos.add

    def a_delivery_wins_first(batch, writes):
        winner = next(delivered, None) if len(writes) > 2 else None  # the resend's commit, not a delivery's own
        if winner is not None:
            other_instance.ingest([winner], "pubsub")
        add_writes(batch, writes)

    monkeypatch.setattr(usage_counters.write_protos, "add", a_delivery_wins_first)
    result = billing.ingest(resent, "http")
    assert (result["accepted"], result["duplicates"]) == (12 - 2 * usage_counters.STALLED_ATTEMPTS,
                                                          2 * usage_counters.STALLED_ATTEMPTS)
    assert quantity(billing, "2025-03") == sum(range(1, 13))


def test_a_thousand_events_commit_in_batches_of_at_most_500_writes(billing, firestore_db):
    add_tenant(firestore_db)
    ops = count(firestore_db)
    writes_per_commit = []
    commit = ops.add

    def watch(reads=0, writes=0, deletes=0, commits=0):
        if commits:
            writes_per_commit.append(writes + deletes)
        commit(reads, writes, deletes, commits)

    ops.add = watch
    batch = [usage(quantity="0.25", time=in_month("2025-03", 1 + n % 28)) for n in range(1000)]
    assert billing.ingest(batch, "http")["accepted"] == 1000
    assert max(writes_per_commit) <= usage_counters.MAX_WRITES and len(writes_per_commit) == 3
    assert sum(writes_per_commit) == 1000 + 28 + 28 + 28  # each commit advances the days it holds, once each
    assert quantity(billing, "2025-03") == 250


def test_single_events_arriving_at_once_share_commits_and_each_counts_once(billing, firestore_db):
    add_tenant(firestore_db)
    ops = count(firestore_db)
    events = [usage(quantity="1", time=in_month("2025-03", 2)) for _ in range(160)]
    events += events[:10]  # redeliveries of ten of them, racing their first delivery
    results = run_threads(16, lambda n: [billing.ingest([e], "pubsub") for e in events[n::16]])
    outcomes = [r for thread in results for r in thread]
    assert sum(r["accepted"] for r in outcomes) == 160 and sum(r["duplicates"] for r in outcomes) == 10
    assert quantity(billing, "2025-03") == 160
    spent = ops.snapshot()
    assert spent.commits < 160 and spent.writes < 2 * 160  # without gathering: 160 commits of 2 writes each


def test_a_commit_that_fails_fails_every_event_gathered_into_it(billing, firestore_db, monkeypatch):
    add_tenant(firestore_db)

    def unavailable(items):
        raise RuntimeError("Firestore is unavailable")

    monkeypatch.setattr(billing.usage, "record_many", unavailable)
    with pytest.raises(RuntimeError):  # the push is answered with an error: Pub/Sub delivers it again
        billing.ingest([usage(quantity="1")], "pubsub")
    monkeypatch.undo()
    assert billing.ingest([usage(quantity="1")], "pubsub")["accepted"] == 1


# --- rollups ---------------------------------------------------------------------------------------------------

def spread(billing, tenant_id, period, days, per_day=20, quantity_of=lambda n: "1"):
    events = [usage(tenant_id, quantity=quantity_of(n), time=in_month(period, day, n % 24))
              for day in days for n in range(per_day)]
    for start in range(0, len(events), 7):  # batches of a few events: many counters per day
        assert billing.ingest(events[start:start + 7], "http")["accepted"] == len(events[start:start + 7])
    return events


def test_a_rollup_moves_counters_without_changing_a_total_and_a_draft_reads_a_handful(billing, firestore_db):
    add_tenant(firestore_db, billing_start="2025-01-01")
    spread(billing, "acme", "2025-01", range(1, 29))
    billing.ingest([usage(meter="peak_concurrent_workflows", quantity="9", time=in_month("2025-01", 5))], "http")
    before = billing.usage_of("acme", "2025-01", granularity="day")
    assert len(live(firestore_db)) > 28
    moved = billing.usage.roll_up("acme", "2025-02-01")
    assert moved > 28 and live(firestore_db) == [] and list(counters(firestore_db)) == ["rollup_2025-01"]
    assert billing.usage_of("acme", "2025-01", granularity="day") == before
    assert billing.usage.roll_up("acme", "2025-02-01") == 0  # again: nothing left to move
    ops = count(firestore_db)
    close(billing, "2025-01")
    assert minutes_billed(billing, "acme") == 28 * 20
    assert [line["quantity"] for line in billing.invoice("acme", "2025-01")["lines"]
            if line.get("meter") == "peak_concurrent_workflows"] == ["9"]
    assert ops.reads < 40  # the whole close of one tenant: the month is one rollup, not 28 days x shards


def test_a_page_reads_the_counters_of_exactly_its_run_of_tenant_ids(billing, firestore_db):
    """One query by document name per page of a close: every counter of each tenant from the first id to the last,
    none of a tenant before or after it, whatever its id starts with."""
    tenants = ["a", "a-1", "a-1-x", "a0", "b"]
    for tenant_id in tenants:
        for name in ("2025-01-03_workflow_minutes_00", "rollup_2024-12"):
            firestore_db.document(f"tenants/{tenant_id}/usage_shards/{name}").set({"tenant_id": tenant_id})
    firestore_db.document("tenants/a-1/elsewhere/x/usage_shards/y").set({"tenant_id": "a-1"})  # not a counter
    found = billing.usage.counters_of_range("a", "a-1")
    assert sorted(found) == ["a", "a-1"]
    assert sorted(s.id for s in found["a-1"]) == ["2025-01-03_workflow_minutes_00", "rollup_2024-12"]
    assert sorted(billing.usage.counters_of_range("a-1-x", "b")) == ["a-1-x", "a0", "b"]


def test_only_days_over_for_a_day_are_rolled_up_by_the_daily_step(firestore_db, bucket):
    now = datetime.datetime(2025, 3, 10, 0, 30, tzinfo=datetime.UTC)
    steps = Steps()
    billing = make_billing(firestore_db, bucket, steps, clock=lambda: now)
    add_tenant(firestore_db)
    for day in (7, 8, 9):
        billing.ingest([usage(quantity="2", time=in_month("2025-03", day)) for _ in range(3)], "http")
    billing.rollups.on_event({})  # what Cloud Scheduler sends
    assert rollups.cutoff(now) == "2025-03-09"
    assert sorted({c["day"] for c in counters(firestore_db).values() if "day" in c}) == ["2025-03-09"]
    assert sorted(counters(firestore_db)["rollup_2025-03"]["days"]) == ["2025-03-07", "2025-03-08"]
    assert quantity(billing, "2025-03") == 18


def test_the_daily_step_walks_every_tenant_once_however_often_a_page_is_delivered(firestore_db, bucket, monkeypatch):
    monkeypatch.setattr(rollups, "PAGE", 2)
    sent = []
    billing = make_billing(firestore_db, bucket)
    billing.rollups.dispatch = lambda kind, data: sent.append(data)
    billing.rollups.clock = lambda: datetime.datetime(2025, 4, 3, tzinfo=datetime.UTC)
    names = [f"tenant-{n}" for n in range(5)]
    for name in names:
        add_tenant(firestore_db, name)
        billing.ingest([usage(name, quantity="1", time=in_month("2025-03", 30)) for _ in range(2)], "http")
    billing.rollups.on_event({})
    billing.rollups.on_event({})  # the scheduler's message delivered twice
    while sent:
        page = sent.pop(0)
        billing.rollups.on_event(page)
        billing.rollups.on_event(page)  # every page delivered twice
    assert all(live(firestore_db, name) == [] for name in names)
    handed_on = [s.id for s in firestore_db.collection(rollups.RUNS).stream()]
    assert sorted(handed_on) == ["2025-04-02~tenant-1", "2025-04-02~tenant-3"]
    assert all(quantity(billing, "2025-03", name) == 2 for name in names)


def test_a_page_stopped_before_it_handed_on_hands_on_when_delivered_again(firestore_db, bucket, monkeypatch):
    monkeypatch.setattr(rollups, "PAGE", 2)
    sent = []
    billing = make_billing(firestore_db, bucket)
    billing.rollups.clock = lambda: datetime.datetime(2025, 4, 3, tzinfo=datetime.UTC)
    for name in ("site-a", "site-b", "site-c"):
        add_tenant(firestore_db, name)
        billing.ingest([usage(name, quantity="1", time=in_month("2025-03", 30))], "http")

    class Stopped(BaseException):
        """The instance stopped mid-way (nothing after this line of the delivery runs)."""

    def stopped(kind, data):
        raise Stopped

    billing.rollups.dispatch = stopped
    with pytest.raises(Stopped):
        billing.rollups.on_event({})  # noted the next page, stopped before publishing it: delivered again
    billing.rollups.dispatch = lambda kind, data: sent.append(data)
    billing.rollups.on_event({})
    billing.rollups.on_event({})
    assert sent == [{"before": "2025-04-02", "after": "site-b"}]  # published by the redelivery, once
    billing.rollups.on_event(sent[0])
    assert all(live(firestore_db, name) == [] for name in ("site-a", "site-b", "site-c"))


def test_a_straggler_landing_between_a_rollups_read_and_its_commit_stays_counted(billing, firestore_db):
    from google.cloud.firestore import SERVER_TIMESTAMP, Increment

    add_tenant(firestore_db, billing_start="2025-01-01")
    spread(billing, "acme", "2025-01", (3, 4), per_day=10)
    close(billing, "2025-01")
    taken = list(firestore_db.collection("tenants/acme/usage_shards").stream())
    # Stragglers of January land on every counter the rollup has read; then the rollup commits.
    for snapshot in taken:
        firestore_db.document(snapshot.reference.path).update(
            {"count": Increment(1), "units": Increment(1), "written_at": SERVER_TIMESTAMP})
    assert billing.usage._roll_into("acme", "2025-01", taken) is False  # nothing moved
    assert quantity(billing, "2025-01") == 20 + len(taken)
    assert billing.usage.roll_up("acme", "2025-02-01") == len(taken)  # read again, it moves them, stragglers too
    close(billing, "2025-02")  # the stragglers are found through the rollup, which carries their write time
    assert minutes_billed(billing, "acme") == 20 + len(taken)
    billing.ingest([usage(quantity="5", time=in_month("2025-01", 4))], "http")  # after the rollup: a new counter
    close(billing, "2025-03")
    assert billing.invoice("acme", "2025-03")["late_usage"] == [
        {"period": "2025-01", "meter": "workflow_minutes", "quantity": "5"}]
    assert minutes_billed(billing, "acme") == 20 + len(taken) + 5


def test_stragglers_racing_rollups_and_back_to_back_closes_are_billed_exactly_once(firestore_db, bucket):
    """Two instances send usage of three months while a third rolls every counter up over and over and the months
    close back to back (every step delivered twice, on threads); each event ends on exactly one invoice."""
    months = ["2025-01", "2025-02", "2025-03"]
    steps = Steps(repeat=2, threaded=True)
    closer = make_billing(firestore_db, bucket, steps)
    instances = [make_billing(firestore_db, bucket) for _ in range(2)]
    for name in ("race-a", "race-b"):
        add_tenant(firestore_db, name, billing_start="2025-01-01")
    sent, stop, rolled = [], threading.Event(), []

    def send(instance, seed):
        local = random.Random(seed)
        while not stop.is_set():
            batch = [usage(local.choice(["race-a", "race-b"]), quantity=str(local.randint(1, 1000)),
                           time=in_month(local.choice(months), local.randint(1, 28), local.randint(0, 23)))
                     for _ in range(local.randint(1, 12))]
            assert instance.ingest(batch, "http")["accepted"] == len(batch)
            sent.extend(batch)

    def roll():
        roller = make_billing(firestore_db, bucket)
        while not stop.is_set():
            for name in ("race-a", "race-b"):
                rolled.append(roller.usage.roll_up(name, "2025-04-01"))

    threads = [threading.Thread(target=send, args=(instance, n)) for n, instance in enumerate(instances)]
    threads.append(threading.Thread(target=roll))
    for thread in threads:
        thread.start()
    for period in months:
        closer.close(period)
        settle(steps, closer, period)
    stop.set()
    for thread in threads:
        thread.join()
    steps.join()
    closer.close("2025-04")
    settle(steps, closer, "2025-04")
    assert len(sent) > 50 and sum(rolled) > 0
    for name in ("race-a", "race-b"):
        expected = sum(Decimal(e.get_data()["quantity"]) for e in sent if e.get_data()["tenant_id"] == name)
        assert minutes_billed(closer, name) == expected


def test_a_rollup_interrupted_halfway_and_delivered_again_moves_each_counter_once(billing, firestore_db, monkeypatch):
    add_tenant(firestore_db, billing_start="2025-01-01")
    spread(billing, "acme", "2025-01", range(1, 11), per_day=12, quantity_of=lambda n: str(n + 1))
    spread(billing, "acme", "2025-02", range(1, 6), per_day=12)
    totals = {period: billing.usage_of("acme", period, granularity="day") for period in ("2025-01", "2025-02")}
    monkeypatch.setattr(usage_counters, "MAX_WRITES", 6)  # five counters per commit: many commits per month
    commits = {"left": 3}
    real = billing.usage._roll_into

    def crash_after_three(tenant_id, period, taken):
        if commits["left"] == 0:
            raise RuntimeError("the instance stopped")
        commits["left"] -= 1
        return real(tenant_id, period, taken)

    monkeypatch.setattr(billing.usage, "_roll_into", crash_after_three)
    with pytest.raises(RuntimeError):
        billing.usage.roll_up("acme", "2025-03-01")
    assert len(live(firestore_db)) > 0 and "rollup_2025-01" in counters(firestore_db)  # halfway
    for period, before in totals.items():  # nothing counted twice or lost in between
        assert billing.usage_of("acme", period, granularity="day") == before
    monkeypatch.setattr(billing.usage, "_roll_into", real)
    billing.usage.roll_up("acme", "2025-03-01")  # delivered again
    assert live(firestore_db) == []
    for period, before in totals.items():
        assert billing.usage_of("acme", period, granularity="day") == before
    close(billing, "2025-01")
    close(billing, "2025-02")
    assert minutes_billed(billing, "acme") == 10 * sum(range(1, 13)) + 5 * 12


def test_a_resend_years_after_its_event_was_counted_is_still_a_duplicate(billing, firestore_db):
    """The exactly-once records are kept for ever: however late a resend comes, it is never billed again."""
    add_tenant(firestore_db, billing_start="2025-01-01")
    first = usage(quantity="4", event_id="old-run", time=in_month("2025-01", 2))
    assert billing.ingest([first], "http")["accepted"] == 1
    record = next(iter(firestore_db.collection("usage_events").stream()))
    record.reference.update({"received_at": datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC)})
    close(billing, "2025-01")
    again = billing.ingest([usage(quantity="4", event_id="old-run", time=in_month("2025-01", 2)),
                            usage(quantity="5", event_id="old-run", time=in_month("2025-01", 2))], "pubsub")
    assert (again["accepted"], again["duplicates"], len(again["conflicts"])) == (0, 1, 1)
    close(billing, "2025-02")
    assert minutes_billed(billing, "acme") == 4
