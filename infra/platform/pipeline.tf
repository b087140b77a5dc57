# The infrastructure pipeline's read-only identity (cloudbuild-infra.yaml). Every branch plans as
# terraform-plan-<env>: a branch runs whatever Terraform code it carries, so what this account may do is what anyone
# who may push a branch may do. It reads the estate, its IAM policies and the state, and changes nothing; it plans
# without the state lock (taking it would mean writing to the state bucket). Only main applies, after an approval,
# as terraform-<env> (made by hand, README step 6: it owns the project, and made this account).
#
# The state holds what Terraform generated (the operator client's first secret, the first signing key), and so do
# the two secret versions it refreshes: whoever may push a branch may read them, as whoever may change the estate
# could anyway.

data "google_project" "project" {
  project_id = var.project_id
}

resource "google_service_account" "terraform_plan" {
  project      = var.project_id
  account_id   = "terraform-plan-${var.environment}"
  display_name = "Terraform plans of every branch (${var.environment})"
}

resource "google_project_iam_member" "terraform_plan" {
  #checkov:skip=CKV_GCP_117:The plan account refreshes every resource type of the estate and changes nothing; Viewer is the read-only role that covers them all, where per-service viewer roles would have to follow every new type.
  for_each = toset([
    "roles/viewer",               # every resource's settings
    "roles/iam.securityReviewer", # every IAM policy Terraform compares: project, buckets, keys, secrets, accounts
    "roles/logging.logWriter",    # the build's own log (CLOUD_LOGGING_ONLY)
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.terraform_plan.email}"
}

# Refreshing a google_secret_manager_secret_version reads its payload: only the registry's two secrets, whose
# Terraform-made versions are in the state anyway.
resource "google_project_iam_member" "terraform_plan_secrets" {
  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = "serviceAccount:${google_service_account.terraform_plan.email}"

  condition {
    title       = "terraform-made-secret-versions"
    description = "The secrets Terraform writes a first version of (functions/registry.yaml)."
    expression = join(" || ", [
      for secret in sort(values(local.registry.secrets)) :
      "resource.name.startsWith('projects/${data.google_project.project.number}/secrets/${secret}/')"
    ])
  }
}

# The state (environments/<env>/backend.hcl names the bucket), and the function sources Terraform uploaded.
resource "google_storage_bucket_iam_member" "terraform_plan_state" {
  bucket = "energent-tfstate-${var.environment}"
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.terraform_plan.email}"
}

resource "google_storage_bucket_iam_member" "terraform_plan_sources" {
  bucket = module.functions.sources_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.terraform_plan.email}"
}
