"""CloudEvents in, CloudEvents out.

One decoder turns every arrival form into the same `cloudevents.http.CloudEvent`:
- a Pub/Sub push as functions-framework delivers it (a `messagePublished` event wrapping the message),
  carrying either the CloudEvents Pub/Sub binding in structured mode (body = the event as JSON, attribute
  `content-type: application/cloudevents+json`) or in binary mode (`ce-*` attributes, data in the body);
- an HTTP request in structured mode, a batch (`application/cloudevents-batch+json`), or binary mode.
JSON numbers with a fraction decode as exact `Decimal`s in every form, so the forms compare equal.
Publishing uses structured mode, which keeps the whole event in the message body.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cloudevents.http import CloudEvent

from energent_shared import clients
from energent_shared.clock import rfc3339, utcnow
from energent_shared.config import settings
from energent_shared.jsonio import InvalidJson, json_default, parse_json

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"

_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_REQUIRED = ("id", "source", "type")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class InvalidEnvelope(ValueError):
    """A request that is not CloudEvents as a whole (not JSON, a batch that is no array, no binding at all);
    `unsupported` when its content type is none of the bindings'."""

    def __init__(self, reason: str, unsupported: bool = False):
        super().__init__(reason)
        self.unsupported = unsupported


class RetryLater(Exception):
    """A delivery that should come again later, e.g. because another delivery is doing its part now: the handler
    fails it (Pub/Sub delivers it again) and it is logged as a warning, not an error."""


class InvalidEvent(ValueError):
    """An event that cannot be accepted; `event_id` is set when the event said who it was."""

    def __init__(self, reason: str, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True)
class PubSubMessage:
    data: bytes
    attributes: dict[str, str]
    message_id: str | None

    def attribute(self, name: str) -> str | None:
        """Attribute lookup ignoring case (Pub/Sub producers disagree on `Content-Type` vs `content-type`)."""
        wanted = name.lower()
        for key, value in self.attributes.items():
            if key.lower() == wanted:
                return value
        return None


def parse_time(value: object) -> datetime.datetime:
    """An RFC 3339 timestamp with an offset, as an aware UTC datetime."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    try:
        return datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError(f"not a representable UTC time: {value!r}") from None


def _build(attributes: dict[str, Any], data: Any) -> CloudEvent:
    event_id = attributes.get("id") if isinstance(attributes.get("id"), str) else None
    if attributes.get("specversion") != "1.0":
        raise InvalidEvent(f"specversion must be '1.0', got {attributes.get('specversion')!r}", event_id)
    for name in _REQUIRED:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidEvent(f"missing or empty required attribute '{name}'", event_id)
    for name, value in attributes.items():
        if not _ATTRIBUTE_NAME.match(name):
            raise InvalidEvent(f"invalid attribute name {name!r}", event_id)
        if not isinstance(value, str):
            raise InvalidEvent(f"attribute '{name}' must be a string", event_id)
    if "time" in attributes:
        try:
            parse_time(attributes["time"])
        except ValueError as exc:
            raise InvalidEvent(f"attribute 'time': {exc}", event_id) from None
    event = CloudEvent(attributes, data)
    if "time" not in attributes:
        del event["time"]  # the library stamps its own; an event without a time must stay without one
    return event


def _decode_data(raw: bytes, content_type: str | None, event_id: str | None) -> Any:
    if not raw:
        return None
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return parse_json(raw)
        except InvalidJson as invalid:
            raise InvalidEvent(f"data: {invalid}", event_id) from None
    return raw


def from_structured(document: Any) -> CloudEvent:
    """An event from its structured JSON form (already parsed)."""
    if not isinstance(document, dict):
        raise InvalidEvent("a structured event must be a JSON object")
    attributes = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    event_id = attributes.get("id") if isinstance(attributes.get("id"), str) else None
    if "data" in document and "data_base64" in document:
        raise InvalidEvent("an event carries 'data' or 'data_base64', not both", event_id)
    data = document.get("data")
    if "data_base64" in document:
        try:
            data = base64.b64decode(document["data_base64"], validate=True)
        except (binascii.Error, TypeError):
            raise InvalidEvent("data_base64 is not valid base64", event_id) from None
    return _build(attributes, data)


def from_pubsub_message(message: PubSubMessage) -> CloudEvent:
    """The CloudEvents Pub/Sub binding, structured or binary mode."""
    content_type = message.attribute("content-type")
    if content_type and content_type.split(";")[0].strip().lower() == STRUCTURED:
        try:
            document = parse_json(message.data)
        except InvalidJson as invalid:
            raise InvalidEvent(f"message is {invalid}") from None
        return from_structured(document)
    ce = {k[3:]: v for k, v in message.attributes.items() if k.startswith("ce-")}
    if not ce:
        raise InvalidEvent("message is neither a structured CloudEvent (content-type) nor binary (ce- attributes)")
    if content_type:
        ce.setdefault("datacontenttype", content_type)
    return _build(ce, _decode_data(message.data, content_type, ce.get("id")))


def pubsub_message(push: CloudEvent) -> PubSubMessage:
    """The Pub/Sub message inside functions-framework's `messagePublished` event."""
    envelope = push.get_data()
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise InvalidEvent("not a Pub/Sub push: no 'message' object")
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, TypeError):
        raise InvalidEvent("Pub/Sub message data is not valid base64") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise InvalidEvent("Pub/Sub message attributes must be a map of strings")
    return PubSubMessage(data, dict(attributes), message.get("messageId") or message.get("message_id"))


