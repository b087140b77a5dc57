"""Revocation checks on the Firestore emulator: the synchronous read, and the reads concurrent requests share
on an event loop."""

import asyncio

import pytest

from energent_shared.revocation import SharedReads, revoked
from tests.support import CountingClient

CASES = [  # (claims, revoked?)
    ({"jti": "o-1", "client_id": "operator"}, False),
    ({"jti": "o-2", "client_id": "operator"}, True),                        # on the revocation list
    ({"jti": "t-1", "client_id": "c-live", "tenant_id": "acme"}, False),
    ({"jti": "t-2", "client_id": "c-deleted", "tenant_id": "acme"}, True),  # client deactivated
    ({"jti": "t-3", "client_id": "c-unknown", "tenant_id": "acme"}, True),  # client gone
    ({"client_id": "operator"}, True),                                      # no jti: cannot be checked
    ({"jti": "t-4", "client_id": "no/slashes", "tenant_id": "acme"}, True),
    ({"jti": "t-5", "client_id": "c-going", "tenant_id": "going"}, True),    # its tenant is being deleted
    ({"jti": "t-6", "client_id": "c-orphan", "tenant_id": "nowhere"}, True),  # no such tenant
]


@pytest.fixture
def lists(firestore_db):
    firestore_db.document("revoked_tokens/o-2").set({"client_id": "operator"})
    firestore_db.document("oauth_clients/c-live").set({"active": True, "tenant_id": "acme"})
    firestore_db.document("oauth_clients/c-deleted").set({"active": False, "tenant_id": "acme"})
    firestore_db.document("oauth_clients/c-going").set({"active": True, "tenant_id": "going"})
    firestore_db.document("oauth_clients/c-orphan").set({"active": True, "tenant_id": "nowhere"})
    firestore_db.document("tenants/acme").set({"tenant_id": "acme", "status": "active"})
    firestore_db.document("tenants/going").set({"tenant_id": "going", "status": "deleting"})
    return firestore_db


def test_the_synchronous_and_the_shared_checks_agree(lists):
    expected = [answer for _claims, answer in CASES]
    assert revoked([claims for claims, _ in CASES], db=lists) == expected

    async def shared():
        return await SharedReads().revoked([claims for claims, _ in CASES])

    assert asyncio.run(shared()) == expected


def test_concurrent_checks_share_one_read(lists):
    async def main():
        counting = CountingClient()
        reads = SharedReads(lambda: counting, max_in_flight=1)
        answers = await asyncio.gather(*(reads.revoked([claims]) for claims, _ in CASES * 10))
        return counting.reads, answers

    made, answers = asyncio.run(main())
    assert answers == [[answer] for _claims, answer in CASES * 10]
    # 90 checks, one read of the 15 documents that decide them (7 list entries, 5 clients, 3 tenants)
    assert made == [15]


def test_a_revocation_that_returned_before_a_check_began_is_seen_by_it(lists):
    """Checks keep reads in flight all the time; a check that joined a read already under way would miss a
    revocation written just before it."""

    async def main():
        reads = SharedReads(max_in_flight=1)
        busy = True

        async def traffic():
            while busy:
                await reads.revoked([{"jti": "o-1", "client_id": "operator"}])

        background = [asyncio.create_task(traffic()) for _ in range(20)]
        seen = []
        for i in range(20):
            await asyncio.to_thread(lists.document(f"revoked_tokens/late-{i}").set, {"client_id": "operator"})
            seen.append((await reads.revoked([{"jti": f"late-{i}", "client_id": "operator"}]))[0])
        busy = False
        await asyncio.gather(*background)
        return seen

    assert asyncio.run(main()) == [True] * 20


def test_a_failed_read_fails_every_check_waiting_on_it_and_the_next_read_is_fresh(lists):
    async def main():
        counting = CountingClient(fail=True)
        reads = SharedReads(lambda: counting)
        failed = await asyncio.gather(*(reads.revoked([claims]) for claims, _ in CASES[:3]), return_exceptions=True)
        counting.fail = False
        return failed, await reads.revoked([CASES[1][0]])

    failed, after = asyncio.run(main())
    assert [str(error) for error in failed] == ["Firestore is unavailable"] * 3
    assert after == [True]
