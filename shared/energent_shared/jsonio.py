"""Strict JSON in, exact JSON out: what every body and message the platform reads or writes goes through."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any


class InvalidJson(ValueError):
    """Not acceptable JSON; the message says where and why."""


# Orders of magnitude a JSON number may span. Nothing the platform reads comes near (quantities stop at 10^12 with
# six decimals), while Decimal turns an exponent like 1e99999999999999999999 into an error, and one it does accept
# into errors or unbounded work wherever it is rounded or made an int.
MAX_MAGNITUDE = 1000


class OutOfRangeNumber:
    """A JSON number beyond MAX_MAGNITUDE, kept as its text. It is neither a number nor a string, so every check
    of a field's type refuses it: a body answers 400 naming the field, a usage quantity is a rejection reason,
    and the rest of the document is still read."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"out-of-range number {self.text[:16]}{'...' if len(self.text) > 16 else ''}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutOfRangeNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _number(text: str) -> Decimal | OutOfRangeNumber:
    try:
        number = Decimal(text)
    except InvalidOperation:  # an exponent past Decimal's own limits
        return OutOfRangeNumber(text)
    # Zero too: 0e-999999999 is zero, but written out in full it is a billion digits. (The exponent is an int: the
    # text has no NaN or Infinity, which json refuses before this.)
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int) or abs(exponent) > MAX_MAGNITUDE or (
            number and abs(number.adjusted()) > MAX_MAGNITUDE):
        return OutOfRangeNumber(text)
    return number


def _integer(text: str) -> int | OutOfRangeNumber:
    digits = text.lstrip("-")
    return int(text) if len(digits) <= MAX_MAGNITUDE else OutOfRangeNumber(text)


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, OutOfRangeNumber):
        return value.text
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    body = {}
    for key, value in pairs:
        if key in body:
            raise ValueError(f"duplicate key {key!r}")
        body[key] = value
    return body


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys, numbers with a fraction or an exponent as exact
    Decimals, and numbers beyond MAX_MAGNITUDE as OutOfRangeNumber."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_float=_number, parse_int=_integer, parse_constant=_reject_constant,
                          object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise InvalidJson(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidJson("not acceptable JSON: nested too deeply") from None
