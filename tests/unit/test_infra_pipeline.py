"""Secrets out of reach of branch code, and the Terraform pipeline: Terraform's state and saved plans hold no secret;
no identity that runs a branch's code (the plan account, any build of a branch) may read a signing key, the operator's
secret or anything that holds one; main's saved plan is the one an approved apply applies, and no branch can put
another in its place."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_infra import INFRA, ROOT, plain, resources_of, terraform
from tools import registry

PIPELINE = ROOT / "cloudbuild-infra.yaml"
PIPELINE_TF = INFRA / "platform" / "pipeline.tf"
FUNCTIONS_TF = INFRA / "modules" / "functions" / "main.tf"


def terraform_files() -> list[Path]:
    return sorted(INFRA.rglob("*.tf"))


def blocks(section: str):
    """(path, type, name, body) of every `section` block (resource, data, ephemeral, output) of infra/."""
    for path in terraform_files():
        for block in plain(terraform(path)).get(section, []):
            for kind, named in block.items():
                if section == "output":
                    yield path, "output", kind, named
                    continue
                for name, body in named.items():
                    yield path, kind, name, body


# --- no secret in the state or a saved plan ---------------------------------------------------------------------

# Resource and data types whose state holds a secret (a generated key or password, a payload read back).
SECRET_IN_STATE = {
    ("resource", "tls_private_key"), ("resource", "random_password"), ("resource", "random_string"),
    ("resource", "random_bytes"), ("resource", "google_service_account_key"),
    ("resource", "google_kms_secret_ciphertext"), ("data", "google_secret_manager_secret_version"),
    ("data", "google_secret_manager_secret_version_access"), ("data", "google_kms_secret"),
    ("data", "google_service_account_access_token"), ("data", "google_client_config"),
}


def test_terraform_state_and_plans_hold_no_secret_material():
    found = [(path.name, kind, name) for section in ("resource", "data") for path, kind, name, _ in blocks(section)
             if (section, kind) in SECRET_IN_STATE]
    assert found == []
    # Every secret version Terraform makes takes its payload write-only (never stored, never read back), from an
    # ephemeral value (made in memory by the run that applies it, never written down).
    ephemeral = {f"ephemeral.{kind}.{name}" for _, kind, name, _ in blocks("ephemeral")}
    assert ephemeral == {"ephemeral.tls_private_key.first_signing_key", "ephemeral.random_password.operator",
                         "ephemeral.random_password.webhook_key", "ephemeral.random_password.portal"}
    versions = {name: body for _, kind, name, body in blocks("resource")
                if kind == "google_secret_manager_secret_version"}
    assert set(versions) == {"first_signing_key", "operator", "webhook_key", "portal"}
    for name, version in versions.items():
        assert "secret_data" not in version, name
        assert any(source in version["secret_data_wo"] for source in ephemeral), name
        assert version["secret_data_wo_version"] == 1, name
    # No output passes on an ephemeral value or a secret's payload.
    for path, _, name, body in blocks("output"):
        assert "ephemeral." not in str(body) and "secret_data" not in str(body), (path, name)
    # Write-only arguments and ephemeral resources need Terraform 1.11 (the pipeline runs 1.11).
    assert plain(terraform(INFRA / "platform" / "versions.tf"))["terraform"][0]["required_version"] == ">= 1.11"


def test_the_pinned_provider_takes_secret_payloads_write_only():
    """Refreshing a secret version reads its payload only when it was given as secret_data (the provider returns
    early when secret_data is empty): the plan accounts need no access to any version, and have none."""
    schema = json.loads((ROOT / ".tools" / "provider-schemas" / "google.json").read_text())
    arguments = schema["resource"]["google_secret_manager_secret_version"]["arguments"]
    assert {"secret_data_wo", "secret_data_wo_version"} <= set(arguments)


def test_terraform_never_enables_a_signing_key_auth_or_an_operator_disabled():
    version = resources_of(FUNCTIONS_TF, "google_secret_manager_secret_version")["first_signing_key"]
    assert version["lifecycle"][0]["ignore_changes"] == ["enabled"]


# --- who may read a secret -------------------------------------------------------------------------------------

# Roles granted anywhere in infra/, and whether they hold secretmanager.versions.access (or read anything a secret
# could be copied into). A role not listed fails the test until someone says which it is.
READS_SECRETS = {
    "roles/secretmanager.secretAccessor": True, "roles/secretmanager.admin": True, "roles/owner": True,
    "roles/editor": True, "roles/secretmanager.viewer": False, "roles/secretmanager.secretVersionManager": False,
    "roles/viewer": False, "roles/iam.securityReviewer": False, "roles/logging.logWriter": False,
    "roles/storage.objectViewer": False, "roles/storage.objectCreator": False,
}
PLAN_ACCOUNT = 'google_service_account.terraform_plan'


def grants_to(account_reference: str):
    for path, kind, name, body in blocks("resource"):
        if kind.endswith("_iam_member") and account_reference in str(body.get("member", "")):
            yield path, kind, name, body


def test_no_plan_account_may_read_a_secret_or_write_anything_but_a_saved_plan():
    grants = list(grants_to(PLAN_ACCOUNT))
    assert grants, "the plan accounts have grants"
    plan_locals = {k: v for block in plain(terraform(PIPELINE_TF))["locals"] for k, v in block.items()}
    # The project grants come from a local: its roles, and the build's log writer.
    assert plan_locals["plan_roles"] == ["roles/viewer", "roles/iam.securityReviewer"]
    assert 'concat(local.plan_roles, ["roles/logging.logWriter"])' in plan_locals["plan_grants"]
    roles = set()
    for path, kind, name, body in grants:
        assert path == PIPELINE_TF, (path, name)
        assert not kind.startswith("google_secret_manager_"), name
        roles |= ({*plan_locals["plan_roles"], "roles/logging.logWriter"} if body["role"] == "${each.value.role}"
                  else {body["role"]})
    assert {role for role in roles if READS_SECRETS[role]} == set()
    # Only main's plan account may write, and only new objects under plans/ of the state bucket.
    buckets = resources_of(PIPELINE_TF, "google_storage_bucket_iam_member")
    writers = {name: g for name, g in buckets.items() if g["role"] != "roles/storage.objectViewer"}
    assert set(writers) == {"terraform_plan_main_saves"}
    saves = writers["terraform_plan_main_saves"]
    assert saves["role"] == "roles/storage.objectCreator"  # creates; replacing an object needs objects.delete
    assert saves["member"] == 'serviceAccount:${google_service_account.terraform_plan["main"].email}'
    assert saves["condition"][0]["expression"] == (
        "resource.name.startsWith('projects/_/buckets/${local.state_bucket}/objects/plans/')")
    accounts = resources_of(PIPELINE_TF, "google_service_account")["terraform_plan"]
    assert plan_locals["plan_accounts"] == {"branches": "terraform-plan-${var.environment}",
                                            "main": "terraform-plan-main-${var.environment}"}
    assert accounts["for_each"] == "${local.plan_accounts}"


def test_only_the_functions_that_use_a_secret_may_read_it():
    """Besides the owner, the only readers of a secret are the deployments the registry gives it, on that secret,
    and the readers of hybrid tenants' tunnel keys (the provisioner, External Secrets Operator), on those alone."""
    shipped = registry.load()
    custom = {f"${{google_project_iam_custom_role.{name}.id}}": "secretmanager.versions.access" in role["permissions"]
              for path, kind, name, role in blocks("resource") if kind == "google_project_iam_custom_role"}
    readers = set()
    for path, kind, name, body in blocks("resource"):
        role = str(body.get("role"))
        if not kind.endswith("_iam_member") or {**READS_SECRETS, **custom}.get(role, False) is False:
            continue
        readers.add((kind, name))
        if (kind, name) != ("google_secret_manager_secret_iam_member", "accessor"):
            # A tunnel-key reader: on the tenants' project, its condition naming the keys' prefix.
            assert path == FUNCTIONS_TF and body["project"] == "${var.tenants_project_id}", (path, name)
            assert "resource.name.startsWith('${local.hybrid_keys}')" in body["condition"][0]["expression"], name
    assert readers == {("google_secret_manager_secret_iam_member", "accessor"),
                       ("google_project_iam_member", "hybrid_keys"),
                       ("google_project_iam_member", "external_secrets_reads_keys")}
    functions_locals = {k: v for block in plain(terraform(FUNCTIONS_TF))["locals"] for k, v in block.items()}
    assert functions_locals["hybrid_keys"] == "projects/${data.google_project.tenants.number}/secrets/hybrid-psk-"
    accessor = resources_of(FUNCTIONS_TF, "google_secret_manager_secret_iam_member")["accessor"]
    assert accessor["for_each"] == "${local.secret_access}"
    assert accessor["secret_id"] == "${local.secret_names[each.value.secret]}"
    assert accessor["member"] == "serviceAccount:${google_service_account.function[each.value.deployment].email}"
    assert {secret for d in shipped.deployments for secret in d.secrets} == set(shipped.secrets)


