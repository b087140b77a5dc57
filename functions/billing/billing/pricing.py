"""The price book (config/pricing.json): meters, plans per tier, graduated overage. Validated on load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from billing.money import cents, plain

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


def usage_line(book: PriceBook, plan: Plan, meter: str, quantity: Decimal, included: Decimal | None = None,
               when: str = "") -> dict:
    """One invoice line per meter: its whole graduated amount above `included` (the plan's by default), rounded
    once."""
    definition = book.meters[meter]
    included = plan.included.get(meter, Decimal(0)) if included is None else included
    bands = bands_of(plan, meter)
    amount = cents(graduated(quantity, included, bands))
    return {"kind": "usage", "meter": meter, "quantity": plain(quantity), "unit": definition.unit,
            "amount": str(amount), "included": plain(included), **priced_with(quantity, included, bands),
            "description": f"{definition.description}{', ' + when if when else ''} "
                           f"({plain(included)} {definition.unit} included)"}


def priced_with(quantity: Decimal, included: Decimal, bands: tuple[Band, ...]) -> dict:
    """What a usage line was priced with (§7.3): `unit_price` when one price applies, else `bands`, the quantity
    above the allowance charged at each price."""
    over = max(Decimal(0), quantity - included)
    used, lower = [], Decimal(0)
    for band in bands:
        upper = over if band.up_to is None else min(over, band.up_to)
        if upper > lower:
            used.append({"quantity": plain(upper - lower), "unit_price": plain_price(band.unit_price)})
        if band.up_to is None or over <= band.up_to:
            break
        lower = band.up_to
    if len(used) > 1:
        return {"bands": used}
    return {"unit_price": used[0]["unit_price"] if used else plain_price(bands[0].unit_price)}


def plain_price(price: Decimal) -> str:
    """A unit price with at least two decimals (0.0080 stays as configured, 20 becomes 20.00)."""
    return str(price) if price.as_tuple().exponent <= -2 else str(price.quantize(Decimal("0.01")))


def bands_of(plan: Plan, meter: str) -> tuple[Band, ...]:
    return plan.overage.get(meter, (Band(None, Decimal(0)),))
