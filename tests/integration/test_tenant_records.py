"""Billing's tenant cache on the emulator: a first sight reads a page of tenants, never one remembered, and a page
answers only for what it saw when it was read (a tenant created or deleted after it is read afresh)."""

import datetime
import threading

import pytest

from benchmarks.firestore_ops import count
from billing.store import tenant_records
from billing.store.tenant_records import Standing, TenantCache
from energent_shared import firestore
from tests.integration.test_billing import add_tenant
from tests.support import run_threads


def tenants(db, count_of: int) -> list[str]:
    ids = [f"t{n:03d}" for n in range(count_of)]
    batch = db.batch()
    for tenant_id in ids:
        batch.set(db.document("tenants", tenant_id), {"tenant_id": tenant_id, "deleted_at": None})
    batch.commit()
    return ids


def breaking_after(records: int, error: Exception):
    """TenantCache._records whose stream raises `error` once `records` records have arrived."""
    stream = TenantCache._records

    def breaking(self, *args, **kwargs):
        for n, record in enumerate(stream(self, *args, **kwargs)):
            if n == records:
                raise error
            yield record

    return breaking


def test_a_first_sight_reads_the_page_that_starts_at_the_tenant_and_its_neighbours_cost_nothing(firestore_db):
    ids = tenants(firestore_db, 25)
    cache, ops = TenantCache(firestore_db, page=10), count(firestore_db)
    assert cache.get("t005")["tenant_id"] == "t005"
    assert ops.snapshot().reads == 10  # t005 to t014
    assert [cache.get(tenant_id)["tenant_id"] for tenant_id in ids[5:15]] == ids[5:15]
    assert ops.snapshot().reads == 10
    assert cache.get("t015")["tenant_id"] == "t015" and ops.snapshot().reads == 20


def test_a_page_stops_at_the_first_tenant_remembered(firestore_db):
    ids = tenants(firestore_db, 25)
    cache, ops = TenantCache(firestore_db, page=10), count(firestore_db)
    cache.get("t008")  # t008 to t017
    before = ops.snapshot().reads
    assert cache.get("t004")["tenant_id"] == "t004"
    assert ops.snapshot().reads - before == 4  # t004 to t007: t008 on is remembered
    before = ops.snapshot().reads
    assert [cache.get(tenant_id)["tenant_id"] for tenant_id in ids[4:18]] == ids[4:18]
    assert ops.snapshot().reads == before


def test_neighbours_seen_at_once_on_many_threads_are_read_once(firestore_db):
    ids = tenants(firestore_db, 40)
    cache, ops = TenantCache(firestore_db, page=40), count(firestore_db)
    found = run_threads(8, lambda n: [cache.get(tenant_id)["tenant_id"] for tenant_id in ids])  # each asks for all
    assert all(thread == ids for thread in found)
    assert ops.snapshot().reads == 40


def test_a_thread_waiting_for_a_neighbour_goes_on_as_soon_as_it_has_arrived(firestore_db, monkeypatch):
    tenants(firestore_db, 10)
    stream = TenantCache._records
    held = {3: threading.Event(), 6: threading.Event()}  # the stream stops before yielding t003, then before t006
    released = {3: threading.Event(), 6: threading.Event()}

    def held_twice(self, *args, **kwargs):
        for n, record in enumerate(stream(self, *args, **kwargs)):
            if n in held:
                held[n].set()
                released[n].wait(timeout=30)
            yield record

    monkeypatch.setattr(TenantCache, "_records", held_twice)
    cache = TenantCache(firestore_db, page=10)
    reader = threading.Thread(target=cache.get, args=("t000",))
    reader.start()
    assert held[3].wait(timeout=30)
    arrived = {}
    early = threading.Thread(target=lambda: arrived.update(cache.get("t002")))
    early.start()
    early.join(timeout=10)
    assert arrived.get("tenant_id") == "t002"  # in already: answered while the page is held
    neighbour = {}
    waiter = threading.Thread(target=lambda: neighbour.update(cache.get("t004")))
    waiter.start()  # t004 is not in yet: it waits for the page
    released[3].set()
    assert held[6].wait(timeout=30)
    waiter.join(timeout=10)
    finished_before_the_page = not waiter.is_alive()  # t004 arrived; the page is held before t006
    released[6].set()
    reader.join()
    waiter.join()
    assert finished_before_the_page and neighbour["tenant_id"] == "t004"


