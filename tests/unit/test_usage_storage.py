"""What billing's usage documents cost to keep: the exactly-once records carry no index (nothing queries them), the
counters index only what a query reads, and the records are kept for ever (no TTL), so a resend at any time is a
duplicate, never a second charge."""

import datetime
import inspect

import pytest
from google.api_core.exceptions import ServiceUnavailable
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from billing.store import usage_counters
from billing.usage import Usage
from tests.unit.test_infra import INFRA, terraform

STORAGE = INFRA / "modules" / "storage" / "main.tf"
# What billing's queries on counters filter on (usage_counters.py: a period's counters, counters written since a
# watermark, days before the rollup's cutoff); a close's page reads its tenants' counters by document name.
QUERIED = {"period", "written_at", "day"}


def unindexed() -> dict[str, set[str]]:
    found = terraform(STORAGE)["locals"][0]["unindexed_fields"]
    return {collection: {field.strip('"') for field in fields} for collection, fields in found.items()}


def firestore_fields() -> list[dict]:
    return [body for block in terraform(STORAGE)["resource"] for name, bodies in block.items()
            if name.strip('"') == "google_firestore_field" for body in bodies.values()]


def test_every_field_of_an_exactly_once_record_is_exempt_from_indexes():
    usage = Usage("k" * 64, "//s", "e-1", "acme", "workflow_minutes", 1, datetime.datetime.now(datetime.UTC), True)
    assert set(usage_counters._record(usage, "http", "c0ffee")) == unindexed()["usage_events"]


def test_counters_index_only_what_a_query_reads():
    source = inspect.getsource(usage_counters)
    written = {"tenant_id", "period", "day", "meter", "count", "units", "micros", "max_micros", "written_at",
               "rollup", "days", "rolled_at"}
    for field in written:
        assert f'"{field}"' in source  # the store still writes it
    assert unindexed()["usage_shards"] == written - QUERIED
    for field in written:
        assert (f'FieldFilter("{field}"' in source) == (field in QUERIED)  # and queries exactly these


def test_exactly_once_records_are_kept_for_ever():
    collections = {body["collection"].strip('"') for body in firestore_fields() if "ttl_config" in body}
    assert "usage_events" not in collections and "usage_shards" not in collections
    assert "usage_rollup_runs" in collections  # the rollup's page markers do expire


class BrokenOnce:
    """A query whose first stream breaks after one result, as a stream does when its connection drops."""

    def __init__(self, results):
        self.results, self.calls = results, []

    def stream(self, retry):
        self.calls.append(retry)
        yield self.results[0]
        if len(self.calls) == 1:
            raise ServiceUnavailable("connection reset")
        yield from self.results[1:]


def test_a_broken_stream_of_counters_is_read_again_whole_never_resumed_at_a_later_instant():
    query = BrokenOnce(["counter", "rollup"])
    assert usage_counters.at_one_instant(query) == ["counter", "rollup"]  # not counter, counter, rollup
    assert len(query.calls) == 2
    # The retry it passes makes the client library's own resumption (start after the last result) never happen.
    real = firestore.Client(project="p", credentials=AnonymousCredentials()).collection("tenants/t/usage_shards")
    assert not real._query()._retry_query_after_exception(ServiceUnavailable("reset"), usage_counters.no_resume(),
                                                          None)


def test_a_stream_broken_every_time_fails_rather_than_answer_half():
    class Broken(BrokenOnce):
        def stream(self, retry):
            self.calls.append(retry)
            yield "counter"
            raise ServiceUnavailable("down")

    query = Broken([])
    with pytest.raises(ServiceUnavailable):
        usage_counters.at_one_instant(query)
    assert len(query.calls) == usage_counters.READ_ATTEMPTS
