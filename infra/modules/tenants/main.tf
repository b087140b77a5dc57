# The tenants' project: every tenant's Google service accounts and the dedicated tenants' clusters live here, apart
# from the platform. A dedicated cluster's Workload Identity pool is this project's (<tenants project>.svc.id.goog),
# where no platform account is bound to anything: a Pod on a dedicated cluster, whatever namespace and name it takes,
# can become no platform account (Config Connector's cnrm-system/cnrm-controller-manager is a member of the
# platform's pool only). Config Connector holds its roles here and none on the platform's project, so what it could
# be made to do reaches tenant accounts and tenant clusters only.
#
# The project is a Shared VPC service project of the platform's: the clusters still run on the platform's network
# and subnetwork, in the Pod and Service ranges made for them there (infra/modules/networking).

data "google_project" "tenants" {
  project_id = var.tenants_project_id
}

resource "google_compute_shared_vpc_host_project" "platform" {
  project = var.project_id
}

resource "google_compute_shared_vpc_service_project" "tenants" {
  host_project    = google_compute_shared_vpc_host_project.platform.project
  service_project = var.tenants_project_id
}

locals {
  # The tenants' project's agents that make its GKE clusters' nodes and load balancers on the shared subnetwork.
  gke_agent  = "serviceAccount:service-${data.google_project.tenants.number}@container-engine-robot.iam.gserviceaccount.com"
  apis_agent = "serviceAccount:${data.google_project.tenants.number}@cloudservices.gserviceaccount.com"
}

# The subnetwork, and nothing else of the network, for the clusters' nodes.
resource "google_compute_subnetwork_iam_member" "network_users" {
  for_each   = { gke = local.gke_agent, apis = local.apis_agent }
  project    = var.project_id
  region     = var.region
  subnetwork = var.subnetwork
  role       = "roles/compute.networkUser"
  member     = each.value

  depends_on = [google_compute_shared_vpc_service_project.tenants]
}

# GKE's agent uses the host's network for the clusters (control-plane peering, the named secondary ranges).
resource "google_project_iam_member" "gke_host_agent" {
  project = var.project_id
  role    = "roles/container.hostServiceAgentUser"
  member  = local.gke_agent

  depends_on = [google_compute_shared_vpc_service_project.tenants]
}

# Each cluster's own firewall rules (its control plane to its nodes, its Pods to its nodes), which GKE makes and
# removes with the cluster, scoped to that cluster's nodes: the network's deny-all ingress (infra/modules/networking)
# would otherwise cut a dedicated cluster's Pods off each other.
resource "google_project_iam_custom_role" "gke_firewalls" {
  project     = var.project_id
  role_id     = "energentGkeClusterFirewalls"
  title       = "Firewall rules of the tenants' GKE clusters"
  description = "What GKE needs to manage its clusters' own firewall rules on a Shared VPC network."
  permissions = ["compute.firewalls.create", "compute.firewalls.delete", "compute.firewalls.get",
  "compute.firewalls.list", "compute.firewalls.update", "compute.networks.updatePolicy"]
}

resource "google_project_iam_member" "gke_firewalls" {
  project = var.project_id
  role    = google_project_iam_custom_role.gke_firewalls.id
  member  = local.gke_agent

  depends_on = [google_compute_shared_vpc_service_project.tenants]
}

# --- Config Connector -------------------------------------------------------------------------------------------

# What the provisioner renders (functions/provisioner/provisioner/manifests.py), in this project only: the tenants'
# service accounts and their Workload Identity bindings, dedicated clusters and node pools (which run as their
# tenant's node account), the node accounts' project roles and Flux's grant on each dedicated cluster. Service
# Account Admin and User reach every account of this project, which holds tenant accounts only; the cluster's
# admission policy (infra/config-connector/tenant-objects-policy.yaml) narrows each object further.
resource "google_project_iam_member" "config_connector" {
  #checkov:skip=CKV_GCP_41:Config Connector creates a dedicated cluster's node pool to run as that tenant's node account, made at the same time; the role is on the tenants' project, which holds tenant accounts only, and the admission policy admits only a node pool running as its tenant's node account.
  #checkov:skip=CKV_GCP_49:Config Connector creates and deletes the tenants' service accounts and sets their Workload Identity bindings; the role is on the tenants' project, which holds no platform account, and the admission policy admits only the provisioner's account names and bindings.
  for_each = toset([
    "roles/iam.serviceAccountAdmin", # IAMServiceAccount, and IAMPolicyMember on those accounts
    "roles/iam.serviceAccountUser",  # a ContainerNodePool runs as its tenant's node service account
    "roles/container.clusterAdmin",  # ContainerCluster and ContainerNodePool
  ])
  project = var.tenants_project_id
  role    = each.value
  member  = "serviceAccount:${var.config_connector_account}"
}

# The project bindings it renders (IAMPolicyMember on the project): it may change this project's policy, but only
# the bindings of these roles.
locals {
  grantable_roles = concat(var.dedicated_node_roles, [var.flux_cluster_role])
}

resource "google_project_iam_member" "config_connector_grants" {
  project = var.tenants_project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = "serviceAccount:${var.config_connector_account}"

  condition {
    title       = "tenant-cluster-roles-only"
    description = "Only the node roles (provisioner NODE_ROLES) and Flux's role on a dedicated cluster (FLUX_CLUSTER_ROLE)."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${join(", ", [for role in local.grantable_roles : "'${role}'"])}])"
  }
}

# Hybrid tenants' VPNs live in the platform's project, the Shared VPC host (a service project cannot put a VPN on
# the host's network): Config Connector's one role there. It makes and deletes each tenant's external VPN gateway
# and tunnels, uses the platform's HA VPN gateway, and adds and removes interfaces and BGP peers on a router: nothing
# of firewalls, routes, subnetworks, addresses or instances. The routers it could change are the VPN router and the
# NAT router; the admission policy (infra/config-connector) admits router objects on the VPN router only and no
# ComputeRouterNAT at all.
resource "google_project_iam_custom_role" "hybrid_vpn" {
  project     = var.project_id
  role_id     = "energentHybridVpn"
  title       = "Hybrid tenants' VPN tunnels"
  description = "What Config Connector needs for the VPN objects the provisioner renders for hybrid tenants."
  permissions = [
    "compute.externalVpnGateways.create", "compute.externalVpnGateways.delete", "compute.externalVpnGateways.get",
    "compute.externalVpnGateways.setLabels", "compute.externalVpnGateways.use",
    "compute.vpnTunnels.create", "compute.vpnTunnels.delete", "compute.vpnTunnels.get", "compute.vpnTunnels.setLabels",
    "compute.vpnGateways.get", "compute.vpnGateways.use",
    "compute.routers.get", "compute.routers.update", "compute.routers.use",
    "compute.regionOperations.get", "compute.globalOperations.get",
  ]
}

resource "google_project_iam_member" "config_connector_vpn" {
  project = var.project_id
  role    = google_project_iam_custom_role.hybrid_vpn.id
  member  = "serviceAccount:${var.config_connector_account}"
}
