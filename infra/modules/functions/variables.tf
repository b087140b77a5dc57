variable "project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "environment" {
  type = string
}

variable "registry_file" {
  description = "functions/registry.yaml: the one list of deployments."
  type        = string
}

variable "build_dir" {
  description = "Where `make package` put the packaged function folders."
  type        = string
}

variable "api_url" {
  description = "Public base URL of the API; the tokens' issuer."
  type        = string
}

variable "bucket_names" {
  description = "Bucket env variable -> bucket name."
  type        = map(string)
}

variable "kms_key" {
  type = string
}

variable "vpc_connector" {
  type = string
}

variable "gateway_service_account" {
  type = string
}

variable "access_log_bucket" {
  type = string
}

variable "workload_pool" {
  description = "The platform cluster's Workload Identity pool (infra/modules/gke), where Flux's controllers run."
  type        = string
}

variable "tenants_project_id" {
  description = "The tenants' project (infra/modules/tenants): the provisioner's TENANTS_PROJECT."
  type        = string
}
