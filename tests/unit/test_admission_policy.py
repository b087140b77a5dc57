"""The cluster's admission policy for Config Connector's objects (infra/config-connector/tenant-objects-policy.yaml),
evaluated by a CEL interpreter with the environment's values substituted as the README applies it: everything the
provisioner renders passes (every deployment model and tier, short and long tenant ids, and what Config Connector
writes back); every object that differs from a rendered one in a field that reaches another account, pool, project,
cluster or network is refused."""

import copy
import json
import re

import celpy
import pytest
import yaml
from celpy import celtypes

from provisioner import manifests, psks, sites, tenants
from tests.conftest import ROOT
from tests.unit.test_infra import INFRA, plain, terraform

# What README step 5 substitutes (envsubst), for the dev environment.
VALUES = {"PROJECT_ID": "energent-dev", "TENANTS_PROJECT_ID": "energent-dev-tenants", "ENVIRONMENT": "dev",
          "REGION": "europe-west4", "HYBRID_ASN": "64514", "HYBRID_VPN_ADDRESSES": "35.242.10.1,35.242.10.2"}
POLICY_FILE = ROOT / "infra" / "config-connector" / "tenant-objects-policy.yaml"


def substituted(text: str) -> str:
    for name, value in VALUES.items():
        text = text.replace(f"${{{name}}}", value)
    return text


POLICY, BINDING = yaml.safe_load_all(substituted(POLICY_FILE.read_text()))
GROUPS = tuple(group for rule in POLICY["spec"]["matchConstraints"]["resourceRules"] for group in rule["apiGroups"])
PLATFORM = manifests.Platform.for_environment("energent-dev", "dev", tenants_project="energent-dev-tenants",
                                              vpn_addresses=("35.242.10.1", "35.242.10.2"))
SITE = {"peer_ips": ["145.100.10.1", "145.100.10.2"], "peer_asn": 4200000001, "cidrs": ["10.200.0.0/16"]}
ENV = celpy.Environment()
VARIABLES = [(v["name"], ENV.program(ENV.compile(v["expression"]))) for v in POLICY["spec"]["variables"]]
VALIDATIONS = [(ENV.program(ENV.compile(v["expression"])), v["message"]) for v in POLICY["spec"]["validations"]]


def evaluate(program, activation):
    try:
        value = program.evaluate(activation)
    except celpy.CELEvalError as error:
        return error
    return value


def refusals(document: dict) -> list[str]:
    """The messages of the validations `document` fails. Variables are evaluated in order, each seeing the ones
    before it, as the API server does; an expression that cannot be evaluated refuses, as failurePolicy Fail does."""
    obj = celpy.json_to_cel(document)
    variables = celtypes.MapType({})
    for name, program in VARIABLES:
        variables[celtypes.StringType(name)] = evaluate(program, {"object": obj, "variables": variables})
    refused = []
    for program, message in VALIDATIONS:
        allowed = evaluate(program, {"object": obj, "variables": variables})
        if isinstance(allowed, celpy.CELEvalError) or not allowed:
            refused.append(message)
    return refused


def rendered(tenant_id: str, model: str, tier: str = "enterprise", site: dict = SITE) -> list[dict]:
    ranges: dict = tenants.cluster_ranges(PLATFORM, 3) if model == "dedicated" else {}
    if model == "hybrid":  # the last /30s of the pool: the metadata server's is skipped below them
        ranges = {"site": tenants.validate_site(site, PLATFORM.site_rules),
                  "bgp_ranges": tuple(sites.bgp_ranges(PLATFORM.bgp_pool, 16380))}
    files = manifests.render(tenants.TenantSpec(tenant_id, tier, model, **ranges), PLATFORM)
    documents = [item for content in files.values() for item in json.loads(content).get("items", [])]
    return [d for d in documents if d["apiVersion"].split("/")[0] in GROUPS]


def by_kind(documents: list[dict], kind: str, **where) -> dict:
    return copy.deepcopy(next(d for d in documents if d["kind"] == kind and all(
        (d["spec"].get(key) == value if not isinstance(d["spec"].get(key), dict) else
         d["spec"][key].get("kind") == value) for key, value in where.items())))


# --- what the provisioner renders passes --------------------------------------------------------------------------

# Short ids (names tied to the tenant), the longest of each plain form, and hashed ones.
TENANT_IDS = ["acme", "acme-corporation-europe", "a" * 24, "b" * 27, "c" * 28, "a" + "b" * 30 + "c"]


KINDS = {"multi-tenant": {"IAMServiceAccount", "IAMPolicyMember"},
         "dedicated": {"IAMServiceAccount", "IAMPolicyMember", "ContainerCluster", "ContainerNodePool"},
         "hybrid": {"IAMServiceAccount", "IAMPolicyMember", "ComputeExternalVPNGateway", "ComputeVPNTunnel",
                    "ComputeRouterInterface", "ComputeRouterPeer", "ExternalSecret"}}


