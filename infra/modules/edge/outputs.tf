output "ip_address" {
  description = "The load balancer's address: the A record of the API's domain points here."
  value       = google_compute_global_address.api.address
}

output "certificate" {
  description = "Name of the managed certificate (its status shows when the domain is served)."
  value       = google_compute_managed_ssl_certificate.api.name
}

output "security_policy" {
  value = google_compute_security_policy.api.name
}
