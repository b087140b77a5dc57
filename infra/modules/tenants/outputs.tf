output "project_id" {
  description = "The tenants' project, once it is attached to the platform's network."
  value       = google_compute_shared_vpc_service_project.tenants.service_project
}