@pytest.mark.parametrize("tenant_id", TENANT_IDS)
@pytest.mark.parametrize("model", ["multi-tenant", "dedicated", "hybrid"])
@pytest.mark.parametrize("tier", ["basic", "standard", "premium", "enterprise"])
def test_what_the_provisioner_renders_passes(tenant_id, model, tier):
    documents = rendered(tenant_id, model, tier)
    assert {d["kind"] for d in documents} == KINDS[model]
    for document in documents:
        assert refusals(document) == [], (document["kind"], document["metadata"]["name"])


@pytest.mark.parametrize("first", [0, 10878, 16380])  # the pool's first, the metadata server's neighbours, its last
def test_every_site_passes_whatever_its_addresses_and_link_local_ranges(first):
    for site in (SITE, {**SITE, "peer_ips": ["8.8.8.8"], "peer_asn": 64512,
                        "cidrs": ["192.168.0.0/24", "10.255.255.0/24"]}):
        files = manifests.render(tenants.TenantSpec("acme", "basic", "hybrid", site=tenants.validate_site(
            site, PLATFORM.site_rules), bgp_ranges=tuple(sites.bgp_ranges(PLATFORM.bgp_pool, first))), PLATFORM)
        for document in (d for content in files.values() for d in json.loads(content).get("items", [])):
            if document["apiVersion"].split("/")[0] in GROUPS:
                assert refusals(document) == [], (first, document["kind"], document["metadata"]["name"])


def test_what_config_connector_writes_back_passes():
    for document in rendered("acme", "dedicated"):
        if document["kind"] in ("IAMServiceAccount", "ContainerCluster"):
            written_back = {**document, "spec": {**document["spec"], "resourceID": document["metadata"]["name"]}}
            assert refusals(written_back) == [], document["kind"]
    # GKE reports a pool's private nodes and the cluster's Pod range, and a cluster's disabled client certificates.
    pool = by_kind(rendered("acme", "dedicated"), "ContainerNodePool")
    cluster = by_kind(rendered("acme", "dedicated"), "ContainerCluster")
    pool["spec"]["networkConfig"] = {"enablePrivateNodes": True, "podRange": cluster["spec"]["ipAllocationPolicy"][
        "clusterSecondaryRangeName"]}
    cluster["spec"]["masterAuth"] = {"clientCertificateConfig": {"issueClientCertificate": False}}
    assert refusals(pool) == [] and refusals(cluster) == []


# --- every variant that reaches further is refused ------------------------------------------------------------

