"""Counting usage: each event's exactly-once record, and counters of its tenant, meter and UTC day that are rolled
up per period once their days are over.

Documents (`tenants/{T}/usage_shards/`, one collection, so one query reads a period's counters at one instant):
    {day}_{meter}_{n}   a live counter, one of SHARDS per (day, meter): count, units + micros (the sum) and max_micros,
                        advanced only by server-side transforms; `written_at` the server time of its last write
    rollup_{period}     what the period's counters held when they were rolled up: days: {day: {meter: totals}};
                        `written_at` the latest `written_at` of any counter rolled into it

Writes per event: its record is created and its group's counter advanced in one atomic commit. A batch of events
(HTTP) is one commit per 500 writes: every event's record plus ONE increment per (tenant, day, meter) group of the
commit, so a batch costs one write per event and one per group; single events arriving at once on one instance
(Pub/Sub pushes) are gathered into such commits too (`Gathered`). A hot tenant holds because no event
read-modify-writes a shared document and each group picks one of SHARDS counters at random.

A duplicate inside a batch (the same source and id twice) is left out of the commit and of its group's increment:
the first one stands, the later ones are answered as duplicates or conflicts of it. A record that already exists
fails the whole commit (AlreadyExists), which then commits again without the events found counted; concurrent
deliveries of the same events cannot make it give up (only records found gone count toward STALLED_ATTEMPTS).

Rollups (`roll_up`) move counters into the period's rollup document in ONE atomic commit: the rollup is written
(conditional on it being unchanged since it was read) and every counter it took is deleted, each conditional on
being unchanged since it was read. So at every instant each counted event is in exactly one place, a live counter
or the rollup, and a period's total is its rollup plus its live counters; an increment landing on a counter
between the read and the commit fails the commit (nothing moves; a later rollup tries again), and one landing
after the commit starts a new counter from zero. closing.py argues why closes stay exact.
"""

from __future__ import annotations

import datetime
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from billing.store import write_protos
from billing.store.gathered import Gathered
from billing.usage import DayTotals, Totals, Usage
from energent_shared import clients, firestore
from energent_shared.clock import utcnow

SHARDS = 16
WRITE_TIMEOUT_S = 10
MAX_WRITES = 500  # Firestore's limit of writes in one commit
# Commits of one batch in a row that fail on records already written yet find none of them (written and taken
# back meanwhile) before giving up. A commit that finds some answers those and goes on with the rest, so a batch
# racing the deliveries of its own events (a resend while Pub/Sub still delivers them) always ends.
STALLED_ATTEMPTS = 5
ROLLUP_PREFIX = "rollup_"
# A sum is kept as whole units plus millionths, each an int64 that Firestore clamps silently at 2^63 - 1. A
# counter that passes UNITS_LIMIT has its events taken back; to clamp, 2^62 more units (4.6 million events of
# the largest quantity) would have to land on one counter between two commits, far beyond any batch in flight.
UNITS_LIMIT = 2 ** 62
# How much earlier than its commit a counter's server timestamp may be (the emulator stamps a few ms early);
# closes look back this far past their watermark, and what they see twice the ledger subtracts.
WATERMARK_MARGIN = datetime.timedelta(minutes=10)


# Whole reads of a broken query stream (what one instant of the counters needs, `at_one_instant`), and the pause
# before the first read again (doubled after each).
READ_ATTEMPTS = 3
READ_BACKOFF_S = 0.2


class Overflow(Exception):
    """A total would leave the range Firestore holds exactly."""


class Lost(Exception):
    """A batch's commit kept failing on records that were gone when read: what it had not committed is not counted."""


Outcome = dict | Overflow | None  # None: counted now; dict: the first event counted under its (source, id)


def _record(usage: Usage, via: str, commit: str = "") -> dict:
    return {"tenant_id": usage.tenant_id, "meter": usage.meter, "micros": usage.micros, "time": usage.time,
            "time_given": usage.time_given, "source": usage.source, "id": usage.event_id, "via": via,
            "received_at": utcnow(), **({"commit": commit} if commit else {})}


def no_resume():
    """A retry policy under which the client neither retries a query's call nor resumes its broken stream."""
    from google.api_core.retry import Retry, if_exception_type

    return Retry(predicate=if_exception_type())


def at_one_instant(query) -> list:
    """Every result of `query` read at one instant. The client resumes a broken stream after its last result at a
    later instant: over counters being rolled up, the rollup read after the move would count again what was read as
    counters before it. Here a broken stream is read again from the start instead."""
    from google.api_core.exceptions import DeadlineExceeded, InternalServerError, ServiceUnavailable

    for attempt in range(READ_ATTEMPTS):
        try:
            return list(query.stream(retry=no_resume()))
        except (DeadlineExceeded, InternalServerError, ServiceUnavailable):
            if attempt == READ_ATTEMPTS - 1:
                raise
            time.sleep(READ_BACKOFF_S * 2 ** attempt)
    raise AssertionError("unreachable")