def test_a_tenant_created_after_its_page_was_read_is_found(firestore_db):
    tenants(firestore_db, 5)
    cache = TenantCache(firestore_db, page=10)
    cache.get("t000")
    assert cache.get("t002x") is None
    add_tenant(firestore_db, "t002x")
    assert cache.get("t002x")["tenant_id"] == "t002x"  # unknown tenants are never remembered


def test_a_page_answers_for_usage_up_to_its_reading_and_a_deletion_after_it_is_seen(firestore_db):
    tenants(firestore_db, 5)
    cache = TenantCache(firestore_db, page=10)
    cache.get("t000")
    deleted_at = datetime.datetime.now(datetime.UTC)
    firestore_db.document("tenants", "t003").update({"deleted_at": deleted_at})
    assert cache.get("t003", as_of=deleted_at - datetime.timedelta(minutes=5))["deleted_at"] is None
    assert cache.get("t003", as_of=deleted_at)["deleted_at"] == deleted_at  # usage as late as the deletion: read again


def test_a_page_fills_only_the_room_left_and_a_full_cache_reads_one_at_a_time(firestore_db):
    ids = tenants(firestore_db, 30)
    cache, ops = TenantCache(firestore_db, size=4, page=10), count(firestore_db)
    assert cache.get("t000")["tenant_id"] == "t000"
    assert ops.snapshot().reads == 4  # t000 to t003: the room left, not the page
    assert [cache.get(tenant_id)["tenant_id"] for tenant_id in ids[:4]] == ids[:4] and ops.snapshot().reads == 4
    for tenant_id in ids[4:]:  # full: one read each, never a page that would make it forget a page's worth
        assert cache.get(tenant_id)["tenant_id"] == tenant_id
    assert ops.snapshot().reads == 4 + 26
    assert cache.get("t029")["tenant_id"] == "t029" and ops.snapshot().reads == 30  # the most recent stays
    assert cache.get("t000")["tenant_id"] == "t000" and ops.snapshot().reads == 31  # forgotten: read again, alone


def test_a_page_that_breaks_off_leaves_what_it_read_and_the_next_first_sight_reads_on(firestore_db, monkeypatch):
    ids = tenants(firestore_db, 12)
    cache = TenantCache(firestore_db, page=10)
    monkeypatch.setattr(TenantCache, "_records", breaking_after(3, ConnectionError("stream reset")))
    with pytest.raises(ConnectionError):  # not an API error: the event fails and is delivered again
        cache.get("t006")  # t006 to t008 arrived before the stream broke
    monkeypatch.undo()
    ops = count(firestore_db)
    assert [cache.get(tenant_id)["tenant_id"] for tenant_id in ids] == ids
    assert ops.snapshot().reads == 9  # t000 to t005 and t009 to t011: no page left waiting, none read twice


def test_a_paged_record_is_the_record_the_library_reads_and_carries_its_read_time(firestore_db):
    deleted_at = datetime.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    every_kind = {"tenant_id": "t001", "deleted_at": deleted_at,
                  "nothing": None, "flag": True, "count": 2**62, "ratio": 0.25, "name": "Łódź ζ", "raw": b"\x00\xff",
                  "tiers": [{"tier": "basic", "at": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)}, "x", 3],
                  "profile": {"address": {"city": "Łódź", "lines": ["a", "b"]}, "empty": {}}}
    firestore_db.document("tenants", "t000").set({"tenant_id": "t000"})
    firestore_db.document("tenants", "t001").set(every_kind)
    before = datetime.datetime.now(datetime.UTC)
    cache = TenantCache(firestore_db, page=10)
    cache.get("t000")
    paged = cache.get("t001")  # arrived with t000's page
    assert paged == firestore_db.document("tenants", "t001").get().to_dict() == every_kind
    assert cache.get("t001", as_of=before) is paged  # its read time answers for usage up to it: no new read


