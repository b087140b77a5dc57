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

variable "hybrid_vpn_addresses" {
  description = "The HA VPN gateway's two interface addresses (infra/modules/networking): the provisioner's HYBRID_VPN_ADDRESSES."
  type        = list(string)
}

variable "hybrid_asn" {
  description = "The VPN router's ASN (infra/modules/networking): the provisioner's HYBRID_ASN."
  type        = number
}

variable "hybrid_site_ranges" {
  description = "Where hybrid tenants' sites may lie (infra/modules/networking): the provisioner's HYBRID_SITE_RANGES."
  type        = list(string)
}

variable "hybrid_router" {
  description = "The VPN router's name, in this project and region (infra/modules/networking): the route watchdog reads its status."
  type        = string
}
