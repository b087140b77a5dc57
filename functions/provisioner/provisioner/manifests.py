"""Kubernetes manifests of a tenant: a pure function of (tenant, tier, deployment model, platform settings).

Same input, byte-identical output (JSON, which is YAML to Kubernetes and kustomize; keys sorted). Layout in the
GitOps bucket:

    tenants/T/manifests/objects.json         every object of the tenant, one JSON `v1 List`: the one file a
                                             tier change or a deletion rewrites
    tenants/T/manifests/kustomization.yaml   `resources: [objects.json]`, the same for the tenant's whole life
    tenants/T/sync/                          the Flux Kustomization tenant-T and its own Bucket source tenant-T
                                             over tenants/T/manifests/ (applied by the platform's `tenants`
                                             Kustomization; not named kustomization.yaml, so kustomize never
                                             mistakes them for its own file)

A dedicated tenant's namespace objects go to its own cluster: tenant-T applies them there through
`spec.kubeConfig` (Flux's workload-identity access to GKE). The Google Cloud objects its cluster is made of
(Config Connector) live on the platform's cluster, under tenants/T/manifests/cloud/, applied by a second
Kustomization `cloud-tenant-T` that tenant-T depends on. Its name cannot be read as another tenant's
(tenant-<id> is the only form Flux events name a tenant by).

A hybrid tenant runs on the shared cluster like a multi-tenant one; its site-to-site connection is Config Connector
objects under tenants/T/manifests/cloud/ too, applied by cloud-tenant-T before tenant-T, which opens the tenant's
own ranges to its namespace: an external VPN gateway for the customer's addresses, two HA VPN tunnels on the
platform's HA VPN gateway, a Cloud Router interface and BGP peer per tunnel on the platform's router (both made by
Terraform, in the platform's project: a Shared VPC's VPN lives in its host project), and the tunnels' pre-shared
keys. The keys never enter the bucket: they are Secret Manager secrets in the tenants' project (provisioner.psks),
which an ExternalSecret (External Secrets Operator, acting as its own Google identity that may read those secrets
and nothing else) turns into the Kubernetes Secret the tunnels name (`sharedSecret.valueFrom.secretKeyRef`).

Every Google Cloud object is made in the tenants' project, apart from the platform's identities: each tenant's
service account, and a dedicated tenant's cluster, whose Workload Identity pool is that project's, where no platform
account can be reached (infra/modules/tenants).

Each tenant has its own Kustomizations, so one broken tenant never blocks another, with `prune: true`, so
removing an object from the list removes it from the cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from energent_shared.tiers import Tier, tier
from provisioner import psks, sites
from provisioner.tenants import (
    TenantSpec,
    google_service_account_id,
    namespace,
    node_service_account_id,
    range_name,
)

ROOT = "tenants"
LABEL_TENANT = "energent.ai/tenant"
LABEL_TIER = "energent.ai/tier"
LABEL_MODEL = "energent.ai/deployment-model"
MANAGED_BY = {"app.kubernetes.io/managed-by": "energent-provisioner"}
WORKLOAD_SERVICE_ACCOUNT = "workflow-runner"
LIMITS_CONFIGMAP = "tenant-limits"
# What a dedicated cluster's nodes need, and nothing more: logs, metrics and node operations; pulling images.
NODE_ROLES = {"node": "roles/container.defaultNodeServiceAccount", "images": "roles/artifactregistry.reader"}
# What Flux's kustomize-controller holds on a dedicated cluster (its namespace and namespaced objects), granted on that
# cluster alone.
FLUX_CLUSTER_ROLE = "roles/container.developer"


@dataclass(frozen=True)
class Platform:
    project: str  # the platform's: its network, and the shared cluster's Workload Identity pool
    region: str = "europe-west4"
    environment: str = "local"
    # Holds every tenant's Google service account and the dedicated clusters (infra/modules/tenants); the platform's
    # own project when unset (the local stack).
    tenants_project: str = ""
    platform_namespace: str = "energent-platform"
    config_connector_namespace: str = "energent-infra"
    flux_namespace: str = "flux-system"
    manifest_bucket: str = "energent-manifests-local"  # the GitOps bucket each tenant's Flux source reads
    network: str = "energent-vpc-local"  # the platform's VPC and GKE subnetwork (infra/modules/networking)
    subnetwork: str = "energent-gke-local"
    # Who may reach a dedicated cluster's control plane (its private endpoint): Flux's Pods on the platform pool
    # (infra/modules/networking platform_pods_cidr), which no tenant's Pod shares.
    authorized_networks: tuple[str, ...] = ("10.12.0.0/20",)
    master_pool: str = "172.20.0.0/14"  # dedicated control planes take /28s of it: 16,384 clusters
    shared_master_cidr: str = "172.16.0.0/28"  # the shared cluster's (infra/modules/gke master_cidr)
    # Dedicated clusters' Pod (/17) and Service (/22) ranges, clear of the shared cluster's 10.0.0.0/12: the
    # subnetwork holds them for the first `dedicated_slots` clusters (infra/modules/networking).
    pods_pool: str = "10.64.0.0/10"  # 128 clusters
    services_pool: str = "10.128.0.0/15"  # 128 clusters
    shared_ranges: tuple[str, ...] = ("10.0.0.0/12",)
    dedicated_slots: int = 12
    # Hybrid tenants: the HA VPN gateway and the Cloud Router that speaks BGP for it (infra/modules/networking, in
    # the platform's project), the gateway's two interface addresses (known once Terraform made it; none: no hybrid
    # tenants) and the router's ASN; the ranges sites may use (every tenant's egress allows exclude them), what the
    # router advertises to a site (the shared cluster's Pods, where the tenants' agents run: they reach a site with
    # their own addresses), the link-local pool of the BGP sessions and how many sites the router holds.
    vpn_gateway: str = "energent-vpn-local"
    vpn_router: str = "energent-vpn-router-local"
    vpn_addresses: tuple[str, ...] = ()
    asn: int = 64514
    site_ranges: tuple[str, ...] = ("10.192.0.0/10", "192.168.0.0/16")
    advertised_ranges: tuple[str, ...] = ("10.4.0.0/14",)
    bgp_pool: str = "169.254.0.0/16"
    max_sites: int = 64

    def __post_init__(self):
        if not self.tenants_project:
            object.__setattr__(self, "tenants_project", self.project)
        import ipaddress

        ranges = [ipaddress.IPv4Network(r) for r in self.site_ranges]
        for index, site_range in enumerate(ranges):
            clash = next((r for r in (*self.platform_ranges, *map(str, ranges[:index]))
                          if site_range.overlaps(ipaddress.IPv4Network(r))), None)
            if clash is not None:
                raise ValueError(f"the site range {site_range} (HYBRID_SITE_RANGES) overlaps {clash}")
        if self.vpn_addresses and len(self.vpn_addresses) != sites.TUNNELS:
            raise ValueError(f"the HA VPN gateway has {sites.TUNNELS} interfaces: HYBRID_VPN_ADDRESSES names "
                             f"{len(self.vpn_addresses)} addresses")

    @classmethod
    def for_environment(cls, project: str, environment: str, **settings) -> Platform:
        """The names infra/modules/networking gives the environment's network, unless settings say otherwise."""
        return cls(project=project, environment=environment, **{
            "network": f"energent-vpc-{environment}", "subnetwork": f"energent-gke-{environment}",
            "vpn_gateway": f"energent-vpn-{environment}", "vpn_router": f"energent-vpn-router-{environment}",
            **settings})

    @property
    def platform_ranges(self) -> tuple[str, ...]:
        """Every range of the platform's network: the shared cluster's (nodes, Pods, Services, the connector, the
        private services range), the dedicated clusters' pools and the control planes'. No site may overlap one."""
        return (*self.shared_ranges, self.pods_pool, self.services_pool, self.master_pool, self.shared_master_cidr)

    @property
    def site_rules(self) -> sites.SiteRules | None:
        """What a site may be; None while the platform has no HA VPN gateway (no hybrid tenants then)."""
        if not self.vpn_addresses:
            return None
        return sites.SiteRules(self.site_ranges, self.platform_ranges, self.asn, self.vpn_addresses)

    @property
    def vpn_gateway_path(self) -> str:
        return f"projects/{self.project}/regions/{self.region}/vpnGateways/{self.vpn_gateway}"

    @property
    def vpn_router_path(self) -> str:
        return f"projects/{self.project}/regions/{self.region}/routers/{self.vpn_router}"

    @property
    def platform_pool(self) -> str:
        """The shared cluster's Workload Identity pool."""
        return f"{self.project}.svc.id.goog"

    @property
    def tenants_pool(self) -> str:
        """The dedicated clusters' Workload Identity pool: nothing of the platform is bound in it."""
        return f"{self.tenants_project}.svc.id.goog"

    @property
    def flux_account(self) -> str:
        """kustomize-controller's Google service account (infra/modules/functions, flux-kustomize-<env>)."""
        return f"flux-kustomize-{self.environment}@{self.project}.iam.gserviceaccount.com"


