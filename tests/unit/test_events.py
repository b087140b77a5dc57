import base64
import json
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent

from energent_shared import events
from tests.conftest import example

STRUCTURED = example("usage-event.structured.json")
BINARY = json.loads(example("usage-event.binary.pubsub.json"))


def pushed(data: bytes, attributes: dict) -> CloudEvent:
    """A Pub/Sub message as functions-framework hands it to a CloudEvent function."""
    message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": "42",
               "publishTime": "2026-11-29T09:41:08.123Z"}
    return CloudEvent({"type": events.PUBSUB_PUBLISHED, "source": "//pubsub.googleapis.com/projects/p/topics/t",
                       "specversion": "1.0", "id": "42"}, {"message": message})


def test_the_three_arrival_forms_decode_to_equal_events():
    over_http = events.from_http(events.STRUCTURED, {}, STRUCTURED)
    structured_pubsub = events.from_pubsub_push(pushed(STRUCTURED, {"content-type": events.STRUCTURED}))
    binary_pubsub = events.from_pubsub_push(pushed(json.dumps(BINARY["data"]).encode(), BINARY["attributes"]))
    assert over_http == [structured_pubsub]
    assert structured_pubsub == binary_pubsub
    assert binary_pubsub["id"] == "run-8f14e45f-ceea-467f-a0e6-0c7c1a1b2c3d"
    assert binary_pubsub.get_data() == {"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "12.5"}


def test_the_emulator_push_envelope_fixture_decodes_as_binary_mode():
    envelope = json.loads(example("pubsub-push-envelope.json"))
    push = CloudEvent({"type": events.PUBSUB_PUBLISHED, "source": "s", "specversion": "1.0", "id": "1"}, envelope)
    event = events.from_pubsub_push(push)
    assert event["type"] == "ai.energent.usage.v1" and event.get_data()["quantity"] == "12.5"


def test_structured_attribute_name_is_matched_case_insensitively():
    event = events.from_pubsub_push(pushed(STRUCTURED, {"Content-Type": "application/cloudevents+json; charset=utf-8"}))
    assert event["source"] == "//energent.ai/platform/workflow-runner"


def test_numbers_with_fractions_decode_as_decimals():
    body = json.loads(STRUCTURED)
    body["data"]["quantity"] = 0.1
    [event] = events.from_http(events.STRUCTURED, {}, json.dumps(body).encode())
    assert event.get_data()["quantity"] == Decimal("0.1")


@pytest.mark.parametrize("change, reason", [
    (lambda e: e.pop("id"), "missing or empty required attribute 'id'"),
    (lambda e: e.update(source=""), "missing or empty required attribute 'source'"),
    (lambda e: e.update(specversion="0.3"), "specversion must be '1.0'"),
    (lambda e: e.update(time="yesterday"), "attribute 'time': not an RFC 3339 timestamp"),
    (lambda e: e.update(Bad_Name="x"), "invalid attribute name 'Bad_Name'"),
    (lambda e: e.update(data_base64="AA=="), "'data' or 'data_base64', not both"),
])
def test_invalid_events_are_reported_with_a_reason(change, reason):
    body = json.loads(STRUCTURED)
    change(body)
    [result] = events.from_http(events.STRUCTURED, {}, json.dumps(body).encode())
    assert isinstance(result, events.InvalidEvent)
    assert reason in result.reason


def test_a_batch_judges_each_event_on_its_own():
    good = json.loads(STRUCTURED)
    bad = {**good, "id": "second", "specversion": "2.0"}
    results = events.from_http(events.BATCH, {}, json.dumps([good, bad]).encode())
    assert isinstance(results[0], CloudEvent)
    assert isinstance(results[1], events.InvalidEvent) and results[1].event_id == "second"


def test_a_batch_must_be_an_array_and_a_single_event_an_object():
    with pytest.raises(events.InvalidEnvelope, match="batch must be a JSON array"):
        events.from_http(events.BATCH, {}, STRUCTURED)
    with pytest.raises(events.InvalidEnvelope, match="must be a JSON object"):
        events.from_http(events.STRUCTURED, {}, b"[]")
    with pytest.raises(events.InvalidEnvelope, match="body is not valid JSON") as caught:
        events.from_http(events.BATCH, {}, b"[{")
    assert not caught.value.unsupported


def test_binary_http_mode_reads_ce_headers():
    headers = {f"ce-{k[3:]}": v for k, v in BINARY["attributes"].items() if k.startswith("ce-")}
    [event] = events.from_http("application/json", headers, json.dumps(BINARY["data"]).encode())
    assert event == events.from_http(events.STRUCTURED, {}, STRUCTURED)[0]


def test_requests_that_are_not_cloudevents_get_415():
    with pytest.raises(events.InvalidEnvelope) as caught:
        events.from_http("text/plain", {}, b"hello")
    assert caught.value.unsupported


def test_a_plain_pubsub_message_is_not_mistaken_for_an_event():
    with pytest.raises(events.InvalidEvent, match="neither a structured CloudEvent"):
        events.from_pubsub_push(pushed(example("flux-event-succeeded.json"), {}))


def test_pubsub_message_exposes_plain_messages_for_non_cloudevent_producers():
    rotate = json.loads(example("secret-rotate.pubsub.json"))
    message = events.pubsub_message(pushed(json.dumps(rotate["data"]).encode(), rotate["attributes"]))
    assert message.attribute("EVENTTYPE") == "SECRET_ROTATE"
    assert json.loads(message.data)["name"].endswith("/secrets/auth-signing-key")
    assert message.message_id == "42"


def test_structured_json_round_trips_and_keeps_decimals_exact():
    event = events.new_event("ai.energent.tenant.created.v1", "//energent.ai/provisioner",
                             {"price": Decimal("49.00")}, subject="acme")
    [decoded] = events.from_http(events.STRUCTURED, {}, events.to_structured_json(event))
    assert decoded["subject"] == "acme" and decoded["id"] == event["id"]
    assert decoded.get_data() == {"price": "49.00"}
    binary = CloudEvent({"type": "t", "source": "s"}, b"\x00\x01")
    [decoded] = events.from_http(events.STRUCTURED, {}, events.to_structured_json(binary))
    assert decoded.get_data() == b"\x00\x01"


def test_event_functions_log_with_the_deliverys_trace_and_reraise(capsys):
    from energent_shared.logging import get_logger

    @events.event_function
    def handler(push):
        get_logger("test").info("handling")
        raise RuntimeError("storage down")

    push = CloudEvent({"type": events.PUBSUB_PUBLISHED, "source": "s", "specversion": "1.0", "id": "m-1",
                       "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {"message": {}})
    with pytest.raises(RuntimeError):
        handler(push)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["logging.googleapis.com/trace"].endswith("/traces/4bf92f3577b34da6a3ce929d0e0e4736")
    assert lines[1]["severity"] == "ERROR" and lines[1]["event_id"] == "m-1"
