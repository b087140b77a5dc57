"""The cluster's admission policy for Config Connector's objects (infra/config-connector/tenant-objects-policy.yaml),
evaluated by a CEL interpreter: what the provisioner renders passes, including what Config Connector writes back;
what could reach another account or cluster is refused."""

import copy
import json

import celpy
import pytest
import yaml

from provisioner import manifests, tenants
from tests.conftest import ROOT

POLICY, _BINDING = yaml.safe_load_all((ROOT / "infra" / "config-connector" / "tenant-objects-policy.yaml").read_text())
GROUPS = tuple(POLICY["spec"]["matchConstraints"]["resourceRules"][0]["apiGroups"])
PLATFORM = manifests.Platform.for_environment("energent-dev", "dev")
ENV = celpy.Environment()
VARIABLES = celpy.json_to_cel({v["name"]: ENV.program(ENV.compile(v["expression"])).evaluate({})
                               for v in POLICY["spec"]["variables"]})
VALIDATIONS = [(ENV.program(ENV.compile(v["expression"])), v["message"]) for v in POLICY["spec"]["validations"]]


def refusals(document: dict) -> list[str]:
    """The messages of the validations `document` fails; an expression that cannot be evaluated refuses too, as
    the API server does with failurePolicy Fail."""
    activation = {"object": celpy.json_to_cel(document), "variables": VARIABLES}
    refused = []
    for program, message in VALIDATIONS:
        try:
            allowed = program.evaluate(activation)
        except celpy.CELEvalError:
            allowed = False
        if not allowed or isinstance(allowed, celpy.CELEvalError):
            refused.append(message)
    return refused


def rendered(tenant_id: str, model: str) -> list[dict]:
    ranges = tenants.cluster_ranges(PLATFORM, 3) if model == "dedicated" else {}
    files = manifests.render(tenants.TenantSpec(tenant_id, "enterprise", model, **ranges), PLATFORM)
    documents = [item for content in files.values() for item in json.loads(content).get("items", [])]
    return [d for d in documents if d["apiVersion"].split("/")[0] in GROUPS]


def by_kind(documents: list[dict], kind: str, **where) -> dict:
    return copy.deepcopy(next(d for d in documents if d["kind"] == kind and all(
        d["spec"].get(k, {}).get("kind") == v for k, v in where.items())))


@pytest.mark.parametrize("tenant_id", ["acme", "acme-corporation-europe", "a" * 32])
@pytest.mark.parametrize("model", ["multi-tenant", "dedicated"])
def test_what_the_provisioner_renders_passes(tenant_id, model):
    documents = rendered(tenant_id, model)
    assert documents
    for document in documents:
        assert refusals(document) == [], document["metadata"]["name"]


def test_what_config_connector_writes_back_passes():
    for document in rendered("acme", "dedicated"):
        if document["kind"] in ("IAMServiceAccount", "ContainerCluster"):
            written_back = {**document, "spec": {**document["spec"], "resourceID": document["metadata"]["name"]}}
            assert refusals(written_back) == [], document["kind"]


def _hostile() -> dict[str, dict]:
    documents = rendered("acme", "dedicated")
    account = by_kind(documents, "IAMServiceAccount")
    binding = by_kind(documents, "IAMPolicyMember", resourceRef="IAMServiceAccount")
    grant = by_kind(documents, "IAMPolicyMember", resourceRef="Project")
    cluster, pool = by_kind(documents, "ContainerCluster"), by_kind(documents, "ContainerNodePool")
    cases = {}

    def case(name, base, change):
        document = copy.deepcopy(base)
        change(document)
        cases[name] = document

    case("a platform account", account, lambda d: d["metadata"].update(name="terraform-dev"))
    case("a tenant object naming a platform account", account, lambda d: d["spec"].update(resourceID="terraform-dev"))
    case("another namespace", account, lambda d: d["metadata"].update(namespace="default"))
    case("another IAM kind", account, lambda d: d.update(kind="IAMCustomRole"))
    case("a binding for Flux", binding, lambda d: d["spec"].update(
        member="serviceAccount:energent-dev.svc.id.goog[flux-system/kustomize-controller]"))
    case("a binding on an account named from outside", binding, lambda d: d["spec"].update(resourceRef={
        "kind": "IAMServiceAccount", "external": "projects/energent-dev/serviceAccounts/terraform-dev@x"}))
    case("a binding of another role", binding, lambda d: d["spec"].update(role="roles/iam.serviceAccountTokenCreator"))
    case("a project grant of owner", grant, lambda d: d["spec"].update(role="roles/owner"))
    case("a project grant to a workload account", grant, lambda d: d["spec"].update(
        memberFrom={"serviceAccountRef": {"name": "tenant-acme"}}))
    case("a project grant to a member", grant, lambda d: (d["spec"].pop("memberFrom"), d["spec"].update(
        member="user:someone@example.com")))
    case("nodes as a workload account", pool, lambda d: d["spec"]["nodeConfig"].update(
        serviceAccountRef={"name": "tenant-acme"}))
    case("nodes with no account", pool, lambda d: d["spec"].pop("nodeConfig"))
    case("a pool on the platform's cluster", pool, lambda d: d["spec"].update(clusterRef={
        "external": "projects/energent-dev/locations/europe-west4/clusters/energent-gke-dev"}))
    case("the platform's cluster", cluster, lambda d: d["metadata"].update(name="energent-gke-dev"))
    case("a cluster object naming the platform's cluster", cluster, lambda d: d["spec"].update(
        resourceID="energent-gke-dev"))
    case("node auto-provisioning", cluster, lambda d: d["spec"].update(clusterAutoscaling={
        "enabled": True, "autoProvisioningDefaults": {"serviceAccountRef": {"name": "terraform-dev"}}}))
    case("a default pool as another account", cluster, lambda d: d["spec"]["nodeConfig"].update(
        serviceAccountRef={"external": "terraform-dev@energent-dev.iam.gserviceaccount.com"}))
    return cases


@pytest.mark.parametrize("name, document", list(_hostile().items()))
def test_what_could_reach_another_account_or_cluster_is_refused(name, document):
    assert refusals(document), name
