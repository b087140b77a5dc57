"""The tenant directory's shape: where a tenant is listed never moves, the shards share the tenants evenly and stay
far below a document's size limit at the contract's 100,000 tenants, and their map is never indexed."""

from collections import Counter

from energent_shared import firestore
from tests.unit.test_usage_storage import unindexed

TENANTS = 100_000  # CONTRACT.md §7.1: the scale billing is built for
DOCUMENT_LIMIT = 1_048_576  # bytes a Firestore document may hold


def test_a_tenant_is_listed_where_it_always_was():
    # Entries written by earlier releases must be found: the shard of an id is part of the stored layout.
    assert [firestore.directory_shard(tenant_id) for tenant_id in ("acme", "acme-corp", "t0001")] == ["62", "16", "42"]


def test_tenants_spread_evenly_over_the_shards():
    shards = Counter(firestore.directory_shard(f"tenant-{n}") for n in range(TENANTS))
    share = TENANTS / firestore.DIRECTORY_SHARDS
    assert len(shards) == firestore.DIRECTORY_SHARDS
    assert 0.9 * share < min(shards.values()) and max(shards.values()) < 1.1 * share


def test_the_fullest_shard_stays_far_below_a_documents_limit():
    shards = Counter(firestore.directory_shard(f"tenant-{n:06d}") for n in range(TENANTS))
    longest_id, timestamp = 32, 8  # TENANT_ID allows 32 characters; a deletion time is stored in 8 bytes
    entry = longest_id + 1 + timestamp + 1  # Firestore's storage size: a name's bytes + 1, a value's
    assert max(shards.values()) * entry < DOCUMENT_LIMIT / 10
    assert firestore.TENANT_ID.fullmatch("a" * longest_id) and not firestore.TENANT_ID.fullmatch("a" * 33)


def test_the_directory_map_is_exempt_from_indexes():
    assert unindexed()["tenant_directory"] == {"tenants"}
