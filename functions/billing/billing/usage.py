"""Usage events: what makes one acceptable, and what it counts."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cloudevents.http import CloudEvent

from billing.money import from_micros, to_micros
from billing.pricing import PriceBook
from energent_shared.events import parse_time
from energent_shared.firestore import valid_tenant_id
from energent_shared.jsonio import OutOfRangeNumber

USAGE_TYPE = "ai.energent.usage.v1"
CLOSE_TYPE = "ai.energent.billing.period.close.v1"
MAX_QUANTITY = Decimal(10) ** 12
MAX_FUTURE = datetime.timedelta(minutes=5)
_DECIMAL_STRING = re.compile(r"[0-9]+(\.[0-9]{1,6})?")  # ASCII only: no signs, blanks, "_" or other digits


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
    time_given: bool  # False: the event had no time and `time` is when it was received

    @property
    def period(self) -> str:
        return f"{self.time.year:04d}-{self.time.month:02d}"  # zero-padded: strftime writes year 999 as "999"

    @property
    def day(self) -> str:
        return f"{self.period}-{self.time.day:02d}"

    def differences(self, first: dict) -> list[str]:
        """What differs from the first event counted under the same (source, id); [] for a true resend. A time
        that was filled in on receipt is no part of the event, so it is compared only when both carried one."""
        mine = (("tenant_id", "tenant_id", self.tenant_id), ("meter", "meter", self.meter),
                ("quantity", "micros", self.micros))
        found = [name for name, field, value in mine if first.get(field) != value]
        if self.time_given and first.get("time_given") and first.get("time") != self.time:
            found.append("time")
        return found


def event_key(source: str, event_id: str) -> str:
    """The exactly-once identity of (source, id): a JSON array encodes the pair injectively."""
    return hashlib.sha256(json.dumps([source, event_id]).encode()).hexdigest()


def quantity(value: object) -> Decimal:
    """A JSON number or an ASCII decimal string, 0 ≤ q ≤ 10^12, at most 6 decimal places."""
    if isinstance(value, OutOfRangeNumber):
        raise Rejected(f"quantity {value.text[:32]} is out of range (at most 10^12)")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str, float)):
        raise Rejected(f"quantity must be a number or decimal string, got {type(value).__name__}")
    if isinstance(value, float):  # only reachable from callers that parsed JSON loosely
        value = Decimal(repr(value))
    if isinstance(value, str) and (len(value) > 32 or not _DECIMAL_STRING.fullmatch(value)):
        raise Rejected(f"quantity {value[:32]!r} is not a decimal string like 12 or 12.5 (ASCII digits, at most "
                       "6 decimal places)")
    try:
        number = Decimal(value)
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
    if not isinstance(meter, str):
        raise Rejected(f"data.meter must be a string, got {type(meter).__name__}")
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
                 time, bool(event.get("time")))


@dataclass
class Totals:
    """What was counted of one meter: events, the sum and the maximum of their quantities (in millionths)."""

    count: int = 0
    micros: int = 0
    max_micros: int = 0

    def add(self, other: Totals) -> None:
        self.count += other.count
        self.micros += other.micros
        self.max_micros = max(self.max_micros, other.max_micros)

    def minus(self, billed: Totals) -> Totals:
        """What was counted after `billed` was taken (the maximum as it stands now)."""
        return Totals(self.count - billed.count, self.micros - billed.micros, self.max_micros)

    def quantity(self, aggregation: str) -> Decimal:
        if aggregation == "count":
            return Decimal(self.count)
        return from_micros(self.max_micros if aggregation == "max" else self.micros)

    def as_dict(self) -> dict:
        # The sum can pass Firestore's int64 once shards are added up: stored as a decimal string.
        return {"count": self.count, "micros": str(self.micros), "max_micros": self.max_micros}

    @classmethod
    def of(cls, data: dict | None) -> Totals:
        data = data or {}
        return cls(int(data.get("count", 0)), int(data.get("micros", 0)), int(data.get("max_micros", 0)))


DayTotals = dict[tuple[str, str], Totals]  # (YYYY-MM-DD, meter) -> totals


def total(days: DayTotals, meter: str, within=lambda day: True) -> Totals:
    found = Totals()
    for (day, name), totals in days.items():
        if name == meter and within(day):
            found.add(totals)
    return found
