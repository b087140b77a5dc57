"""Billing's own settings (the shared ones come from energent_shared.config)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from energent_shared import config

# The build step puts the repository's config/ beside main.py; from a checkout it is three levels up.
_HERE = Path(__file__).resolve().parent
CONFIG = next(folder for folder in (_HERE.parent / "config", _HERE.parents[2] / "config")
              if (folder / "pricing.json").exists())


@dataclass(frozen=True)
class BillingSettings:
    invoice_bucket: str
    billing_events_topic: str  # usage, and the steps of a close
    tenant_events_topic: str  # invoice issued, paid, credited
    price_book: Path
    seller: Path


@cache
def billing_settings() -> BillingSettings:
    return BillingSettings(
        invoice_bucket=config.text("INVOICE_BUCKET", required="the bucket invoices are stored in"),
        billing_events_topic=config.text("BILLING_EVENTS_TOPIC", "billing-events"),
        tenant_events_topic=config.text("TENANT_EVENTS_TOPIC", "tenant-events"),
        price_book=Path(config.text("PRICE_BOOK", str(CONFIG / "pricing.json"))),
        seller=CONFIG / "seller.json")
