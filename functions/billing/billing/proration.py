"""Which plan each day of a period is billed under, as runs of days called segments. Pure.

A day is billed under the tier in force at the end of that UTC day: the last change recorded before the next
midnight. Days before the tenant existed take the tier it was created with. The base fee is owed for the days
from `billing_start` through the day of deletion; days after the deletion are not billed at all.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing import periods
from billing.money import MICRO, cents

ONE_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Segment:
    """A run of consecutive billed days under one tier."""

    first: datetime.date
    last: datetime.date
    tier: str
    owed_days: int  # of these days, those on which the base fee is owed
    days_in_month: int

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def owed(self) -> bool:
        return self.owed_days > 0

    def holds(self, day: str) -> bool:
        return self.first.isoformat() <= day <= self.last.isoformat()

    def prorate(self, amount: Decimal) -> Decimal:
        """`amount` * owed days / days in the month, unrounded."""
        return amount * self.owed_days / self.days_in_month

    def allowance(self, included: Decimal) -> Decimal:
        """An included quantity prorated exactly, to millionths."""
        return self.prorate(included).quantize(MICRO, rounding="ROUND_HALF_UP")

    def describe(self) -> str:
        if self.first == self.last:
            return f"{self.first.day} {self.first:%b %Y}"
        same_month = f"{self.first.day}" if self.first.month == self.last.month else f"{self.first.day} {self.first:%b}"
        return f"{same_month}\N{EN DASH}{self.last.day} {self.last:%b %Y}"


def _moment(value: object) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(datetime.UTC)


def tier_history(tenant: Mapping[str, Any]) -> list[tuple[datetime.datetime, str]]:
    """(from, tier), oldest first; a record without history has had its tier since it was created."""
    history = [(_moment(change["at"]), change["tier"]) for change in tenant.get("tier_history") or ()]
    if not history:
        created = tenant.get("created_at")
        history = [(_moment(created) if created else datetime.datetime.min.replace(tzinfo=datetime.UTC),
                     tenant["tier"])]
    return sorted(history, key=lambda change: change[0])


def tier_on(history: list[tuple[datetime.datetime, str]], day: datetime.date) -> str:
    """The tier in force at the end of `day`."""
    midnight = datetime.datetime.combine(day + ONE_DAY, datetime.time(), datetime.UTC)
    tier = history[0][1]
    for at, changed_to in history:
        if at >= midnight:
            break
        tier = changed_to
    return tier


def billing_start(tenant: Mapping[str, Any]) -> datetime.date | None:
    value = tenant.get("billing_start")
    return datetime.date.fromisoformat(value) if value else None


def deletion_day(tenant: Mapping[str, Any]) -> datetime.date | None:
    deleted_at = tenant.get("deleted_at")
    return _moment(deleted_at).date() if deleted_at else None


def segments(tenant: Mapping[str, Any], period: str) -> list[Segment]:
    """The period's billed days (through the day of deletion) as runs of consecutive days under one tier."""
    history, start, deleted = tier_history(tenant), billing_start(tenant), deletion_day(tenant)
    runs: list[Segment] = []
    dim = periods.days_in(period)
    for day in periods.days(period):
        if deleted is not None and day > deleted:
            break
        tier, owed = tier_on(history, day), int(start is not None and start <= day)
        if runs and runs[-1].tier == tier:
            runs[-1] = Segment(runs[-1].first, day, tier, runs[-1].owed_days + owed, dim)
        else:
            runs.append(Segment(day, day, tier, owed, dim))
    return runs


def base_fee_owed(tenant: Mapping[str, Any], period: str, base_fee_of) -> Decimal:
    """The period's base fee as its invoice lines show it: each segment's share rounded to cents, added up."""
    return sum((cents(segment.prorate(base_fee_of(segment.tier))) for segment in segments(tenant, period)
                if segment.owed), Decimal("0.00"))
