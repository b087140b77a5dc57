"""SLA credits of the deployment guide (section 12.3), as a percentage of the period's subtotal."""

from __future__ import annotations

import math
from decimal import Decimal

# Hybrid tenants run on the shared cluster: the multi-tenant target (seed 1.2: 99.9 %).
AVAILABILITY_TARGET = {"multi-tenant": Decimal("99.9"), "dedicated": Decimal("99.95"), "hybrid": Decimal("99.9")}
PER_STARTED_STEP = Decimal("10")  # % credit per started 0.1 % of availability shortfall
STEP = Decimal("0.1")
LATENCY_LIMIT_MS = Decimal("5000")
LATENCY_CREDIT = Decimal("5")
RTO_LIMIT_MINUTES = Decimal("240")
RTO_CREDIT = Decimal("25")
CAP = Decimal("100")


def credit_pct(deployment_model: str, availability_pct: Decimal, p95_latency_ms: Decimal,
               rto_minutes: Decimal | None) -> Decimal:
    target = AVAILABILITY_TARGET[deployment_model]
    credit = Decimal(0)
    if availability_pct < target:
        credit += PER_STARTED_STEP * math.ceil((target - availability_pct) / STEP)
    if p95_latency_ms > LATENCY_LIMIT_MS:
        credit += LATENCY_CREDIT
    if rto_minutes is not None and rto_minutes > RTO_LIMIT_MINUTES:
        credit += RTO_CREDIT
    return min(credit, CAP)
