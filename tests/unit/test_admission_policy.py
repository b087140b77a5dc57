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

from provisioner import manifests, tenants
from tests.conftest import ROOT
from tests.unit.test_infra import INFRA, plain, terraform

# What README step 5 substitutes (envsubst), for the dev environment.
VALUES = {"PROJECT_ID": "energent-dev", "TENANTS_PROJECT_ID": "energent-dev-tenants", "ENVIRONMENT": "dev",
          "REGION": "europe-west4"}
POLICY_FILE = ROOT / "infra" / "config-connector" / "tenant-objects-policy.yaml"


def substituted(text: str) -> str:
    for name, value in VALUES.items():
        text = text.replace(f"${{{name}}}", value)
    return text


POLICY, BINDING = yaml.safe_load_all(substituted(POLICY_FILE.read_text()))
GROUPS = tuple(POLICY["spec"]["matchConstraints"]["resourceRules"][0]["apiGroups"])
PLATFORM = manifests.Platform.for_environment("energent-dev", "dev", tenants_project="energent-dev-tenants")
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


def rendered(tenant_id: str, model: str, tier: str = "enterprise") -> list[dict]:
    ranges = tenants.cluster_ranges(PLATFORM, 3) if model == "dedicated" else {}
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


@pytest.mark.parametrize("tenant_id", TENANT_IDS)
@pytest.mark.parametrize("model", ["multi-tenant", "dedicated"])
@pytest.mark.parametrize("tier", ["basic", "standard", "premium", "enterprise"])
def test_what_the_provisioner_renders_passes(tenant_id, model, tier):
    documents = rendered(tenant_id, model, tier)
    assert {d["kind"] for d in documents} == (
        {"IAMServiceAccount", "IAMPolicyMember", "ContainerCluster", "ContainerNodePool"} if model == "dedicated"
        else {"IAMServiceAccount", "IAMPolicyMember"})
    for document in documents:
        assert refusals(document) == [], (document["kind"], document["metadata"]["name"])


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
    return cases


HOSTILE = _hostile()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_variant_that_reaches_further_is_refused(name):
    assert refusals(HOSTILE[name]), name


def test_each_variant_differs_from_what_is_rendered_in_one_place():
    """The variants are rendered objects with one field changed: refusing them is about that field alone."""
    for name, document in HOSTILE.items():
        assert document not in rendered("acme", "dedicated") + rendered("acme", "multi-tenant"), name


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
    rendered_kinds = {d["kind"] for d in rendered("acme", "dedicated")}
    assert set(variable("kinds")) == rendered_kinds
    # ... and Terraform's: Flux's range, the roles Config Connector may grant, Flux's account name.
    networking = {n: b for block in plain(terraform(INFRA / "modules" / "networking" / "variables.tf"))["variable"]
                  for n, b in block.items()}
    assert [networking["platform_pods_cidr"]["default"]] == list(PLATFORM.authorized_networks)
    tenant_vars = {n: b for block in plain(terraform(INFRA / "modules" / "tenants" / "variables.tf"))["variable"]
                   for n, b in block.items()}
    assert tenant_vars["dedicated_node_roles"]["default"] == list(manifests.NODE_ROLES.values())
    assert tenant_vars["flux_cluster_role"]["default"] == manifests.FLUX_CLUSTER_ROLE


def test_the_policy_applies_everywhere_and_fails_closed():
    assert POLICY["apiVersion"] == BINDING["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert BINDING["spec"] == {"policyName": POLICY["metadata"]["name"], "validationActions": ["Deny"]}
    assert POLICY["spec"]["failurePolicy"] == "Fail"
    rule = POLICY["spec"]["matchConstraints"]["resourceRules"][0]
    assert set(rule["apiGroups"]) == {"iam.cnrm.cloud.google.com", "container.cnrm.cloud.google.com"}
    assert set(rule["operations"]) == {"CREATE", "UPDATE"} and rule["resources"] == ["*"]
    # Every group the provisioner renders Config Connector objects of is matched.
    assert {d["apiVersion"].split("/")[0] for d in rendered("acme", "dedicated")} <= set(rule["apiGroups"])
