"""The daily rollup: every tenant's counters of days that ended more than a day ago are moved into their periods'
rollups (store/usage_counters.py), so a draft, the upcoming invoice and live spend read a period's rollup and the
few counters written since — not one counter per day, meter and shard.

Cloud Scheduler publishes ROLLUP_TYPE once a day; the step walks the tenants a page at a time, each page handing on
to the next before it rolls up its own (a marker per page makes a redelivered page hand on once, so the walk never
doubles). Nothing depends on when, or whether, a rollup runs: closes are exact over counters and rollups alike
(closing.py), and a tenant left out today is rolled up tomorrow with the rest.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from billing.errors import Invalid
from billing.store.tenant_records import TenantCache
from billing.store.usage_counters import UsageStore
from energent_shared.firestore import valid_tenant_id
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")

ROLLUP_TYPE = "ai.energent.billing.usage.rollup.v1"  # Cloud Scheduler daily: {}; each page: {before, after}
PAGE = 100
WORKERS = 8
SETTLED = datetime.timedelta(days=1)  # a day's counters are rolled up once the day has been over this long
RUNS = "usage_rollup_runs"


def cutoff(now: datetime.datetime) -> str:
    """The first day not rolled up at `now`: days before it ended at least SETTLED ago."""
    return (now - SETTLED).date().isoformat()


@dataclass
class Rollups:
    usage: UsageStore
    tenants: TenantCache
    dispatch: Callable[[str, dict], None]  # (event type, data): publish to billing-events
    clock: Callable[[], datetime.datetime]

    def on_event(self, data: Any) -> None:
        """A page of the day's rollup (the scheduler's message is the first page)."""
        data = data if isinstance(data, dict) else {}
        before = data.get("before") or cutoff(self.clock())
        after = data.get("after") or ""
        if not isinstance(before, str) or not _is_day(before):
            raise Invalid(f"a rollup step needs data.before as YYYY-MM-DD, got {str(before)[:20]!r}")
        if not isinstance(after, str) or (after and not valid_tenant_id(after)):
            raise Invalid("a rollup step's data.after must be a tenant id")
        page = self.tenants.ids_after(after or None, PAGE)
        if len(page) == PAGE:
            self._hand_on(before, page[-1])
        with ThreadPoolExecutor(WORKERS) as pool:
            moved = sum(pool.map(lambda tenant_id: self.usage.roll_up(tenant_id, before), page))
        log_event(logger, "usage.rolled_up", before=before, after=after, tenants=len(page), counters=moved)

    def _hand_on(self, before: str, after: str) -> None:
        """Publish the next page once, however often this page is delivered. The marker says whether it was
        published, so a delivery that stopped in between (a failed publish, a crash) is finished by the next one; two
        deliveries at the same instant may both publish, which costs one page rolled up twice (moving nothing)."""
        from google.api_core.exceptions import AlreadyExists

        marker = self.usage.db.collection(RUNS).document(f"{before}~{after}")
        try:
            marker.create({"before": before, "after": after, "at": self.clock(), "published": False,
                           "expire_at": self.clock() + datetime.timedelta(days=7)})
        except AlreadyExists:
            if (marker.get().to_dict() or {}).get("published"):
                return
        self.dispatch(ROLLUP_TYPE, {"before": before, "after": after})
        marker.update({"published": True})


def _is_day(value: str) -> bool:
    try:
        return datetime.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False
