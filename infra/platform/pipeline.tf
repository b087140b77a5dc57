# The infrastructure pipeline's identities (cloudbuild-infra.yaml; the triggers are made in README step 6).
#
#   terraform-plan-<env>       plans every branch. A branch runs whatever Terraform and build steps it carries, so
#                              what this account may do is what anyone who may push a branch may do: read the estate,
#                              its IAM policies and the state, and nothing else. It writes nowhere: it plans without
#                              the state lock, and it cannot put a plan where an apply would find it.
#   terraform-plan-main-<env>  plans main and saves that plan, with the files it was made from, as
#                              plans/<commit>/<build>.tgz in the state bucket. It reads what the branch account
#                              reads, and it may create objects under plans/ (not replace or delete them). Its trigger
#                              builds main; one run by hand on another branch can save a plan too, but the apply takes
#                              only one that Cloud Build's record shows a successful build of main saved.
#   terraform-<env>            (made by hand, README step 6: it owns the project) applies, once someone has approved
#                              the build, exactly the saved plan of the commit it builds; nothing else writes the
#                              estate.
#
# Nothing these accounts read holds a secret: the state and the saved plans hold none (write-only arguments,
# ephemeral values: infra/modules/functions), and none of them may read a secret version (a test keeps it so).

locals {
  plan_accounts = {
    branches = "terraform-plan-${var.environment}"
    main     = "terraform-plan-main-${var.environment}"
  }
  state_bucket = "energent-tfstate-${var.environment}"
  # What a plan reads: every resource's settings and every IAM policy Terraform compares (project, buckets, keys,
  # secrets, accounts), in both projects. Neither role holds a permission to read a secret's payload.
  plan_roles = ["roles/viewer", "roles/iam.securityReviewer"]
  plan_grants = merge([for key, _ in local.plan_accounts : merge(
    { for role in concat(local.plan_roles, ["roles/logging.logWriter"]) : "${key}/${var.project_id}/${role}" => {
      account = key, project = var.project_id, role = role
    } },
    { for role in local.plan_roles : "${key}/${var.tenants_project_id}/${role}" => {
      account = key, project = var.tenants_project_id, role = role
    } },
  )]...)
}

resource "google_service_account" "terraform_plan" {
  for_each     = local.plan_accounts
  project      = var.project_id
  account_id   = each.value
  display_name = "Terraform plans of ${each.key == "main" ? "main, saved for the apply" : "every branch"} (${var.environment})"

  # IAM must be on before an account can be made (a new project has only the APIs README step 1 enables).
  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "terraform_plan" {
  #checkov:skip=CKV_GCP_117:The plan accounts refresh every resource type of the estate and change nothing; Viewer is the read-only role that covers them all, where per-service viewer roles would have to follow every new type. Viewer reads no secret payload.
  for_each = local.plan_grants
  project  = each.value.project
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.terraform_plan[each.value.account].email}"
}

# The state (environments/<env>/backend.hcl names the bucket, made in README step 1), and the function sources
# Terraform uploaded: read, both accounts.
resource "google_storage_bucket_iam_member" "terraform_plan_state" {
  for_each = local.plan_accounts
  bucket   = local.state_bucket
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${google_service_account.terraform_plan[each.key].email}"
}

resource "google_storage_bucket_iam_member" "terraform_plan_sources" {
  for_each = local.plan_accounts
  bucket   = module.functions.sources_bucket
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${google_service_account.terraform_plan[each.key].email}"
}

# Main's saved plans: new objects under plans/ only. Object Creator cannot replace an object (that takes
# storage.objects.delete), so a plan once saved for a commit is the plan that commit's apply applies.
resource "google_storage_bucket_iam_member" "terraform_plan_main_saves" {
  bucket = local.state_bucket
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.terraform_plan["main"].email}"

  condition {
    title       = "saved-plans-only"
    description = "The plans main's builds save for the approved apply (cloudbuild-infra.yaml)."
    expression  = "resource.name.startsWith('projects/_/buckets/${local.state_bucket}/objects/plans/')"
  }
}