OBJECTS = "objects.json"
CLOUD = "cloud"


def manifests_dir(tenant_id: str) -> str:
    return f"{ROOT}/{tenant_id}/manifests"


def sync_dir(tenant_id: str) -> str:
    return f"{ROOT}/{tenant_id}/sync"


TENANT_PREFIX, CLOUD_PREFIX = "tenant-", "cloud-tenant-"  # Flux events name a tenant's Kustomizations so


def kustomization_name(tenant_id: str) -> str:
    return f"{TENANT_PREFIX}{tenant_id}"


def cloud_kustomization_name(tenant_id: str) -> str:
    return f"{CLOUD_PREFIX}{tenant_id}"


def _dump(document: dict) -> bytes:
    # JSON is YAML (1.2), and Kubernetes, kustomize and Flux read it as such; the C JSON encoder writes it tens
    # of times faster than any YAML emitter, and keys sorted keep every rendering byte-identical.
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def _list(objects: list[dict]) -> bytes:
    return _dump({"apiVersion": "v1", "kind": "List", "items": objects})


def _meta(name: str, ns: str | None, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict:
    metadata: dict = {"name": name, "labels": {**MANAGED_BY, **labels}}
    if ns is not None:
        metadata["namespace"] = ns
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def _network_policies(ns: str, labels: dict, platform: Platform, site: dict | None) -> list[dict]:
    def policy(name: str, spec: dict) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(name, ns, labels),
                "spec": {"podSelector": {}, **spec}}

    platform_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": platform.platform_namespace}}}
    return [
        policy("default-deny", {"policyTypes": ["Ingress", "Egress"]}),
        policy("allow-dns", {"policyTypes": ["Egress"], "egress": [{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}),
        policy("allow-platform", {
            "policyTypes": ["Ingress", "Egress"], "ingress": [{"from": [platform_peer]}],
            "egress": [{"to": [platform_peer]}]}),
        # The agents drive business applications over HTTPS; nothing else leaves the namespace. Never to a hybrid
        # tenant's site: every site lies in the platform's site ranges, which no tenant reaches but through its own
        # allow-site (so a new site changes no other tenant's objects).
        policy("allow-https-egress", {"policyTypes": ["Egress"], "egress": [{
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", *platform.site_ranges]}}],
            "ports": [{"protocol": "TCP", "port": 443}]}]}),
        # Workload Identity tokens come from the GKE metadata server.
        policy("allow-metadata-server", {"policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}],
                        "ports": [{"protocol": "TCP", "port": 80}]},
                       {"to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
                        "ports": [{"protocol": "TCP", "port": 988}]}]}),
    ] + ([
        # A hybrid tenant's agents reach its own site's ranges, on any port (the systems there are the customer's:
        # file shares, databases, ERP). The policy lives in the tenant's namespace: no other tenant's pods.
        policy("allow-site", {"policyTypes": ["Egress"], "egress": [{
            "to": [{"ipBlock": {"cidr": cidr}} for cidr in site["cidrs"]]}]}),
    ] if site is not None else [])


