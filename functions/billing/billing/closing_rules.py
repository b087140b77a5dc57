"""When a close may start and how far it has come: pure rules over close records (`billing_periods/{period}`)."""

from __future__ import annotations

import datetime

from billing.errors import Conflict


def start(period: str, existing: dict | None, latest: dict | None, now: datetime.datetime) -> dict:
    """The close record of `period`: the existing one (a close is started once), else a new `closing` one. Periods
    close in order, so one before the latest close is refused; while the latest is still closing, the new one
    waits for it (`waiting`, `after`) and starts when it ends, so closing months back to back just works."""
    if existing is not None:
        return existing
    if latest is not None and latest["period"] > period:
        raise Conflict(f"periods close in order and {latest['period']} is already closed; usage of {period} is "
                       "billed as late usage on the next invoice")
    return {"period": period, "status": "closing", "started_at": now, "closed_at": None, "tenants": 0, "drafted": 0,
            "issued": 0, "held": 0, "steps_stored": 0, "chunks_drafted": 0, "chunks_total": None,
            "numbered_all": False, "waiting": latest is not None and latest["status"] != "closed",
            "after": latest["period"] if latest else None}


def finished(record: dict) -> bool:
    """Every chunk numbered: every invoice of the period is issued (the close is `closed`)."""
    return bool(record.get("numbered_all"))


def archived(record: dict) -> bool:
    """Every numbering step's documents stored in the archive and announced (this follows the close: rendering
    the documents is the close's heaviest work, and a document asked for before is stored from its issued record
    when it is read)."""
    return bool(record.get("numbered_all")) and record.get("steps_stored", 0) >= (record.get("chunks_total") or 0)


def progress(period: str, record: dict | None) -> dict:
    """What GET /v1/billing/periods/{period} shows; `drafted` includes the drafts `held` for a billing profile."""
    from energent_shared.clock import rfc3339

    if record is None:
        return {"period": period, "status": "open", "tenants": 0, "drafted": 0, "issued": 0, "held": 0}
    return {"period": period, "status": record["status"], "tenants": record["tenants"],
            "drafted": record["drafted"], "issued": record["issued"], "held": record.get("held", 0),
            "started_at": rfc3339(record["started_at"], "seconds"),
            "closed_at": rfc3339(record["closed_at"], "seconds") if record.get("closed_at") else None}