def from_pubsub_push(push: CloudEvent) -> CloudEvent:
    return from_pubsub_message(pubsub_message(push))


def from_http(content_type: str | None, headers: dict[str, str], body: bytes) -> list[CloudEvent | InvalidEvent]:
    """Events of an HTTP request: structured, batch (each event judged on its own) or binary mode.

    A malformed envelope (not JSON, not an array for a batch, no binding) raises `InvalidEnvelope`; a malformed
    event inside a batch comes back as an `InvalidEvent` in its place, so the caller can answer per event.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if media in (STRUCTURED, BATCH):
        try:
            document = parse_json(body)
        except InvalidJson as invalid:
            raise InvalidEnvelope(f"body is {invalid}") from None
        if media == STRUCTURED:
            if not isinstance(document, dict):
                raise InvalidEnvelope("a structured CloudEvent must be a JSON object")
            return [_judged(from_structured, document)]
        if not isinstance(document, list):
            raise InvalidEnvelope("a CloudEvents batch must be a JSON array")
        return [_judged(from_structured, item) for item in document]
    lowered = {k.lower(): v for k, v in headers.items()}
    ce = {k[3:]: unquote(v) for k, v in lowered.items() if k.startswith("ce-")}
    if ce:
        if content_type:
            ce.setdefault("datacontenttype", content_type)
        return [_judged(lambda _: _build(ce, _decode_data(body, content_type, ce.get("id"))), None)]
    raise InvalidEnvelope(f"Content-Type must be {STRUCTURED} or {BATCH}, or the request must carry ce- headers; "
                          f"got {content_type or 'none'!r}", unsupported=True)


def _judged(decode, document) -> CloudEvent | InvalidEvent:
    try:
        return decode(document)
    except InvalidEvent as invalid:
        return invalid


def event_function(handler):
    """Wraps a functions-framework CloudEvent handler: its logs carry the delivery's trace (the `traceparent`
    extension Eventarc and Pub/Sub push set), and an unexpected error is logged with the message id before it
    is raised again, so Pub/Sub delivers the message again."""
    from functools import wraps

    from energent_shared import logging as log

    logger = log.get_logger("events")

    @wraps(handler)
    def wrapped(push: CloudEvent) -> None:
        token = log.set_trace(log.parse_trace(push.get("traceparent"), None))
        try:
            return handler(push)
        except RetryLater as later:
            logger.warning("event delivered again later: %s", later,
                           extra={"json_fields": {"event_id": push.get("id"), "event_type": push.get("type")}})
            raise
        except Exception:
            logger.exception("event handling failed; it will be redelivered",
                             extra={"json_fields": {"event_id": push.get("id"), "event_type": push.get("type")}})
            raise
        finally:
            log.reset_trace(token)

    return wrapped


def new_event(type_: str, source: str, data: Any, subject: str | None = None) -> CloudEvent:
    attributes = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": rfc3339(utcnow()),
        "datacontenttype": "application/json",
    }
    if subject is not None:
        attributes["subject"] = subject
    return CloudEvent(attributes, data)


def topic_path(topic: str) -> str:
    return topic if topic.startswith("projects/") else f"projects/{settings().project}/topics/{topic}"


def publish(topic: str, event: CloudEvent, *, timeout_s: float = 30.0) -> str:
    """Publish `event` in structured mode; returns the message id once Pub/Sub has it."""
    future = clients.publisher().publish(topic_path(topic), to_structured_json(event),
                                         **{"content-type": STRUCTURED})
    return future.result(timeout=timeout_s)


def publish_raw(topic: str, data: bytes, attributes: dict[str, str], *, timeout_s: float = 30.0) -> str:
    """Publish a message that is not a CloudEvent (e.g. one in Secret Manager's own notification format)."""
    return clients.publisher().publish(topic_path(topic), data, **attributes).result(timeout=timeout_s)


def to_structured_json(event: CloudEvent) -> bytes:
    """The structured JSON form; Decimals stay exact (as strings), bytes travel as `data_base64`."""
    document = dict(event.get_attributes())
    data = event.get_data()
    if isinstance(data, bytes):
        document["data_base64"] = base64.b64encode(data).decode("ascii")
    elif data is not None:
        document["data"] = data
    return json.dumps(document, default=json_default).encode("utf-8")
