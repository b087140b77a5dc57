"""The ingest path's writes, built as plain protobufs, are exactly the ones the client library builds."""

import datetime

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore import SERVER_TIMESTAMP, Increment, Maximum

from billing.store import usage_counters, write_protos
from billing.usage import Usage

DB = firestore.Client(project="p", credentials=AnonymousCredentials())
TIMES = [datetime.datetime(2026, 12, 7, 9, 30, 1, 123456, tzinfo=datetime.UTC),
         datetime.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
         datetime.datetime(999, 5, 1, tzinfo=datetime.UTC),
         datetime.datetime(1, 1, 1, tzinfo=datetime.UTC),
         datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
         datetime.datetime(2026, 3, 29, 2, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))]


def built_by_the_library(write) -> object:
    batch = DB.batch()
    write(batch)
    (only,) = batch._write_pbs
    return only._pb


@pytest.mark.parametrize("time", TIMES)
def test_an_event_s_record_is_the_library_s_create(time):
    ref = DB.document("usage_events/" + "k" * 64)
    usage = Usage("k" * 64, "//source", "e-1", "acme", "workflow_minutes", 1_500_000, time, True)
    record = usage_counters._record(usage, "pubsub", "c0ffee")
    assert write_protos.create(ref, record) == built_by_the_library(lambda batch: batch.create(ref, record))


def test_a_counter_increment_is_the_library_s_merge():
    ref = DB.document("tenants/acme/usage_shards/2026-12-07_workflow_minutes_03")
    fields = {"tenant_id": "acme", "period": "2026-12", "day": "2026-12-07", "meter": "workflow_minutes"}
    library = built_by_the_library(lambda batch: batch.set(ref, {
        **fields, "count": Increment(3), "units": Increment(4), "micros": Increment(500_000),
        "max_micros": Maximum(2_000_000), "written_at": SERVER_TIMESTAMP}, merge=True))
    built = write_protos.merge(ref, fields, {"count": 3, "units": 4, "micros": 500_000}, {"max_micros": 2_000_000},
                               "written_at")
    assert built == library
    # The results of a commit are read in this order (usage_counters._commit_chunk).
    assert [t.field_path for t in built.update_transforms] == ["count", "max_micros", "micros", "units", "written_at"]


@pytest.mark.parametrize("item", [1.5, None, datetime.datetime(2026, 1, 1), b"bytes"])
def test_a_value_it_does_not_know_is_refused(item):
    with pytest.raises(TypeError):
        write_protos.value(item)
