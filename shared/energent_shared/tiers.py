"""The tier table of the deployment guide (section 3.3), the one place the platform reads it from."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Tier:
    name: str
    guide_name: str  # the name the deployment guide uses
    cpu: int  # vCPU limit for the tenant's namespace
    memory_gib: int
    storage_gib: int
    concurrent_workflows: int


TIERS = MappingProxyType({
    tier.name: tier
    for tier in (
        Tier("basic", "Basis", cpu=1, memory_gib=2, storage_gib=10, concurrent_workflows=1),
        Tier("standard", "Standaard", cpu=2, memory_gib=4, storage_gib=25, concurrent_workflows=2),
        Tier("premium", "Premium", cpu=4, memory_gib=8, storage_gib=50, concurrent_workflows=4),
        Tier("enterprise", "Enterprise", cpu=8, memory_gib=16, storage_gib=100, concurrent_workflows=8),
    )
})


def tier(name: str) -> Tier:
    try:
        return TIERS[name]
    except KeyError:
        raise ValueError(f"unknown tier {name!r}; expected one of {', '.join(TIERS)}") from None
