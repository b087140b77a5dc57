"""Who acts as whom, and may do what it must: Flux's controllers and Config Connector against the Google service
accounts Terraform makes for them, the Kubernetes manifests that bind the two (built with `kubectl kustomize`,
as the bootstrap applies them), and the customer-managed key's grants."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from local.schemas import validate
from provisioner import manifests, tenants
from tests.unit.test_infra import INFRA, plain, resources, resources_of, terraform
from tools import registry

WI_ANNOTATION = "iam.gke.io/gcp-service-account"
# The permissions of predefined roles that these grants rely on (a subset of each role).
ROLE_PERMISSIONS = {
    "roles/storage.objectViewer": {"storage.objects.get", "storage.objects.list"},
    "roles/storage.legacyBucketReader": {"storage.buckets.get", "storage.objects.list"},
    "roles/container.developer": {"container.clusters.get", "container.namespaces.create",
                                  "container.namespaces.get", "container.configMaps.create"},
    "roles/iam.serviceAccountAdmin": {"iam.serviceAccounts.create", "iam.serviceAccounts.delete",
                                      "iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.setIamPolicy"},
    "roles/iam.serviceAccountUser": {"iam.serviceAccounts.actAs"},
    "roles/container.clusterAdmin": {"container.clusters.create", "container.clusters.delete",
                                     "container.clusters.update", "container.clusters.get"},
    "roles/resourcemanager.projectIamAdmin": {"resourcemanager.projects.getIamPolicy",
                                              "resourcemanager.projects.setIamPolicy"},
}


def kustomize(folder: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to build the cluster's manifests: apt-get install kubectl")
    built = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120,
                           check=True)
    return [document for document in yaml.safe_load_all(built.stdout) if document]


def substituted(objects: list[dict], project: str, environment: str) -> list[dict]:
    """What `envsubst '${PROJECT_ID} ${ENVIRONMENT}'` makes of the built manifests."""
    text = yaml.safe_dump_all(objects).replace("${PROJECT_ID}", project).replace("${ENVIRONMENT}", environment)
    return list(yaml.safe_load_all(text))


def variables_in(objects: list[dict]) -> set[str]:
    return set(re.findall(r"\$\{(\w+)\}", yaml.safe_dump_all(objects)))


def locals_of(path: Path) -> dict:
    return {name: value for block in plain(terraform(path)).get("locals", []) for name, value in block.items()}


PLATFORM = manifests.Platform.for_environment("energent-dev", "dev", manifest_bucket="m",
                                              tenants_project="energent-dev-tenants")


def dedicated_tenant_files() -> dict[str, bytes]:
    platform = PLATFORM
    spec = tenants.TenantSpec(tenant_id="acme", tier="enterprise", deployment_model="dedicated",
                              **tenants.cluster_ranges(manifests.Platform(project="p"), 0))
    return manifests.render(spec, platform)


def dedicated_tenant_objects() -> list[dict]:
    objects = []
    for path, body in dedicated_tenant_files().items():
        if "/manifests/" in path and not path.endswith("kustomization.yaml"):
            document = json.loads(body)
            objects += document["items"] if document["kind"] == "List" else [document]
    return objects


FUNCTIONS_TF = INFRA / "modules" / "functions" / "main.tf"
GKE_TF = INFRA / "modules" / "gke" / "main.tf"
TENANTS_TF = INFRA / "modules" / "tenants" / "main.tf"


def module_call(name: str) -> dict:
    return next(body for block in plain(terraform(INFRA / "platform" / "main.tf"))["module"]
                for module, body in block.items() if module == name)


# --- Flux -----------------------------------------------------------------------------------------------------

def test_every_flux_controller_with_a_google_account_is_annotated_with_it():
    controllers = locals_of(FUNCTIONS_TF)["flux_controllers"]
    assert set(controllers) == {"source-controller", "notification-controller", "kustomize-controller"}
    accounts = resources("functions", "google_service_account")["flux"]
    assert accounts["for_each"] == "${local.flux_controllers}"
    assert accounts["account_id"] == "flux-${each.value}-${var.environment}"
    bindings = resources("functions", "google_service_account_iam_member")["flux_workload_identity"]
    assert bindings["for_each"] == "${google_service_account.flux}"
    assert bindings["role"] == "roles/iam.workloadIdentityUser"
    # The pool is read from the cluster, so the bindings are made after it (the pool exists only then).
    assert bindings["member"] == "serviceAccount:${var.workload_pool}[flux-system/${each.key}]"
    assert module_call("functions")["workload_pool"] == "${module.gke.workload_pool}"
    gke_outputs = {n: b for block in plain(terraform(INFRA / "modules" / "gke" / "outputs.tf"))["output"]
                   for n, b in block.items()}
    assert gke_outputs["workload_pool"]["value"] == (
        "${google_container_cluster.primary.workload_identity_config[0].workload_pool}")

    built = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in kustomize(INFRA / "flux")}
    for controller, short in controllers.items():
        account = built[("ServiceAccount", "flux-system", controller)]
        assert account["metadata"]["annotations"][WI_ANNOTATION] == (
            f"flux-{short}-${{ENVIRONMENT}}@${{PROJECT_ID}}.iam.gserviceaccount.com")
        validate(account)  # a Kubernetes 1.30 ServiceAccount, nothing else in it


def test_the_flux_manifests_need_only_the_project_and_environment_and_name_terraform_s_bucket():
    built = kustomize(INFRA / "flux")
    assert variables_in(built) == {"PROJECT_ID", "ENVIRONMENT"}
    bucket = next(o for o in substituted(built, "energent-dev", "dev") if o["kind"] == "Bucket")
    prefix = registry.load().buckets["MANIFEST_BUCKET"]
    # infra/modules/storage: name = "${each.value}-${var.environment}-${var.project_id}"
    assert bucket["spec"]["bucketName"] == f"{prefix}-dev-energent-dev"
    assert bucket["spec"]["provider"] == "gcp" and "secretRef" not in bucket["spec"]  # Workload Identity


def test_the_source_controller_may_get_the_manifest_bucket_and_read_its_objects():
    grants = [g for g in resources("functions", "google_storage_bucket_iam_member").values()
              if g["member"] == "serviceAccount:${google_service_account.flux[\"source-controller\"].email}"]
    assert {g["bucket"] for g in grants} == {'${var.bucket_names["MANIFEST_BUCKET"]}'}
    permissions = set().union(*(ROLE_PERMISSIONS[g["role"]] for g in grants))
    assert {"storage.buckets.get", "storage.objects.list", "storage.objects.get"} <= permissions


def test_the_kustomize_controller_holds_no_cluster_role_on_any_project():
    """Flux's account may act on each dedicated cluster through a grant rendered with that cluster, whose condition
    names it (test_provisioner_rules), and holds no project-wide role anywhere."""
    kustomize_account = "google_service_account.flux[\"kustomize-controller\"]"
    for path in sorted(INFRA.rglob("*.tf")):
        for kind in ("google_project_iam_member", "google_project_iam_binding"):
            for name, grant in resources_of(path, kind).items():
                member = str(grant.get("member", ""))
                assert kustomize_account not in str(grant) and "google_service_account.flux[" not in member and (
                    "flux-kustomize" not in member), (path, name)
    # The grants the provisioner renders: one per dedicated cluster, that cluster's name in its condition.
    grants = [o for o in dedicated_tenant_objects() if o["kind"] == "IAMPolicyMember" and o["spec"].get(
        "member") == f"serviceAccount:{PLATFORM.flux_account}"]
    assert len(grants) == 1 and "condition" in grants[0]["spec"]
    assert manifests.cluster_path("acme", PLATFORM) in grants[0]["spec"]["condition"]["expression"]
    # The account it names is the one Terraform makes for kustomize-controller.
    accounts = resources("functions", "google_service_account")["flux"]
    controllers = locals_of(FUNCTIONS_TF)["flux_controllers"]
    made = accounts["account_id"].replace("${each.value}", controllers["kustomize-controller"]).replace(
        "${var.environment}", "dev")
    assert PLATFORM.flux_account == f"{made}@energent-dev.iam.gserviceaccount.com"


def test_a_dedicated_tenant_s_cluster_is_reached_as_the_kustomize_controller_s_own_account():
    """The provisioner names the tenant's cluster for Flux's GKE access (kubeConfig, provider gcp) in the tenants'
    project, where that account holds container.developer on that cluster alone, and asks for no other identity than
    the controller's."""
    synced = [o for path, body in dedicated_tenant_files().items() if "/sync/" in path
              for document in [json.loads(body)] for o in (document.get("items") or [document])]
    remote = [o for o in synced if o["kind"] == "Kustomization" and "kubeConfig" in o["spec"]]
    assert remote, "a dedicated tenant's namespace objects are applied on its own cluster"
    access = {o["metadata"]["name"]: o for o in synced if o["kind"] == "ConfigMap"}
    for kustomization in remote:
        assert "serviceAccountName" not in kustomization["spec"]
        config = access[kustomization["spec"]["kubeConfig"]["configMapRef"]["name"]]["data"]
        assert config["provider"] == "gcp" and "serviceAccountName" not in config
        assert config["cluster"].startswith("projects/energent-dev-tenants/locations/")


