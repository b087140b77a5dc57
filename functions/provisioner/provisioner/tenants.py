"""Tenant records: what a request may say, and how the status moves.

provisioning ─ok→ active ─tier change→ updating ─ok→ active
      │                  ╲                 │
      └──fail──→ failed ←─fail─────────────┘     failed ─ok (current manifests)→ active
any live status ─delete→ deleting ─ok→ deleted   (a failure while deleting keeps it deleting, with the message)
"""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass

from energent_shared.firestore import valid_tenant_id
from energent_shared.tiers import TIERS

DEPLOYMENT_MODELS = ("multi-tenant", "dedicated")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
GONE = ("deleting", "deleted")
MAX_DISPLAY_NAME = 200
PUBLIC_FIELDS = ("tenant_id", "display_name", "tier", "deployment_model", "status", "status_message",
                 "billing_start", "created_at", "updated_at")


class InvalidTenant(ValueError):
    pass


@dataclass(frozen=True)
class TenantSpec:
    """What the manifests are rendered from."""

    tenant_id: str
    tier: str
    deployment_model: str = "multi-tenant"


def _display_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_DISPLAY_NAME:
        raise InvalidTenant(f"display_name must be a non-blank string of at most {MAX_DISPLAY_NAME} characters")
    return value.strip()


def _tier(value: object) -> str:
    if value not in TIERS:
        raise InvalidTenant(f"tier must be one of {', '.join(TIERS)}, got {value!r}")
    return value


def validate_create(body: dict, today: datetime.date) -> dict:
    """The fields of a new tenant, or InvalidTenant naming the first bad one."""
    unknown = set(body) - {"tenant_id", "display_name", "tier", "deployment_model", "billing_start"}
    if unknown:
        raise InvalidTenant(f"unknown field(s): {', '.join(sorted(unknown))}")
    tenant_id = body.get("tenant_id")
    if not valid_tenant_id(tenant_id):
        raise InvalidTenant(f"tenant_id {tenant_id!r} must match ^[a-z][a-z0-9-]{{2,30}}[a-z0-9]$")
    model = body.get("deployment_model", "multi-tenant")
    if model not in DEPLOYMENT_MODELS:
        raise InvalidTenant(f"deployment_model must be one of {', '.join(DEPLOYMENT_MODELS)}, got {model!r}")
    billing_start = body.get("billing_start")
    return {"tenant_id": tenant_id, "display_name": _display_name(body.get("display_name")),
            "tier": _tier(body.get("tier")), "deployment_model": model,
            "billing_start": None if billing_start is None else _billing_start(billing_start, today)}


def _billing_start(value: object, today: datetime.date) -> str:
    """Exactly YYYY-MM-DD in ASCII digits, a real date, not in the future (week or ordinal dates are refused)."""
    parsed = None
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            parsed = datetime.date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise InvalidTenant(f"billing_start must be a date YYYY-MM-DD, got {str(value)[:40]!r}")
    if parsed > today:
        raise InvalidTenant("billing_start may not be in the future; it defaults to the day the tenant "
                            "first becomes active")
    return value


def validate_patch(body: dict, today: datetime.date) -> dict:
    unknown = set(body) - {"tier", "display_name", "billing_start"}
    if unknown:
        raise InvalidTenant(f"only tier, display_name and billing_start can be changed; unknown or read-only: "
                            f"{', '.join(sorted(unknown))[:200]}")
    if not body:
        raise InvalidTenant("nothing to change: give tier, display_name and/or billing_start")
    changes = {}
    if "tier" in body:
        changes["tier"] = _tier(body["tier"])
    if "display_name" in body:
        changes["display_name"] = _display_name(body["display_name"])
    if "billing_start" in body:
        changes["billing_start"] = _billing_start(body["billing_start"], today)
    return changes


def on_flux_outcome(status: str, succeeded: bool) -> str | None:
    """The next status after Flux reports on the tenant's current manifests; None: no change."""
    if status == "deleted":
        return None
    if succeeded:
        return {"provisioning": "active", "updating": "active", "failed": "active", "deleting": "deleted"}.get(status)
    return None if status == "deleting" else "failed"


def google_service_account_id(tenant_id: str) -> str:
    """The tenant's Google service account id: 6 to 30 characters, so long tenant ids are shortened with a hash."""
    plain = f"tenant-{tenant_id}"
    if len(plain) <= 30:
        return plain
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:6]
    return f"tenant-{tenant_id[:16].rstrip('-')}-{digest}"


def namespace(tenant_id: str) -> str:
    return f"tenant-{tenant_id}"


def tier_change(record: dict, tier: str, at: datetime.datetime) -> list[dict]:
    """The record's tier history with a change to `tier` at `at` (billing prorates by it, §7.2)."""
    history = record.get("tier_history") or [{"tier": record["tier"], "at": record["created_at"]}]
    return [*history, {"tier": tier, "at": at}]


def public_view(record: dict) -> dict:
    return {field: record.get(field) for field in PUBLIC_FIELDS}
