"""The one clock: time is UTC everywhere (CONTRACT §3)."""

from __future__ import annotations

import datetime


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
