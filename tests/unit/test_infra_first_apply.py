"""The first `terraform apply` from the README, with an operator's own credentials, and what the estate needs after
it: provider settings the Billing Budgets and Firebase Rules APIs require, resource names as the APIs take them, what
must exist before what (read from the dependency graph of the HCL), the providers locked, the manifest bucket's
tenants/ folder from day one, and each environment's budget above what it costs idle."""

import re
from functools import cache
from pathlib import Path

import yaml

from tests.unit.test_infra import INFRA, ROOT, plain, resources_of, terraform
from tests.unit.test_provider_schema import PROVIDER_VERSION

PLATFORM = INFRA / "platform"


# --- providers --------------------------------------------------------------------------------------------------

def test_requests_are_billed_to_the_platform_s_project_whoever_makes_them():
    """Billing Budgets and Firebase Rules refuse user credentials without a quota project: the first apply runs
    with an operator's application-default credentials."""
    providers = plain(terraform(PLATFORM / "providers.tf"))["provider"]
    configured = {name: body for block in providers for name, body in block.items()}
    assert set(configured) == {"google", "google-beta"}
    for name, body in configured.items():
        assert body["user_project_override"] is True, name
        assert body["billing_project"] == "${var.project_id}", name


def test_the_firestore_rules_release_names_its_ruleset_by_resource_name():
    release = resources_of(INFRA / "modules" / "storage" / "main.tf", "google_firebaserules_release")["firestore"]
    assert release["ruleset_name"] == (
        "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.deny_clients.name}")


# --- what must exist before what --------------------------------------------------------------------------------

REFERENCE = re.compile(
    r"\b(module\.\w+\.\w+|var\.\w+|local\.\w+|data\.\w+\.\w+|ephemeral\.\w+\.\w+|[a-z]+_[a-z0-9_]+\.\w+)")


@cache
def module_blocks(folder: Path) -> dict[str, object]:
    """Every addressable block of a module: `resource.T.N` (as `T.N`), `data.T.N`, `var.X`, `local.X`, `output.X`,
    `module.M`, each with its body."""
    found: dict[str, object] = {}
    for path in sorted(folder.glob("*.tf")):
        parsed = plain(terraform(path))
        for section, prefix in (("resource", ""), ("data", "data."), ("ephemeral", "ephemeral.")):
            for block in parsed.get(section, []):
                for kind, named in block.items():
                    for name, body in named.items():
                        found[f"{prefix}{kind}.{name}"] = body
        for block in parsed.get("variable", []):
            found.update({f"var.{name}": body for name, body in block.items()})
        for block in parsed.get("locals", []):
            found.update({f"local.{name}": value for name, value in block.items()})
        for block in parsed.get("output", []):
            found.update({f"output.{name}": body for name, body in block.items()})
        for block in parsed.get("module", []):
            found.update({f"module.{name}": body for name, body in block.items()})
    return found


def resolve(folder: Path, reference: str) -> tuple[Path, str]:
    """The block a reference found in `folder` names: a module's output in that module's folder."""
    if reference.startswith("module."):
        _, module, output = reference.split(".")
        return (folder / module_blocks(folder)[f"module.{module}"]["source"]).resolve(), f"output.{output}"
    if reference.startswith(("var.", "local.")):
        return folder, reference
    return folder, ".".join(reference.split(".")[:3 if reference.startswith(("data.", "ephemeral.")) else 2])


def references(folder: Path, address: str) -> set[tuple[Path, str]]:
    """What a block refers to directly (its expressions and depends_on), as (module folder, address); a module's
    variable refers to what its callers pass, a module output to the output's value, and every block of a module
    called with depends_on to what that depends_on names."""
    found = {resolve(folder, match) for match in REFERENCE.findall(str(module_blocks(folder)[address]))}
    for caller, name in callers(folder):
        call = module_blocks(caller)[f"module.{name}"]
        if address.startswith("var."):
            found |= {resolve(caller, match) for match in REFERENCE.findall(str(call.get(address[4:])))}
        elif not address.startswith("output."):  # a module's depends_on holds back everything in it
            found |= {resolve(caller, match) for match in REFERENCE.findall(str(call.get("depends_on", [])))}
    return {(where, what) for where, what in found if what in module_blocks(where)}


@cache
def callers(folder: Path) -> tuple[tuple[Path, str], ...]:
    found = []
    for module, body in module_blocks(PLATFORM).items():
        if module.startswith("module.") and (PLATFORM / body["source"]).resolve() == folder.resolve():
            found.append((PLATFORM, module.removeprefix("module.")))
    return tuple(found)


def depends(folder: Path, address: str, on: tuple[Path, str]) -> bool:
    seen, waiting = set(), [(folder.resolve(), address)]
    target = (on[0].resolve(), on[1])
    while waiting:
        node = waiting.pop()
        if node == target:
            return True
        if node in seen:
            continue
        seen.add(node)
        waiting.extend((where.resolve(), what) for where, what in references(*node))
    return False


GKE = INFRA / "modules" / "gke"
CLUSTER = (GKE, "google_container_cluster.primary")
APIS = (PLATFORM, "google_project_service.apis")


def test_workload_identity_bindings_are_made_after_the_cluster_whose_pool_they_name():
    assert depends(GKE, "google_service_account_iam_member.config_connector_workload_identity", CLUSTER)
    assert depends(INFRA / "modules" / "functions", "google_service_account_iam_member.flux_workload_identity", CLUSTER)
    # The graph reads dependencies, not names: something that does not wait for the cluster is told apart.
    assert not depends(INFRA / "modules" / "functions", "google_service_account.flux", CLUSTER)


