# Egress: everything is denied at the lowest priority and allowed only where the platform needs it (guide,
# section 6.1.2: HTTPS and DNS out). The rules apply to every VM of the network: the shared and dedicated GKE nodes
# and the functions' connector. Hybrid tenants' sites are the exception, above every allow: denied to all (900),
# but to the shared cluster's nodes (800), so HTTPS and DNS "anywhere" (1000) never reaches a site. The metadata server (169.254.169.254: instance DNS, tokens, NTP) is always
# reachable; no rule can block or needs to allow it. Firewalls are stateful: replies need no rule.

locals {
  # Filestore's address range: the private services range reserved for the peering.
  private_services_cidr = "${google_compute_global_address.private_services.address}/${google_compute_global_address.private_services.prefix_length}"
  # The GKE control planes the nodes in this network talk to: the shared cluster's and the dedicated ones' pool.
  control_plane_cidrs = [var.shared_master_cidr, var.dedicated_master_pool]
}

# Below every allow (1000) and above the implied allow-all egress rule (65535).
resource "google_compute_firewall" "deny_egress" {
  project            = var.project_id
  name               = "energent-deny-egress-${var.environment}"
  network            = google_compute_network.vpc.id
  direction          = "EGRESS"
  priority           = 65000
  destination_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Google APIs (through Private Google Access), image registries and external HTTPS services.
resource "google_compute_firewall" "egress_https" {
  project            = var.project_id
  name               = "energent-allow-egress-https-${var.environment}"
  network            = google_compute_network.vpc.id
  direction          = "EGRESS"
  priority           = 1000
  destination_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "tcp"
    ports    = ["443"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Name resolution by resolvers other than the metadata server's (UDP, and TCP for large answers).
resource "google_compute_firewall" "egress_dns" {
  project            = var.project_id
  name               = "energent-allow-egress-dns-${var.environment}"
  network            = google_compute_network.vpc.id
  direction          = "EGRESS"
  priority           = 1000
  destination_ranges = ["0.0.0.0/0"]

  allow {
    protocol = "tcp"
    ports    = ["53"]
  }
  allow {
    protocol = "udp"
    ports    = ["53"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Private nodes to their control plane: kubelets and pods call the API server on 443, and the konnectivity agent
# opens the tunnel on 8132 that the control plane uses for logs, exec and webhooks. The control plane's own
# connections to the nodes (443, 10250) are ingress, allowed by the rule GKE creates per cluster.
resource "google_compute_firewall" "egress_control_plane" {
  project            = var.project_id
  name               = "energent-allow-egress-control-plane-${var.environment}"
  network            = google_compute_network.vpc.id
  direction          = "EGRESS"
  priority           = 1000
  destination_ranges = local.control_plane_cidrs

  allow {
    protocol = "tcp"
    ports    = ["443", "8132"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Inside the network: node to node and pod to pod (tenant isolation is the network policies' job, enforced by
# Dataplane V2), and the connector to both. Dedicated clusters run their nodes in the same subnetwork and their Pods
# and Services in ranges of their own from the provisioner's pools (made in the subnetwork, main.tf): their node
# and pod traffic is internal too. A subnetwork holds at most 30 secondary ranges; the shared cluster takes 3 and
# each dedicated cluster 2 (dedicated_cluster_slots).
resource "google_compute_firewall" "egress_internal" {
  project   = var.project_id
  name      = "energent-allow-egress-internal-${var.environment}"
  network   = google_compute_network.vpc.id
  direction = "EGRESS"
  priority  = 1000
  destination_ranges = [var.nodes_cidr, var.pods_cidr, var.platform_pods_cidr, var.connector_cidr, var.dedicated_pods_pool,
  var.dedicated_services_pool]

  allow {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# NFS to Filestore (portmapper, statd, nfsd, mountd, lock manager).
resource "google_compute_firewall" "egress_filestore" {
  project            = var.project_id
  name               = "energent-allow-egress-filestore-${var.environment}"
  network            = google_compute_network.vpc.id
  direction          = "EGRESS"
  priority           = 1000
  destination_ranges = [local.private_services_cidr]

  allow {
    protocol = "tcp"
    ports    = ["111", "2046", "2049", "2050", "4045"]
  }
  allow {
    protocol = "udp"
    ports    = ["111", "2046", "2049", "2050", "4045"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Hybrid tenants' sites, reached through the HA VPN tunnels: from the shared cluster's nodes alone (hybrid tenants run
# there; a dedicated cluster's nodes run as accounts of their own and get no such rule), on any port. Which Pods may
# go there is the network policies' part: every tenant's egress allows exclude the site ranges, and a hybrid tenant's
# own allow-site opens its site's ranges to its namespace only. Above the deny below, which holds everything else of
# the network (dedicated clusters' nodes, the functions' connector) away from the sites, whatever the port.
resource "google_compute_firewall" "egress_hybrid_sites" {
  project                 = var.project_id
  name                    = "energent-allow-egress-sites-${var.environment}"
  network                 = google_compute_network.vpc.id
  direction               = "EGRESS"
  priority                = 800
  destination_ranges      = var.hybrid_site_ranges
  target_service_accounts = [var.hybrid_nodes_service_account]

  allow {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# No other VM of the network reaches a site: above the HTTPS and DNS allows (1000), which name 0.0.0.0/0.
resource "google_compute_firewall" "deny_egress_hybrid_sites" {
  project            = var.project_id
  name               = "energent-deny-egress-sites-${var.environment}"
  network            = google_compute_network.vpc.id
  direction          = "EGRESS"
  priority           = 900
  destination_ranges = var.hybrid_site_ranges

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