def _hostile() -> dict[str, dict]:
    documents = rendered("acme", "dedicated")
    shared = rendered("acme", "multi-tenant")
    account = by_kind(documents, "IAMServiceAccount", displayName="Energent tenant acme")
    nodes_account = by_kind(documents, "IAMServiceAccount", displayName="Energent nodes of acme")
    binding = by_kind(documents, "IAMPolicyMember", resourceRef="IAMServiceAccount")
    shared_binding = by_kind(shared, "IAMPolicyMember", resourceRef="IAMServiceAccount")
    grant = by_kind(documents, "IAMPolicyMember", role="roles/container.defaultNodeServiceAccount")
    flux = by_kind(documents, "IAMPolicyMember", role="roles/container.developer")
    cluster, pool = by_kind(documents, "ContainerCluster"), by_kind(documents, "ContainerNodePool")
    long_binding = by_kind(rendered("a" * 24, "multi-tenant"), "IAMPolicyMember", resourceRef="IAMServiceAccount")
    cases = {}

    def case(name, base, change):
        document = copy.deepcopy(base)
        change(document)
        cases[name] = document

    def spec(**fields):
        return lambda d: d["spec"].update(fields)

    # Where and what.
    case("another namespace", account, lambda d: d["metadata"].update(namespace="default"))
    case("another IAM kind", account, lambda d: d.update(kind="IAMCustomRole"))
    case("an object in the platform's project", account, lambda d: d["metadata"]["annotations"].update(
        {"cnrm.cloud.google.com/project-id": "energent-dev"}))
    case("an object in the namespace's default project", account, lambda d: d["metadata"].pop("annotations"))
    case("an object of no tenant", account, lambda d: d["metadata"]["labels"].pop("energent.ai/tenant"))
    case("an object of no deployment model", shared_binding, lambda d: d["metadata"]["labels"].pop(
        "energent.ai/deployment-model"))
    # Accounts.
    case("a platform account", account, lambda d: d["metadata"].update(name="terraform-dev"))
    case("a tenant object naming a platform account", account, spec(resourceID="terraform-dev"))
    case("another tenant's account", account, lambda d: d["metadata"].update(name="tenant-bravo"))
    case("an account labelled as another tenant's", account, lambda d: d["metadata"]["labels"].update(
        {"energent.ai/tenant": "bravo"}))
    case("a node account for a tenant with no cluster", nodes_account, lambda d: d["metadata"]["labels"].update(
        {"energent.ai/deployment-model": "multi-tenant"}))
    # Workload Identity bindings.
    case("a member from another tenant's namespace", binding, spec(
        member="serviceAccount:energent-dev-tenants.svc.id.goog[tenant-bravo/workflow-runner]"))
    case("a member from another project's pool", binding, spec(
        member="serviceAccount:attacker-project.svc.id.goog[tenant-acme/workflow-runner]"))
    case("a dedicated tenant's account for the shared cluster's pool", binding, spec(
        member="serviceAccount:energent-dev.svc.id.goog[tenant-acme/workflow-runner]"))
    case("a shared tenant's account for the dedicated clusters' pool", shared_binding, spec(
        member="serviceAccount:energent-dev-tenants.svc.id.goog[tenant-acme/workflow-runner]"))
    case("another service account of the namespace", binding, spec(
        member="serviceAccount:energent-dev-tenants.svc.id.goog[tenant-acme/default]"))
    case("a binding for Config Connector", shared_binding, spec(
        member="serviceAccount:energent-dev.svc.id.goog[cnrm-system/cnrm-controller-manager]"))
    case("a binding for Flux", shared_binding, spec(
        member="serviceAccount:energent-dev.svc.id.goog[flux-system/kustomize-controller]"))
    case("a binding for a person", binding, spec(member="user:someone@example.com"))
    case("a binding on another tenant's account", binding, lambda d: d["spec"]["resourceRef"].update(
        name="tenant-bravo"))
    case("a long id's binding on a short-form account", long_binding, lambda d: d["spec"]["resourceRef"].update(
        name="tenant-acme"))
    case("a binding on an account named from outside", binding, spec(resourceRef={
        "kind": "IAMServiceAccount", "external": "projects/energent-dev/serviceAccounts/terraform-dev@x"}))
    case("a binding of another role", binding, spec(role="roles/iam.serviceAccountTokenCreator"))
    case("a binding on another kind of resource", binding, spec(resourceRef={
        "kind": "StorageBucket", "external": "energent-manifests-dev-energent-dev"}))
    # Project bindings.
    case("a project binding on the platform's project", grant, lambda d: d["spec"]["resourceRef"].update(
        external="projects/energent-dev"))
    case("a project binding on another project", grant, lambda d: d["spec"]["resourceRef"].update(
        external="projects/someone-else"))
    case("a project grant of owner", grant, spec(role="roles/owner"))
    case("a project grant to a workload account", grant, spec(
        memberFrom={"serviceAccountRef": {"name": "tenant-acme"}}))
    case("a project grant to another tenant's node account", grant, spec(
        memberFrom={"serviceAccountRef": {"name": "nd-bravo"}}))
    case("a project grant to a member", grant, lambda d: (d["spec"].pop("memberFrom"), d["spec"].update(
        member="user:someone@example.com")))
    case("a project grant for a tenant with no cluster", grant, lambda d: d["metadata"]["labels"].update(
        {"energent.ai/deployment-model": "multi-tenant"}))
    case("Flux on every cluster", flux, lambda d: d["spec"].pop("condition"))
    case("Flux on another tenant's cluster", flux, lambda d: d["spec"]["condition"].update(
        expression=d["spec"]["condition"]["expression"].replace("tenant-acme", "tenant-bravo")))
    case("Flux on every cluster by a condition that always holds", flux, lambda d: d["spec"]["condition"].update(
        expression=d["spec"]["condition"]["expression"].replace(' || resource.name.startsWith("', ' || true || ("')))
    case("Flux's role for someone else", flux, spec(
        member="serviceAccount:cnrm-dev@energent-dev.iam.gserviceaccount.com"))
    case("Flux as owner", flux, spec(role="roles/owner"))
    # Clusters.
    case("the platform's cluster", cluster, lambda d: d["metadata"].update(name="energent-gke-dev"))
    case("another tenant's cluster", cluster, lambda d: d["metadata"].update(name="tenant-bravo"))
    case("a cluster object naming the platform's cluster", cluster, spec(resourceID="energent-gke-dev"))
    case("a cluster for a tenant with no cluster", cluster, lambda d: d["metadata"]["labels"].update(
        {"energent.ai/deployment-model": "multi-tenant"}))
    case("a cluster without nodeConfig", cluster, lambda d: d["spec"].pop("nodeConfig"))
    case("an Autopilot cluster", cluster, spec(enableAutopilot=True))
    case("node auto-provisioning", cluster, spec(clusterAutoscaling={
        "enabled": True, "autoProvisioningDefaults": {"serviceAccountRef": {"name": "terraform-dev"}}}))
    case("a default pool as another tenant's node account", cluster, lambda d: d["spec"]["nodeConfig"].update(
        serviceAccountRef={"name": "nd-bravo"}))
    case("a default pool as another account", cluster, lambda d: d["spec"]["nodeConfig"].update(
        serviceAccountRef={"external": "terraform-dev@energent-dev.iam.gserviceaccount.com"}))
    case("public nodes", cluster, lambda d: d["spec"]["privateClusterConfig"].update(enablePrivateNodes=False))
    case("a public endpoint", cluster, lambda d: d["spec"]["privateClusterConfig"].update(
        enablePrivateEndpoint=False))
    case("no private cluster settings", cluster, lambda d: d["spec"].pop("privateClusterConfig"))
    case("a control plane open to 0.0.0.0/0", cluster, spec(masterAuthorizedNetworksConfig={
        "cidrBlocks": [{"cidrBlock": "0.0.0.0/0", "displayName": "anyone"}]}))
    case("a control plane open to the tenants' Pods", cluster, lambda d: d["spec"][
        "masterAuthorizedNetworksConfig"]["cidrBlocks"].append({"cidrBlock": "10.4.0.0/14"}))
    case("a control plane open to Google Cloud's addresses", cluster, lambda d: d["spec"][
        "masterAuthorizedNetworksConfig"].update(gcpPublicCidrsAccessEnabled=True))
    case("no authorized networks", cluster, lambda d: d["spec"].pop("masterAuthorizedNetworksConfig"))
    case("the shared cluster's pool", cluster, spec(
        workloadIdentityConfig={"workloadPool": "energent-dev.svc.id.goog"}))
    case("no Workload Identity", cluster, lambda d: d["spec"].pop("workloadIdentityConfig"))
    case("another network", cluster, spec(networkRef={"external": "projects/someone-else/global/networks/default"}))
    case("another subnetwork", cluster, spec(subnetworkRef={
        "external": "projects/energent-dev/regions/europe-west4/subnetworks/other"}))
    case("the default pool on the node's own metadata server", cluster, lambda d: d["spec"]["nodeConfig"].update(
        workloadMetadataConfig={"mode": "GCE_METADATA"}))
    case("a default pool that stays", cluster, lambda d: d["metadata"]["annotations"].update(
        {"cnrm.cloud.google.com/remove-default-node-pool": "false"}))
    case("Pods in Flux's range", cluster, lambda d: d["spec"]["ipAllocationPolicy"].update(
        clusterSecondaryRangeName="platform-pods"))
    case("Services in the platform's range", cluster, lambda d: d["spec"]["ipAllocationPolicy"].update(
        servicesSecondaryRangeName="gke-services"))
    case("Pods in a range of the cluster's choosing", cluster, lambda d: d["spec"]["ipAllocationPolicy"].update(
        clusterIpv4CidrBlock="10.12.0.0/20"))
    case("more Pod ranges", cluster, lambda d: d["spec"]["ipAllocationPolicy"].update(
        additionalPodRangesConfig={"podRangeNames": ["platform-pods"]}))
    case("legacy ABAC", cluster, spec(enableLegacyAbac=True))
    case("client certificates", cluster, spec(masterAuth={"clientCertificateConfig": {
        "issueClientCertificate": True}}))
    case("basic authentication", cluster, spec(masterAuth={"username": "admin", "password": {"value": "x"}}))
    # Node pools.
    case("nodes with the node's own metadata server", pool, lambda d: d["spec"]["nodeConfig"].update(
        workloadMetadataConfig={"mode": "GCE_METADATA"}))
    case("nodes without the GKE metadata server", pool, lambda d: d["spec"]["nodeConfig"].pop(
        "workloadMetadataConfig"))
    case("nodes as another tenant's node account", pool, lambda d: d["spec"]["nodeConfig"].update(
        serviceAccountRef={"name": "nd-bravo"}))
    case("nodes as a workload account", pool, lambda d: d["spec"]["nodeConfig"].update(
        serviceAccountRef={"name": "tenant-acme"}))
    case("nodes with no account", pool, lambda d: d["spec"].pop("nodeConfig"))
    case("a pool on the platform's cluster", pool, spec(clusterRef={
        "external": "projects/energent-dev/locations/europe-west4/clusters/energent-gke-dev"}))
    case("a pool on another tenant's cluster", pool, spec(clusterRef={"name": "tenant-bravo"}))
    case("public nodes in a pool", pool, spec(networkConfig={"enablePrivateNodes": False}))
    case("a pool's Pods in Flux's range", pool, spec(networkConfig={"podRange": "platform-pods"}))
    case("a pool making a Pod range of its own", pool, spec(networkConfig={"createPodRange": True,
                                                                           "podIpv4CidrBlock": "10.12.0.0/20"}))
    case("a pool with more Pod networks", pool, spec(networkConfig={"additionalPodNetworkConfigs": [
        {"subnetwork": "energent-gke-dev", "secondaryPodRange": "platform-pods"}]}))
    hybrid_cases(case, spec)
    return cases


