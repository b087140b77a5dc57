"""Billing periods: UTC calendar months, written YYYY-MM."""

from __future__ import annotations

import datetime
import re

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def valid(period: object) -> bool:
    return isinstance(period, str) and _PERIOD.match(period) is not None and period >= "2000-01"


def of(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m")


def start(period: str) -> datetime.datetime:
    year, month = map(int, period.split("-"))
    return datetime.datetime(year, month, 1, tzinfo=datetime.UTC)


def following(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year + month // 12}-{month % 12 + 1:02d}"


def preceding(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def end(period: str) -> datetime.datetime:
    """The first instant after the period."""
    return start(following(period))


def has_ended(period: str, now: datetime.datetime) -> bool:
    return end(period) <= now
