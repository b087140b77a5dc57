"""Tenant records as the provisioner keeps them, read by billing (never written)."""

from __future__ import annotations

import bisect
import datetime
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from billing.store.usage_counters import WRITE_TIMEOUT_S
from energent_shared import clients, firestore


@dataclass
class _Page:
    """A page of tenant records being read: ids from `first` up to `stop` (excluded), `last` the latest arrived."""

    first: str
    stop: str | None
    last: str | None = None

    def passed(self, tenant_id: str) -> bool:
        """Whether the page holds no record of `tenant_id`, and never will (it is read up to or beyond it)."""
        return self.first <= tenant_id and (self.stop is None or tenant_id < self.stop) and \
            self.last is not None and tenant_id <= self.last


class TenantCache:
    """Tenant records as the provisioner keeps them, each remembered with the moment it was read.

    Records are never deleted, and deleting a tenant stamps `deleted_at` with the time of the DELETE, so a record
    read at R answers truly for usage dated up to R: a deletion it does not show came after R. Usage dated after
    R is checked against a fresh read. Usage arrives a little after it happens, so a busy tenant costs about one
    read per reporting delay rather than one per event. Unknown tenants are never remembered.

    With `page` > 1, a tenant seen for the first time is read with the tenants after it, up to the next one
    remembered, in one query of at most `page` records: an instance counting many tenants' usage pays a round trip
    per page instead of one per tenant. A page never reads a record that is remembered and fills only the room the
    cache has left, so it never makes the cache forget; once the cache is full, a first sight is a single read. An
    instance's pages read at most `size` records in its life, beyond one read for each page that found none.
    """

    def __init__(self, db=None, size: int = 10_000, page: int = 1):
        self.db = db or clients.firestore()
        self._entries: OrderedDict[str, tuple[datetime.datetime, dict]] = OrderedDict()
        self._ids: list[str] = []  # the remembered ids, sorted: where the next page must stop
        self._size, self._page = size, page
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a paged record arrived, or the page ended
        self._reading: _Page | None = None

    def get(self, tenant_id: str, as_of: datetime.datetime | None = None) -> dict | None:
        """The tenant's record as it stood at `as_of` or later (None: its existence is all that matters)."""
        with self._lock:
            remembered = self._entries.get(tenant_id)
            if remembered:
                self._entries.move_to_end(tenant_id)
        if remembered is None and self._page > 1:
            remembered = self._read_page(tenant_id)
        if remembered and (as_of is None or as_of <= remembered[0]):
            return remembered[1]
        snapshot = firestore.tenant_doc(tenant_id, db=self.db).get(timeout=WRITE_TIMEOUT_S)
        if not snapshot.exists:
            return None
        record = snapshot.to_dict()
        with self._lock:
            self._remember(tenant_id, snapshot.read_time, record)
        return record

    def _read_page(self, tenant_id: str) -> tuple[datetime.datetime, dict] | None:
        """The tenant as read with a page of tenants (None: it was not among them). One page is read at a time, and
        its records are remembered as they arrive, so a thread waiting for a neighbour goes on as soon as it is in."""
        with self._arrived:
            while (page := self._reading) and tenant_id not in self._entries and not page.passed(tenant_id):
                self._arrived.wait()  # for the tenant to arrive with the page in flight, or for the page to end
            if tenant_id in self._entries or page:  # arrived, or passed over by the page in flight
                return self._entries.get(tenant_id)
            room = self._size - len(self._entries)
            if room < 2:
                return None
            following = bisect.bisect_right(self._ids, tenant_id)
            page = self._reading = _Page(tenant_id, self._ids[following] if following < len(self._ids) else None)
        try:
            query = (self.db.collection("tenants").order_by("__name__").limit(min(self._page, room))
                     .start_at({"__name__": firestore.tenant_doc(tenant_id, db=self.db)}))
            if page.stop is not None:
                query = query.end_before({"__name__": self.db.document("tenants", page.stop)})  # any id: a cursor
            for found, read_at, record in self._records(query):
                with self._arrived:
                    self._remember(found, read_at, record)
                    page.last = found
                    self._arrived.notify_all()
        finally:
            with self._arrived:
                self._reading = None
                self._arrived.notify_all()
        with self._lock:
            return self._entries.get(tenant_id)

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
