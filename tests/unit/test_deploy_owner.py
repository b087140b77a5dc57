"""One owner for what is deployed on every change: Cloud Build deploys the functions' code and environment and
publishes the gateway's configs; Terraform creates the functions and the gateway once and leaves those to it.
What Terraform creates a function with is what Cloud Build deploys it with, so the first build changes nothing
but the code."""

import re
import subprocess
import uuid

import yaml

from tests.unit.test_infra import INFRA, ROOT, plain, resources, terraform
from tools import cloudbuild, registry

# Terraform's expressions and the Cloud Build substitutions that give the same values.
SAME_VALUE = {
    "${var.project_id}": "$PROJECT_ID",
    "${var.environment}": "${_ENVIRONMENT}",
    "${var.api_url}": "${_API_URL}",
    "${var.tenants_project_id}": "${_TENANTS_PROJECT}",
    '${join(",", var.hybrid_vpn_addresses)}': "${_HYBRID_VPN_ADDRESSES}",
    "${tostring(var.hybrid_asn)}": "${_HYBRID_ASN}",
    '${join(",", var.hybrid_site_ranges)}': "${_HYBRID_SITE_RANGES}",
}


def in_cloud_build_terms(value: str) -> str:
    for expression, substitution in SAME_VALUE.items():
        value = value.replace(expression, substitution)
    return value


def locals_of(module: str) -> dict:
    parsed = plain(terraform(INFRA / "modules" / module / "main.tf"))
    return {name: value for block in parsed.get("locals", []) for name, value in block.items()}


def deployed_env(step: dict) -> dict[str, str]:
    """The variables of a deploy step's --set-env-vars, with gcloud's `^SEP^` list syntax."""
    flag = next(arg for arg in step["args"] if arg.startswith("--set-env-vars="))
    value = flag.removeprefix("--set-env-vars=")
    separator = ","
    if value.startswith("^"):
        separator, value = value[1:].split("^", 1)
    return dict(pair.split("=", 1) for pair in value.split(separator))


def test_an_apply_leaves_the_functions_code_and_environment_to_cloud_build():
    function = resources("functions", "google_cloudfunctions2_function")["function"]
    assert function["lifecycle"][0]["ignore_changes"] == [
        "${build_config[0].source}", "${service_config[0].environment_variables}", "labels"]
    steps = {step["id"]: step for step in yaml.safe_load((ROOT / "cloudbuild-functions.yaml").read_text())["steps"]}
    for deployment in registry.load().deployments:
        assert f"--source=build/functions/{deployment.source.split('/')[-1]}" in steps[f"deploy-{deployment.name}"][
            "args"]


def test_an_apply_leaves_the_gateway_s_config_to_cloud_build():
    gateway = resources("gateway", "google_api_gateway_gateway")["energent"]
    assert gateway["lifecycle"][0]["ignore_changes"] == ["api_config"]
    first = resources("gateway", "google_api_gateway_api_config")["energent"]
    assert first["lifecycle"][0]["ignore_changes"] == ["openapi_documents"]
    steps = {step["id"]: step for step in yaml.safe_load((ROOT / "cloudbuild-functions.yaml").read_text())["steps"]}
    assert steps["gateway-config"]["args"][:3] == ["api-gateway", "api-configs", "create"]
    assert "--api=energent-api-${_ENVIRONMENT}" in steps["gateway"]["args"]
    assert gateway["gateway_id"] == "energent-gateway-${var.environment}"
    assert "energent-gateway-${_ENVIRONMENT}" in steps["gateway"]["args"]
    # Every build publishes a config of its own (a retry of a commit is a new build), and moves the gateway to it.
    config_id = steps["gateway-config"]["args"][3]
    assert config_id == "energent-config-${_ENVIRONMENT}-$BUILD_ID"
    assert f"--api-config={config_id}" in steps["gateway"]["args"]
    assert "--labels=commit=$SHORT_SHA" in steps["gateway-config"]["args"]
    longest = config_id.replace("${_ENVIRONMENT}", "production").replace("$BUILD_ID", str(uuid.uuid4()))
    assert len(longest) <= 63 and re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", longest)