def hybrid_cases(case, spec) -> None:
    """A hybrid tenant's VPN objects, each with one field reaching further than what the provisioner renders."""
    documents = rendered("acme", "hybrid")
    gateway, tunnel = by_kind(documents, "ComputeExternalVPNGateway"), by_kind(documents, "ComputeVPNTunnel")
    interface, peer = by_kind(documents, "ComputeRouterInterface"), by_kind(documents, "ComputeRouterPeer")
    secret = by_kind(documents, "ExternalSecret")
    nat_router = "projects/energent-dev/regions/europe-west4/routers/energent-router-dev"
    # Where and whose.
    case("a tunnel in the tenants' project", tunnel, lambda d: d["metadata"]["annotations"].update(
        {"cnrm.cloud.google.com/project-id": "energent-dev-tenants"}))
    case("a tunnel in another project", tunnel, lambda d: d["metadata"]["annotations"].update(
        {"cnrm.cloud.google.com/project-id": "someone-else"}))
    case("a tunnel of a multi-tenant tenant", tunnel, lambda d: d["metadata"]["labels"].update(
        {"energent.ai/deployment-model": "multi-tenant"}))
    case("a tunnel of a dedicated tenant", tunnel, lambda d: d["metadata"]["labels"].update(
        {"energent.ai/deployment-model": "dedicated"}))
    case("a tunnel elsewhere", tunnel, lambda d: d["metadata"].update(namespace="tenant-acme"))
    case("another Compute Engine kind: a firewall rule", gateway, lambda d: (d.update(kind="ComputeFirewall"), d.update(
        spec={"networkRef": {"external": "energent-vpc-dev"}, "allow": [{"protocol": "all"}],
              "sourceRanges": ["0.0.0.0/0"]})))
    case("another Compute Engine kind: a route", gateway, lambda d: d.update(kind="ComputeRoute"))
    case("another Compute Engine kind: the NAT", gateway, lambda d: d.update(kind="ComputeRouterNAT"))
    case("another Compute Engine kind: a router", gateway, lambda d: d.update(kind="ComputeRouter"))
    # The external gateway.
    case("another tenant's external gateway", gateway, lambda d: d["metadata"].update(name="tenant-bravo"))
    case("an external gateway named from elsewhere", gateway, spec(resourceID="energent-partner-gateway"))
    case("an external gateway of four addresses", gateway, spec(redundancyType="FOUR_IPS_REDUNDANCY", interface=[
        {"id": n, "ipAddress": f"145.100.10.{n}"} for n in range(4)]))
    case("an external gateway at the platform's own VPN address", gateway, lambda d: d["spec"]["interface"][0].update(
        ipAddress="35.242.10.2"))
    for address in ("10.4.0.5", "192.168.1.1", "172.16.0.1", "100.64.0.1", "127.0.0.1", "169.254.169.254",
                    "203.0.113.5", "224.0.0.1", "0.0.0.0", "255.255.255.255", "08.8.8.8", "8.8.8"):
        case(f"an external gateway at {address}", gateway, lambda d, a=address: d["spec"]["interface"][0].update(
            ipAddress=a))
    case("an external gateway with an IPv6 address", gateway, lambda d: d["spec"]["interface"][0].update(
        ipv6Address="2001:db8::1"))
    # Tunnels.
    case("a tunnel named for another tenant", tunnel, lambda d: d["metadata"].update(name="tenant-bravo-0"))
    case("a third tunnel", tunnel, lambda d: d["metadata"].update(name="tenant-acme-2"))
    case("a tunnel on another VPN gateway", tunnel, spec(vpnGatewayRef={
        "external": "projects/energent-dev/regions/europe-west4/vpnGateways/other"}))
    case("a tunnel on a gateway made by Config Connector", tunnel, spec(vpnGatewayRef={"name": "energent-vpn-dev"}))
    case("a tunnel on the NAT router", tunnel, spec(routerRef={"external": nat_router}))
    case("a tunnel to another tenant's gateway", tunnel, spec(peerExternalGatewayRef={"name": "tenant-bravo"}))
    case("a tunnel to a gateway named from outside", tunnel, spec(peerExternalGatewayRef={
        "external": "projects/energent-dev/global/externalVpnGateways/partner"}))
    case("a tunnel to another Google Cloud network", tunnel, spec(peerGCPGatewayRef={
        "external": "projects/attacker/regions/europe-west4/vpnGateways/theirs"}))
    case("a Classic VPN tunnel", tunnel, spec(targetVPNGatewayRef={"external": "projects/energent-dev/regions/"
                                                                              "europe-west4/targetVpnGateways/x"},
                                              peerIp="145.100.10.9"))
    case("a tunnel in another region", tunnel, spec(region="us-central1"))
    case("a key written in the object", tunnel, spec(sharedSecret={"value": "guessable"}))
    case("a key from another tenant's Secret", tunnel, spec(sharedSecret={"valueFrom": {"secretKeyRef": {
        "name": "tenant-bravo-vpn", "key": "tunnel-0"}}}))
    case("a key from a platform Secret", tunnel, spec(sharedSecret={"valueFrom": {"secretKeyRef": {
        "name": "operator-client", "key": "client_secret"}}}))
    case("the other tunnel's key", tunnel, lambda d: d["spec"]["sharedSecret"]["valueFrom"]["secretKeyRef"].update(
        key="tunnel-1"))
    case("a key of the tenant's Secret that no tunnel has", tunnel, lambda d: d["spec"]["sharedSecret"][
        "valueFrom"]["secretKeyRef"].update(key="anything"))
    case("IKEv1", tunnel, spec(ikeVersion=1))
    case("a tunnel of no IKE version said", tunnel, lambda d: d["spec"].pop("ikeVersion"))
    case("a tunnel on the other interface of the platform's gateway", tunnel, spec(vpnGatewayInterface=1))
    case("a tunnel with traffic selectors", tunnel, spec(localTrafficSelector=["0.0.0.0/0"],
                                                         remoteTrafficSelector=["0.0.0.0/0"]))
    # Router interfaces.
    case("an interface on the NAT router", interface, spec(routerRef={"external": nat_router}))
    case("an interface on another tenant's tunnel", interface, spec(vpnTunnelRef={"name": "tenant-bravo-0"}))
    case("an interface on an Interconnect attachment", interface, lambda d: (d["spec"].pop("vpnTunnelRef"), d[
        "spec"].update(interconnectAttachmentRef={"external": "projects/energent-dev/regions/europe-west4/"
                                                              "interconnectAttachments/x"})))
    case("an interface in the platform's subnetwork", interface, spec(subnetworkRef={
        "external": "projects/energent-dev/regions/europe-west4/subnetworks/energent-gke-dev"}))
    case("an interface on the metadata server's /30", interface, spec(ipRange="169.254.169.253/30"))
    case("an interface on a private range", interface, spec(ipRange="10.4.0.1/30"))
    case("an interface on a wider range", interface, lambda d: d["spec"].update(
        ipRange=d["spec"]["ipRange"].replace("/30", "/16")))
    case("an interface on its /30's second address", interface, spec(ipRange="169.254.0.2/30"))
    case("an interface naming its router by path", interface, spec(routerRef={
        "external": "projects/energent-dev/regions/europe-west4/routers/energent-vpn-router-dev"}))
    # BGP peers.
    case("a peer on the NAT router", peer, spec(routerRef={"external": "energent-router-dev"}))
    case("a peer on another tenant's interface", peer, spec(routerInterfaceRef={"name": "tenant-bravo-0"}))
    case("a peer advertising every subnet", peer, spec(advertisedGroups=["ALL_SUBNETS"]))
    case("a peer advertising the default route", peer, lambda d: d["spec"]["advertisedIpRanges"].append(
        {"range": "0.0.0.0/0"}))
    case("a peer advertising the dedicated clusters' Pods", peer, spec(advertisedIpRanges=[{"range": "10.64.0.0/10"}]))
    case("a peer advertising the router's defaults", peer, lambda d: d["spec"].update(advertiseMode="DEFAULT"))
    case("a peer with no advertise mode", peer, lambda d: d["spec"].pop("advertiseMode"))
    case("a peer with a public ASN", peer, spec(peerAsn=15169))
    case("a peer with a reserved ASN", peer, spec(peerAsn=65535))
    case("a peer on the metadata server's address", peer, spec(peerIpAddress="169.254.169.254"))
    case("a peer on a private address", peer, spec(peerIpAddress="10.8.16.2"))
    case("a peer whose own side is a private address", peer, spec(ipAddress={"external": "10.0.0.5"}))
    case("a peer to a router appliance", peer, spec(routerApplianceInstanceRef={
        "external": "projects/energent-dev/zones/europe-west4-a/instances/x"}))
    case("a peer exchanging IPv6", peer, spec(enableIpv6=True))
    case("a peer with the platform's own ASN", peer, spec(peerAsn=64514))
    case("a peer with an IPv6 next hop", peer, spec(ipv6NexthopAddress="2600:2d00:0:2::1"))
    case("a peer with the customer's IPv6 next hop", peer, spec(peerIpv6NexthopAddress="2600:2d00:0:2::2"))
    case("a peer whose two sides are one address", peer, lambda d: d["spec"].update(
        peerIpAddress=d["spec"]["ipAddress"]["external"]))
    case("a peer on the customer's side of the /30", peer, lambda d: d["spec"].update(
        ipAddress={"external": d["spec"]["peerIpAddress"]}, peerIpAddress=d["spec"]["ipAddress"]["external"]))
    case("a peer to the /30's broadcast address", peer, lambda d: d["spec"].update(
        peerIpAddress=d["spec"]["peerIpAddress"][:-1] + str(int(d["spec"]["peerIpAddress"][-1]) + 1)))
    case("a peer naming its router by path", peer, spec(routerRef={
        "external": "projects/energent-dev/regions/europe-west4/routers/energent-vpn-router-dev"}))
    # The keys' ExternalSecret.
    case("another tenant's keys", secret, lambda d: d["spec"]["data"][0]["remoteRef"].update(key="hybrid-psk-bravo-0"))
    case("the platform's signing key", secret, lambda d: d["spec"]["data"][0]["remoteRef"].update(
        key="auth-signing-key"))
    case("every secret of the store", secret, spec(dataFrom=[{"find": {"name": {"regexp": ".*"}}}]))
    case("a key into another tenant's Secret", secret, lambda d: d["spec"]["target"].update(name="tenant-bravo-vpn"))
    case("keys through another store", secret, spec(secretStoreRef={"kind": "ClusterSecretStore",
                                                                    "name": "hybrid-psks"}))
    case("keys through a store of another name", secret, spec(secretStoreRef={"kind": "SecretStore",
                                                                              "name": "platform"}))
    case("keys into another kind of object", secret, lambda d: d["spec"]["target"].update(
        manifest={"apiVersion": "v1", "kind": "ConfigMap"}))
    case("keys of a generator", secret, lambda d: d["spec"]["data"][0].update(sourceRef={"generatorRef": {
        "kind": "Password", "name": "x"}}))
    case("an ExternalSecret of a multi-tenant tenant", secret, lambda d: d["metadata"]["labels"].update(
        {"energent.ai/deployment-model": "multi-tenant"}))
    case("an ExternalSecret elsewhere", secret, lambda d: d["metadata"].update(namespace="tenant-acme"))
    case("a template pulling another tenant's Secret", secret, lambda d: d["spec"]["target"].update(template={
        "templateFrom": [{"secret": {"name": "tenant-bravo-vpn", "items": [{"key": "tunnel-0"}]}}]}))
    case("a template writing a key in the object", secret, lambda d: d["spec"]["target"].update(template={
        "data": {"tunnel-0": "known"}}))
    case("a template from a ConfigMap", secret, lambda d: d["spec"]["target"].update(template={
        "templateFrom": [{"configMap": {"name": "any", "items": [{"key": "k"}]}}]}))
    case("the latest version of a key", secret, lambda d: d["spec"]["data"][0]["remoteRef"].update(version="latest"))
    case("a key of no version said", secret, lambda d: d["spec"]["data"][0]["remoteRef"].pop("version"))
    case("keys merged into a Secret someone else made", secret, lambda d: d["spec"]["target"].update(
        creationPolicy="Merge"))
    case("a Secret the ExternalSecret does not own", secret, lambda d: d["spec"]["target"].update(
        creationPolicy="Orphan"))
    case("one tunnel's key under the other's name", secret, lambda d: d["spec"]["data"][0]["remoteRef"].update(
        key="hybrid-psk-acme-1"))
    case("a key under a name no tunnel takes", secret, lambda d: d["spec"]["data"][0].update(secretKey="extra"))
    case("a key's metadata instead of its value", secret, lambda d: d["spec"]["data"][0]["remoteRef"].update(
        metadataPolicy="Fetch"))


