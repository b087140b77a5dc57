output "api_ip" {
  description = "Point the API domain's A record here; the managed certificate is issued once it resolves."
  value       = module.edge.ip_address
}

output "api_url" {
  value = var.api_url
}

output "certificate" {
  value = module.edge.certificate
}

output "gateway_region" {
  description = "API Gateway's region: the functions pipeline's _GATEWAY_REGION."
  value       = var.gateway_region
}

output "gateway_host" {
  value = module.gateway.default_hostname
}

output "tenants_project" {
  description = "The tenants' project: the functions pipeline's _TENANTS_PROJECT."
  value       = module.tenants.project_id
}

output "hybrid_vpn_addresses" {
  description = "The HA VPN gateway's interface addresses, comma-separated: the functions pipeline's _HYBRID_VPN_ADDRESSES."
  value       = join(",", module.networking.hybrid_vpn_addresses)
}

output "hybrid_asn" {
  description = "The VPN router's ASN: the functions pipeline's _HYBRID_ASN."
  value       = module.networking.hybrid_asn
}

output "hybrid_site_ranges" {
  description = "Where hybrid tenants' sites may lie, comma-separated: the functions pipeline's _HYBRID_SITE_RANGES."
  value       = join(",", module.networking.hybrid_site_ranges)
}

output "cluster" {
  value = module.gke.cluster_name
}

output "buckets" {
  value = module.storage.bucket_names
}

output "flux_service_accounts" {
  value = module.functions.flux_service_accounts
}

output "config_connector_service_account" {
  value = module.gke.config_connector_service_account
}

output "terraform_plan_service_accounts" {
  description = "What the infrastructure plan triggers run as (README step 6): every branch, and main."
  value       = { for key, account in google_service_account.terraform_plan : key => account.email }
}
