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
    spend_events_topic: str = "spend-events"  # spend checks and their scheduled steps
    spend_window_s: float = 10.0  # usage of one window is checked together, once the window has ended
    spend_margin_s: float = 2.0  # how long after its window a check runs (instances' clocks differ a little)
    webhook_deliveries_topic: str = "webhook-deliveries"  # webhook attempts and the minute's tick
    webhook_key_secret: str = ""  # Secret Manager secret whose payload keys the webhook secrets' sealing
    webhook_retry_scale: float = 1.0  # locally, a factor shortening the retry schedule
    local: bool = False  # the local stack (ENVIRONMENT=local, set by it): webhooks may call http://127.0.0.1:PORT


@cache
def billing_settings() -> BillingSettings:
    return BillingSettings(
        # Deployments that store no document (spend checks, webhooks) are not given the bucket.
        invoice_bucket=config.text("INVOICE_BUCKET"),
        billing_events_topic=config.text("BILLING_EVENTS_TOPIC", "billing-events"),
        tenant_events_topic=config.text("TENANT_EVENTS_TOPIC", "tenant-events"),
        price_book=Path(config.text("PRICE_BOOK", str(CONFIG / "pricing.json"))),
        seller=CONFIG / "seller.json",
        spend_events_topic=config.text("SPEND_EVENTS_TOPIC", "spend-events"),
        spend_window_s=config.number("SPEND_CHECK_WINDOW_S", 10.0, maximum=30.0) or 10.0,
        spend_margin_s=config.number("SPEND_CHECK_MARGIN_S", 2.0, maximum=10.0),
        webhook_deliveries_topic=config.text("WEBHOOK_DELIVERIES_TOPIC", "webhook-deliveries"),
        webhook_key_secret=config.text("WEBHOOK_KEY_SECRET"),
        webhook_retry_scale=config.number("WEBHOOK_RETRY_SCALE", 1.0, maximum=1.0) or 1.0,
        local=config.settings().environment == "local")