def _sum_parts(micros: int) -> tuple[int, int]:
    return divmod(micros, 1_000_000)


@dataclass
class _Group:
    """The events of one commit that advance one (tenant, day, meter) counter."""

    tenant_id: str
    period: str
    day: str
    meter: str
    aggregation: str
    indexes: list[int] = field(default_factory=list)
    count: int = 0
    micros: int = 0
    max_micros: int = 0

    def add(self, index: int, usage: Usage) -> None:
        self.indexes.append(index)
        self.count += 1
        if self.aggregation == "sum":
            self.micros += usage.micros
        self.max_micros = max(self.max_micros, usage.micros)


class UsageStore:
    def __init__(self, db=None):
        self.db = db or clients.firestore()
        self.gathering: Gathered[tuple[Usage, str, str], Outcome] = Gathered(
            lambda items: self.record_many(items), MAX_WRITES // 2)  # looked up at each run: tests replace it

    # --- counting ---------------------------------------------------------------------------------------------

    def record(self, usage: Usage, aggregation: str, via: str) -> dict | None:
        """Count `usage` once. None if counted now; else the first event counted under its (source, id).
        Raises Overflow (and counts nothing) when the day's total of the meter would not stay exact. Concurrent
        calls on this instance share commits (`Gathered`)."""
        outcome = self.gathering((usage, aggregation, via))
        if isinstance(outcome, Overflow):
            raise outcome
        return outcome

    def record_many(self, items: Sequence[tuple[Usage, str, str]]) -> list[Outcome]:
        """Count each (usage, aggregation, via) once, in commits of at most MAX_WRITES writes: the events' records
        and one increment per (tenant, day, meter) group. An outcome per item, in order."""
        outcomes: list[Outcome] = [None] * len(items)
        first_of: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []
        unique: list[int] = []
        for index, (usage, _, _) in enumerate(items):
            if usage.key in first_of:
                repeats.append((index, first_of[usage.key]))
            else:
                first_of[usage.key] = index
                unique.append(index)
        for chunk in self._chunks(items, unique):
            self._commit_chunk(items, chunk, outcomes)
        for index, first in repeats:  # a repeat inside the batch answers as the event it repeats was counted
            usage, aggregation, via = items[index]
            earlier = outcomes[first]
            if earlier is None:
                outcomes[index] = _record(items[first][0], items[first][2])
            elif isinstance(earlier, Overflow):  # the first was refused: this one is tried on its own
                outcomes[index] = self.record_many([(usage, aggregation, via)])[0]
            else:
                outcomes[index] = earlier
        return outcomes

    @staticmethod
    def _chunks(items, indexes: list[int]) -> list[list[int]]:
        """Runs of events whose records and group increments fit one commit."""
        chunks: list[list[int]] = []
        current: list[int] = []
        groups: set[tuple] = set()
        for index in indexes:
            usage = items[index][0]
            group = (usage.tenant_id, usage.day, usage.meter)
            writes = len(current) + len(groups) + 1 + (group not in groups)
            if current and writes > MAX_WRITES:
                chunks.append(current)
                current, groups = [], set()
            current.append(index)
            groups.add(group)
        if current:
            chunks.append(current)
        return chunks

    def _commit_chunk(self, items, chunk: list[int], outcomes: list[Outcome]) -> None:
        from google.api_core.exceptions import AlreadyExists

        events = self.db.collection("usage_events")
        pending = list(chunk)
        stalled = 0
        while stalled < STALLED_ATTEMPTS:
            commit = uuid.uuid4().hex[:16]  # marks this attempt's records: the client may send a commit twice
            groups: dict[tuple, _Group] = {}
            for index in pending:
                usage, aggregation, _ = items[index]
                key = (usage.tenant_id, usage.day, usage.meter)
                if key not in groups:
                    groups[key] = _Group(usage.tenant_id, usage.period, usage.day, usage.meter, aggregation)
                groups[key].add(index, usage)
            batch = self.db.batch()
            writes = []
            for index in pending:
                usage, _, via = items[index]
                writes.append(write_protos.create(events.document(usage.key),
                                                  _record(usage, via, commit)))
            shards = []
            for group in groups.values():
                units, micros = _sum_parts(group.micros)
                shard = firestore.tenant_doc(group.tenant_id, "usage_shards",
                                             f"{group.day}_{group.meter}_{random.randrange(SHARDS):02d}",  # noqa: S311
                                             db=self.db)
                writes.append(write_protos.merge(
                    shard,
                    {"tenant_id": group.tenant_id, "period": group.period, "day": group.day, "meter": group.meter},
                    {"count": group.count, "units": units, "micros": micros}, {"max_micros": group.max_micros},
                    "written_at"))
                shards.append((shard, group, units, micros))
            write_protos.add(batch, writes)
            try:
                results = batch.commit(timeout=WRITE_TIMEOUT_S)
            except AlreadyExists:
                # Some of these events were counted before (a resend, or a concurrent delivery): they are answered
                # with the first one counted, and the rest committed again.
                found = {snapshot.id: snapshot for snapshot in self.db.get_all(
                    [events.document(items[index][0].key) for index in pending], timeout=WRITE_TIMEOUT_S)}
                if any(snapshot.exists and (snapshot.to_dict() or {}).get("commit") == commit
                       for snapshot in found.values()):
                    # This very commit was applied, and the client's retry of it (after a lost answer) found its
                    # own records: every event of it is counted now. (Its totals went unread: the overflow check
                    # needs the 2^62 units of UNITS_LIMIT on one counter, far beyond this one lost answer.)
                    return
                still = []
                for index in pending:
                    snapshot = found.get(items[index][0].key)
                    if snapshot is not None and snapshot.exists:
                        outcomes[index] = snapshot.to_dict() or {}
                    else:
                        still.append(index)
                stalled = stalled + 1 if len(still) == len(pending) else 0
                pending = still
                if not pending:
                    return
                continue
            for position, (shard, group, units, micros) in enumerate(shards):
                # The client sends a document's transforms sorted by field path; the results come in that order.
                after = dict(zip(["count", "max_micros", "micros", "units", "written_at"],
                                 results[len(pending) + position].transform_results, strict=True))
                if after["units"].integer_value > UNITS_LIMIT or after["micros"].integer_value > UNITS_LIMIT:
                    self._take_back(shard, group, units, micros, [items[i][0] for i in group.indexes])
                    for index in group.indexes:
                        outcomes[index] = self._alone(items[index], len(group.indexes))
            return
        raise Lost(f"{len(pending)} events kept meeting records that were gone when read")

    def _take_back(self, shard, group: _Group, units: int, micros: int, usages: list[Usage]) -> None:
        from google.cloud.firestore import SERVER_TIMESTAMP, Increment

        undo = self.db.batch()
        for usage in usages:
            undo.delete(self.db.collection("usage_events").document(usage.key))
        # With the fields the queries read, and a new write time: a rollup may have moved the counter meanwhile (the
        # undo then starts it again, negative), and a close that read it before the undo must see the change.
        undo.set(shard, {"tenant_id": group.tenant_id, "period": group.period, "day": group.day,
                         "meter": group.meter, "count": Increment(-group.count), "units": Increment(-units),
                         "micros": Increment(-micros), "written_at": SERVER_TIMESTAMP}, merge=True)
        undo.commit(timeout=WRITE_TIMEOUT_S)

    def _alone(self, item: tuple[Usage, str, str], group_size: int) -> Outcome:
        """An event of a group whose counter would have passed the exact range: on its own, it may still fit."""
        usage = item[0]
        if group_size == 1:
            return Overflow(f"the {usage.meter} total of tenant {usage.tenant_id} on {usage.day} would pass what is "
                            "counted exactly")
        return self.record_many([item])[0]

    def reject(self, reason: str, via: str, event_id: str | None, source: str | None, detail: dict) -> None:
        """Rejected events are kept where an operator can find them: `usage_rejections`."""
        self.db.collection("usage_rejections").add({"reason": reason, "via": via, "id": event_id, "source": source,
                                                    "detail": detail, "received_at": utcnow()})

    # --- reading ----------------------------------------------------------------------------------------------

    def _shards(self, tenant_id: str):
        return firestore.tenant_collection(tenant_id, "usage_shards", db=self.db)

    def period_counters(self, tenant_id: str, period: str) -> list:
        """The period's counters and rollup, read at one instant (one query)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        return at_one_instant(self._shards(tenant_id).where(filter=FieldFilter("period", "==", period)))

    def counters_of_range(self, first: str, last: str) -> dict[str, list]:
        """Every counter and rollup of the tenants whose ids run from `first` to `last`, by tenant, read at one
        instant: one collection-group query over document names (served by the name index every collection group
        has), however many tenants the run holds. Queries of each tenant's collection, or of `tenant_id in [...]`,
        would take one request per tenant or a composite index, and the emulator answers each of them by scanning
        the whole database or collection group."""
        from google.cloud.firestore_v1.field_path import FieldPath

        query = (self.db.collection_group("usage_shards").order_by(FieldPath.document_id())
                 .start_at([self.db.document("tenants", first)])
                 .end_before([self.db.document("tenants", last, "usage_shards", "\uffff")]))  # after all of `last`
        found: dict[str, list] = {}
        for snapshot in at_one_instant(query):
            if snapshot.reference.path.count("/") == 3:  # tenants/T/usage_shards/D: a tenant's own counter
                found.setdefault(snapshot.reference.parent.parent.id, []).append(snapshot)
        return found

    def day_totals(self, tenant_id: str, period: str) -> DayTotals:
        """The tenant's usage that happened in `period`, by (day, meter): its rollup plus its live counters."""
        return totals_of(self.period_counters(tenant_id, period))

    def periods_written_since(self, tenant_id: str, watermark: datetime.datetime | None) -> set[str]:
        """Periods of the tenant's counters written after `watermark` (all of them without one). A rollup carries
        the latest write it took, so a counter rolled up after the watermark is found through its rollup."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._shards(tenant_id)
        if watermark is not None:
            query = query.where(filter=FieldFilter("written_at", ">", watermark - WATERMARK_MARGIN))
        return {snapshot.get("period") for snapshot in query.select(["period"]).stream()}

    # --- rolling up -------------------------------------------------------------------------------------------

    def roll_up(self, tenant_id: str, before_day: str, attempts: int = 3) -> int:
        """Move the tenant's counters of days before `before_day` (YYYY-MM-DD) into their periods' rollups; the
        number of counters moved. A commit that loses to a write of the same counters moves nothing and is tried
        again, up to `attempts` times; what is left is moved by a later rollup (nothing depends on when)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        moved = 0
        for _ in range(attempts):
            found = [s for s in self._shards(tenant_id).where(filter=FieldFilter("day", "<", before_day)).stream()
                     if not s.id.startswith(ROLLUP_PREFIX)]
            if not found:
                return moved
            by_period: dict[str, list] = {}
            for snapshot in found:
                by_period.setdefault(snapshot.get("period"), []).append(snapshot)
            lost = False
            for period, counters in sorted(by_period.items()):
                for start in range(0, len(counters), MAX_WRITES - 1):
                    part = counters[start:start + MAX_WRITES - 1]
                    if self._roll_into(tenant_id, period, part):
                        moved += len(part)
                    else:
                        lost = True
            if not lost:
                return moved
        return moved

    def rollup_ref(self, tenant_id: str, period: str):
        return self._shards(tenant_id).document(f"{ROLLUP_PREFIX}{period}")

    def _roll_into(self, tenant_id: str, period: str, counters: list) -> bool:
        """One atomic commit: the rollup advanced by `counters` and each of them deleted, all conditional on
        nothing of it having changed since it was read. False if something had (nothing moved)."""
        from google.api_core.exceptions import AlreadyExists, FailedPrecondition, NotFound

        ref = self.rollup_ref(tenant_id, period)
        current = ref.get(timeout=WRITE_TIMEOUT_S)
        days = totals_of([current]) if current.exists else {}
        latest = current.get("written_at") if current.exists else None
        for snapshot in counters:
            add_counter(days, snapshot.to_dict())
            written = snapshot.get("written_at") if "written_at" in (snapshot.to_dict() or {}) else None
            if written is not None and (latest is None or written > latest):
                latest = written
        by_day: dict[str, dict] = {}
        for (day, meter), totals in sorted(days.items()):
            by_day.setdefault(day, {})[meter] = totals.as_dict()
        record = {"tenant_id": tenant_id, "period": period, "rollup": True, "days": by_day, "rolled_at": utcnow(),
                  **({"written_at": latest} if latest is not None else {})}
        batch = self.db.batch()
        if current.exists:
            batch.update(ref, record, option=self.db.write_option(last_update_time=current.update_time))
        else:
            batch.create(ref, record)
        for snapshot in counters:
            batch.delete(snapshot.reference, option=self.db.write_option(last_update_time=snapshot.update_time))
        try:
            batch.commit(timeout=WRITE_TIMEOUT_S)
        except (AlreadyExists, FailedPrecondition, NotFound):
            return False
        return True


def add_counter(days: DayTotals, data: dict | None) -> None:
    """Add one document of `usage_shards` (a live counter or a rollup) to `days`."""
    data = data or {}
    if data.get("rollup"):
        for day, meters in data.get("days", {}).items():
            for meter, totals in meters.items():
                days.setdefault((day, meter), Totals()).add(Totals.of(totals))
        return
    days.setdefault((data["day"], data["meter"]), Totals()).add(
        Totals(data.get("count", 0), data.get("units", 0) * 1_000_000 + data.get("micros", 0),
               data.get("max_micros", 0)))


def written_at(snapshot) -> datetime.datetime | None:
    return (snapshot.to_dict() or {}).get("written_at")


def totals_of(snapshots) -> DayTotals:
    found: DayTotals = {}
    for snapshot in snapshots:
        add_counter(found, snapshot.to_dict())
    return found
