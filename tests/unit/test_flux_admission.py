"""The platform cluster's policy on what Flux applies (infra/flux/admission.yaml), evaluated by a CEL interpreter as
the API server would: every request kustomize-controller makes for what the provisioner renders is admitted (every
deployment model, every object, status updates, events, its lease, pruning); anything that would reach past the
tenants is refused; nobody else's requests are matched."""

import json
import subprocess

import celpy
import pytest
import yaml
from celpy import celtypes

from provisioner import manifests, tenants
from tests.conftest import ROOT

FLUX = "system:serviceaccount:flux-system:kustomize-controller"
POLICY = next(d for d in yaml.safe_load_all(subprocess.run(
    ["kubectl", "kustomize", str(ROOT / "infra" / "flux")], capture_output=True, text=True, check=True).stdout)
    if d["kind"] == "ValidatingAdmissionPolicy")
ENV = celpy.Environment()
MATCH = [ENV.program(ENV.compile(c["expression"])) for c in POLICY["spec"]["matchConditions"]]
VARIABLES = [(v["name"], ENV.program(ENV.compile(v["expression"]))) for v in POLICY["spec"]["variables"]]
VALIDATIONS = [ENV.program(ENV.compile(v["expression"])) for v in POLICY["spec"]["validations"]]
PLATFORM = manifests.Platform.for_environment("energent-dev", "dev", tenants_project="energent-dev-tenants",
                                              vpn_addresses=("35.242.10.1", "35.242.10.2"))
SITE = {"peer_ips": ["145.100.10.1"], "peer_asn": 65010, "cidrs": ["10.200.0.0/16"]}


def request(document: dict, operation: str = "CREATE", user: str = FLUX, subresource: str = "") -> dict:
    group, _, _version = document["apiVersion"].rpartition("/")
    metadata = document.get("metadata", {})
    return {"operation": operation, "userInfo": {"username": user}, "subResource": subresource,
            "kind": {"group": group, "kind": document["kind"]}, "namespace": metadata.get("namespace", ""),
            "name": metadata.get("name", "")}


def verdict(document: dict, operation: str = "CREATE", user: str = FLUX, subresource: str = "") -> str:
    """'admitted', 'refused' or 'not matched' (the policy does not apply to the request)."""
    activation = {"request": celpy.json_to_cel(request(document, operation, user, subresource)),
                  "object": celpy.json_to_cel(None if operation == "DELETE" else document),
                  "oldObject": celpy.json_to_cel(document if operation != "CREATE" else None)}
    if not all(program.evaluate(activation) for program in MATCH):
        return "not matched"
    variables = celtypes.MapType({})
    for name, program in VARIABLES:
        try:
            variables[celtypes.StringType(name)] = program.evaluate({**activation, "variables": variables})
        except celpy.CELEvalError as error:
            variables[celtypes.StringType(name)] = error
    for program in VALIDATIONS:
        try:
            allowed = program.evaluate({**activation, "variables": variables})
        except celpy.CELEvalError:
            return "refused"  # failurePolicy: Fail
        if not allowed:
            return "refused"
    return "admitted"


def rendered(model: str) -> list[dict]:
    ranges: dict = tenants.cluster_ranges(PLATFORM, 3) if model == "dedicated" else {}
    if model == "hybrid":
        ranges = {"site": SITE, "bgp_ranges": ("169.254.0.0/30", "169.254.0.4/30")}
    files = manifests.render(tenants.TenantSpec("acme", "premium", model, **ranges), PLATFORM)
    found = []
    for path, content in files.items():
        if path.endswith("kustomization.yaml") and "/sync/" not in path:
            continue  # kustomize's own build file, never applied
        documents = [json.loads(content)] if path.endswith(".json") else list(yaml.safe_load_all(content))
        for document in documents:
            found += document["items"] if document.get("kind") == "List" else [document]
    return found


@pytest.mark.parametrize("model", ["multi-tenant", "dedicated", "hybrid"])
def test_everything_the_provisioner_renders_may_be_applied_updated_and_pruned(model):
    documents = rendered(model)
    assert {d["kind"] for d in documents} >= {"Namespace", "ResourceQuota", "NetworkPolicy", "Bucket",
                                              "Kustomization", "IAMServiceAccount"}
    for document in documents:
        for operation in ("CREATE", "UPDATE", "DELETE"):
            assert verdict(document, operation) == "admitted", (operation, document["kind"])


def test_flux_keeps_its_own_objects_status_events_and_lease():
    kustomization = next(d for d in rendered("dedicated") if d["kind"] == "Kustomization")
    assert verdict(kustomization, "UPDATE", subresource="status") == "admitted"
    for kept in ({"apiVersion": "v1", "kind": "Event", "metadata": {"namespace": "flux-system", "name": "e"}},
                 {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"namespace": "flux-system",
                                                                                 "name": "e"}},
                 {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                  "metadata": {"namespace": "flux-system", "name": "kustomize-controller-leader-election"}}):
        assert verdict(kept) == "admitted", kept["kind"]


