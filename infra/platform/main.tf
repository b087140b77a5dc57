# The platform, one environment at a time: every module, wired together. infra/environments/<env>/ holds only
# that environment's state backend (backend.hcl) and values (terraform.tfvars):
#   terraform init -backend-config=../environments/dev/backend.hcl
#   terraform apply -var-file=../environments/dev/terraform.tfvars

locals {
  registry = yamldecode(file("${path.module}/../../functions/registry.yaml"))
  # The API's domain: the load balancer's certificate and the issuer the tokens name are one and the same.
  api_domain = trimprefix(var.api_url, "https://")
}

# Every API the estate uses, enabled by Terraform itself (a new project needs only serviceusage and
# cloudresourcemanager enabled by hand, for Terraform to enable the rest). Left on when the estate goes.
# tests/unit/test_infra.py holds which resource types (and cluster features) need which API.
resource "google_project_service" "apis" {
  for_each = toset([
    "compute.googleapis.com", "container.googleapis.com", "cloudfunctions.googleapis.com", "run.googleapis.com",
    "cloudbuild.googleapis.com", "artifactregistry.googleapis.com", "eventarc.googleapis.com",
    "pubsub.googleapis.com", "firestore.googleapis.com", "secretmanager.googleapis.com", "cloudkms.googleapis.com",
    "apigateway.googleapis.com", "servicecontrol.googleapis.com", "servicemanagement.googleapis.com",
    "servicenetworking.googleapis.com", "vpcaccess.googleapis.com", "file.googleapis.com",
    "cloudscheduler.googleapis.com", "monitoring.googleapis.com", "logging.googleapis.com",
    "gkebackup.googleapis.com", "iam.googleapis.com", "storage.googleapis.com", "billingbudgets.googleapis.com",
    # The cluster enforces the project's Binary Authorization policy (PROJECT_SINGLETON_POLICY_ENFORCE).
    "binaryauthorization.googleapis.com",
    # Firestore's security rules (google_firebaserules_ruleset and _release).
    "firebaserules.googleapis.com",
    # Workload Identity and the builds' own service accounts get their tokens through it (iam turns it on as well;
    # named so that nothing rests on that).
    "iamcredentials.googleapis.com",
  ])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# The tenants' project (infra/modules/tenants): dedicated clusters on the platform's network, their nodes' logs and
# metrics, the tenants' service accounts and their tokens, and hybrid tenants' tunnel keys.
resource "google_project_service" "tenant_apis" {
  for_each = toset([
    "compute.googleapis.com", "container.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com",
    "logging.googleapis.com", "monitoring.googleapis.com",
    # Hybrid tenants' tunnel keys (the provisioner's, read by External Secrets Operator).
    "secretmanager.googleapis.com",
  ])
  project            = var.tenants_project_id
  service            = each.value
  disable_on_destroy = false
}

module "security" {
  source         = "../modules/security"
  project_id     = var.project_id
  region         = var.region
  environment    = var.environment
  lock_retention = var.environment == "production"

  depends_on = [google_project_service.apis]
}

module "networking" {
  source      = "../modules/networking"
  project_id  = var.project_id
  region      = var.region
  environment = var.environment
  # One source of truth for the shared control plane's range: the cluster's own setting.
  shared_master_cidr = module.gke.master_cidr
  # Hybrid tenants run on the shared cluster: its nodes, and only they, may reach the sites.
  hybrid_nodes_service_account = module.gke.nodes_service_account

  depends_on = [google_project_service.apis]
}

# Dedicated tenants apart: their project, attached to the platform's network, and Config Connector's roles there.
module "tenants" {
  source                   = "../modules/tenants"
  project_id               = var.project_id
  tenants_project_id       = var.tenants_project_id
  region                   = var.region
  subnetwork               = module.networking.subnetwork_name
  config_connector_account = module.gke.config_connector_service_account

  depends_on = [google_project_service.apis, google_project_service.tenant_apis]
}

module "gke" {
  source      = "../modules/gke"
  project_id  = var.project_id
  region      = var.region
  environment = var.environment
  network     = module.networking.network
  subnetwork  = module.networking.subnetwork
  kms_key     = module.security.kms_key
  admin_cidrs = var.admin_cidrs
  min_nodes   = var.min_nodes
  max_nodes   = var.max_nodes

  depends_on = [google_project_service.apis]
}

module "storage" {
  source            = "../modules/storage"
  project_id        = var.project_id
  region            = var.region
  environment       = var.environment
  kms_key           = module.security.kms_key
  bucket_prefixes   = local.registry.buckets
  access_log_bucket = module.security.access_log_bucket

  lock_invoice_retention = var.environment == "production"

  depends_on = [google_project_service.apis]
}

module "gateway" {
  source         = "../modules/gateway"
  project_id     = var.project_id
  region         = var.region
  gateway_region = var.gateway_region
  environment    = var.environment
  api_spec_file  = "${path.module}/../../api-spec.yaml"
  api_url        = var.api_url

  depends_on = [google_project_service.apis]
}

module "functions" {
  source                  = "../modules/functions"
  project_id              = var.project_id
  region                  = var.region
  environment             = var.environment
  registry_file           = "${path.module}/../../functions/registry.yaml"
  build_dir               = "${path.module}/../../build"
  api_url                 = var.api_url
  bucket_names            = module.storage.bucket_names
  kms_key                 = module.security.kms_key
  vpc_connector           = module.networking.vpc_connector
  gateway_service_account = module.gateway.service_account
  access_log_bucket       = module.security.access_log_bucket
  workload_pool           = module.gke.workload_pool
  tenants_project_id      = module.tenants.project_id
  hybrid_vpn_addresses    = module.networking.hybrid_vpn_addresses
  hybrid_asn              = module.networking.hybrid_asn
  hybrid_site_ranges      = module.networking.hybrid_site_ranges
  hybrid_router           = module.networking.hybrid_router

  depends_on = [google_project_service.apis]
}

module "edge" {
  source         = "../modules/edge"
  project_id     = var.project_id
  gateway_region = var.gateway_region
  environment    = var.environment
  domain         = local.api_domain
  gateway_id     = module.gateway.gateway_id

  depends_on = [google_project_service.apis]
}

module "monitoring" {
  source                    = "../modules/monitoring"
  project_id                = var.project_id
  environment               = var.environment
  alert_email               = var.alert_email
  api_host                  = local.api_domain
  gateway_id                = module.gateway.gateway_id
  deployments               = [for d in local.registry.deployments : d.name]
  dead_letter_subscriptions = module.functions.dead_letter_subscriptions
  billing_account           = var.billing_account
  monthly_budget            = var.monthly_budget
  alert_on_low_throughput   = var.environment == "production"

  depends_on = [google_project_service.apis]
}
