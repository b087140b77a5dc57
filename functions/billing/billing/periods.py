"""Billing periods: UTC calendar months, written exactly YYYY-MM, and their days."""

from __future__ import annotations

import calendar
import datetime
import re

_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")  # ASCII digits only, and nothing after (fullmatch)
FIRST, LAST = "2000-01", "2999-12"  # periods named in requests; usage of any earlier time is billed as late usage


def valid(period: object) -> bool:
    return isinstance(period, str) and _PERIOD.fullmatch(period) is not None and FIRST <= period <= LAST


def of(moment: datetime.datetime | datetime.date) -> str:
    if isinstance(moment, datetime.datetime):
        moment = moment.astimezone(datetime.UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def _year_month(period: str) -> tuple[int, int]:
    year, month = period.split("-")
    return int(year), int(month)


def start(period: str) -> datetime.datetime:
    year, month = _year_month(period)
    return datetime.datetime(year, month, 1, tzinfo=datetime.UTC)


def following(period: str) -> str:
    year, month = _year_month(period)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def preceding(period: str) -> str:
    year, month = _year_month(period)
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def end(period: str) -> datetime.datetime:
    """The first instant after the period."""
    return start(following(period))


def has_ended(period: str, now: datetime.datetime) -> bool:
    return end(period) <= now


def days_in(period: str) -> int:
    return calendar.monthrange(*_year_month(period))[1]


def days(period: str) -> list[datetime.date]:
    first = start(period).date()
    return [first + datetime.timedelta(days=n) for n in range(days_in(period))]


def between(first: str, last: str) -> list[str]:
    """Every period from `first` through `last` (empty if `last` comes first)."""
    found = []
    while first <= last:
        found.append(first)
        first = following(first)
    return found
