"""Tenant records as the provisioner keeps them, read by billing (never written)."""

from __future__ import annotations

import bisect
import datetime
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from billing.store.usage_counters import WRITE_TIMEOUT_S
from energent_shared import clients, firestore
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")

FIRST_PAGE = 10  # records an instance's first page reads at most
GROWTH = 4  # records a page may read for each record earlier pages brought that was then asked for


@dataclass
class _Page:
    """A page of tenant records being read: ids from `first` up to `stop` (excluded), `last` the latest arrived."""

    first: str
    stop: str | None
    last: str | None = None

    def may_bring(self, tenant_id: str) -> bool:
        """Whether `tenant_id` may still arrive with this page (it lies in its range, beyond what has arrived)."""
        return self.first <= tenant_id and (self.stop is None or tenant_id < self.stop) and \
            (self.last is None or tenant_id > self.last)


@dataclass(frozen=True)
class Standing:
    """What usage of a tenant that exists must be checked against."""

    deleted_at: datetime.datetime | None


class TenantDirectory:
    """Which tenants exist and when each was deleted, from the directory the provisioner writes beside their records
    (`firestore.directory_doc`). An instance reads each shard once, when it first needs it: a shard read at R answers
    exactly for usage dated up to R, as a record read then would. Usage dated later, and tenants a shard does not list
    (created after it was read, or before there was a directory), are left to their records."""

    def __init__(self, db):
        self.db = db
        self._shards: dict[str, tuple[datetime.datetime, dict]] = {}
        self._reading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def lookup(self, tenant_id: str, as_of: datetime.datetime) -> Standing | None:
        """The tenant's standing if its shard lists it and the shard's read answers for `as_of`; else None (also when
        the shard cannot be read: the directory is only a shortcut)."""
        from google.api_core.exceptions import GoogleAPICallError

        shard = firestore.directory_shard(tenant_id)
        read = self._shards.get(shard)
        if read is None:
            with self._lock:
                reading = self._reading.setdefault(shard, threading.Lock())
            with reading:  # threads that need the same shard at once read it once
                read = self._shards.get(shard)
                if read is None:
                    try:
                        snapshot = firestore.directory_doc(tenant_id, db=self.db).get(timeout=WRITE_TIMEOUT_S)
                    except GoogleAPICallError as error:
                        log_event(logger, "tenant_directory.unread", severity=logging.WARNING, shard=shard,
                                  error=type(error).__name__)
                        return None
                    read = self._shards[shard] = (snapshot.read_time, (snapshot.to_dict() or {}).get("tenants", {}))
        read_at, tenants = read
        if as_of > read_at or tenant_id not in tenants:
            return None
        return Standing(tenants[tenant_id])


ABSENT = object()  # what a page that started at a tenant's id says when the tenant was not its first record


