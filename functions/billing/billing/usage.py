"""Usage events: what makes one acceptable, and what it counts."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cloudevents.http import CloudEvent

from billing import periods
from billing.money import to_micros
from billing.pricing import PriceBook
from energent_shared.events import parse_time
from energent_shared.firestore import valid_tenant_id

USAGE_TYPE = "ai.energent.usage.v1"
CLOSE_TYPE = "ai.energent.billing.period.close.v1"
MAX_QUANTITY = Decimal(10) ** 12
MAX_FUTURE = datetime.timedelta(minutes=5)


class Rejected(ValueError):
    """Why a usage event cannot be counted."""


@dataclass(frozen=True)
class Usage:
    key: str  # exactly-once identity of (source, id)
    source: str
    event_id: str
    tenant_id: str
    meter: str
    micros: int  # quantity in millionths (0 for count meters: those count events)
    time: datetime.datetime
    period: str  # when it happened


def event_key(source: str, event_id: str) -> str:
    return hashlib.sha256(f"{source}\x00{event_id}".encode()).hexdigest()


def quantity(value: object) -> Decimal:
    """A number or decimal string, 0 ≤ q ≤ 10^12, at most 6 decimal places."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str, float)):
        raise Rejected(f"quantity must be a number or decimal string, got {type(value).__name__}")
    if isinstance(value, float):  # only reachable from callers that parsed JSON loosely
        value = repr(value)
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise Rejected(f"quantity {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise Rejected("quantity must be finite")
    if number < 0:
        raise Rejected("quantity must not be negative")
    if number > MAX_QUANTITY:
        raise Rejected("quantity must be at most 10^12")
    if number != number.quantize(Decimal("0.000001"), rounding="ROUND_DOWN"):
        raise Rejected("quantity has more than 6 decimal places")
    return number


def validate(event: CloudEvent, book: PriceBook, received_at: datetime.datetime) -> Usage:
    """The usage an event reports, or Rejected with the reason. Tenant checks need state; see service."""
    if event["type"] != USAGE_TYPE:
        raise Rejected(f"type must be {USAGE_TYPE}, got {event['type']!r}")
    data = event.get_data()
    if not isinstance(data, dict):
        raise Rejected("data must be a JSON object with tenant_id, meter and quantity")
    tenant_id, meter = data.get("tenant_id"), data.get("meter")
    if tenant_id is None or meter is None:
        raise Rejected(f"data lacks {'tenant_id' if tenant_id is None else 'meter'}")
    if not valid_tenant_id(tenant_id):
        raise Rejected(f"data.tenant_id {tenant_id!r} is not a tenant id")
    if meter not in book.meters:
        raise Rejected(f"unknown meter {meter!r}")
    if book.meters[meter].aggregation == "count":
        micros = 0
    else:
        if "quantity" not in data:
            raise Rejected("data lacks quantity")
        micros = to_micros(quantity(data["quantity"]))
    time = parse_time(event["time"]) if event.get("time") else received_at
    if time > received_at + MAX_FUTURE:
        raise Rejected("time is more than 5 minutes in the future")
    return Usage(event_key(event["source"], event["id"]), event["source"], event["id"], tenant_id, meter, micros,
                 time, periods.of(time))