# --- Config Connector -----------------------------------------------------------------------------------------

def test_config_connector_runs_cluster_wide_as_the_account_terraform_made_for_it():
    built = kustomize(INFRA / "config-connector")
    assert variables_in(built) == {"PROJECT_ID", "TENANTS_PROJECT_ID", "ENVIRONMENT", "REGION", "HYBRID_ASN",
                                   "HYBRID_VPN_ADDRESSES"}
    connector = next(o for o in built if o["kind"] == "ConfigConnector")
    assert connector["apiVersion"] == "core.cnrm.cloud.google.com/v1beta1"
    assert connector["metadata"]["name"] == "configconnector.core.cnrm.cloud.google.com"  # the only name accepted
    assert connector["spec"] == {"mode": "cluster",
                                 "googleServiceAccount": "cnrm-${ENVIRONMENT}@${PROJECT_ID}.iam.gserviceaccount.com"}
    assert resources("gke", "google_service_account")["config_connector"]["account_id"] == "cnrm-${var.environment}"
    binding = resources("gke", "google_service_account_iam_member")["config_connector_workload_identity"]
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    # The pool is read from the cluster: the binding is made after the cluster, once its pool exists.
    assert binding["member"] == ("serviceAccount:${google_container_cluster.primary.workload_identity_config[0]"
                                 ".workload_pool}[cnrm-system/cnrm-controller-manager]")

    namespace = next(o for o in built if o["kind"] == "Namespace")
    validate(namespace)
    assert namespace["metadata"]["name"] == manifests.Platform(project="p").config_connector_namespace
    assert namespace["metadata"]["annotations"] == {"cnrm.cloud.google.com/project-id": "${TENANTS_PROJECT_ID}"}