def test_the_plan_accounts_are_made_after_the_iam_api_is_enabled():
    assert '"iam.googleapis.com"' in str(module_blocks(PLATFORM)["google_project_service.apis"]["for_each"])
    assert depends(PLATFORM, "google_service_account.terraform_plan", APIS)
    assert not depends(PLATFORM, "google_project_service.tenant_apis", APIS)


def test_the_tenants_project_is_attached_and_its_agents_granted_after_its_apis_are_enabled():
    tenants = INFRA / "modules" / "tenants"
    tenant_apis = (PLATFORM, "google_project_service.tenant_apis")
    for address in ("google_compute_shared_vpc_service_project.tenants", "google_project_iam_member.gke_host_agent",
                    "google_compute_subnetwork_iam_member.network_users", "google_project_iam_member.config_connector"):
        assert depends(tenants, address, tenant_apis), address
    # The agents' grants wait for the attachment, which makes the project a user of the host's network.
    assert depends(tenants, "google_compute_subnetwork_iam_member.network_users",
                   (tenants, "google_compute_shared_vpc_service_project.tenants"))


# --- providers locked -------------------------------------------------------------------------------------------

def constraint_admits(constraint: str, version: str) -> bool:
    """Terraform's `~> X.Y` (X.Y or later, before X+1): the only form infra/ uses."""
    match = re.fullmatch(r"~> (\d+)\.(\d+)", constraint)
    assert match, constraint
    major, minor = int(match.group(1)), int(match.group(2))
    parts = [int(part) for part in version.split(".")]
    return parts[0] == major and parts[1] >= minor


def test_the_providers_are_locked_to_versions_every_module_admits_with_the_registry_s_checksums():
    lock = plain(terraform(PLATFORM / ".terraform.lock.hcl"))
    locked = {name.removeprefix("registry.terraform.io/"): body for block in lock["provider"]
              for name, body in block.items() if not name.startswith("__")}
    required: dict[str, set[str]] = {}
    for path in sorted(INFRA.rglob("versions.tf")):
        for block in plain(terraform(path))["terraform"][0]["required_providers"]:
            for name, spec in block.items():
                if not name.startswith("__"):
                    required.setdefault(spec["source"], set()).add(spec["version"])
    assert set(locked) == set(required)
    for source, body in locked.items():
        for constraint in required[source]:
            assert constraint_admits(constraint, body["version"]), (source, constraint, body["version"])
        assert body["constraints"] in required[source], source
        hashes = body["hashes"]
        assert any(h.startswith("h1:") for h in hashes), source
        zips = [h for h in hashes if h.startswith("zh:")]
        assert len(zips) >= 10 and all(re.fullmatch(r"zh:[0-9a-f]{64}", h) for h in zips), source
    # The provider version the schemas the tests check every block against were taken from.
    assert locked["hashicorp/google"]["version"] == locked["hashicorp/google-beta"]["version"] == PROVIDER_VERSION
    assert ".terraform.lock.hcl" not in (ROOT / ".gitignore").read_text()


# --- after the apply --------------------------------------------------------------------------------------------

def test_the_tenants_folder_flux_applies_exists_from_the_start_and_applies_nothing():
    storage = INFRA / "modules" / "storage" / "main.tf"
    folder = resources_of(storage, "google_storage_bucket_object")["tenants_folder"]
    assert folder["bucket"] == '${google_storage_bucket.data["MANIFEST_BUCKET"].name}'
    sync = yaml.safe_load((INFRA / "flux" / "tenants.yaml").read_text())
    source = yaml.safe_load((INFRA / "flux" / "sources.yaml").read_text())
    assert sync["spec"]["path"] == "./tenants" and sync["spec"]["sourceRef"]["name"] == source["metadata"]["name"]
    assert folder["name"].startswith("tenants/") and folder["name"].count("/") == 1
    # Not a manifest: kustomize-controller builds YAML and JSON files only.
    assert not folder["name"].endswith((".yaml", ".yml", ".json"))
    # Not ignored by the source, and no tenant's prefix (tenants/<id>/) holds it.
    assert "/tenants/*/manifests/" in source["spec"]["ignore"] and "README" not in source["spec"]["ignore"]


IDLE_COSTS = INFRA / "environments" / "idle-costs.yaml"


def idle_cost(table: dict, min_nodes: int) -> float:
    return sum(table["fixed"].values()) + min_nodes * sum(table["per_node"].values())


def test_every_environment_s_budget_is_above_what_it_costs_idle():
    table = yaml.safe_load(IDLE_COSTS.read_text())
    for environment in ("dev", "staging", "production"):
        values = plain(terraform(INFRA / "environments" / environment / "terraform.tfvars"))
        idle = idle_cost(table, values["min_nodes"])
        assert values["monthly_budget"] >= idle * table["headroom"], (environment, idle)
    # The table prices the pools Terraform makes: a change of machine or disk must change the table too.
    gke = resources_of(INFRA / "modules" / "gke" / "main.tf", "google_container_node_pool")
    for priced, pool in (("per_node", "primary"), ("platform_node", "platform")):
        node = gke[pool]["node_config"][0]
        assert table["priced"][priced] == f"{node['machine_type']}, {node['disk_size_gb']} GB {node['disk_type']}"
    assert gke["platform"]["autoscaling"][0]["total_min_node_count"] == 1  # one platform node when idle
    # An environment whose budget sits below its idle cost is caught.
    assert idle_cost(table, 1) * table["headroom"] > 300