def workflow_limits(row: Tier, spend_blocked: bool = False) -> dict[str, str]:
    """The data of the `tenant-limits` ConfigMap: the tier's concurrent-workflow limit, or 0 (and why) while the
    tenant is blocked for its spend. An unblocked tenant's data is exactly the tier's, as it always was."""
    if spend_blocked:
        return {"concurrent_workflows": "0", "tier": row.name, "spend_state": "blocked"}
    return {"concurrent_workflows": str(row.concurrent_workflows), "tier": row.name}


def _objects(spec: TenantSpec, row: Tier, platform: Platform) -> tuple[list[dict], list[dict]]:
    """(objects in the tenant's namespace, the Google Cloud objects Config Connector makes for it)."""
    ns = namespace(spec.tenant_id)
    labels = {LABEL_TENANT: spec.tenant_id, LABEL_TIER: row.name, LABEL_MODEL: spec.deployment_model}
    gsa_id = google_service_account_id(spec.tenant_id)
    gsa_email = f"{gsa_id}@{platform.tenants_project}.iam.gserviceaccount.com"
    # Its pods run on the shared cluster, or on its own (dedicated), whose pool is the tenants' project's.
    pool = platform.tenants_pool if spec.deployment_model == "dedicated" else platform.platform_pool
    cpu, memory, storage = str(row.cpu), f"{row.memory_gib}Gi", f"{row.storage_gib}Gi"
    cc_ns = platform.config_connector_namespace
    cc_annotations = {"cnrm.cloud.google.com/project-id": platform.tenants_project}
    workload: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, None, {
            **labels,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted"})},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta("tenant-quota", ns, labels),
         "spec": {"hard": {"limits.cpu": cpu, "limits.memory": memory, "requests.cpu": cpu,
                           "requests.memory": memory, "requests.storage": storage}}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta("tenant-limits", ns, labels),
         "spec": {"limits": [{"type": "Container", "max": {"cpu": cpu, "memory": memory},
                              "default": {"cpu": "500m", "memory": "1Gi"},
                              "defaultRequest": {"cpu": "250m", "memory": "512Mi"}},
                             {"type": "PersistentVolumeClaim", "max": {"storage": storage},
                              "min": {"storage": "1Gi"}}]}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(WORKLOAD_SERVICE_ACCOUNT, ns, labels, {"iam.gke.io/gcp-service-account": gsa_email}),
         "automountServiceAccountToken": False},
        # What the platform's workflow scheduler reads to cap concurrent workflows (0 while billing blocks the
        # tenant for its spend; the tier's limit again once the block is lifted).
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(LIMITS_CONFIGMAP, ns, labels),
         "data": workflow_limits(row, spec.spend_blocked)},
        *_network_policies(ns, labels, platform, spec.site if spec.deployment_model == "hybrid" else None),
    ]
    cloud: list[dict] = [
        {"apiVersion": "iam.cnrm.cloud.google.com/v1beta1", "kind": "IAMServiceAccount",
         "metadata": _meta(gsa_id, cc_ns, labels, cc_annotations),
         "spec": {"displayName": f"Energent tenant {spec.tenant_id}"}},
        {"apiVersion": "iam.cnrm.cloud.google.com/v1beta1", "kind": "IAMPolicyMember",
         "metadata": _meta(f"{gsa_id}-wi", cc_ns, labels, cc_annotations),
         "spec": {"member": f"serviceAccount:{pool}[{ns}/{WORKLOAD_SERVICE_ACCOUNT}]",
                  "role": "roles/iam.workloadIdentityUser",
                  "resourceRef": {"apiVersion": "iam.cnrm.cloud.google.com/v1beta1",
                                  "kind": "IAMServiceAccount", "name": gsa_id}}},
    ]
    if spec.deployment_model == "dedicated":
        cloud += _dedicated(spec, row, platform, labels, cc_annotations)
    if spec.deployment_model == "hybrid":
        cloud += _hybrid(spec, platform, labels)
    return workload, cloud