def test_only_the_functions_that_use_firestore_may_reach_it():
    member = resources_of(FUNCTIONS_TF, "google_project_iam_member")["firestore"]
    assert member["role"] == "roles/datastore.user"
    assert member["for_each"] == "${{for name, d in local.deployments : name => d if try(d.firestore, true)}}"
    assert [d.name for d in registry.load().deployments if not d.firestore] == ["portal"]


def test_sign_in_links_are_kept_out_of_the_request_logs():
    """Their URL holds a one-time code until it is used: Cloud Run's and API Gateway's request logs would show it
    to anyone who may read logs."""
    from auth.portal import LOGIN_PATH

    functions_locals = {k: v for block in plain(terraform(FUNCTIONS_TF))["locals"] for k, v in block.items()}
    assert functions_locals["portal_login"] == LOGIN_PATH
    exclusion = resources_of(FUNCTIONS_TF, "google_logging_project_exclusion")["portal_sign_in_links"]
    assert exclusion["filter"].replace('\\"', '"') == 'httpRequest.requestUrl:"${local.portal_login}?"'
    assert not exclusion.get("disabled", False)


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Deploying an environment from zero")[1].split("### What it costs")[0]


def triggers() -> dict[str, str]:
    commands = " ".join(readme_section().replace("\\\n", " ").split())
    found = {}
    for command in commands.split("gcloud builds triggers create github")[1:]:
        command = command.split("gcloud ")[0]
        found[re.search(r'--name="([^"]+)"', command).group(1)] = command
    return found


