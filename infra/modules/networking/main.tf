# Private VPC for GKE and the functions' connector. Unlike the guide's rule that opened every port to 10.0.0.0/8,
# ingress is denied except IAP SSH and Google health checks; GKE adds the control-plane rules it needs. Egress is
# denied too, except HTTPS and DNS (guide, section 6.1.2) and what the cluster itself needs (see egress.tf).

resource "google_compute_network" "vpc" {
  project                 = var.project_id
  name                    = "energent-vpc-${var.environment}"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "gke" {
  project                  = var.project_id
  name                     = "energent-gke-${var.environment}"
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.nodes_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }
  # The Pods of the shared cluster's platform pool, where Flux runs: the one range dedicated control planes admit.
  secondary_ip_range {
    range_name    = "platform-pods"
    ip_cidr_range = var.platform_pods_cidr
  }
  dynamic "secondary_ip_range" {
    for_each = local.dedicated_ranges
    content {
      range_name    = secondary_ip_range.key
      ip_cidr_range = secondary_ip_range.value
    }
  }

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }

}

locals {
  # The Pod and Service ranges of the dedicated clusters, one pair per slot. Those clusters live in the tenants'
  # project (a Shared VPC service project of this one) and use this subnetwork, where GKE cannot add ranges for
  # them: they name ranges made here. Slot n holds the n-th /17 of the Pod pool and the n-th /22 of the Service
  # pool, exactly the blocks the provisioner gives the n-th dedicated tenant (tenants.cluster_ranges), named after
  # their addresses (tenants.range_name).
  dedicated_ranges = merge([for index in range(var.dedicated_cluster_slots) : {
    for kind, cidr in {
      pods     = cidrsubnet(var.dedicated_pods_pool, 17 - tonumber(split("/", var.dedicated_pods_pool)[1]), index)
      services = cidrsubnet(var.dedicated_services_pool, 22 - tonumber(split("/", var.dedicated_services_pool)[1]), index)
    } : "dedicated-${kind}-${replace(replace(cidr, ".", "-"), "/", "-")}" => cidr
  }]...)
}

resource "google_compute_router" "router" {
  project = var.project_id
  name    = "energent-router-${var.environment}"
  region  = var.region
  network = google_compute_network.vpc.id
}

# The network's way out, with fixed addresses (the services the agents call may admit them by address). They are no
# control plane's authorized network: dedicated control planes answer on their private endpoints only, to Flux's
# range (the platform pool's Pods), and the platform's to the operators' ranges. Two addresses give 2 x 64,512
# ports, far more than the nodes and the connector use; MANUAL_ONLY never adds one nobody knows.
resource "google_compute_address" "nat" {
  count        = 2
  project      = var.project_id
  name         = "energent-nat-${var.environment}-${count.index}"
  region       = var.region
  address_type = "EXTERNAL"
}

resource "google_compute_router_nat" "nat" {
  project                            = var.project_id
  name                               = "energent-nat-${var.environment}"
  router                             = google_compute_router.router.name
  region                             = var.region
  nat_ip_allocate_option             = "MANUAL_ONLY"
  nat_ips                            = google_compute_address.nat[*].self_link
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

resource "google_compute_firewall" "iap_ssh" {
  project       = var.project_id
  name          = "energent-allow-iap-ssh-${var.environment}"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"] # Identity-Aware Proxy's TCP forwarding range
  target_tags   = ["gke-node"]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "health_checks" {
  project       = var.project_id
  name          = "energent-allow-health-checks-${var.environment}"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = ["35.191.0.0/16", "130.211.0.0/22"] # Google Cloud load balancer health checkers
  target_tags   = ["gke-node"]

  allow {
    protocol = "tcp"
    ports    = ["80", "443", "10256"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "deny_ingress" {
  project       = var.project_id
  name          = "energent-deny-ingress-${var.environment}"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  priority      = 65000
  source_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "functions" {
  project       = var.project_id
  name          = "energent-connector"
  region        = var.region
  network       = google_compute_network.vpc.name
  ip_cidr_range = var.connector_cidr
  min_instances = 2
  max_instances = 3
}

# Private services access, for Filestore, in a range of its own choosing (not Google's): hybrid tenants' sites are
# checked against every range of the network, this one included.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "energent-private-services-${var.environment}"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = cidrhost(var.private_services_cidr, 0)
  prefix_length = tonumber(split("/", var.private_services_cidr)[1])
  network       = google_compute_network.vpc.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.vpc.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# --- Hybrid tenants: the site-to-site connections' side in this network ------------------------------------------

# The HA VPN gateway every hybrid tenant's tunnels use (one per interface), and the Cloud Router that speaks BGP
# for them: not the NAT router, so no tenant object ever touches the network's way out. The provisioner renders each
# tenant's tunnels, router interfaces and BGP peers onto these through Config Connector (it creates them in this
# project: the VPN of a Shared VPC lives in its host); Terraform manages neither, only the gateway and router.
# The router advertises the shared cluster's Pod range alone: the tenants' agents reach their sites with their own
# addresses (GKE does not masquerade traffic to private ranges), and a site needs no other route to the platform.
resource "google_compute_ha_vpn_gateway" "hybrid" {
  project = var.project_id
  name    = "energent-vpn-${var.environment}"
  region  = var.region
  network = google_compute_network.vpc.id
}

resource "google_compute_router" "hybrid" {
  project = var.project_id
  name    = "energent-vpn-router-${var.environment}"
  region  = var.region
  network = google_compute_network.vpc.id

  bgp {
    asn               = var.hybrid_asn
    advertise_mode    = "CUSTOM"
    advertised_groups = []
    advertised_ip_ranges {
      range       = var.pods_cidr
      description = "the shared cluster's Pods"
    }
  }
}