def vpn_secret_name(tenant_id: str) -> str:
    """The Kubernetes Secret (energent-infra) holding a hybrid tenant's pre-shared keys, made by its ExternalSecret."""
    return f"{namespace(tenant_id)}-vpn"


def tunnel_name(tenant_id: str, tunnel: int) -> str:
    """A hybrid tenant's tunnel, and the router interface and BGP peer on it: tenant-<id>-<n>, at most 41
    characters (Compute Engine names take 63)."""
    return f"{namespace(tenant_id)}-{tunnel}"


def _hybrid(spec: TenantSpec, platform: Platform, labels: dict) -> list[dict]:
    """A hybrid tenant's site-to-site connection, in the platform's project (the Shared VPC host, where its HA VPN
    gateway and Cloud Router are): the customer's gateway, one HA VPN tunnel per interface of the platform's gateway
    (IKEv2; its key from the tenant's Secret), and per tunnel a router interface and a BGP peer on the tunnel's own
    link-local /30, advertising the platform's Pod range and nothing else (custom mode, no groups). Learned routes
    reach the tenant's pods only: its allow-site NetworkPolicy."""
    site = spec.site
    if site is None or len(spec.bgp_ranges) != sites.TUNNELS:
        raise ValueError(f"hybrid tenant {spec.tenant_id} has no site or no BGP ranges allocated")
    cc_ns, name = platform.config_connector_namespace, namespace(spec.tenant_id)
    annotations = {"cnrm.cloud.google.com/project-id": platform.project}
    compute = "compute.cnrm.cloud.google.com/v1beta1"
    peers = site["peer_ips"]

    def meta(object_name: str) -> dict:
        return _meta(object_name, cc_ns, labels, annotations)

    objects: list[dict] = [{
        "apiVersion": compute, "kind": "ComputeExternalVPNGateway",
        "metadata": meta(name),
        "spec": {"description": f"Energent tenant {spec.tenant_id}: the customer's VPN gateway",
                 "redundancyType": "TWO_IPS_REDUNDANCY" if len(peers) == 2 else "SINGLE_IP_INTERNALLY_REDUNDANT",
                 "interface": [{"id": index, "ipAddress": address} for index, address in enumerate(peers)]},
    }]
    for tunnel, bgp_range in enumerate(spec.bgp_ranges):
        tunnel_id = tunnel_name(spec.tenant_id, tunnel)
        ours, theirs = sites.session(bgp_range)
        objects += [
            {"apiVersion": compute, "kind": "ComputeVPNTunnel", "metadata": meta(tunnel_id),
             "spec": {"region": platform.region, "ikeVersion": 2,
                      "vpnGatewayRef": {"external": platform.vpn_gateway_path}, "vpnGatewayInterface": tunnel,
                      "peerExternalGatewayRef": {"name": name},
                      "peerExternalGatewayInterface": tunnel if len(peers) == 2 else 0,
                      "routerRef": {"external": platform.vpn_router_path},
                      "sharedSecret": {"valueFrom": {"secretKeyRef": {"name": vpn_secret_name(spec.tenant_id),
                                                                      "key": psks.secret_key(tunnel)}}}}},
            # A router interface and a BGP peer name their router by its name (their CRDs' `external`: "the `name`
            # field of a ComputeRouter"); a tunnel by its path.
            {"apiVersion": compute, "kind": "ComputeRouterInterface", "metadata": meta(tunnel_id),
             "spec": {"region": platform.region, "routerRef": {"external": platform.vpn_router},
                      "ipRange": f"{ours}/30", "vpnTunnelRef": {"name": tunnel_id}}},
            {"apiVersion": compute, "kind": "ComputeRouterPeer", "metadata": meta(tunnel_id),
             "spec": {"region": platform.region, "routerRef": {"external": platform.vpn_router},
                      "routerInterfaceRef": {"name": tunnel_id}, "ipAddress": {"external": ours},
                      "peerIpAddress": theirs, "peerAsn": site["peer_asn"], "advertiseMode": "CUSTOM",
                      "advertisedIpRanges": [{"range": cidr, "description": "Energent platform"}
                                             for cidr in platform.advertised_ranges],
                      "advertisedRoutePriority": 100,  # both tunnels alike: active/active
                      # Always said, true or false: a field left out is one Config Connector may leave as it
                      # found it, so a quarantined peer (routes.py) could stay off after it is lifted.
                      "enable": spec.site_enabled}},
        ]
    objects.append({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": _meta(vpn_secret_name(spec.tenant_id), cc_ns, labels),
        "spec": {"secretStoreRef": {"kind": "SecretStore", "name": psks.SECRET_STORE},
                 "refreshInterval": "1h",
                 "target": {"name": vpn_secret_name(spec.tenant_id), "creationPolicy": "Owner",
                            "deletionPolicy": "Retain"},
                 "data": [{"secretKey": psks.secret_key(tunnel),
                           "remoteRef": {"key": psks.secret_id(spec.tenant_id, tunnel), "version": psks.VERSION}}
                          for tunnel in range(sites.TUNNELS)]},
    })
    return objects


