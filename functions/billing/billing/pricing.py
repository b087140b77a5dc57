"""The price book (config/pricing.json): meters, plans per tier, graduated overage. Validated on load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from billing.money import plain

AGGREGATIONS = ("sum", "count", "max")


class PriceBookError(ValueError):
    """The price book is wrong; the message names the field."""


@dataclass(frozen=True)
class Meter:
    name: str
    aggregation: str
    unit: str
    description: str


@dataclass(frozen=True)
class Band:
    up_to: Decimal | None  # in quantity above the included amount; None: no upper bound
    unit_price: Decimal


@dataclass(frozen=True)
class Plan:
    tier: str
    base_fee: Decimal
    included: dict[str, Decimal]
    overage: dict[str, tuple[Band, ...]]


@dataclass(frozen=True)
class PriceBook:
    version: str
    currency: str
    meters: dict[str, Meter]
    plans: dict[str, Plan]

    def plan(self, tier: str) -> Plan:
        if tier not in self.plans:
            raise PriceBookError(f"plans.{tier}: no plan for this tier")
        return self.plans[tier]


def _decimal(value: object, where: str, *, allow_zero: bool = True) -> Decimal:
    if not isinstance(value, str):
        raise PriceBookError(f"{where}: must be a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise PriceBookError(f"{where}: {value!r} is not a decimal") from None
    if not number.is_finite() or number < 0 or (number == 0 and not allow_zero):
        raise PriceBookError(f"{where}: must be a finite, non-negative decimal, got {value!r}")
    return number


def _object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise PriceBookError(f"{where}: must be an object")
    return value


def parse(document: object) -> PriceBook:
    root = _object(document, "price book")
    currency = root.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise PriceBookError(f"currency: must be an ISO 4217 code such as 'EUR', got {currency!r}")
    meters = {}
    for name, spec in _object(root.get("meters"), "meters").items():
        spec = _object(spec, f"meters.{name}")
        if spec.get("aggregation") not in AGGREGATIONS:
            raise PriceBookError(f"meters.{name}.aggregation: must be one of {', '.join(AGGREGATIONS)}, "
                                 f"got {spec.get('aggregation')!r}")
        if not isinstance(spec.get("unit"), str) or not spec["unit"]:
            raise PriceBookError(f"meters.{name}.unit: must be a non-empty string")
        meters[name] = Meter(name, spec["aggregation"], spec["unit"], str(spec.get("description", name)))
    if not meters:
        raise PriceBookError("meters: at least one meter is required")
    plans = {}
    for tier, spec in _object(root.get("plans"), "plans").items():
        where = f"plans.{tier}"
        spec = _object(spec, where)
        included = {m: _decimal(v, f"{where}.included.{m}") for m, v in
                    _object(spec.get("included", {}), f"{where}.included").items()}
        overage = {}
        for meter, bands in _object(spec.get("overage", {}), f"{where}.overage").items():
            if not isinstance(bands, list) or not bands:
                raise PriceBookError(f"{where}.overage.{meter}: must be a non-empty list of bands")
            parsed, previous = [], Decimal(0)
            for index, band in enumerate(bands):
                at = f"{where}.overage.{meter}[{index}]"
                band = _object(band, at)
                up_to = band.get("up_to")
                bound = None if up_to is None else _decimal(up_to, f"{at}.up_to", allow_zero=False)
                if bound is not None and bound <= previous:
                    raise PriceBookError(f"{at}.up_to: bands must rise; {plain(bound)} is not above {plain(previous)}")
                if bound is None and index != len(bands) - 1:
                    raise PriceBookError(f"{at}.up_to: only the last band may be unbounded (null)")
                parsed.append(Band(bound, _decimal(band.get("unit_price"), f"{at}.unit_price")))
                previous = bound if bound is not None else previous
            if parsed[-1].up_to is not None:
                raise PriceBookError(f"{where}.overage.{meter}: the last band must be unbounded (up_to: null)")
            overage[meter] = tuple(parsed)
        for meter in (*included, *overage):
            if meter not in meters:
                raise PriceBookError(f"{where}: meter {meter!r} is not defined under meters")
        plans[tier] = Plan(tier, _decimal(spec.get("base_fee"), f"{where}.base_fee"), included, overage)
    return PriceBook(str(root.get("version", "")), currency, meters, plans)


def load(path: Path) -> PriceBook:
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PriceBookError(f"{path.name} is not valid JSON: {error}") from None
    return parse(document)


def graduated(quantity: Decimal, included: Decimal, bands: tuple[Band, ...]) -> Decimal:
    """The overage amount, unrounded: band bounds count quantity above `included`."""
    over = max(Decimal(0), quantity - included)
    amount, lower = Decimal(0), Decimal(0)
    for band in bands:
        upper = over if band.up_to is None else min(over, band.up_to)
        if upper > lower:
            amount += (upper - lower) * band.unit_price
        if band.up_to is None or over <= band.up_to:
            break
        lower = band.up_to
    return amount


def split(start: Decimal, end: Decimal, bands: tuple[Band, ...]) -> list[tuple[Decimal, Decimal]]:
    """The overage from position `start` to `end` (quantities above the allowance) as (quantity, unit price) per
    band it crosses; empty when `end` <= `start`."""
    used, lower = [], Decimal(0)
    for band in bands:
        upper = band.up_to
        low, high = max(start, lower), end if upper is None else min(end, upper)
        if high > low:
            used.append((high - low, band.unit_price))
        if upper is None or end <= upper:
            break
        lower = upper
    return used


def price_at(position: Decimal, bands: tuple[Band, ...]) -> Decimal:
    """The unit price of the band that holds `position` (what the next unit above it would cost)."""
    for band in bands:
        if band.up_to is None or position < band.up_to:
            return band.unit_price
    return bands[-1].unit_price


@dataclass(frozen=True)
class Priced:
    """Overage priced between two positions above the allowance, as an invoice line shows it: `billable_quantity`
    and `unit_price` (one band) or `bands`, whose products add up to `exact`, the amount before rounding."""

    billable: Decimal
    parts: tuple[tuple[Decimal, Decimal], ...]
    price_if_none: Decimal

    @property
    def exact(self) -> Decimal:
        return sum((quantity * price for quantity, price in self.parts), Decimal(0))

    def fields(self) -> dict:
        if len(self.parts) > 1:
            return {"billable_quantity": plain(self.billable),
                    "bands": [{"quantity": plain(q), "unit_price": plain_price(p)} for q, p in self.parts]}
        price = self.parts[0][1] if self.parts else self.price_if_none
        return {"billable_quantity": plain(self.billable), "unit_price": plain_price(price)}


def priced(before: Decimal, after: Decimal, included: Decimal, bands: tuple[Band, ...]) -> Priced:
    """What raising a quantity from `before` to `after` costs above `included`: graduated(after) -
    graduated(before), band by band (before = 0 prices the whole quantity)."""
    start, end = max(Decimal(0), before - included), max(Decimal(0), after - included)
    return Priced(end - start, tuple(split(start, end, bands)), price_at(start, bands))


def plain_price(price: Decimal) -> str:
    """A unit price with at least two decimals (0.0080 stays as configured, 20 becomes 20.00)."""
    exponent = price.as_tuple().exponent
    return str(price) if isinstance(exponent, int) and exponent <= -2 else str(price.quantize(Decimal("0.01")))


def bands_of(plan: Plan, meter: str) -> tuple[Band, ...]:
    return plan.overage.get(meter, (Band(None, Decimal(0)),))
