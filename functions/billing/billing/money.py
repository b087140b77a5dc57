"""Money and quantities as exact decimals: never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
MICROS_PER_UNIT = 1_000_000


def cents(amount: Decimal) -> Decimal:
    """Round once, half-up, to cents."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_micros(quantity: Decimal) -> int:
    """Quantities (at most 6 decimal places) are stored as exact integer millionths."""
    return int(quantity * MICROS_PER_UNIT)


def from_micros(micros: int) -> Decimal:
    return (Decimal(micros) / MICROS_PER_UNIT).quantize(MICRO)


def plain(value: Decimal) -> str:
    """A decimal as JSON carries it: a string without exponent, trailing zeros of a fraction dropped."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