def _dedicated(spec: TenantSpec, row: Tier, platform: Platform, labels: dict, annotations: dict) -> list[dict]:
    """A dedicated tenant's own private GKE cluster and node pool, as Config Connector resources in the tenants'
    project: on the platform's network and subnetwork (a Shared VPC), in the Pod and Service ranges made there for
    its slot, with a control-plane range of its own (allocated once, never reused). Its control plane answers on its
    private endpoint only, to Flux's range alone; its version is chosen by the release channel; its nodes run as a
    service account of their own holding only what nodes need, behind the GKE metadata server. Flux may act on this
    cluster and no other. `tenant-<id>` is at most 39 characters, within GKE's 40 for a cluster name."""
    if None in (spec.master_cidr, spec.pods_cidr, spec.services_cidr):
        raise ValueError(f"dedicated tenant {spec.tenant_id} has no address ranges allocated")
    name = namespace(spec.tenant_id)
    nodes_id = node_service_account_id(spec.tenant_id)
    cc_ns = platform.config_connector_namespace
    network = f"projects/{platform.project}/global/networks/{platform.network}"
    subnetwork = f"projects/{platform.project}/regions/{platform.region}/subnetworks/{platform.subnetwork}"
    project = {"kind": "Project", "external": f"projects/{platform.tenants_project}"}
    cluster = {
        "apiVersion": "container.cnrm.cloud.google.com/v1beta1", "kind": "ContainerCluster",
        "metadata": _meta(name, cc_ns, labels, {**annotations,
                                               "cnrm.cloud.google.com/remove-default-node-pool": "true"}),
        "spec": {
            "location": platform.region,
            "initialNodeCount": 1,
            "releaseChannel": {"channel": "REGULAR"},
            "networkRef": {"external": network},
            "subnetworkRef": {"external": subnetwork},
            "privateClusterConfig": {"enablePrivateNodes": True, "enablePrivateEndpoint": True,
                                     "masterIpv4CidrBlock": spec.master_cidr},
            "masterAuthorizedNetworksConfig": {"cidrBlocks": [
                {"cidrBlock": cidr, "displayName": "flux"} for cidr in platform.authorized_networks]},
            "ipAllocationPolicy": {"clusterSecondaryRangeName": range_name("pods", spec.pods_cidr),
                                   "servicesSecondaryRangeName": range_name("services", spec.services_cidr)},
            "workloadIdentityConfig": {"workloadPool": platform.tenants_pool},
            "networkingMode": "VPC_NATIVE",
            "datapathProvider": "ADVANCED_DATAPATH",
            "enableShieldedNodes": True,
            # GKE makes a default pool before the annotation above removes it: it too runs as the nodes' account.
            "nodeConfig": {"serviceAccountRef": {"name": nodes_id}, "workloadMetadataConfig": {"mode": "GKE_METADATA"}},
            "loggingService": "logging.googleapis.com/kubernetes",
            "monitoringService": "monitoring.googleapis.com/kubernetes",
        },
    }
    nodes = max(1, -(-row.cpu // 4))  # n2-standard-4 nodes enough for the tier's CPU, as in the guide's table
    pool = {
        "apiVersion": "container.cnrm.cloud.google.com/v1beta1", "kind": "ContainerNodePool",
        "metadata": _meta(f"{name}-pool", cc_ns, labels, annotations),
        "spec": {
            "resourceID": "nodes",  # node pool names are per cluster
            "location": platform.region,
            "clusterRef": {"name": name},
            # Totals for the whole regional pool (minNodeCount would count per zone: three times as many nodes).
            "autoscaling": {"totalMinNodeCount": nodes, "totalMaxNodeCount": nodes * 2, "locationPolicy": "BALANCED"},
            "management": {"autoRepair": True, "autoUpgrade": True},
            "nodeConfig": {"machineType": "n2-standard-4", "diskSizeGb": 100, "diskType": "pd-ssd",
                           "workloadMetadataConfig": {"mode": "GKE_METADATA"},
                           "shieldedInstanceConfig": {"enableSecureBoot": True, "enableIntegrityMonitoring": True},
                           # Google's advice with a service account of its own: IAM, not scopes, limits the nodes.
                           "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
                           "serviceAccountRef": {"name": nodes_id},
                           "labels": {"energent-tenant": spec.tenant_id}},
        },
    }
    node_account = {"apiVersion": "iam.cnrm.cloud.google.com/v1beta1", "kind": "IAMServiceAccount",
                    "metadata": _meta(nodes_id, cc_ns, labels, annotations),
                    "spec": {"displayName": f"Energent nodes of {spec.tenant_id}"}}
    grants = [{
        "apiVersion": "iam.cnrm.cloud.google.com/v1beta1", "kind": "IAMPolicyMember",
        "metadata": _meta(f"{nodes_id}-{short}", cc_ns, labels, annotations),
        "spec": {"memberFrom": {"serviceAccountRef": {"name": nodes_id}}, "role": role, "resourceRef": project}}
        for short, role in NODE_ROLES.items()]
    return [cluster, pool, node_account, *grants, flux_grant(spec.tenant_id, platform, labels, annotations)]


def flux_grant(tenant_id: str, platform: Platform, labels: dict, annotations: dict) -> dict:
    """kustomize-controller's role on this tenant's cluster alone: a grant on the tenants' project whose condition
    names the cluster (IAM Conditions read GKE's resource names), so Flux holds no project-wide cluster role."""
    cluster = cluster_path(tenant_id, platform)
    return {
        "apiVersion": "iam.cnrm.cloud.google.com/v1beta1", "kind": "IAMPolicyMember",
        "metadata": _meta(f"{namespace(tenant_id)}-flux", platform.config_connector_namespace, labels, annotations),
        "spec": {"member": f"serviceAccount:{platform.flux_account}", "role": FLUX_CLUSTER_ROLE,
                 "resourceRef": {"kind": "Project", "external": f"projects/{platform.tenants_project}"},
                 "condition": {"title": f"{namespace(tenant_id)} only",
                               "expression": f'resource.name == "{cluster}" || '
                                             f'resource.name.startsWith("{cluster}/")'}},
    }


def cluster_path(tenant_id: str, platform: Platform) -> str:
    """A dedicated tenant's GKE cluster, as Flux's GKE access and IAM Conditions name it."""
    return f"projects/{platform.tenants_project}/locations/{platform.region}/clusters/{namespace(tenant_id)}"


def flux_kustomizations(spec: TenantSpec, platform: Platform, removing: bool = False) -> list[dict]:
    """tenant-T, and for a dedicated or hybrid tenant cloud-tenant-T, which tenant-T depends on: a dedicated tenant's
    cluster is made before tenant-T applies to it; a hybrid tenant's connection is made before its namespace may use
    it, and removed before the tenant is reported deleted (tenant-T reports the removal only once cloud-tenant-T has
    pruned its tunnels). While a dedicated tenant is removed, tenant-T applies its empty list on the platform's cluster
    instead: its objects go with its cluster, and the removal never waits on a cluster that may never have become
    ready."""
    tenant_id = spec.tenant_id
    labels = {LABEL_TENANT: tenant_id}
    source = {"kind": "Bucket", "name": kustomization_name(tenant_id)}
    workload: dict[str, Any] = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": _meta(kustomization_name(tenant_id), platform.flux_namespace, labels),
        "spec": {"interval": "10m", "retryInterval": "1m", "timeout": "5m", "prune": True, "wait": True,
                 "path": f"./{manifests_dir(tenant_id)}", "sourceRef": source},
    }
    if spec.deployment_model not in ("dedicated", "hybrid"):
        return [workload]
    cloud = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": _meta(cloud_kustomization_name(tenant_id), platform.flux_namespace, labels),
        # A new GKE cluster takes minutes; `wait` holds tenant-T back until Config Connector reports it ready. (A
        # tunnel is ready once made: whether it is up depends on the customer's side too; see the runbook.)
        "spec": {"interval": "10m", "retryInterval": "2m", "timeout": "30m", "prune": True, "wait": True,
                 "path": f"./{manifests_dir(tenant_id)}/{CLOUD}", "sourceRef": source},
    }
    if spec.deployment_model == "hybrid":
        workload["spec"]["dependsOn"] = [{"name": cloud_kustomization_name(tenant_id)}]
        return [cloud, workload]
    if removing:
        return [cloud, workload]
    workload["spec"]["kubeConfig"] = {"configMapRef": {"name": f"{kustomization_name(tenant_id)}-cluster"}}
    workload["spec"]["dependsOn"] = [{"name": cloud_kustomization_name(tenant_id)}]
    # Flux reaches the tenant's cluster as its own Google identity (kustomize-controller's Workload Identity).
    access = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": _meta(f"{kustomization_name(tenant_id)}-cluster", platform.flux_namespace, labels),
              "data": {"provider": "gcp", "cluster": cluster_path(tenant_id, platform)}}
    return [cloud, workload, access]


