terraform {
  backend "gcs" {
    bucket = "energent-tfstate-production"
    prefix = "platform"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

module "platform" {
  source      = "../../platform"
  project_id  = var.project_id
  region      = var.region
  environment = "production"
  api_url     = var.api_url
  admin_cidrs = var.admin_cidrs
  alert_email = var.alert_email
  min_nodes   = 3
  max_nodes   = 10
}
