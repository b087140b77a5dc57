"""Spend control over its adapters: budgets (versioned), live spend as the upcoming invoice has it, the checks that
announce threshold crossings and set or lift the block (crossings.py argues why once and in time), and the
scheduled steps: the month's start and the minute's sweep."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from billing import budgets, grants, periods
from billing.crossings import (
    BLOCKED_TYPE,
    CHECK_TYPE,
    CROSSED_TYPE,
    PERIOD_STARTED_TYPE,
    RESCAN_TYPE,
    SOURCE,
    SWEEP_TYPE,
    UNBLOCKED_TYPE,
    check_step,
    wait_until,
)
from billing.errors import Invalid, NotFound
from billing.parties import parties
from billing.records import Tenant
from billing.service import Billing
from billing.store.budgets import Budgets
from billing.store.grants import Grants
from billing.store.spend_blocks import SpendBlocks
from billing.store.spend_checks import SpendChecks
from billing.store.spend_outbox import SpendOutbox, crossing_key, event_id
from energent_shared.clock import rfc3339
from energent_shared.events import new_event, to_structured_json
from energent_shared.firestore import valid_tenant_id
from energent_shared.logging import get_logger, log_event

logger = get_logger("billing")
RESCAN_PAGE = 200
ZERO = Decimal("0.00")


@dataclass
class SpendControl:
    billing: Billing
    budgets: Budgets
    blocks: SpendBlocks
    outbox: SpendOutbox
    checks: SpendChecks
    publish_event: Callable[[bytes], None]  # a structured CloudEvent onto tenant-events
    publish_step: Callable[[str, dict], None]  # (type, data) onto spend-events
    clock: Callable[[], datetime.datetime]
    cache_s: float = 10.0  # CheckWindows.cache_s of the ingesting instances
    margin_s: float = 2.0
    sleep: Callable[[float], None] | None = None

    # --- budgets ------------------------------------------------------------------------------------------------

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self.billing.tenants.get(tenant_id, as_of=self.clock())
        if tenant is None or tenant.get("status") == "deleted":
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant  # type: ignore[return-value]

    def put_budget(self, tenant_id: str, body: dict) -> dict:
        """A new version of the tenant's budget; checked at once (thresholds it has reached already are announced,
        a block set or lifted) and again once every ingesting instance knows of it."""
        wanted = budgets.parse(body)
        self._tenant(tenant_id)
        stored = self.budgets.put(tenant_id, wanted)
        self._check_soon(tenant_id)
        log_event(logger, "budget.set", tenant_id=tenant_id, version=stored["version"], action=stored["action"])
        return budgets.view(tenant_id, stored, self.billing.book.currency)

    def budget(self, tenant_id: str) -> dict:
        found = self.budgets.get(tenant_id)
        if found is None:
            raise NotFound(f"tenant {tenant_id} has no budget")
        return budgets.view(tenant_id, found, self.billing.book.currency)

    def remove_budget(self, tenant_id: str) -> None:
        if self.budgets.remove(tenant_id) is None:
            raise NotFound(f"tenant {tenant_id} has no budget")
        # Checked at once and again once every instance knows: a check that read the budget just before it went
        # may still set a block after the first check looked, and only a later one lifts it.
        self._check_soon(tenant_id)
        log_event(logger, "budget.removed", tenant_id=tenant_id)

    def _check_soon(self, tenant_id: str, again: bool = True) -> None:
        now = self.clock()
        period = periods.of(now)
        self.publish_step(CHECK_TYPE, check_step(tenant_id, period, now))
        if again:
            later = now + datetime.timedelta(seconds=self.cache_s + self.margin_s)
            self.publish_step(CHECK_TYPE, check_step(tenant_id, periods.of(later), later))

    # --- credit grants -------------------------------------------------------------------------------------------

    def add_grant(self, tenant_id: str, body: dict) -> dict:
        """A credit grant; the next invoices take it (grants.py). A grant lowers the spend, so the tenant is checked
        (a block may be lifted)."""
        given = grants.parse(body, self.clock().date())
        self._tenant(tenant_id)
        stored = self._grants().add(tenant_id, given)
        self._check_soon(tenant_id)  # twice, as for a budget removed: a check racing the grant may block after it
        log_event(logger, "grant.added", tenant_id=tenant_id, grant_id=stored["grant_id"], amount=stored["amount"])
        return grants.view(stored, self.billing.book.currency)

    def grants(self, tenant_id: str, size: int = 50, page_token: str | None = None) -> dict:
        """The tenant's grants, oldest first, with what is left of each."""
        self._tenant(tenant_id)
        found = self._grants().listing(tenant_id)
        if page_token:
            keys = [g["grant_id"] for g in found]
            if page_token not in keys:
                raise Invalid("page_token is not valid")
            found = found[keys.index(page_token) + 1:]
        page = found[:size]
        return {"credit_grants": [grants.view(g, self.billing.book.currency) for g in page],
                "next_page_token": page[-1]["grant_id"] if len(found) > size else ""}

    def _grants(self) -> Grants:
        found = self.billing.closer.grants
        if found is None:
            raise RuntimeError("billing was built without credit grants")
        return found

    # --- live spend ---------------------------------------------------------------------------------------------

    def figures(self, tenant: Tenant, period: str) -> dict:
        """The open period's net, VAT and total as its upcoming invoice has them now (grants taken as that
        invoice would take them); zero when the tenant owes nothing yet."""
        draft = self.billing.closer.preview(tenant, period)
        if draft is None:
            vat = parties(self.billing.closer.seller, tenant)["vat"]
            return {"net": str(ZERO), "vat": {**vat, "amount": str(ZERO)}, "total": str(ZERO)}
        return {"net": draft["net"], "vat": dict(draft["vat"]), "total": draft["total"]}

    def spend(self, tenant_id: str) -> dict:
        """`{tenant_id, period, currency, net, vat, total, as_of, budget?}`: every event counted before this call
        is in it (counters are read, strongly consistent, after the request arrived)."""
        now = self.clock()
        tenant = self._tenant(tenant_id)
        period = periods.of(now)
        found = self.figures(tenant, period)
        answer = {"tenant_id": tenant_id, "period": period, "currency": self.billing.book.currency, **found,
                  "as_of": rfc3339(now)}
        budget = self.budgets.get(tenant_id)
        if budget is not None:
            answer["budget"] = budgets.summary(Decimal(found["net"]), budget)
        return answer

    # --- checks -------------------------------------------------------------------------------------------------

    def check(self, tenant_id: str, period: str) -> dict:
        """Announce every threshold of the budget in force that the net of `period` has reached (once per
        version, period and threshold) and, for the open period, set or lift the block. Returns what it found."""
        now = self.clock()
        current = periods.of(now)
        if period not in (current, periods.preceding(current)):
            return {"skipped": "period is past"}
        tenant = self.billing.tenants.get(tenant_id, as_of=now)
        if tenant is None:
            return {"skipped": "no such tenant"}
        closed = self.billing.periods.latest()
        if closed is not None and period <= closed:
            return {"skipped": "period is closed"}
        budget = self.budgets.get(tenant_id)
        net = Decimal(self.figures(tenant, period)["net"]) if budget is not None else ZERO  # type: ignore[arg-type]
        announced = []
        if budget is not None:
            for threshold in budgets.reached(net, budget):
                if self._announce_crossing(tenant_id, period, budget, threshold, net):
                    announced.append(threshold)
        changed = None
        if period == current and tenant.get("status") != "deleted":
            changed = self._block(tenant_id, budgets.blocks(net, budget), period, net, budget)
        return {"net": str(net), "announced": announced, "block_changed": changed}

    def _announce_crossing(self, tenant_id: str, period: str, budget: dict, threshold: int, net: Decimal) -> bool:
        key = crossing_key(tenant_id, period, budget["version"], threshold)
        event = new_event(CROSSED_TYPE, SOURCE, {
            "tenant_id": tenant_id, "period": period, "threshold_pct": threshold, "net": str(net),
            "monthly_limit": budget["monthly_limit"], "currency": self.billing.book.currency,
            "budget_version": budget["version"], "action": budget["action"]}, subject=tenant_id)
        event["id"] = event_id(key)
        if not self.outbox.create_once(key, tenant_id, to_structured_json(event)):
            return False
        log_event(logger, "budget.crossed", tenant_id=tenant_id, period=period, threshold_pct=threshold,
                  version=budget["version"])
        self._publish(key)
        return True

    def _block(self, tenant_id: str, blocked: bool, period: str, net: Decimal, budget: dict | None) -> bool:
        def event(generation: int) -> bytes:
            made = new_event(BLOCKED_TYPE if blocked else UNBLOCKED_TYPE, SOURCE, {
                "tenant_id": tenant_id, "period": period, "generation": generation, "net": str(net),
                "monthly_limit": budget["monthly_limit"] if budget else None}, subject=tenant_id)
            made["id"] = event_id(f"block~{tenant_id}~{generation}")
            return to_structured_json(made)

        key = self.blocks.change(tenant_id, blocked, event)
        if key is None:
            return False
        log_event(logger, "spend.blocked" if blocked else "spend.unblocked", tenant_id=tenant_id, period=period)
        self._publish(key)
        return True

    def _publish(self, key: str, payload: bytes | None = None) -> None:
        """Publish an outbox record and mark it published; on failure it stays pending for the sweep."""
        try:
            record = payload if payload is not None else (self.outbox.get(key) or {})["event"].encode()
            self.publish_event(record)
            self.outbox.published(key)
        except Exception:
            logger.exception("a spend event was not published; the sweep publishes it",
                             extra={"json_fields": {"key": key}})

    # --- steps on spend-events ----------------------------------------------------------------------------------

    def on_step(self, event_type: str, data: object) -> dict | None:
        if event_type == CHECK_TYPE:
            if not isinstance(data, dict) or not valid_tenant_id(data.get("tenant_id")) or not periods.valid(
                    data.get("period")):
                raise Invalid("a check step needs data.tenant_id and data.period")
            wait_until(data.get("not_before"), self.clock, **({"sleep": self.sleep} if self.sleep else {}))
            found = self.check(data["tenant_id"], data["period"])
            window = data.get("window")
            if type(window) is int:
                self.checks.evaluated(data["tenant_id"], window)
            return found
        if event_type == PERIOD_STARTED_TYPE:
            self.rescan("", periods.of(self.clock()))
            return None
        if event_type == RESCAN_TYPE:
            if not isinstance(data, dict) or not isinstance(data.get("after"), str) or not periods.valid(
                    data.get("period")):
                raise Invalid("a rescan step needs data.after and data.period")
            self.rescan(data["after"], data["period"])
            return None
        if event_type == SWEEP_TYPE:
            return self.sweep()
        raise Invalid(f"{str(event_type)[:100]!r} is not a spend step")

    def rescan(self, after: str, period: str) -> None:
        """A new month: every tenant with a budget (or a block) is checked, a page at a time: blocks of the month
        that ended are lifted, thresholds the new month reaches at once (its base fee) are announced."""
        ids, cursor = self.budgets.tenants_after(after or None, RESCAN_PAGE)
        if cursor is not None:
            self.publish_step(RESCAN_TYPE, {"after": cursor, "period": period})
        now = self.clock()
        for tenant_id in ids:
            self.publish_step(CHECK_TYPE, check_step(tenant_id, period, now))

    def sweep(self) -> dict:
        """What a lost message left behind: checks whose window ended a while ago unevaluated, and spend events
        still pending; both are safe to repeat."""
        now = self.clock()
        checks = self.checks.overdue(now - datetime.timedelta(seconds=30))
        for marker in checks:
            self.publish_step(CHECK_TYPE, check_step(marker["tenant_id"], periods.of(marker["not_before"]), now,
                                                     marker["window"]))
        stale = self.outbox.stale(now - datetime.timedelta(seconds=20))
        published = 0
        for key in stale:
            payload = self.outbox.claim(key)
            if payload is not None:
                self._publish(key, payload)
                published += 1
        if checks or published:
            log_event(logger, "spend.swept", checks=len(checks), published=published)
        return {"checks": len(checks), "published": published}

