"""The provisioner's own settings (the shared ones come from energent_shared.config)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from energent_shared import config
from provisioner.manifests import Platform


@dataclass(frozen=True)
class ProvisionerSettings:
    platform: Platform
    tenant_events_topic: str
    provisioning_events_topic: str  # Flux's events arrive there; a re-render's steps ride beside them


@cache
def provisioner_settings() -> ProvisionerSettings:
    shared = config.settings()
    bucket = config.text("MANIFEST_BUCKET", required="the GitOps bucket Flux reads the tenants' manifests from")
    # Unset names default to what infra/modules/networking, gke and tenants give the environment.
    optional = {field: value for field, value in (
        ("tenants_project", config.text("TENANTS_PROJECT")),
        ("network", config.text("GKE_NETWORK")), ("subnetwork", config.text("GKE_SUBNETWORK")),
        ("master_pool", config.text("DEDICATED_MASTER_POOL")), ("pods_pool", config.text("DEDICATED_PODS_POOL")),
        ("services_pool", config.text("DEDICATED_SERVICES_POOL")),
        ("shared_master_cidr", config.text("SHARED_MASTER_CIDR")),
        ("authorized_networks", config.names("AUTHORIZED_NETWORKS")),
        ("dedicated_slots", int(config.text("DEDICATED_CLUSTER_SLOTS", "0"))),
        # Hybrid tenants: the HA VPN gateway's interface addresses and the router's ASN (Terraform outputs, passed
        # by Cloud Build), the ranges sites may take; the gateway and router names follow the environment's.
        ("vpn_addresses", config.names("HYBRID_VPN_ADDRESSES")),
        ("asn", int(config.text("HYBRID_ASN", "0"))),
        ("site_ranges", config.names("HYBRID_SITE_RANGES"))) if value}
    platform = Platform.for_environment(
        config.text("GKE_PROJECT", shared.project), shared.environment,
        region=config.text("GKE_REGION", "europe-west4"),
        platform_namespace=config.text("PLATFORM_NAMESPACE", "energent-platform"),
        config_connector_namespace=config.text("CONFIG_CONNECTOR_NAMESPACE", "energent-infra"),
        manifest_bucket=bucket, **optional)
    return ProvisionerSettings(platform, config.text("TENANT_EVENTS_TOPIC", "tenant-events"),
                               config.text("PROVISIONING_EVENTS_TOPIC", "provisioning-events"))