SOURCE_INTERVAL = {"hybrid": "1m"}  # default 10m


def flux_source(tenant_id: str, platform: Platform, model: str = "multi-tenant") -> dict:
    """The tenant's own Flux source: the bucket under its prefix only, so its revision changes only when its own
    files do, and one tenant's change reconciles one Kustomization (§5). A hybrid tenant's is polled every minute:
    a site the route watchdog cuts off (routes.py) is cut off within a minute of its rendering, not ten (one
    listing of its prefix a minute, for at most the router's 64 sites)."""
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
        "metadata": _meta(kustomization_name(tenant_id), platform.flux_namespace, {LABEL_TENANT: tenant_id}),
        "spec": {"provider": "gcp", "bucketName": platform.manifest_bucket, "endpoint": "storage.googleapis.com",
                 "prefix": f"{manifests_dir(tenant_id)}/", "interval": SOURCE_INTERVAL.get(model, "10m")},
    }


def _kustomization(resources: list[str]) -> bytes:
    return _dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources})


def render(spec: TenantSpec, platform: Platform, removing: bool = False) -> dict[str, bytes]:
    """Every file of the tenant, by object path in the bucket. `removing`: the files while the tenant is deleted,
    with no namespace objects, which Flux prunes; a dedicated tenant's cluster (and all in it) goes with the last
    files, once tenant-T has reported the removal; a hybrid tenant's connection goes first (its cloud objects are
    emptied too but for its keys' ExternalSecret, which goes with the last files; tenant-T reports only after
    cloud-tenant-T has pruned them)."""
    workload, cloud = _objects(spec, tier(spec.tier), platform)
    base, sync = manifests_dir(spec.tenant_id), sync_dir(spec.tenant_id)
    if spec.deployment_model in ("dedicated", "hybrid"):
        kept = cloud
        if removing and spec.deployment_model == "hybrid":
            # The tunnels go first, their keys' ExternalSecret last: Config Connector reads a tunnel's key Secret to
            # delete the tunnel too, and a Secret garbage-collected with its ExternalSecret while a tunnel's deletion
            # is pending would leave the tunnel stuck on its finalizer. So the removal keeps the ExternalSecret (and
            # the Secret it owns) until the tenant is deleted, when the last files go and Flux prunes it.
            kept = [o for o in cloud if o["kind"] == "ExternalSecret"]
        files = {f"{base}/{CLOUD}/{OBJECTS}": _list(kept),
                 f"{base}/{CLOUD}/kustomization.yaml": _kustomization([OBJECTS])}
    else:
        files, workload = {}, workload + cloud
    files[f"{base}/{OBJECTS}"] = _list([] if removing else workload)
    files[f"{base}/kustomization.yaml"] = _kustomization([OBJECTS])
    files[f"{sync}/flux-source.yaml"] = _dump(flux_source(spec.tenant_id, platform, spec.deployment_model))
    files[f"{sync}/flux-kustomization.yaml"] = _list(flux_kustomizations(spec, platform, removing))
    return files