class TenantCache:
    """Tenant records as the provisioner keeps them, each remembered with the moment it was read.

    Records are never deleted, and deleting a tenant stamps `deleted_at` with the time of the DELETE, so a record
    read at R answers for usage dated up to R: a deletion it does not show was committed after R. (The stamp is taken
    before that commit: usage dated between the two, milliseconds apart, is accepted by a read made between them.)
    Usage dated after R is checked against a fresh read. Usage arrives a little after it happens, so a busy tenant
    costs about one read per reporting delay rather than one per event. Unknown tenants are never remembered.

    With `page` > 1, a tenant seen for the first time is read with the tenants after it, up to the next one
    remembered, in one query: an instance counting many tenants' usage pays a round trip per page instead of one per
    tenant. A page never reads a record that is remembered and fills only the room the cache has left, so it never
    makes the cache forget, and once the cache is full a first sight is a single read: an instance's pages read at
    most `size` records in its life, plus one read for each page that found none. Pages start at FIRST_PAGE records
    and grow by GROWTH for each record earlier pages brought that was then asked for, up to `page`: an instance whose
    first tenants are scattered reads little more than it needs, one counting neighbours soon reads them in bulk.
    """

    def __init__(self, db=None, size: int = 10_000, page: int = 1):
        self.db = db or clients.firestore()
        self._entries: OrderedDict[str, tuple[datetime.datetime, dict]] = OrderedDict()
        self._ids: list[str] = []  # the remembered ids, sorted: where the next page must stop
        self._size, self._page = size, page
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a paged record arrived, or the page ended
        self._reading: _Page | None = None
        self._unasked: set[str] = set()  # brought by a page, not asked for yet
        self._useful = 0  # records brought by pages and then asked for: how large the next page may be
        self.directory = TenantDirectory(self.db)

    def standing(self, tenant_id: str, as_of: datetime.datetime) -> Standing | None:
        """The tenant as usage dated `as_of` must see it, None if it does not exist: from its directory entry when it
        is not remembered and its shard answers, else from its record (`get`). A first sight of a tenant costs
        nothing once its shard has been read; a remembered tenant keeps its record fresh."""
        with self._lock:
            remembered = tenant_id in self._entries
        if not remembered and (listed := self.directory.lookup(tenant_id, as_of)) is not None:
            return listed
        record = self.get(tenant_id, as_of=as_of)
        return None if record is None else Standing(record.get("deleted_at"))

    def get(self, tenant_id: str, as_of: datetime.datetime | None = None) -> dict | None:
        """The tenant's record as it stood at `as_of` or later (None: its existence is all that matters)."""
        with self._lock:
            remembered = self._entries.get(tenant_id)
            if remembered:
                self._entries.move_to_end(tenant_id)
                self._asked(tenant_id)
        if remembered is None and self._page > 1:
            remembered = self._read_page(tenant_id)
            if remembered is ABSENT:
                return None
        if remembered and (as_of is None or as_of <= remembered[0]):
            return remembered[1]
        snapshot = firestore.tenant_doc(tenant_id, db=self.db).get(timeout=WRITE_TIMEOUT_S)
        if not snapshot.exists:
            return None
        record = snapshot.to_dict()
        with self._lock:
            self._remember(tenant_id, snapshot.read_time, record)
        return record

    def _read_page(self, tenant_id: str):
        """The tenant as read with a page of tenants: (read time, record), ABSENT, or None when a single read must
        tell. One page is read at a time, its records remembered as they arrive, so a thread waiting for a neighbour
        goes on as soon as it is in; a first sight the page in flight cannot bring is left to a single read."""
        with self._arrived:
            while (page := self._reading) and tenant_id not in self._entries and page.may_bring(tenant_id):
                self._arrived.wait()  # for the tenant to arrive with the page in flight, or for the page to end
            if tenant_id in self._entries:
                self._asked(tenant_id)
                return self._entries[tenant_id]
            room = self._size - len(self._entries)
            if page or room < 2:
                return None
            following = bisect.bisect_right(self._ids, tenant_id)
            page = self._reading = _Page(tenant_id, self._ids[following] if following < len(self._ids) else None)
            size = min(self._page, room, FIRST_PAGE + GROWTH * self._useful)
        from google.api_core.exceptions import GoogleAPICallError

        own = None
        try:
            query = (self.db.collection("tenants").order_by("__name__").limit(size)
                     .start_at({"__name__": firestore.tenant_doc(tenant_id, db=self.db)}))
            if page.stop is not None:
                query = query.end_before({"__name__": self.db.document("tenants", page.stop)})  # any id: a cursor
            for found, read_at, record in self._records(query):
                with self._arrived:
                    self._remember(found, read_at, record)
                    if found == tenant_id:
                        own = (read_at, record)
                    else:
                        self._unasked.add(found)
                    page.last = found
                    self._arrived.notify_all()
        except GoogleAPICallError as error:  # a page is only a shortcut: what did not arrive is read as if unseen
            log_event(logger, "tenant_page.cut", severity=logging.WARNING, first=tenant_id, last=page.last,
                      error=type(error).__name__)
            return own
        finally:
            with self._arrived:
                self._reading = None
                self._arrived.notify_all()
        return own or ABSENT  # the page started at the tenant's id: it exists only if it came first

    def _asked(self, tenant_id: str) -> None:
        """Counts a record a page brought the first time it is asked for (the caller holds the lock)."""
        if tenant_id in self._unasked:
            self._unasked.discard(tenant_id)
            self._useful += 1

    def _records(self, query) -> Iterator[tuple[str, datetime.datetime, dict]]:
        """(id, read time, record) of each document the query streams, decoded from the responses' protobuf messages
        by the library's own `decode_dict` (a test compares the records with the library's snapshots): its snapshots
        and message wrappers would double the client's CPU per record."""
        from google.api_core import gapic_v1
        from google.cloud.firestore_v1 import _helpers

        responses, _ = query._get_stream_iterator(None, gapic_v1.method.DEFAULT, WRITE_TIMEOUT_S)
        for response in responses:
            message = type(response).pb(response)
            if message.HasField("document"):
                document = message.document
                record = cast(dict, _helpers.decode_dict(document.fields, self.db))  # a document's fields: a map
                yield document.name.rpartition("/")[2], message.read_time.ToDatetime(tzinfo=datetime.UTC), record

    def _remember(self, tenant_id: str, read_at: datetime.datetime, record: dict) -> None:
        """Remembers a record read at `read_at` unless one read later is remembered (the caller holds the lock)."""
        if tenant_id in self._entries and self._entries[tenant_id][0] > read_at:
            self._entries.move_to_end(tenant_id)
            return
        if tenant_id not in self._entries:
            bisect.insort(self._ids, tenant_id)
        self._entries[tenant_id] = (read_at, record)
        self._entries.move_to_end(tenant_id)
        while len(self._entries) > self._size:  # the least recently used goes first
            forgotten, _ = self._entries.popitem(last=False)
            del self._ids[bisect.bisect_left(self._ids, forgotten)]
            self._unasked.discard(forgotten)

    def ids_after(self, after: str | None, size: int) -> list[str]:
        """The ids of the next `size` tenants after `after`, in id order."""
        query = self.db.collection("tenants").order_by("__name__").select([]).limit(size)
        if after:
            query = query.start_after({"__name__": firestore.tenant_doc(after, db=self.db)})
        return [snapshot.id for snapshot in query.stream()]

    def fresh(self, tenant_ids: list[str]) -> list[dict]:
        """These tenants' records as they are now, in the given order (closes must see every tenant as it is)."""
        found = {snapshot.id: snapshot for snapshot in self.db.get_all(
            [firestore.tenant_doc(tenant_id, db=self.db) for tenant_id in tenant_ids])}
        return [found[tenant_id].to_dict() for tenant_id in tenant_ids if found[tenant_id].exists]