def test_terraform_creates_every_function_with_the_environment_cloud_build_deploys():
    functions = locals_of("functions")
    # The shape rebuilt below: the common variables, then buckets, secrets and the registry's own env.
    assert ("merge(local.common_env, {for key in try(d.buckets, []) : key => var.bucket_names[key]}, "
            "{for key in try(d.secrets, []) : key => local.secret_names[key]}, try(d.env, {}))") in functions["env"]
    secret_names = {key: in_cloud_build_terms(value) for key, value in functions["secret_names"].items()}
    shipped = registry.load()
    secrets = resources("functions", "google_secret_manager_secret")
    named = {key: re.search(r"google_secret_manager_secret\.(\w+)\.secret_id", value) for key, value in
             secret_names.items()}
    assert set(named) == set(shipped.secrets) and all(named.values())
    for key, resource in ((key, match.group(1)) for key, match in named.items() if match):
        assert secrets[resource]["secret_id"] == f"${{local.registry.secrets.{key}}}"
        # By project id, not the number a secret's `name` attribute holds: auth compares it with its notices.
        assert secret_names[key] == (
            f"projects/$PROJECT_ID/secrets/${{google_secret_manager_secret.{resource}.secret_id}}")
        secret_names[key] = secret_names[key].replace(
            f"${{google_secret_manager_secret.{resource}.secret_id}}", shipped.secrets[key])
    bucket = resources("storage", "google_storage_bucket")["data"]
    assert bucket["name"] == "${each.value}-${var.environment}-${var.project_id}"  # prefix from the registry

    steps = {step["id"]: step for step in yaml.safe_load((ROOT / "cloudbuild-functions.yaml").read_text())["steps"]}
    for deployment in shipped.deployments:
        terraform_env = {
            **{key: in_cloud_build_terms(value) for key, value in functions["common_env"].items()},
            **{key: f"{shipped.buckets[key]}-${{_ENVIRONMENT}}-$PROJECT_ID" for key in deployment.buckets},
            **{key: secret_names[key] for key in deployment.secrets},
            **deployment.env,
        }
        assert deployed_env(steps[f"deploy-{deployment.name}"]) == terraform_env, deployment.name
        assert cloudbuild.env(shipped, deployment) == terraform_env


def test_the_signing_secret_is_named_the_same_way_on_both_sides():
    deploy = {step["id"]: step for step in yaml.safe_load(
        (ROOT / "cloudbuild-functions.yaml").read_text())["steps"]}["deploy-auth"]
    assert deployed_env(deploy)["SIGNING_KEY_SECRET"] == "projects/$PROJECT_ID/secrets/auth-signing-key"
    functions = locals_of("functions")
    assert functions["secret_names"]["SIGNING_KEY_SECRET"].startswith("projects/${var.project_id}/secrets/")
    assert ".name" not in functions["secret_names"]["SIGNING_KEY_SECRET"]


def test_the_deploy_pipeline_s_identity_may_do_what_it_owns():
    deployer = "serviceAccount:${google_service_account.deployer.email}"
    roles = resources("functions", "google_project_iam_member")["deployer"]
    assert roles["member"] == deployer
    assert {"roles/cloudfunctions.developer", "roles/apigateway.admin"} <= set(roles["for_each"].split('"')[1::2])
    acts_as = resources("functions", "google_service_account_iam_member")["deployer_acts_as"]
    assert acts_as["role"] == "roles/iam.serviceAccountUser" and acts_as["member"] == deployer
    # every function's own account, and the gateway's backend account the configs name
    assert "google_service_account.function" in acts_as["for_each"] and "gateway" in acts_as["for_each"]
    pipeline = yaml.safe_load((ROOT / "cloudbuild-functions.yaml").read_text())
    assert pipeline["serviceAccount"].endswith("/deployer-${_ENVIRONMENT}@$PROJECT_ID.iam.gserviceaccount.com")
    assert resources("functions", "google_service_account")["deployer"]["account_id"] == "deployer-${var.environment}"


def test_each_deploy_deletes_the_builds_gateway_configs_but_the_newest_and_the_one_the_gateway_serves(tmp_path):
    """API Gateway keeps at most 100 configs per API and every deploy adds one: the last step keeps the newest
    KEPT_CONFIGS of the builds' configs and the one in service, and deletes the rest. Terraform's first config (no
    commit label) is never listed, so an apply never finds it gone."""
    steps = {step["id"]: step for step in yaml.safe_load((ROOT / "cloudbuild-functions.yaml").read_text())["steps"]}
    prune = steps["prune-gateway-configs"]
    assert prune["waitFor"] == ["gateway"] and prune["entrypoint"] == "bash"
    assert "--filter='labels.commit:*'" in prune["args"][1] and "--sort-by=~createTime" in prune["args"][1]
    newest_first = [f"energent-config-dev-b{n:02d}" for n in range(30, 0, -1)]
    serving = "energent-config-dev-b05"  # the gateway was moved back to an old config by hand
    gcloud = tmp_path / "gcloud"
    gcloud.write_text("#!/bin/sh\n"
                      'case "$*" in\n'
                      f'  *"gateways describe"*) echo {serving};;\n'
                      '  *"api-configs list"*) printf "%s\\n" ' + " ".join(newest_first) + ';;\n'
                      '  *) echo "gcloud $*" >> "$CALLS";;\n'
                      "esac\n")
    gcloud.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    script = prune["args"][1].replace("${_ENVIRONMENT}", "dev").replace("${_GATEWAY_REGION}", "europe-west1").replace(
        "$$", "$")
    subprocess.run(["bash", "-c", script], check=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin", "CALLS": str(calls)})
    deleted = [line.split()[4] for line in calls.read_text().splitlines()]
    assert all(line.endswith("--api=energent-api-dev --quiet") for line in calls.read_text().splitlines())
    kept = set(newest_first) - set(deleted)
    assert kept == set(newest_first[:cloudbuild.KEPT_CONFIGS]) | {serving}
    assert cloudbuild.KEPT_CONFIGS + 1 < 100
