"""Events through the real Pub/Sub emulator, pushed to a function running under functions-framework."""

import json
import uuid

import pytest

from energent_shared import clients, events
from local import provision
from tests.conftest import PROJECT, example
from tests.support import wait_until


@pytest.fixture(scope="module")
def topic(emulators, recorder):
    name = f"events-{uuid.uuid4().hex[:6]}"
    provision.topics(emulators["pubsub"].url, PROJECT, [name])
    provision.push_subscriptions(emulators["pubsub"].url, PROJECT, [(f"recorder-{name}", name, recorder.url)])
    return name


def received(db, event_id: str):
    return wait_until(lambda: ((snapshot := db.collection("received").document(event_id).get()).exists
                    and snapshot.to_dict()["structured"]) or None, timeout_s=20, interval_s=0.1,
                      what=f"event {event_id} to arrive")


def test_structured_and_binary_messages_arrive_as_the_same_event(firestore_db, topic):
    structured = json.loads(example("usage-event.structured.json"))
    binary = json.loads(example("usage-event.binary.pubsub.json"))
    structured["id"] = f"s-{uuid.uuid4().hex}"
    binary["attributes"]["ce-id"] = f"b-{uuid.uuid4().hex}"
    publisher = clients.publisher()
    path = events.topic_path(topic)
    publisher.publish(path, json.dumps(structured).encode(), **{"content-type": events.STRUCTURED}).result(10)
    publisher.publish(path, json.dumps(binary["data"]).encode(), **binary["attributes"]).result(10)

    from_structured = received(firestore_db, structured["id"])
    from_binary = received(firestore_db, binary["attributes"]["ce-id"])
    assert from_structured.pop("id") != from_binary.pop("id")
    assert from_structured == from_binary
    assert from_binary["data"] == {"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "12.5"}


def test_published_events_round_trip_through_the_publisher(firestore_db, topic):
    event = events.new_event("ai.energent.tenant.created.v1", "//energent.ai/provisioner",
                             {"tenant_id": "acme", "tier": "basic"}, subject="acme")
    events.publish(topic, event)
    assert received(firestore_db, event["id"]) == json.loads(events.to_structured_json(event))


def test_a_failed_delivery_is_redelivered(firestore_db, topic):
    event = events.new_event("test.retry.v1", "//tests", {"fail_first": True})
    events.publish(topic, event)
    assert received(firestore_db, event["id"])["data"] == {"fail_first": True}
    assert firestore_db.collection("attempts").document(event["id"]).get().exists
