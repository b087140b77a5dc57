"""Who acts as whom, and may do what it must: Flux's controllers against the Google service accounts Terraform
makes for them, and the Kubernetes manifests that bind the two (built with `kubectl kustomize`, as the bootstrap
applies them)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from local.schemas import validate
from tests.unit.test_infra import INFRA, plain, resources, terraform
from tools import registry

WI_ANNOTATION = "iam.gke.io/gcp-service-account"
# The permissions of predefined roles that these grants rely on (a subset of each role).
ROLE_PERMISSIONS = {
    "roles/storage.objectViewer": {"storage.objects.get", "storage.objects.list"},
    "roles/storage.legacyBucketReader": {"storage.buckets.get", "storage.objects.list"},
    "roles/container.developer": {"container.clusters.get", "container.namespaces.create",
                                  "container.namespaces.get", "container.configMaps.create"},
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


FUNCTIONS_TF = INFRA / "modules" / "functions" / "main.tf"


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
    assert bindings["member"] == "serviceAccount:${var.project_id}.svc.id.goog[flux-system/${each.key}]"

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


def test_the_kustomize_controller_may_apply_to_dedicated_clusters_and_nothing_else_outside_its_own():
    kustomize_account = "serviceAccount:${google_service_account.flux[\"kustomize-controller\"].email}"
    project_roles = {g["role"] for g in resources("functions", "google_project_iam_member").values()
                     if g["member"] == kustomize_account}
    assert project_roles == {"roles/container.developer"}
    # The cluster's endpoint and CA from the GKE API, then the tenant's Namespace and namespaced objects.
    assert {"container.clusters.get", "container.namespaces.create"} <= ROLE_PERMISSIONS["roles/container.developer"]
    text = FUNCTIONS_TF.read_text()
    assert text.count("google_service_account.flux[\"kustomize-controller\"]") == 1