def test_branches_build_only_as_the_read_only_plan_account():
    """Every trigger that builds another branch than main runs as terraform-plan-<env>; the others build main only."""
    made = triggers()
    assert set(made) == {"energent-infra-plan-$ENV", "energent-infra-plan-main-$ENV", "energent-infra-apply-$ENV",
                         "energent-functions-$ENV"}
    for name, command in made.items():
        if "--branch-pattern='^main$'" not in command:
            assert "serviceAccounts/$PLAN_SA" in command, name
    section = readme_section()
    assert 'PLAN_SA="terraform-plan-$ENV@$PROJECT.iam.gserviceaccount.com"' in section
    assert 'PLAN_MAIN_SA="terraform-plan-main-$ENV@$PROJECT.iam.gserviceaccount.com"' in section
    # The functions' pipeline builds main only, as its deployer.
    functions = made["energent-functions-$ENV"]
    assert "--branch-pattern='^main$'" in functions and "--build-config=cloudbuild-functions.yaml" in functions


def test_main_s_plan_is_saved_under_an_identity_of_its_own_and_the_approved_apply_applies_exactly_it():
    made = triggers()
    plan, save, apply = (made[f"energent-infra-{kind}-$ENV"] for kind in ("plan", "plan-main", "apply"))
    assert "--branch-pattern='.*'" in plan and "serviceAccounts/$PLAN_SA" in plan
    assert "_MODE" not in plan and "--require-approval" not in plan
    assert "--branch-pattern='^main$'" in save and "serviceAccounts/$PLAN_MAIN_SA" in save
    assert "_MODE=save" in save and "--require-approval" not in save
    assert "--branch-pattern='^main$'" in apply and "serviceAccounts/$TF_SA" in apply
    assert "_MODE=apply" in apply and "--require-approval" in apply
    # The apply knows main's plan trigger, whose builds alone it takes a plan from.
    assert "_PLAN_TRIGGER_ID=$PLAN_TRIGGER_ID" in apply
    assert ("PLAN_TRIGGER_ID=$(gcloud builds triggers describe \"energent-infra-plan-main-$ENV\" --format='value(id)')"
            in readme_section())
    for command in (plan, save, apply):
        assert "--build-config=cloudbuild-infra.yaml" in command
    section = readme_section()
    assert 'TF_SA="terraform-$ENV@$PROJECT.iam.gserviceaccount.com"' in section and "--role=roles/owner" in section
    assert "roles/billing.viewer" in section  # the budget is read on the billing account


# --- the pipeline's steps ---------------------------------------------------------------------------------------

def pipeline() -> dict:
    return yaml.safe_load(PIPELINE.read_text())


def steps() -> dict[str, dict]:
    return {step["id"]: step for step in pipeline()["steps"]}