# What Config Connector calls to make each kind the provisioner renders (IAMPolicyMember by what it binds on).
NEEDED = {
    "IAMServiceAccount": {"iam.serviceAccounts.create", "iam.serviceAccounts.delete"},
    ("IAMPolicyMember", "IAMServiceAccount"): {"iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.setIamPolicy"},
    ("IAMPolicyMember", "Project"): {"resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy"},
    "ContainerCluster": {"container.clusters.create", "container.clusters.delete", "container.clusters.get"},
    "ContainerNodePool": {"container.clusters.update", "iam.serviceAccounts.actAs"},
}


def test_config_connector_holds_what_the_provisioner_s_resources_need_on_the_tenants_project_and_nothing_else():
    objects = [o for o in dedicated_tenant_objects() if o["apiVersion"].endswith(".cnrm.cloud.google.com/v1beta1")]
    assert {o["metadata"]["namespace"] for o in objects} == {"energent-infra"}
    # Every object is made in the tenants' project, every project binding is on it.
    assert {o["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"] for o in objects} == {
        "energent-dev-tenants"}
    assert {o["spec"]["resourceRef"]["external"] for o in objects if o["kind"] == "IAMPolicyMember"
            and o["spec"]["resourceRef"]["kind"] == "Project"} == {"projects/energent-dev-tenants"}
    needed = set()
    for o in objects:
        key = (o["kind"], o["spec"]["resourceRef"]["kind"]) if o["kind"] == "IAMPolicyMember" else o["kind"]
        needed |= NEEDED[key]

    member = "serviceAccount:${var.config_connector_account}"
    grants = {name: g for name, g in resources_of(TENANTS_TF, "google_project_iam_member").items()
              if g["member"] == member and g["project"] == "${var.tenants_project_id}"}
    plain_roles = set(grants["config_connector"]["for_each"].split('"')[1::2])
    assert plain_roles == {"roles/iam.serviceAccountAdmin", "roles/iam.serviceAccountUser",
                           "roles/container.clusterAdmin"}
    conditional = grants["config_connector_grants"]
    assert conditional["role"] == "roles/resourcemanager.projectIamAdmin"
    assert set(grants) == {"config_connector", "config_connector_grants"}
    held = set().union(*(ROLE_PERMISSIONS[role] for role in plain_roles | {conditional["role"]}))
    assert needed <= held, needed - held
    assert module_call("tenants")["config_connector_account"] == "${module.gke.config_connector_service_account}"

    # The project-policy grant changes only the roles the provisioner binds: the node roles and Flux's.
    expression = conditional["condition"][0]["expression"]
    assert expression == ("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly("
                          "[${join(\", \", [for role in local.grantable_roles : \"'${role}'\"])}])")
    assert locals_of(TENANTS_TF)["grantable_roles"] == "${concat(var.dedicated_node_roles, [var.flux_cluster_role])}"
    bound = {o["spec"]["role"] for o in objects if o["kind"] == "IAMPolicyMember"
             and o["spec"]["resourceRef"]["kind"] == "Project"}
    assert bound == {*manifests.NODE_ROLES.values(), manifests.FLUX_CLUSTER_ROLE}

    # On the platform's project, only the hybrid tenants' VPN role (below): no other grant anywhere names Config
    # Connector's account there.
    for path in sorted(INFRA.rglob("*.tf")):
        for name, grant in resources_of(path, "google_project_iam_member").items():
            if "config_connector" in str(grant.get("member")):
                assert path == TENANTS_TF and (grant["project"] == "${var.tenants_project_id}" or (
                    name == "config_connector_vpn" and grant["project"] == "${var.project_id}")), (path, name)