def hostile() -> dict[str, tuple[dict, str]]:
    kustomization = next(d for d in rendered("dedicated") if d["kind"] == "Kustomization")

    def obj(api, kind, namespace=None, name="x", spec=None):
        metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
        return {"apiVersion": api, "kind": kind, "metadata": metadata, **({"spec": spec} if spec else {})}

    def changed(**spec):
        return {**kustomization, "spec": {**kustomization["spec"], **spec}}

    return {
        "the Config Connector policy's binding set to audit": (obj(
            "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", name="energent-tenant-accounts-only",
            spec={"policyName": "energent-tenant-accounts-only", "validationActions": ["Audit"]}), "UPDATE"),
        "the Config Connector policy deleted": (obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy",
                                                    name="energent-tenant-accounts-only"), "DELETE"),
        "this policy's binding deleted": (obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding",
                                              name="energent-flux-applies-tenants-only"), "DELETE"),
        "a Pod as Config Connector": (obj("v1", "Pod", "cnrm-system", spec={
            "serviceAccountName": "cnrm-controller-manager", "containers": [{"name": "x", "image": "x"}]}), "CREATE"),
        "a Pod in a tenant's namespace": (obj("v1", "Pod", "tenant-acme"), "CREATE"),
        "a Deployment in a tenant's namespace": (obj("apps/v1", "Deployment", "tenant-acme"), "CREATE"),
        "a CronJob in flux-system": (obj("batch/v1", "CronJob", "flux-system"), "CREATE"),
        "cluster-admin for someone": (obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", spec=None), "CREATE"),
        "a RoleBinding in a tenant's namespace": (obj("rbac.authorization.k8s.io/v1", "RoleBinding", "tenant-acme"),
                                                  "CREATE"),
        "a Secret in flux-system": (obj("v1", "Secret", "flux-system"), "CREATE"),
        "a ServiceAccount in kube-system": (obj("v1", "ServiceAccount", "kube-system"), "CREATE"),
        "a ConfigMap in cnrm-system": (obj("v1", "ConfigMap", "cnrm-system"), "UPDATE"),
        "the kube-system namespace": (obj("v1", "Namespace", name="kube-system"), "DELETE"),
        "a namespace that only looks like a tenant's": (obj("v1", "Namespace", name="tenant-acme-"), "CREATE"),
        "a CRD": (obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", name="x.example.com"), "CREATE"),
        "a webhook": (obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"), "CREATE"),
        "Config Connector's settings": (obj("core.cnrm.cloud.google.com/v1beta1", "ConfigConnector",
                                            name="configconnector.core.cnrm.cloud.google.com"), "UPDATE"),
        "a storage bucket through Config Connector": (obj("storage.cnrm.cloud.google.com/v1beta1", "StorageBucket",
                                                          "energent-infra"), "CREATE"),
        "a Config Connector object in a tenant's namespace": (obj("iam.cnrm.cloud.google.com/v1beta1",
                                                                  "IAMPolicyMember", "tenant-acme"), "CREATE"),
        "a tunnel key's Secret written by Flux": (obj("v1", "Secret", "energent-infra", name="tenant-acme-vpn"),
                                                 "CREATE"),
        "a SecretStore of its own": (obj("external-secrets.io/v1", "SecretStore", "energent-infra"), "CREATE"),
        "a store for every namespace": (obj("external-secrets.io/v1", "ClusterSecretStore"), "CREATE"),
        "the platform's key store deleted": (obj("external-secrets.io/v1", "SecretStore", "energent-infra",
                                                 name="hybrid-psks"), "DELETE"),
        "an ExternalSecret in a tenant's namespace": (obj("external-secrets.io/v1", "ExternalSecret", "tenant-acme"),
                                                      "CREATE"),
        "a firewall rule through Config Connector": (obj("compute.cnrm.cloud.google.com/v1beta1", "ComputeFirewall",
                                                         "energent-infra"), "CREATE"),
        "the NAT through Config Connector": (obj("compute.cnrm.cloud.google.com/v1beta1", "ComputeRouterNAT",
                                                 "energent-infra"), "CREATE"),
        "a Kustomization impersonating an account": (changed(serviceAccountName="cluster-admin-sa"), "CREATE"),
        "a Kustomization reading a kubeconfig Secret": (changed(kubeConfig={"secretRef": {"name": "admin"}}),
                                                        "UPDATE"),
        "a Kustomization substituting from a Secret": (changed(postBuild={"substituteFrom": [
            {"kind": "Secret", "name": "x"}]}), "CREATE"),
        "a Kustomization in another namespace": ({**kustomization, "metadata": {
            **kustomization["metadata"], "namespace": "tenant-acme"}}, "CREATE"),
    }


HOSTILE = hostile()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_what_reaches_past_the_tenants_is_refused(name):
    document, operation = HOSTILE[name]
    assert verdict(document, operation) == "refused", name


def test_only_kustomize_controller_is_held_to_it():
    pod, _ = HOSTILE["a Pod as Config Connector"]
    assert verdict(pod, user="system:serviceaccount:cnrm-system:cnrm-controller-manager") == "not matched"
    assert verdict(pod, user="operator@energent.ai") == "not matched"
    assert verdict(pod, user="system:serviceaccount:flux-system:kustomize-controller-x") == "not matched"


def test_the_policy_denies_and_fails_closed():
    binding = next(d for d in yaml.safe_load_all(subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "infra" / "flux")], capture_output=True, text=True, check=True).stdout)
        if d["kind"] == "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": POLICY["metadata"]["name"], "validationActions": ["Deny"]}
    assert POLICY["spec"]["failurePolicy"] == "Fail"
    rule = POLICY["spec"]["matchConstraints"]["resourceRules"][0]
    assert rule["apiGroups"] == ["*"] and set(rule["operations"]) == {"CREATE", "UPDATE", "DELETE"}
    assert set(rule["resources"]) == {"*", "*/*"}
