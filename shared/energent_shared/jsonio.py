"""Strict JSON in, exact JSON out: what every body and message the platform reads or writes goes through."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class InvalidJson(ValueError):
    """Not acceptable JSON; the message says where and why."""


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
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
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys, numbers with a fraction as exact Decimals."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant,
                          object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise InvalidJson(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidJson("not acceptable JSON: nested too deeply") from None
