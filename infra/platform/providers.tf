# Requests are billed to, and count against the quotas of, the platform's project, whoever makes them. Some APIs
# (Billing Budgets, Firebase Rules) refuse user credentials without a quota project: with these two settings the
# first apply runs with an operator's own application-default credentials (README, step 3), as later applies
# run as terraform-<env>.
provider "google" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}

provider "google-beta" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}
