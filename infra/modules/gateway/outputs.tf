output "service_account" {
  value = google_service_account.gateway.email
}

output "default_hostname" {
  value = google_api_gateway_gateway.energent.default_hostname
}

output "managed_service" {
  value = google_api_gateway_api.energent.managed_service
}

output "gateway_id" {
  value = google_api_gateway_gateway.energent.gateway_id
}