# What Config Connector calls to make a hybrid tenant's VPN objects, all in the platform's project (the network's
# host): the Compute Engine API's permissions for each kind.
NEEDED_VPN = {
    "ComputeExternalVPNGateway": {"compute.externalVpnGateways.create", "compute.externalVpnGateways.delete",
                                  "compute.externalVpnGateways.get", "compute.externalVpnGateways.setLabels"},
    "ComputeVPNTunnel": {"compute.vpnTunnels.create", "compute.vpnTunnels.delete", "compute.vpnTunnels.get",
                         "compute.vpnTunnels.setLabels", "compute.vpnGateways.use", "compute.routers.use",
                         "compute.externalVpnGateways.use", "compute.regionOperations.get"},
    "ComputeRouterInterface": {"compute.routers.get", "compute.routers.update", "compute.regionOperations.get"},
    "ComputeRouterPeer": {"compute.routers.get", "compute.routers.update", "compute.regionOperations.get"},
}


def test_config_connector_holds_only_the_vpn_permissions_on_the_platform_s_project():
    platform = manifests.Platform.for_environment("energent-dev", "dev", tenants_project="energent-dev-tenants",
                                                  vpn_addresses=("35.242.10.1", "35.242.10.2"))
    site = {"peer_ips": ["145.100.10.1"], "peer_asn": 65010, "cidrs": ["10.200.0.0/16"]}
    files = manifests.render(tenants.TenantSpec("acme", "basic", "hybrid", site=site, bgp_ranges=(
        "169.254.0.0/30", "169.254.0.4/30")), platform)
    objects = [o for content in files.values() for o in (json.loads(content).get("items") or [])
               if o["apiVersion"].startswith("compute.cnrm.")]
    assert {o["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"] for o in objects} == {"energent-dev"}
    needed = set().union(*(NEEDED_VPN[o["kind"]] for o in objects))

    grant = resources_of(TENANTS_TF, "google_project_iam_member")["config_connector_vpn"]
    assert grant["member"] == "serviceAccount:${var.config_connector_account}"
    assert grant["project"] == "${var.project_id}"
    assert grant["role"] == "${google_project_iam_custom_role.hybrid_vpn.id}"
    role = resources_of(TENANTS_TF, "google_project_iam_custom_role")["hybrid_vpn"]
    assert role["project"] == "${var.project_id}"
    held = set(role["permissions"])
    assert needed <= held, needed - held
    # VPN objects and router changes, and nothing else of the network: no firewall, route, subnetwork, address,
    # network, instance, NAT.
    assert {p.split(".")[1] for p in held} == {"externalVpnGateways", "vpnTunnels", "vpnGateways", "routers",
                                                "regionOperations", "globalOperations"}
    assert not {p for p in held if p.split(".")[1] == "vpnGateways"} - {"compute.vpnGateways.get",
                                                                         "compute.vpnGateways.use"}