def test_the_pipeline_checks_and_plans_before_it_applies_with_a_pinned_terraform():
    order = [step["id"] for step in pipeline()["steps"]]
    assert all("waitFor" not in step for step in pipeline()["steps"])  # Cloud Build runs them in this order
    assert order == ["fmt", "package", "fetch-plan", "init", "validate", "plan", "save-plan", "apply"]
    for step in pipeline()["steps"]:
        if "terraform" in step["name"]:
            assert re.fullmatch(r"hashicorp/terraform:1\.11\.\d+", step["name"]), step["name"]
    by_id = steps()
    assert {"fmt", "-check"} <= set(by_id["fmt"]["args"]) and by_id["validate"]["args"] == ["validate"]
    assert all("terraform apply" not in str(step.get("args")) for name, step in by_id.items() if name != "apply")
    # A plan never takes the lock (the plan accounts cannot write the state).
    assert "-lock=false" in by_id["plan"]["args"][1]
    # Each trigger names its own account: the file names none, so a branch cannot pick one.
    assert "serviceAccount" not in pipeline() and pipeline()["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert pipeline()["substitutions"] == {"_ENV": "dev", "_MODE": "plan", "_PLAN_TRIGGER_ID": ""}


def test_the_pipeline_uses_each_environments_own_backend_values_and_state_bucket():
    by_id = steps()
    backend_arg = next(a for a in by_id["init"]["args"] if a.startswith("-backend-config="))
    for environment in ("dev", "staging", "production"):
        backend = Path(os.path.normpath(Path(by_id["init"]["dir"]) / backend_arg.split("=", 1)[1].replace(
            "${_ENV}", environment)))
        assert backend == Path("infra/environments") / environment / "backend.hcl"
        assert f"-var-file=../environments/{environment}/terraform.tfvars" in by_id["plan"]["args"][1].replace(
            "${_ENV}", environment)
        bucket = plain(terraform(ROOT / backend))["bucket"]
        for step in ("fetch-plan", "save-plan"):
            assert f"gs://{bucket}/plans/$COMMIT_SHA/" in by_id[step]["args"][1].replace("${_ENV}", environment)
    plan_locals = {k: v for block in plain(terraform(PIPELINE_TF))["locals"] for k, v in block.items()}
    assert plan_locals["state_bucket"] == "energent-tfstate-${var.environment}"


# The gcloud stand-in: `storage ls` lists the builds in $SAVED as saved plans of the commit, `builds describe` answers
# from $RECORDS ("<build> <status> <trigger> <branch> <commit>" lines), and an upload fails if $EXISTS is set.
GCLOUD = """#!/bin/sh
echo "gcloud $*" >> "$CALLS"
case "$1 $2" in
  "storage ls") for build in $SAVED; do echo "gs://energent-tfstate-dev/plans/c0ffee/$build.tgz"; done ;;
  "builds describe") grep "^$3 " "$RECORDS" | cut -d' ' -f2- | tr ' ' '\\t' ;;
  "storage cp") case "$3" in --if-generation-match=0) [ -z "$EXISTS" ] || exit 1 ;; esac ;;
esac
"""


def run_steps(tmp_path: Path, mode: str, branch: str, saved: str = "", records: str = "",
              exists: bool = False, plan_trigger: str = "plan-main-trigger") -> tuple[list[str], int]:
    """Runs the shell steps as Cloud Build would (its substitutions made, `$$` left as `$`), with stand-ins for
    terraform, gcloud and tar that record their calls."""
    for tool in ("terraform", "tar", "python"):
        stand_in = tmp_path / tool
        stand_in.write_text(f'#!/bin/sh\necho "{tool} $*" >> "$CALLS"\n')
        stand_in.chmod(0o755)
    (tmp_path / "gcloud").write_text(GCLOUD)
    (tmp_path / "gcloud").chmod(0o755)
    calls, record_file = tmp_path / "calls", tmp_path / "records"
    calls.write_text("")
    record_file.write_text(records)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "CALLS": str(calls), "SAVED": saved, "RECORDS": str(record_file),
           "EXISTS": "yes" if exists else ""}
    for step in pipeline()["steps"]:
        if step.get("entrypoint") not in ("sh", "bash"):
            continue
        script = step["args"][1].replace("${_MODE}", mode).replace("${_ENV}", "dev").replace(
            "${_PLAN_TRIGGER_ID}", plan_trigger).replace("$BRANCH_NAME", branch).replace(
            "$COMMIT_SHA", "c0ffee").replace("$BUILD_ID", "this-build").replace("$$", "$")
        ran = subprocess.run([step["entrypoint"], "-c", script], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
        if ran.returncode:
            return calls.read_text().splitlines(), ran.returncode
    return calls.read_text().splitlines(), 0


PLAN = "terraform plan -input=false -lock=false -var-file=../environments/dev/terraform.tfvars -out=tfplan"
SAVE = "gcloud storage cp --if-generation-match=0 plan.tgz gs://energent-tfstate-dev/plans/c0ffee/this-build.tgz"
APPLY = "terraform apply -input=false -lock-timeout=10m -auto-approve tfplan"
MAIN_PLAN = "main-plan SUCCESS plan-main-trigger main c0ffee\n"


@pytest.mark.parametrize("branch", ["main", "feature/edge", "mainline", ""])
def test_a_plan_build_plans_and_saves_nothing(branch, tmp_path):
    calls, failed = run_steps(tmp_path, "plan", branch)
    assert not failed and PLAN in calls
    assert not [c for c in calls if c.startswith(("terraform apply", "gcloud storage cp", "tar"))]


def test_main_s_plan_build_saves_the_plan_with_the_files_it_was_made_from_once(tmp_path):
    calls, failed = run_steps(tmp_path, "save", "main")
    assert not failed
    assert calls.index(PLAN) < calls.index("tar -czf plan.tgz infra/platform/tfplan build") < calls.index(SAVE)
    # An object of that name already stands (the upload is create-only): the build fails, and replaces nothing.
    calls, failed = run_steps(tmp_path, "save", "main", exists=True)
    assert failed
    # A branch that asks to save saves nothing (and its account could not).
    calls, failed = run_steps(tmp_path, "save", "feature/edge")
    assert not failed and not [c for c in calls if c.startswith(("gcloud storage cp", "tar"))]


def test_the_approved_apply_applies_the_plan_main_saved_for_its_commit_or_nothing(tmp_path):
    fetched = "gcloud storage cp gs://energent-tfstate-dev/plans/c0ffee/main-plan.tgz plan.tgz"
    calls, failed = run_steps(tmp_path, "apply", "main", saved="main-plan", records=MAIN_PLAN)
    assert not failed
    assert calls.index(fetched) < calls.index("tar -xzf plan.tgz") < calls.index(
        "terraform show tfplan") < calls.index(APPLY)
    assert PLAN not in calls and not [c for c in calls if c.startswith("python")]  # it plans nothing itself
    # Approved before main's plan was saved: it stops, and applies nothing.
    calls, failed = run_steps(tmp_path, "apply", "main", records=MAIN_PLAN)
    assert failed and APPLY not in calls
    # A trigger made without main's plan trigger id trusts no plan (a build run by hand has no trigger id).
    calls, failed = run_steps(tmp_path, "apply", "main", saved="manual", records="manual SUCCESS  main c0ffee\n",
                              plan_trigger="")
    assert failed and APPLY not in calls
    # Another branch never applies, whatever it asks.
    for branch in ("feature/edge", "mainline", ""):
        calls, failed = run_steps(tmp_path, "apply", branch, saved="main-plan", records=MAIN_PLAN)
        assert not failed and not [c for c in calls if c.startswith(("terraform apply", "gcloud storage cp"))]


@pytest.mark.parametrize("record", [
    "forged SUCCESS plan-main-trigger evil c0ffee",   # a branch run by hand through main's trigger, saved under main
    "forged SUCCESS other-trigger main c0ffee",      # another trigger's build
    "forged FAILURE plan-main-trigger main c0ffee",  # main's build whose save failed (the name was taken first)
    "forged SUCCESS plan-main-trigger main d00dad",  # a build of another commit
    "",                                              # no such build at all
])
def test_a_plan_that_main_s_plan_build_did_not_save_is_never_applied(tmp_path, record):
    calls, failed = run_steps(tmp_path, "apply", "main", saved="forged", records=record + "\n")
    assert failed and APPLY not in calls and not [c for c in calls if c.startswith("gcloud storage cp")]
    # Beside main's own plan, the forged one is passed over and main's is the one applied.
    calls, failed = run_steps(tmp_path, "apply", "main", saved="forged main-plan", records=record + "\n" + MAIN_PLAN)
    assert not failed and APPLY in calls
    assert [c for c in calls if c.startswith("gcloud storage cp")] == [
        "gcloud storage cp gs://energent-tfstate-dev/plans/c0ffee/main-plan.tgz plan.tgz"]
