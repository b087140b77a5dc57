"""Budgets, as pure rules: what a PUT may say, which thresholds a net has reached, and the budget's state now.

A budget is per tenant and versioned: every PUT makes the next version (crossings are announced once per version,
period and threshold). `monthly_limit` is a net amount in the price book's currency; `thresholds` are percentages
of it (1-1000); `action` is `notify` or `block` (block: from 100 % of the limit, whatever `thresholds` holds, the
tenant's concurrent-workflow limit is 0 until the limit is raised above the spend, the budget removed, or a new
period begins).

State, from the net now: `blocked` (action block and net >= limit), else `exceeded` (net >= limit), else `warning`
(a threshold below 100 reached), else `ok`. `used_pct` = net / limit x 100, two decimals, half-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from energent_shared import fields
from energent_shared.errors import Invalid

DEFAULT_THRESHOLDS = (50, 80, 100)
ACTIONS = ("notify", "block")
MAX_THRESHOLDS = 20
MAX_LIMIT = Decimal(10) ** 12
_AMOUNT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,2})?")
HUNDRED = Decimal(100)


def amount(value: object, name: str, maximum: Decimal = MAX_LIMIT) -> Decimal:
    """A money amount of a request body: a decimal string such as "250.00" (a JSON number is taken too), > 0, at
    most two decimals and at most `maximum`."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise Invalid(f"{name} must be a decimal string such as \"250.00\"")
    if isinstance(value, str) and not _AMOUNT.fullmatch(value):
        raise Invalid(f"{name} must be a decimal string such as \"250.00\" (ASCII digits, at most two decimals)")
    try:
        number = Decimal(value)
        exact = number.is_finite() and number == number.quantize(Decimal("0.01"))
    except InvalidOperation:
        exact = False
    if not exact or number > maximum:
        raise Invalid(f"{name} must be an amount of at most {maximum:,} with at most two decimals")
    if number <= 0:
        raise Invalid(f"{name} must be more than 0")
    return number.quantize(Decimal("0.01"))


def parse(body: Mapping[str, object]) -> dict:
    """The budget a PUT asks for: {monthly_limit (str, two decimals), thresholds (sorted, distinct), action}."""
    fields.only(body, {"monthly_limit", "thresholds", "action"})
    limit = amount(body.get("monthly_limit"), "monthly_limit")
    thresholds = body.get("thresholds", list(DEFAULT_THRESHOLDS))
    if thresholds is None:
        thresholds = list(DEFAULT_THRESHOLDS)
    if not isinstance(thresholds, list) or len(thresholds) > MAX_THRESHOLDS:
        raise Invalid(f"thresholds must be a list of at most {MAX_THRESHOLDS} whole percentages from 1 to 1000")
    for threshold in thresholds:
        if type(threshold) is not int or not 1 <= threshold <= 1000:
            raise Invalid(f"thresholds must be whole percentages from 1 to 1000, got {str(threshold)[:20]!r}")
    action = body.get("action", "notify")
    if action is None:
        action = "notify"
    if action not in ACTIONS:
        raise Invalid(f"action must be notify or block, got {str(action)[:20]!r}")
    return {"monthly_limit": str(limit), "thresholds": sorted(set(thresholds)), "action": action}


def reached(net: Decimal, budget: Mapping) -> list[int]:
    """The thresholds of `budget` that `net` has reached (net >= limit x threshold / 100)."""
    limit = Decimal(budget["monthly_limit"])
    return [t for t in budget["thresholds"] if net * HUNDRED >= limit * t]


def blocks(net: Decimal, budget: Mapping | None) -> bool:
    """Whether the tenant is to be blocked: a budget with action block whose limit the net has reached."""
    if not budget or budget.get("action") != "block":
        return False
    return net >= Decimal(budget["monthly_limit"])


def used_pct(net: Decimal, limit: Decimal) -> str:
    return str((net * HUNDRED / limit).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def state(net: Decimal, budget: Mapping) -> str:
    limit = Decimal(budget["monthly_limit"])
    if net >= limit:
        return "blocked" if budget.get("action") == "block" else "exceeded"
    if any(t < 100 for t in reached(net, budget)):
        return "warning"
    return "ok"


def summary(net: Decimal, budget: Mapping) -> dict:
    """What `spend` shows of the budget: {monthly_limit, used_pct, state}, and the version, thresholds, action."""
    limit = Decimal(budget["monthly_limit"])
    return {"monthly_limit": budget["monthly_limit"], "used_pct": used_pct(net, limit), "state": state(net, budget),
            "thresholds": list(budget["thresholds"]), "action": budget["action"], "version": budget["version"]}


def view(tenant_id: str, budget: Mapping, currency: str) -> dict:
    """The budget as the API shows it."""
    return {"tenant_id": tenant_id, "monthly_limit": budget["monthly_limit"], "currency": currency,
            "thresholds": list(budget["thresholds"]), "action": budget["action"], "version": budget["version"],
            "updated_at": budget.get("set_at")}
