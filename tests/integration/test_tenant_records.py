"""Billing's tenant cache on the emulator: a first sight reads a page of tenants, never one remembered, and a page
answers only for what it saw when it was read (a tenant created or deleted after it is read afresh)."""

import datetime

import pytest

from benchmarks.firestore_ops import count
from billing.store.tenant_records import TenantCache
from tests.integration.test_billing import add_tenant
from tests.support import run_threads


def tenants(db, count_of: int) -> list[str]:
    ids = [f"t{n:03d}" for n in range(count_of)]
    batch = db.batch()
    for tenant_id in ids:
        batch.set(db.document("tenants", tenant_id), {"tenant_id": tenant_id, "deleted_at": None})
    batch.commit()
    return ids


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
    found = run_threads(8, lambda n: [cache.get(tenant_id)["tenant_id"] for tenant_id in ids[n::8]])
    assert sorted(tenant_id for thread in found for tenant_id in thread) == ids
    assert ops.snapshot().reads == 40


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


def test_a_full_cache_forgets_the_least_recently_used_and_reads_it_again(firestore_db):
    ids = tenants(firestore_db, 6)
    cache, ops = TenantCache(firestore_db, size=4, page=2), count(firestore_db)
    for tenant_id in ids:
        cache.get(tenant_id)
    assert ops.snapshot().reads == 6  # three pages of two
    before = ops.snapshot().reads
    assert cache.get("t000")["tenant_id"] == "t000"  # forgotten: read again, up to t002 at most
    assert 1 <= ops.snapshot().reads - before <= 2
    assert [cache.get(tenant_id)["tenant_id"] for tenant_id in ids] == ids


def test_a_page_that_breaks_off_leaves_what_it_read_and_the_next_first_sight_reads_on(firestore_db, monkeypatch):
    from google.cloud.firestore_v1.query import Query

    ids = tenants(firestore_db, 12)
    stream = Query.stream

    def breaks_after_three(self, *args, **kwargs):
        for n, snapshot in enumerate(stream(self, *args, **kwargs)):
            if n == 3:
                raise ConnectionError("stream reset")
            yield snapshot

    cache = TenantCache(firestore_db, page=10)
    monkeypatch.setattr(Query, "stream", breaks_after_three)
    with pytest.raises(ConnectionError):
        cache.get("t006")  # t006 to t008 arrived before the stream broke
    monkeypatch.setattr(Query, "stream", stream)
    ops = count(firestore_db)
    assert [cache.get(tenant_id)["tenant_id"] for tenant_id in ids] == ids
    assert ops.snapshot().reads == 9  # t000 to t005 and t009 to t011: no page left waiting, none read twice
