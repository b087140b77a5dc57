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