HOSTILE = _hostile()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_variant_that_reaches_further_is_refused(name):
    assert refusals(HOSTILE[name]), name


def test_each_variant_differs_from_what_is_rendered_in_one_place():
    """The variants are rendered objects with one field changed: refusing them is about that field alone."""
    for name, document in HOSTILE.items():
        assert document not in rendered("acme", "dedicated") + rendered("acme", "multi-tenant") + rendered(
            "acme", "hybrid"), name


# --- the policy's constants are the provisioner's and Terraform's -----------------------------------------------

def variable(name: str):
    expression = next(v["expression"] for v in POLICY["spec"]["variables"] if v["name"] == name)
    return ENV.program(ENV.compile(expression)).evaluate({})


def test_the_policy_knows_the_environment_and_the_provisioner_s_constants():
    raw = POLICY_FILE.read_text()
    assert set(re.findall(r"\$\{(\w+)\}", raw)) == set(VALUES)
    assert variable("tenantsProject") == PLATFORM.tenants_project
    assert variable("platformPool") == PLATFORM.platform_pool and variable("tenantsPool") == PLATFORM.tenants_pool
    assert variable("fluxAccount") == f"serviceAccount:{PLATFORM.flux_account}"
    assert variable("fluxRole") == manifests.FLUX_CLUSTER_ROLE
    assert list(variable("nodeRoles")) == list(manifests.NODE_ROLES.values())
    assert list(variable("fluxNetworks")) == list(PLATFORM.authorized_networks)
    assert variable("network") == f"projects/energent-dev/global/networks/{PLATFORM.network}"
    assert variable("subnetwork") == (
        f"projects/energent-dev/regions/{PLATFORM.region}/subnetworks/{PLATFORM.subnetwork}")
    rendered_kinds = {d["kind"] for model in KINDS for d in rendered("acme", model)}
    assert set(variable("kinds")) == rendered_kinds
    assert set(variable("hybridKinds")) == KINDS["hybrid"] - KINDS["multi-tenant"]
    # The hybrid tenants' VPN: the platform's gateway and VPN router, its Pod range, the keys' store.
    assert variable("platformProject") == PLATFORM.project
    assert variable("vpnGateway") == PLATFORM.vpn_gateway_path
    assert variable("vpnRouterName") == PLATFORM.vpn_router
    assert list(variable("advertisedRanges")) == list(PLATFORM.advertised_ranges)
    assert variable("pskStore") == psks.SECRET_STORE
    assert variable("platformAsn") == PLATFORM.asn
    assert variable("vpnAddresses") == ",".join(PLATFORM.vpn_addresses)
    # ... and Terraform's: Flux's range, the roles Config Connector may grant, Flux's account name.
    networking = {n: b for block in plain(terraform(INFRA / "modules" / "networking" / "variables.tf"))["variable"]
                  for n, b in block.items()}
    assert [networking["platform_pods_cidr"]["default"]] == list(PLATFORM.authorized_networks)
    assert [networking["pods_cidr"]["default"]] == list(PLATFORM.advertised_ranges)  # what a site learns of us
    tenant_vars = {n: b for block in plain(terraform(INFRA / "modules" / "tenants" / "variables.tf"))["variable"]
                   for n, b in block.items()}
    assert tenant_vars["dedicated_node_roles"]["default"] == list(manifests.NODE_ROLES.values())
    assert tenant_vars["flux_cluster_role"]["default"] == manifests.FLUX_CLUSTER_ROLE