def test_a_page_cut_by_an_api_error_answers_from_what_arrived_and_the_rest_as_unseen(firestore_db, monkeypatch):
    from google.api_core.exceptions import ServiceUnavailable

    tenants(firestore_db, 12)
    cache, ops = TenantCache(firestore_db, page=10), count(firestore_db)
    monkeypatch.setattr(TenantCache, "_records", breaking_after(3, ServiceUnavailable("stream reset")))
    assert cache.get("t006")["tenant_id"] == "t006"  # its own record came first
    assert ops.snapshot().reads == 4  # t006 to t009 were delivered; t009 never reached the cache
    monkeypatch.undo()
    assert cache.get("t009")["tenant_id"] == "t009"
    assert ops.snapshot().reads == 4 + 3  # t009's own page: t009 to t011


def test_an_unknown_tenant_costs_one_read_each_time(firestore_db):
    tenants(firestore_db, 5)
    cache, ops = TenantCache(firestore_db, page=10), count(firestore_db)
    cache.get("t000")
    before = ops.snapshot().reads
    assert cache.get("t002x") is None and cache.get("t002x") is None and cache.get("zzzz") is None
    assert ops.snapshot().reads - before == 3  # a page that starts at the id and finds nothing: never remembered


def test_pages_grow_with_the_records_they_brought_that_were_asked_for(firestore_db):
    ids = tenants(firestore_db, 200)
    cache, ops = TenantCache(firestore_db, page=1000), count(firestore_db)
    for tenant_id in ("t100", "t130", "t160", "t190"):  # scattered: nothing a page brought is asked for
        cache.get(tenant_id)
    assert ops.snapshot().reads == 4 * tenant_records.FIRST_PAGE
    pages = []
    for tenant_id in ids[:100]:  # in order: every record a page brings is asked for
        before = ops.snapshot().reads
        cache.get(tenant_id)
        if ops.snapshot().reads > before:
            pages.append(ops.snapshot().reads - before)
    first, growth = tenant_records.FIRST_PAGE, tenant_records.GROWTH
    second = first + growth * (first - 1)
    assert pages == [first, second, 100 - first - second]  # the third stops at t100, remembered


# --- the tenant directory: a first sight answered by the shard the provisioner lists the tenant in ----------------


def with_directory_entries(db, count_of: int, prefix: str = "t") -> list[str]:
    """Tenants written as the provisioner writes them: each record with its directory entry, in one commit."""
    ids = [f"{prefix}{n:03d}" for n in range(count_of)]
    batch = db.batch()
    for tenant_id in ids:
        batch.set(db.document("tenants", tenant_id), {"tenant_id": tenant_id, "deleted_at": None})
        firestore.put_directory_entry(batch, tenant_id, None, db=db)
    batch.commit()
    return ids


def test_every_id_written_to_the_directory_is_checked_and_nothing_is_written_when_one_is_bad(firestore_db):
    batch = firestore_db.batch()
    assert firestore.directory_shard("Bad/71") == firestore.directory_shard("acme")  # one shard: one write for both
    with pytest.raises(ValueError, match="invalid tenant id 'Bad/71'"):
        firestore.put_directory_entries(batch, {"acme": None, "Bad/71": None}, db=firestore_db)
    assert len(batch) == 0


