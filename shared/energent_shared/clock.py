"""The one clock: time is UTC everywhere (CONTRACT §3)."""

from __future__ import annotations

import datetime


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def rfc3339(moment: datetime.datetime, timespec: str = "auto") -> str:
    """A moment as the API writes it: UTC with a `Z`, e.g. 2026-11-29T21:28:37Z (`timespec` as for isoformat)."""
    return moment.astimezone(datetime.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