def test_the_policy_applies_everywhere_and_fails_closed():
    assert POLICY["apiVersion"] == BINDING["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert BINDING["spec"] == {"policyName": POLICY["metadata"]["name"], "validationActions": ["Deny"]}
    assert POLICY["spec"]["failurePolicy"] == "Fail"
    rule, secrets = POLICY["spec"]["matchConstraints"]["resourceRules"]
    assert set(rule["apiGroups"]) == {"iam.cnrm.cloud.google.com", "container.cnrm.cloud.google.com",
                                      "compute.cnrm.cloud.google.com"}
    assert set(rule["operations"]) == {"CREATE", "UPDATE"} and rule["resources"] == ["*"]
    assert secrets == {"apiGroups": ["external-secrets.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["externalsecrets"]}
    # Every group the provisioner renders Config Connector (and External Secrets) objects of is matched.
    rendered_groups = {d["apiVersion"].split("/")[0] for model in KINDS for content in manifests.render(
        tenants.TenantSpec("acme", "basic", model, **({"site": SITE, "bgp_ranges": ("169.254.0.0/30", "169.254.0.4/30")}
                                                       if model == "hybrid" else tenants.cluster_ranges(PLATFORM, 0)
                                                       if model == "dedicated" else {})), PLATFORM).values()
        for d in json.loads(content).get("items", []) if "cnrm" in d["apiVersion"] or "secrets" in d["apiVersion"]}
    assert rendered_groups == set(GROUPS)


def test_the_policy_s_public_addresses_are_the_ones_a_site_may_give():
    """An external gateway's address passes the policy exactly when the API takes it as a customer's: every range
    sites.py refuses, at its edges, and addresses either side of them."""
    import ipaddress

    from energent_shared.errors import Invalid

    gateway = by_kind(rendered("acme", "hybrid"), "ComputeExternalVPNGateway")
    edges = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
             "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
             "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"]
    addresses = {"8.8.8.8", "145.100.10.1", "35.242.10.1", "1.2.3.4"}
    for edge in map(ipaddress.IPv4Network, edges):
        low, high = int(edge.network_address), int(edge.broadcast_address)
        addresses |= {str(ipaddress.IPv4Address(n)) for n in (low - 1, low, high, high + 1) if 0 <= n < 2 ** 32}
    for address in sorted(addresses):
        try:
            sites.validate_site({**SITE, "peer_ips": [address]}, PLATFORM.site_rules)
            accepted = True
        except Invalid:
            accepted = False
        document = copy.deepcopy(gateway)
        document["spec"].update(redundancyType="SINGLE_IP_INTERNALLY_REDUNDANT",
                                interface=[{"id": 0, "ipAddress": address}])
        assert (refusals(document) == []) == accepted, address