def test_no_platform_account_is_bound_in_the_dedicated_clusters_pool():
    """A Pod on a dedicated cluster is a member of the tenants' project's pool only, where Terraform binds nothing:
    every Workload Identity member Terraform writes names the platform cluster's pool, read from that cluster."""
    members = [str(grant["member"]) for path in sorted(INFRA.rglob("*.tf"))
               for grant in resources_of(path, "google_service_account_iam_member").values()
               if grant["role"] == "roles/iam.workloadIdentityUser"]
    assert sorted(members) == sorted([
        "serviceAccount:${google_container_cluster.primary.workload_identity_config[0].workload_pool}"
        "[cnrm-system/cnrm-controller-manager]",
        "serviceAccount:${var.workload_pool}[flux-system/${each.key}]",
        "serviceAccount:${var.workload_pool}[external-secrets/external-secrets]"])
    assert "tenants_project_id}.svc.id.goog" not in "".join(path.read_text() for path in INFRA.rglob("*.tf"))
    # The dedicated clusters use the tenants' pool; the platform's cluster its own project's.
    cluster = next(o for o in dedicated_tenant_objects() if o["kind"] == "ContainerCluster")
    assert cluster["spec"]["workloadIdentityConfig"]["workloadPool"] == "energent-dev-tenants.svc.id.goog"
    assert resources("gke", "google_container_cluster")["primary"]["workload_identity_config"][0][
        "workload_pool"] == "${var.project_id}.svc.id.goog"


# --- the customer-managed key ---------------------------------------------------------------------------------

KEY_REFERENCES = ("var.kms_key", "google_kms_crypto_key.data")
# A resource type encrypted with the key -> the service whose agent must be granted the key first.
KEY_USERS = {
    "google_storage_bucket": "storage.googleapis.com",
    "google_pubsub_topic": "pubsub.googleapis.com",
    "google_secret_manager_secret": "secretmanager.googleapis.com",
    "google_container_cluster": "container.googleapis.com",
    "google_container_node_pool": "compute.googleapis.com",
    "google_gke_backup_backup_plan": "gkebackup.googleapis.com",
}