def test_a_listed_tenant_seen_first_is_answered_by_its_shard_read_once_for_all_the_tenants_it_lists(firestore_db):
    ids = with_directory_entries(firestore_db, 150)
    cache, ops = TenantCache(firestore_db, page=1000), count(firestore_db)
    usage_time = datetime.datetime.now(datetime.UTC)  # usage that happened before the shards are read
    assert all(cache.standing(tenant_id, usage_time) == Standing(None) for tenant_id in ids)
    shards = {firestore.directory_shard(tenant_id) for tenant_id in ids}
    assert ops.snapshot().reads == len(shards) < len(ids)  # no record, no page: one read per shard


def test_usage_dated_after_the_shard_was_read_is_checked_against_the_record(firestore_db):
    with_directory_entries(firestore_db, 3)
    cache = TenantCache(firestore_db, page=1000)
    before = datetime.datetime.now(datetime.UTC)
    assert cache.standing("t001", before) == Standing(None)  # its shard is read now
    deleted_at = datetime.datetime.now(datetime.UTC)
    batch = firestore_db.batch()  # the provisioner's delete: the record and its entry in one commit
    batch.update(firestore_db.document("tenants", "t001"), {"deleted_at": deleted_at})
    firestore.put_directory_entry(batch, "t001", deleted_at, db=firestore_db)
    batch.commit()
    assert cache.standing("t001", before) == Standing(None)  # the shard's read answers for usage before it
    assert cache.standing("t001", deleted_at) == Standing(deleted_at)  # later usage: the record, read now
    assert cache.standing("t001", before) == Standing(deleted_at)  # remembered now: the record answers


def test_a_tenant_its_shard_does_not_list_is_read_from_its_record_and_an_unknown_one_is_none(firestore_db):
    deleted_at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    add_tenant(firestore_db, "old1", deleted_at=deleted_at)  # written before there was a directory
    with_directory_entries(firestore_db, 3, prefix="u")
    cache, ops = TenantCache(firestore_db, page=1), count(firestore_db)
    usage_time = datetime.datetime.now(datetime.UTC)
    assert cache.standing("u001", usage_time) == Standing(None) and ops.snapshot().reads == 1
    assert cache.standing("old1", usage_time) == Standing(deleted_at)  # only its record can say so
    assert cache.standing("nobody", usage_time) is None
    add_tenant(firestore_db, "late1")  # created after its shard may have been read: its record tells
    assert cache.standing("late1", usage_time) == Standing(None)


def test_threads_that_need_one_shard_at_once_read_it_once(firestore_db):
    ids = [tenant_id for tenant_id in with_directory_entries(firestore_db, 500)
           if firestore.directory_shard(tenant_id) == "40"][:8]
    assert len(ids) == 8
    cache, ops = TenantCache(firestore_db, page=1000), count(firestore_db)
    usage_time = datetime.datetime.now(datetime.UTC)
    assert run_threads(8, lambda n: cache.standing(ids[n], usage_time)) == [Standing(None)] * 8
    assert ops.snapshot().reads == 1


def test_a_shard_that_cannot_be_read_leaves_the_answer_to_the_record_and_is_read_again_later(firestore_db,
                                                                                           monkeypatch):
    from google.api_core.exceptions import ServiceUnavailable
    from google.cloud.firestore_v1.document import DocumentReference

    with_directory_entries(firestore_db, 2)
    cache, ops = TenantCache(firestore_db, page=1), count(firestore_db)
    read = DocumentReference.get

    def unavailable_for_shards(self, *args, **kwargs):
        if self.parent.id == "tenant_directory":
            raise ServiceUnavailable("try later")
        return read(self, *args, **kwargs)

    usage_time = datetime.datetime.now(datetime.UTC)
    monkeypatch.setattr(DocumentReference, "get", unavailable_for_shards)
    assert cache.standing("t000", usage_time) == Standing(None)  # from its record
    monkeypatch.undo()
    assert ops.snapshot().reads == 1
    assert cache.standing("t001", usage_time) == Standing(None) and ops.snapshot().reads == 2  # the shard, now
