"""Infrastructure as code: every Terraform file parses, the policy scan passes, and Terraform, Cloud Build,
the gateway spec and the registry name the same things."""

import copy
import subprocess
from functools import cache
from pathlib import Path

import hcl2
import pytest
import yaml

from local.schemas import validate
from tools import cloudbuild, registry

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"


def terraform(path: Path) -> dict:
    """The parsed file (parsed once per run: the infra tests read the same files hundreds of times); a copy, so no
    test sees another's changes."""
    return copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))


@cache
def _parsed(path: Path, _version: int) -> dict:
    return hcl2.loads(path.read_text())


def test_every_terraform_file_parses():
    files = sorted(INFRA.rglob("*.tf")) + sorted(INFRA.rglob("*.tfvars")) + sorted(INFRA.rglob("*.hcl"))
    assert len(files) > 20
    for path in files:
        terraform(path)


def test_the_policy_scan_passes_with_every_skip_explained():
    assert CHECKOV.exists(), "run `make` (it installs checkov into .tools/checkov)"
    result = subprocess.run([str(CHECKOV), "-d", str(INFRA), "--framework", "terraform", "--quiet", "--compact"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    for path in INFRA.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                reason = line.split(":", 2)[-1].strip()
                assert len(reason) > 20, f"{path}: a skip needs a reason a reviewer accepts: {line.strip()}"


def unquoted(value):
    """python-hcl2 keeps HCL's quotes on labels and string literals."""
    if isinstance(value, dict):
        return {unquoted(k): unquoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquoted(v) for v in value]
    return value.strip('"') if isinstance(value, str) else value


def test_environments_are_a_backend_and_values_for_the_one_platform():
    platform = unquoted(terraform(INFRA / "platform" / "versions.tf"))
    assert "gcs" in platform["terraform"][0]["backend"][0]
    declared = {name for block in terraform(INFRA / "platform" / "variables.tf")["variable"] for name in block}
    declared = {name.strip('"') for name in declared}
    for environment in ("dev", "staging", "production"):
        backend = unquoted(terraform(INFRA / "environments" / environment / "backend.hcl"))
        assert backend["bucket"] == f"energent-tfstate-{environment}"
        values = {name: value for name, value in unquoted(terraform(
            INFRA / "environments" / environment / "terraform.tfvars")).items() if not name.startswith("__")}
        assert values["environment"] == environment
        assert set(values) <= declared, set(values) - declared
        assert {"project_id", "api_url", "admin_cidrs", "alert_email"} <= set(values)


def test_terraform_reads_the_registry_and_the_spec_rather_than_copying_them():
    platform = (INFRA / "platform" / "main.tf").read_text()
    assert 'registry_file           = "${path.module}/../../functions/registry.yaml"' in platform
    assert 'api_spec_file  = "${path.module}/../../api-spec.yaml"' in platform
    functions = (INFRA / "modules" / "functions" / "main.tf").read_text()
    assert "yamldecode(file(var.registry_file))" in functions
    assert "google_cloudfunctions2_function" in functions and "for_each = local.deployments" in functions


def test_terraform_names_match_the_code():
    functions = (INFRA / "modules" / "functions" / "main.tf").read_text()
    shipped = registry.load()
    # Topics the module addresses by name must be registry topics.
    for topic in ("auth-events", "provisioning-events"):
        assert f'google_pubsub_topic.topic["{topic}"]' in functions and topic in shipped.topics
    # Schedules come from the registry (whose parser holds each one's topic to its topics), the close among them.
    assert "for s in try(local.registry.schedules, [])" in functions
    assert {s.topic for s in shipped.schedules} <= set(shipped.topics)
    assert ("monthly-close", "billing-events", "ai.energent.billing.period.close.v1") in {
        (s.name, s.topic, s.type) for s in shipped.schedules}
    assert 'local.registry.secrets.SIGNING_KEY_SECRET' in functions
    assert 'var.bucket_names["MANIFEST_BUCKET"]' in functions and "MANIFEST_BUCKET" in shipped.buckets
    flux = yaml.safe_load((INFRA / "flux" / "notifications.yaml").read_text().split("---")[0])
    assert flux["spec"]["channel"] in shipped.topics


def test_cloudbuild_is_generated_from_the_registry():
    assert (ROOT / "cloudbuild-functions.yaml").read_text() == cloudbuild.render(), (
        "cloudbuild-functions.yaml is stale: python -m tools.cloudbuild > cloudbuild-functions.yaml")


def test_a_name_changed_in_one_place_only_is_caught():
    """Rename a deployment's entry point in the registry alone: the pipeline no longer matches."""
    document = yaml.safe_load((ROOT / "functions" / "registry.yaml").read_text())
    document["deployments"][0]["entry_point"] = "renamed_handler"
    renamed = registry.parse(document, ROOT)
    assert cloudbuild.render(renamed) != (ROOT / "cloudbuild-functions.yaml").read_text()
    with pytest.raises(registry.RegistryError):
        document["deployments"][0]["topic"] = "renamed-events"  # a topic that exists nowhere else
        registry.parse(document, ROOT)


def test_every_deployment_is_deployed_by_cloud_build_with_its_registered_settings():
    steps = {step["id"]: step for step in yaml.safe_load((ROOT / "cloudbuild-functions.yaml").read_text())["steps"]}
    for deployment in registry.load().deployments:
        args = steps[f"deploy-{deployment.name}"]["args"]
        assert f"energent-{deployment.name}-${{_ENVIRONMENT}}" in args
        assert f"--entry-point={deployment.entry_point}" in args
        assert f"--memory={deployment.memory}" in args and f"--timeout={deployment.timeout_s}s" in args
        assert f"--concurrency={deployment.concurrency}" in args
        assert ("--set-build-env-vars=GOOGLE_FUNCTION_SIGNATURE_TYPE=cloudevent" in args) == (not deployment.is_http)
        assert f"--service-account=fn-{deployment.name}@$PROJECT_ID.iam.gserviceaccount.com" in args
    functions = (INFRA / "modules" / "functions" / "main.tf").read_text()
    assert 'account_id   = "fn-${each.key}"' in functions  # the same accounts Terraform creates
    assert "max_instance_request_concurrency = try(each.value.concurrency, 8)" in functions


def test_flux_objects_follow_their_schemas():
    sync = yaml.safe_load((INFRA / "flux" / "tenants.yaml").read_text())
    validate(sync)
    assert sync["spec"]["sourceRef"]["name"] == "tenants-sync"


def test_no_platform_flux_object_has_a_name_a_tenant_could_take():
    """A tenant's Flux objects are the Bucket and Kustomization tenant-<id>, the Kustomization cloud-tenant-<id> and
    the ConfigMap tenant-<id>-cluster: a platform object of such a kind and name would be taken over (and pruned
    with everything it applied) by the tenant of that id."""
    from energent_shared.firestore import valid_tenant_id

    for path in sorted((INFRA / "flux").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            name = ((document or {}).get("metadata") or {}).get("name", "")
            if document["kind"] not in ("Bucket", "Kustomization", "ConfigMap"):
                continue
            for prefix in ("tenant-", "cloud-tenant-"):
                rest = name.removeprefix(prefix)
                assert not (name.startswith(prefix) and (valid_tenant_id(rest) or valid_tenant_id(
                    rest.removesuffix("-cluster")))), f"{path.name}: {name}"


def plain(value):
    """The parser's output with the quotes it keeps around names and strings taken off."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def resources_of(path: Path, kind: str) -> dict[str, dict]:
    parsed = plain(terraform(path))
    return {name: body for block in parsed.get("resource", []) for found, named in block.items() if found == kind
            for name, body in named.items()}


def resources(module: str, kind: str) -> dict[str, dict]:
    return resources_of(INFRA / "modules" / module / "main.tf", kind)


def test_every_deployment_holding_the_signing_secret_may_list_its_versions():
    """Auth publishes every key still in use: it lists the secret's versions, which secretAccessor cannot."""
    grant = resources("functions", "google_secret_manager_secret_iam_member")["signing_key_versions"]
    assert grant["role"] == "roles/secretmanager.viewer"  # holds secretmanager.versions.list
    assert "SIGNING_KEY_SECRET" in grant["for_each"] and "google_secret_manager_secret.signing" in grant["secret_id"]
    assert any("SIGNING_KEY_SECRET" in d.secrets for d in registry.load().deployments if d.is_http)


def test_secrets_replicate_in_the_region_with_the_regional_key():
    for name, secret in resources("functions", "google_secret_manager_secret").items():
        replication = secret["replication"][0]
        assert "auto" not in replication, name  # automatic replication would need a global key
        replica = replication["user_managed"][0]["replicas"][0]
        assert replica["location"] == "${var.region}" and replica["customer_managed_encryption"], name


def test_the_key_is_handed_out_only_after_its_service_agents_may_use_it():
    outputs = plain(terraform(INFRA / "modules" / "security" / "outputs.tf"))["output"]
    kms = next(o["kms_key"] for o in outputs if "kms_key" in o)
    assert kms["depends_on"] == ["${google_kms_crypto_key_iam_member.service_agents}"]
    agents = resources("security", "google_project_service_identity")["agents"]
    assert {"secretmanager.googleapis.com", "pubsub.googleapis.com"} <= set(agents["for_each"].split('"')[1::2])


def test_the_security_sink_filter_groups_every_or():
    sink = resources("security", "google_logging_project_sink")["security"]
    text = " ".join(sink["filter"].split()).removeprefix("<<-EOT ").removesuffix(" EOT")
    assert text.startswith("(logName:") and ") OR (jsonPayload.event=" in text


def test_cloud_storage_may_write_the_access_logs_and_their_old_versions_go():
    grant = resources("security", "google_storage_bucket_iam_member")["access_log_delivery"]
    assert {key: value for key, value in grant.items() if not key.startswith("__")} == {
        "bucket": "${google_storage_bucket.access_logs.name}", "role": "roles/storage.objectCreator",
        "member": "group:cloud-storage-analytics@google.com"}
    logs = resources("security", "google_storage_bucket")["access_logs"]
    assert logs["versioning"][0]["enabled"] is True
    conditions = [rule["condition"][0] for rule in logs["lifecycle_rule"] if rule["action"][0]["type"] == "Delete"]
    assert any("days_since_noncurrent_time" in condition for condition in conditions)
    # Every bucket logs there.
    for module in ("storage", "functions"):
        for name, bucket in resources(module, "google_storage_bucket").items():
            assert bucket["logging"][0]["log_bucket"] == "${var.access_log_bucket}", name


def test_retention_is_locked_in_production_only():
    platform = (INFRA / "platform" / "main.tf").read_text()
    assert 'lock_retention = var.environment == "production"' in platform
    assert 'lock_invoice_retention = var.environment == "production"' in platform
    audit = resources("security", "google_storage_bucket")["audit_logs"]
    assert audit["retention_policy"][0]["is_locked"] == "${var.lock_retention}"


def test_apis_are_enabled_by_terraform_before_any_module_uses_them():
    platform = (INFRA / "platform" / "main.tf").read_text()
    modules = platform.count('module "')
    assert modules >= 7 and platform.count("depends_on = [google_project_service.apis") == modules
    services = resources_of(INFRA / "platform" / "main.tf", "google_project_service")["apis"]
    assert {"container.googleapis.com", "secretmanager.googleapis.com", "apigateway.googleapis.com"} <= set(
        services["for_each"].split('"')[1::2])
    readme = (ROOT / "README.md").read_text()
    assert "gcloud services enable serviceusage.googleapis.com cloudresourcemanager.googleapis.com" in readme


# What each Google resource or data type of infra/ needs enabled (the longest matching prefix counts), and the
# cluster features that call an API of their own. A type without an entry fails the test below until its API is
# named here and enabled in infra/platform.
ENABLED_BY_HAND = {"serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com"}  # README, step 1
API_OF_TYPE = {
    "google_api_gateway_": {"apigateway.googleapis.com", "servicemanagement.googleapis.com",
                            "servicecontrol.googleapis.com"},
    "google_billing_budget": {"billingbudgets.googleapis.com"},
    "google_cloud_run_": {"run.googleapis.com"},
    "google_cloud_scheduler_": {"cloudscheduler.googleapis.com"},
    # Gen2 functions are built by Cloud Build into Artifact Registry and run on Cloud Run.
    "google_cloudfunctions2_": {"cloudfunctions.googleapis.com", "cloudbuild.googleapis.com",
                                "artifactregistry.googleapis.com", "run.googleapis.com"},
    "google_compute_": {"compute.googleapis.com"},
    "google_container_": {"container.googleapis.com"},
    "google_filestore_": {"file.googleapis.com"},
    "google_firebaserules_": {"firebaserules.googleapis.com"},
    "google_firestore_": {"firestore.googleapis.com"},
    "google_gke_backup_": {"gkebackup.googleapis.com"},
    "google_kms_": {"cloudkms.googleapis.com"},
    "google_logging_": {"logging.googleapis.com"},
    "google_monitoring_": {"monitoring.googleapis.com"},
    "google_project": {"cloudresourcemanager.googleapis.com"},
    "google_project_iam_": {"cloudresourcemanager.googleapis.com"},
    "google_project_service": {"serviceusage.googleapis.com"},
    "google_pubsub_": {"pubsub.googleapis.com"},
    "google_secret_manager_": {"secretmanager.googleapis.com"},
    "google_service_account": {"iam.googleapis.com"},
    "google_service_networking_": {"servicenetworking.googleapis.com"},
    "google_storage_": {"storage.googleapis.com"},
    "google_vpc_access_": {"vpcaccess.googleapis.com"},
}
API_OF_CLUSTER_FEATURE = {
    "binary_authorization": {"binaryauthorization.googleapis.com"},
    "workload_identity_config": {"iamcredentials.googleapis.com"},
    "addons_config": {"gkebackup.googleapis.com", "file.googleapis.com"},  # Backup for GKE, Filestore CSI driver
    "monitoring_config": {"monitoring.googleapis.com"},
    "logging_config": {"logging.googleapis.com"},
}


def test_every_api_a_resource_needs_is_enabled():
    services = resources_of(INFRA / "platform" / "main.tf", "google_project_service")["apis"]
    enabled = set(services["for_each"].split('"')[1::2]) | ENABLED_BY_HAND
    needed: dict[str, set[str]] = {}
    unknown = set()
    for path in sorted(INFRA.rglob("*.tf")):
        parsed = plain(terraform(path))
        for section in ("resource", "data"):
            for block in parsed.get(section, []):
                for kind, named in block.items():
                    if not kind.startswith("google_"):
                        continue  # archive, random, tls, time: no Google API
                    prefixes = [prefix for prefix in API_OF_TYPE if kind.startswith(prefix)]
                    if not prefixes:
                        unknown.add(kind)
                        continue
                    needed.setdefault(kind, set()).update(API_OF_TYPE[max(prefixes, key=len)])
                    if kind == "google_container_cluster":
                        for body in named.values():
                            for feature, apis in API_OF_CLUSTER_FEATURE.items():
                                if feature in body:
                                    needed[kind] |= apis
    assert not unknown, f"name the API of {sorted(unknown)} in API_OF_TYPE"
    missing = {kind: apis - enabled for kind, apis in needed.items() if apis - enabled}
    assert not missing, missing
    assert {"binaryauthorization.googleapis.com", "firebaserules.googleapis.com"} <= enabled
    # An API Gateway API's own managed service is enabled with it, or the gateway answers nothing.
    managed = resources("gateway", "google_project_service")["managed_service"]
    assert managed["service"] == "${google_api_gateway_api.energent.managed_service}"
    gateway = resources("gateway", "google_api_gateway_gateway")["energent"]
    assert "${google_project_service.managed_service}" in gateway["depends_on"]


def test_node_counts_are_totals_for_the_region_and_the_channel_chooses_the_version():
    pool = resources("gke", "google_container_node_pool")
    autoscaling = next(iter(pool.values()))["autoscaling"][0]
    assert "total_min_node_count" in autoscaling and "min_node_count" not in autoscaling
    assert "min_master_version" not in (INFRA / "modules" / "gke" / "main.tf").read_text()
    assert next(iter(pool.values()))["initial_node_count"] == 1


def test_even_the_short_lived_default_pool_runs_as_the_nodes_own_account():
    cluster = resources("gke", "google_container_cluster")["primary"]
    assert cluster["remove_default_node_pool"] is True
    default_pool = cluster["node_config"][0]
    assert default_pool["service_account"] == "${google_service_account.nodes.email}"
    assert default_pool["workload_metadata_config"][0]["mode"] == "GKE_METADATA"
    assert cluster["lifecycle"][0]["ignore_changes"] == ["node_config"]  # never replaces the cluster
    pool = resources("gke", "google_container_node_pool")["primary"]
    assert pool["node_config"][0]["service_account"] == default_pool["service_account"]


def test_the_cluster_runs_config_connector_backup_and_the_filestore_csi_driver():
    addons = resources("gke", "google_container_cluster")["primary"]["addons_config"][0]
    for addon in ("config_connector_config", "gke_backup_agent_config", "gcp_filestore_csi_driver_config"):
        assert addons[addon][0]["enabled"] is True, addon


def test_the_subnetwork_holds_each_dedicated_slot_s_ranges_under_the_names_the_provisioner_renders():
    """Dedicated clusters live in the tenants' project, a Shared VPC service project: GKE cannot add ranges to the
    platform's subnetwork for them, so Terraform makes one Pod and one Service range per slot, exactly the blocks and
    names the provisioner gives the n-th dedicated tenant."""
    import ipaddress

    from provisioner import manifests, tenants

    subnetwork = resources("networking", "google_compute_subnetwork")["gke"]
    assert "lifecycle" not in subnetwork  # Terraform owns every range now
    assert [r["range_name"] for r in subnetwork["secondary_ip_range"]] == ["pods", "services", "platform-pods"]
    dynamic = subnetwork["dynamic"][0]["secondary_ip_range"]
    assert dynamic["for_each"] == "${local.dedicated_ranges}"
    variables = {n: b for block in plain(terraform(INFRA / "modules" / "networking" / "variables.tf"))["variable"]
                 for n, b in block.items()}
    slots = variables["dedicated_cluster_slots"]["default"]
    platform = manifests.Platform("p")
    assert slots == platform.dedicated_slots and 3 + 2 * slots <= 30  # a subnetwork's limit of secondary ranges
    # Terraform's expression, evaluated as Terraform would for each slot.
    expression = next(v for block in plain(terraform(INFRA / "modules" / "networking" / "main.tf"))["locals"]
                      for k, v in block.items() if k == "dedicated_ranges")
    assert "cidrsubnet(var.dedicated_pods_pool, 17 - tonumber(split(\"/\", var.dedicated_pods_pool)[1]), index)" in (
        expression)
    assert "cidrsubnet(var.dedicated_services_pool, 22 - tonumber(split(\"/\", var.dedicated_services_pool)[1]), " \
           "index)" in expression
    assert '"dedicated-${kind}-${replace(replace(cidr, \".\", \"-\"), \"/\", \"-\")}" => cidr' in expression

    def cidrsubnet(prefix: str, newbits: int, number: int) -> str:
        return str(list(ipaddress.ip_network(prefix).subnets(prefixlen_diff=newbits))[number])

    pods, services = variables["dedicated_pods_pool"]["default"], variables["dedicated_services_pool"]["default"]
    assert (pods, services) == (platform.pods_pool, platform.services_pool)
    for index in range(slots):
        ranges = tenants.cluster_ranges(platform, index)
        for kind, pool, size, cidr in (("pods", pods, 17, ranges["pods_cidr"]),
                                       ("services", services, 22, ranges["services_cidr"])):
            made = cidrsubnet(pool, size - int(pool.split("/")[1]), index)
            assert made == cidr
            assert tenants.range_name(kind, cidr) == f"dedicated-{kind}-{made.replace('.', '-').replace('/', '-')}"
