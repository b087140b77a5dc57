output "cluster_id" {
  value = google_container_cluster.primary.id
}

output "cluster_name" {
  value = google_container_cluster.primary.name
}

output "config_connector_service_account" {
  value = google_service_account.config_connector.email
}

output "master_cidr" {
  description = "The shared cluster's control-plane range: the network's egress rule to control planes names it."
  value       = var.master_cidr
}

output "workload_pool" {
  description = "The cluster's Workload Identity pool, read from the cluster: what depends on it waits for it."
  value       = google_container_cluster.primary.workload_identity_config[0].workload_pool
}

output "nodes_service_account" {
  description = "The shared cluster's nodes' account: the network lets it (and no dedicated cluster's nodes) reach hybrid tenants' sites."
  value       = google_service_account.nodes.email
}