def test_no_resource_uses_the_key_before_its_service_agent_may():
    granted = resources("security", "google_kms_crypto_key_iam_member")["service_agents"]
    assert granted["crypto_key_id"] == "${google_kms_crypto_key.data.id}"
    assert granted["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    made = resources("security", "google_project_service_identity")["agents"]["for_each"].split('"')[1::2]
    assert "google_project_service_identity.agents" in granted["for_each"]
    named = [service for service in ("storage.googleapis.com", "compute.googleapis.com", "container.googleapis.com")
             if f'"{service}"' in granted["for_each"]]
    # GKE's identity resource may return no email: its agent is named by its fixed address.
    assert ('"container.googleapis.com" = "serviceAccount:service-${data.google_project.project.number}'
            '@container-engine-robot.iam.gserviceaccount.com"') in granted["for_each"]
    by_email = locals_of(INFRA / "modules" / "security" / "main.tf")["agents_by_email"]
    assert "container.googleapis.com" not in by_email and "local.agents_by_email" in granted["for_each"]
    agents = (set(made) & set(by_email.split('"')[1::2])) | set(named)
    users = 0
    for path in sorted((INFRA / "modules").rglob("main.tf")):
        parsed = plain(terraform(path))
        for block in parsed.get("resource", []):
            for kind, declared in block.items():
                for name, body in declared.items():
                    text = str({k: v for k, v in body.items() if k != "depends_on"})
                    if kind.startswith("google_kms_") or not any(reference in text for reference in KEY_REFERENCES):
                        continue
                    users += 1
                    assert KEY_USERS[kind] in agents, f"{kind}.{name}: {KEY_USERS[kind]}'s agent has no grant"
                    if "google_kms_crypto_key.data" in text:  # inside the security module: wait for the grant
                        assert "${google_kms_crypto_key_iam_member.service_agents}" in body.get("depends_on", []), (
                            f"{path.parent.name}: {kind}.{name} may use the key before its agent is granted it")
    assert users >= 8
    # Elsewhere the key arrives only through the security module's output, which waits for the grants.
    platform = plain(terraform(INFRA / "platform" / "main.tf"))
    for block in platform["module"]:
        for name, body in block.items():
            if "kms_key" in body:
                assert body["kms_key"] == "${module.security.kms_key}", name
    assert resources_of(INFRA / "platform" / "main.tf", "google_kms_crypto_key") == {}


# --- function builds ------------------------------------------------------------------------------------------

def test_functions_are_built_as_their_own_builder_with_what_a_gen2_build_needs():
    builder = resources("functions", "google_service_account")["builder"]
    assert builder["account_id"] == "fn-builder-${var.environment}"
    account = "serviceAccount:${google_service_account.builder.email}"
    project_roles = resources("functions", "google_project_iam_member")
    assert project_roles["builder"]["member"] == account
    assert set(project_roles["builder"]["for_each"].split('"')[1::2]) == {"roles/logging.logWriter",
                                                                         "roles/artifactregistry.writer"}
    # The sources it builds: Terraform's bucket, and the one Cloud Functions keeps gcloud's uploads in.
    bucket = resources("functions", "google_storage_bucket_iam_member")["builder_reads_sources"]
    assert (bucket["bucket"], bucket["role"], bucket["member"]) == (
        "${google_storage_bucket.sources.name}", "roles/storage.objectViewer", account)
    uploaded = project_roles["builder_reads_uploaded_sources"]
    assert (uploaded["role"], uploaded["member"]) == ("roles/storage.objectViewer", account)
    assert uploaded["condition"][0]["expression"] == (
        "resource.name.startsWith('projects/_/buckets/gcf-v2-sources-${data.google_project.project.number}"
        "-${var.region}')")

    # Terraform creates every function with it, after its roles; Cloud Build deploys every one with it.
    function = resources("functions", "google_cloudfunctions2_function")["function"]
    assert function["build_config"][0]["service_account"] == "${google_service_account.builder.id}"
    assert function["depends_on"] == ["${time_sleep.builder_roles_propagate}"]  # after its roles took effect
    wait = resources("functions", "time_sleep")["builder_roles_propagate"]
    assert {"${google_project_iam_member.builder}", "${google_storage_bucket_iam_member.builder_reads_sources}",
            "${google_project_iam_member.builder_reads_uploaded_sources}"} <= set(wait["depends_on"])
    assert int(wait["create_duration"].removesuffix("s")) >= 60
    steps = {step["id"]: step for step in yaml.safe_load((INFRA.parent / "cloudbuild-functions.yaml").read_text())[
        "steps"]}
    flag = ("--build-service-account=projects/$PROJECT_ID/serviceAccounts/"
            "fn-builder-${_ENVIRONMENT}@$PROJECT_ID.iam.gserviceaccount.com")
    for deployment in registry.load().deployments:
        assert flag in steps[f"deploy-{deployment.name}"]["args"], deployment.name
    # ... and the deployer may name it as the build's account.
    acts_as = resources("functions", "google_service_account_iam_member")["deployer_acts_as"]
    assert "builder = google_service_account.builder.name" in FUNCTIONS_TF.read_text()
    assert "google_service_account.builder.name" in acts_as["for_each"]
    assert acts_as["role"] == "roles/iam.serviceAccountUser"


def test_pubsub_push_authenticates_without_a_token_creator_grant():
    """Pub/Sub's agent needs no Token Creator on the push account (projects since April 2021); the subscriptions
    name the account, and the event deployments let it invoke them."""
    text = FUNCTIONS_TF.read_text()
    assert "roles/iam.serviceAccountTokenCreator" not in text
    push = resources("functions", "google_pubsub_subscription")["push"]
    oidc = push["push_config"][0]["oidc_token"][0]
    assert oidc["service_account_email"] == "${google_service_account.pusher.email}"
    invoker = resources("functions", "google_cloud_run_service_iam_member")["pusher_invoker"]
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == "serviceAccount:${google_service_account.pusher.email}"


# --- shared volumes -------------------------------------------------------------------------------------------

def test_shared_volumes_are_filestore_instances_on_the_platform_s_network_through_its_private_services_range():
    built = kustomize(INFRA / "cluster")
    assert variables_in(built) == {"ENVIRONMENT"}
    storage_class = next(o for o in substituted(built, "energent-dev", "dev") if o["kind"] == "StorageClass")
    assert storage_class["provisioner"] == "filestore.csi.storage.gke.io"
    parameters = storage_class["parameters"]
    networking = INFRA / "modules" / "networking" / "main.tf"
    network = resources_of(networking, "google_compute_network")["vpc"]["name"]
    reserved = resources_of(networking, "google_compute_global_address")["private_services"]
    assert reserved["purpose"] == "VPC_PEERING"
    assert parameters["network"] == network.replace("${var.environment}", "dev") == "energent-vpc-dev"
    assert parameters["reserved-ip-range"] == reserved["name"].replace("${var.environment}", "dev")
    assert parameters["connect-mode"] == "PRIVATE_SERVICE_ACCESS"
    assert resources_of(networking, "google_service_networking_connection")["private_services"][
        "reserved_peering_ranges"] == ["${google_compute_global_address.private_services.name}"]
    # No Filestore instance of its own: the CSI driver makes one per claim.
    assert resources("storage", "google_filestore_instance") == {}
    readme = (INFRA.parent / "README.md").read_text()
    step = readme.split("5. **Config Connector and Flux on the cluster.**")[1].split("6. **")[0]
    assert "kubectl kustomize infra/cluster" in step
    assert step.index("infra/cluster") < step.index("infra/config-connector")
    assert "Filestore Basic HDD, 1 TiB" not in readme
