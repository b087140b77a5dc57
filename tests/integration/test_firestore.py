"""Firestore helpers against the real emulator."""

import pytest
from google.cloud.firestore import Increment

from energent_shared import firestore
from tests.support import run_threads


def test_concurrent_read_modify_write_on_one_document_loses_no_update(firestore_db):
    ref = firestore_db.collection("counters").document("hot")
    ref.set({"value": 0, "writers": []})

    def add(transaction, writer):
        snapshot = ref.get(transaction=transaction)
        transaction.update(ref, {"value": snapshot.get("value") + 1,
                                 "writers": [*snapshot.get("writers"), writer]})

    def writer(i):
        for n in range(3):
            firestore.run_transaction(lambda tx, tag=f"{i}-{n}": add(tx, tag), db=firestore_db)

    run_threads(3, writer)
    final = ref.get().to_dict()
    assert final["value"] == 9
    assert sorted(final["writers"]) == sorted(f"{i}-{n}" for i in range(3) for n in range(3))


def test_run_transaction_does_not_retry_errors_of_the_callers_own(firestore_db):
    calls = []

    def failing(transaction):
        calls.append(1)
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        firestore.run_transaction(failing, db=firestore_db)
    assert len(calls) == 1


def test_create_if_absent_lets_exactly_one_of_many_concurrent_creators_win(firestore_db):
    ref = firestore_db.collection("idempotency").document("event-1")
    results = run_threads(8, lambda i: firestore.create_if_absent(ref, {"winner": i}))
    assert results.count(True) == 1
    assert ref.get().get("winner") == results.index(True)


def test_write_batched_crosses_batch_boundaries(firestore_db):
    collection = firestore_db.collection("bulk")
    written = firestore.write_batched(((collection.document(f"d{i:04d}"), {"i": i}) for i in range(1203)),
                                      db=firestore_db)
    assert written == 1203
    assert collection.count().get()[0][0].value == 1203
    assert collection.document("d1202").get().get("i") == 1202


def test_tenant_paths_are_scoped_and_validated(firestore_db):
    ref = firestore.tenant_doc("acme", "clients", "c1", db=firestore_db)
    assert ref.path == "tenants/acme/clients/c1"
    ref.set({"n": Increment(1)})
    assert [d.id for d in firestore.tenant_collection("acme", "clients", db=firestore_db).stream()] == ["c1"]
    for bad in ("Acme", "ab", "acme/../globex", "-acme", "acme-"):
        with pytest.raises(ValueError):
            firestore.tenant_doc(bad, db=firestore_db)
