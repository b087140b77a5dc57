"""Budget crossings and the spend block: announced exactly once, within a minute of the usage, without slowing usage.

How a check is triggered (the ingest path reads nothing per event and writes no shared document)
------------------------------------------------------------------------------------------------
Time is cut into windows of WINDOW seconds. After an ingestion has counted an event of tenant T (its counter batch
committed), it makes sure a check marker `spend_checks/{T}~{w}` exists for the window w it is in now: each instance
remembers the markers it has made or seen, so it tries `create` once per tenant and window, not once per event,
and only for tenants with a budget (a per-instance cache of whether T has a budget, kept CACHE seconds). The one
`create` that succeeds publishes a check step for w on spend-events, to run once w has ended (plus MARGIN for the
instances' clocks). The check reads T's counters, as the upcoming invoice does, so it sees every event committed
before it starts — and every event that could have relied on w's marker was committed before its ingestion looked
at its clock inside w, so before w ended. The last event of a burst is therefore always followed by a check that
sees it: no trailing evaluation is lost. Events no marker covers are those of an instance whose budget cache still
said "no budget": setting a budget publishes a check at once and another CACHE + MARGIN later, after every such
cache entry has expired.

Why each crossing is announced exactly once
-------------------------------------------
A check computes the net and, for every threshold it reaches, creates `spend_outbox/crossed~T~P~vV~t` for (tenant,
period, budget version, threshold). `create` succeeds once, whatever number of checks, instances and redeliveries
race to it; only the creator publishes the event (its id derived from the key), then marks the record published.
A creator that dies before publishing leaves the record pending, and the sweep (every minute) claims and publishes
it. The one case of a second delivery is a publish that succeeded followed by a failed mark: the sweep publishes
the same event, same id, again (consumers, webhooks included, key on the id). A new budget version or a new period
is a new key: it starts afresh, and thresholds already reached when a version is set are announced by its first
check.

Why within 60 seconds
---------------------
An event accepted at t lies in a window ending by t + WINDOW; its check runs at that end + MARGIN (a delivery of
the step that arrives earlier waits for it) and takes about a second: WINDOW 10 s + MARGIN 2 s + the check,
against 60 s. Should a step be lost (a crash between marker and publish), the minute's sweep publishes the checks
of markers left unevaluated, and the pending crossings.

The block follows the same checks: with action `block` and the net at or above the limit the tenant is blocked,
otherwise not; each change is a new generation of `tenants/{T}/spend_state/block` whose event goes out through the
same outbox, and the provisioner applies only a generation newer than its own. Removing or raising the budget
publishes a check at once; at the start of a month a scheduled step checks every tenant with a budget.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from billing import periods
from billing.errors import Invalid
from billing.store.budgets import Budgets
from billing.store.spend_checks import SpendChecks
from energent_shared.clock import rfc3339
from energent_shared.events import parse_time
from energent_shared.logging import get_logger

logger = get_logger("billing")

CHECK_TYPE = "ai.energent.billing.spend.check.v1"  # {tenant_id, period, not_before, window?}
PERIOD_STARTED_TYPE = "ai.energent.billing.spend.period.started.v1"  # Cloud Scheduler, the 1st of each month
RESCAN_TYPE = "ai.energent.billing.spend.rescan.v1"  # {after, period}: the next page of tenants with a budget
SWEEP_TYPE = "ai.energent.billing.spend.sweep.v1"  # Cloud Scheduler, every minute
CROSSED_TYPE = "ai.energent.billing.budget.crossed.v1"
BLOCKED_TYPE = "ai.energent.billing.spend.blocked.v1"
UNBLOCKED_TYPE = "ai.energent.billing.spend.unblocked.v1"
SOURCE = "//energent.ai/billing"
MAX_WAIT_S = 60.0  # a step delivered earlier than this before its time waits in the handler


def window_of(moment: datetime.datetime, window_s: float) -> int:
    return int(moment.timestamp() // window_s)


def window_end(window: int, window_s: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp((window + 1) * window_s, datetime.UTC)


def check_step(tenant_id: str, period: str, not_before: datetime.datetime, window: int | None = None) -> dict:
    return {"tenant_id": tenant_id, "period": period, "not_before": rfc3339(not_before),
            **({"window": window} if window is not None else {})}


def wait_until(not_before: object, clock: Callable[[], datetime.datetime],
               sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait for a step's time; a step far ahead of it (more than MAX_WAIT_S) is refused as malformed."""
    if not isinstance(not_before, str):
        return
    try:
        due = parse_time(not_before)
    except ValueError:
        return
    delay = (due - clock()).total_seconds()
    if delay > MAX_WAIT_S:
        raise Invalid(f"a step for {not_before} is more than {MAX_WAIT_S:.0f} s ahead")
    if delay > 0:
        sleep(delay)


@dataclass
class CheckWindows:
    """The ingest path's part: one check marker per tenant and window, made by whichever instance gets there first.
    Never raises: the event is counted already, and a check that cannot be scheduled now is scheduled by the next
    event or found by the sweep."""

    checks: SpendChecks
    budgets: Budgets
    publish_step: Callable[[str, dict], None]
    clock: Callable[[], datetime.datetime]
    window_s: float = 10.0
    margin_s: float = 2.0
    cache_s: float = 10.0
    _seen: dict[tuple[str, int], None] = field(default_factory=dict)
    _watched: dict[str, tuple[float, bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def has_budget(self, tenant_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            known = self._watched.get(tenant_id)
        if known is not None and known[0] > now:
            return known[1]
        # The entry lasts CACHE from before the read: a budget set after that moment is seen by every instance
        # within CACHE of being set, which the budget's delayed check covers.
        found = self.budgets.get(tenant_id) is not None
        with self._lock:
            self._watched[tenant_id] = (now + self.cache_s, found)
            if len(self._watched) > 100_000:
                self._watched.clear()
        return found

    def accepted(self, tenant_id: str) -> None:
        try:
            now = self.clock()
            window = window_of(now, self.window_s)
            key = (tenant_id, window)
            if key in self._seen or not self.has_budget(tenant_id):
                return
            not_before = window_end(window, self.window_s) + datetime.timedelta(seconds=self.margin_s)
            if self.checks.mark(tenant_id, window, not_before):
                self.publish_step(CHECK_TYPE, check_step(tenant_id, periods.of(now), not_before, window))
            with self._lock:
                self._seen[key] = None
                if len(self._seen) > 10_000:  # the oldest windows go first
                    for old in list(self._seen)[:5_000]:
                        del self._seen[old]
        except Exception:
            logger.exception("a spend check could not be scheduled; the next event or the sweep will",
                             extra={"json_fields": {"tenant_id": tenant_id}})
