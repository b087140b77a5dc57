output "network" {
  value = google_compute_network.vpc.id
}

output "network_name" {
  value = google_compute_network.vpc.name
}

output "subnetwork" {
  value = google_compute_subnetwork.gke.id
}

output "subnetwork_name" {
  value = google_compute_subnetwork.gke.name
}

output "platform_pods_cidr" {
  description = "Flux's Pods: the authorized network of every dedicated control plane."
  value       = var.platform_pods_cidr
}

output "vpc_connector" {
  value = google_vpc_access_connector.functions.id
}

output "private_services_connection" {
  value = google_service_networking_connection.private_services.id
}

output "nat_ips" {
  description = "The addresses the network's traffic leaves by (Cloud NAT)."
  value       = google_compute_address.nat[*].address
}

output "hybrid_vpn_addresses" {
  description = "The HA VPN gateway's two interface addresses: what a hybrid tenant's site connects to (provisioner HYBRID_VPN_ADDRESSES)."
  value       = google_compute_ha_vpn_gateway.hybrid.vpn_interfaces[*].ip_address
}

output "hybrid_asn" {
  value = var.hybrid_asn
}

output "hybrid_site_ranges" {
  value = var.hybrid_site_ranges
}

output "hybrid_router" {
  description = "The VPN router's name: the route watchdog reads its learned routes (provisioner routes.py)."
  value       = google_compute_router.hybrid.name
}
