# The shared private GKE cluster of the guide (sections 3.1 and 3.2), with Workload Identity for tenants,
# Dataplane V2 to enforce the tenants' network policies, Config Connector for their Google resources, the
# Filestore CSI driver for shared volumes, and Backup for GKE on the guide's schedule (section 11.1: daily, kept
# 30 days).

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "gke-nodes-${var.environment}"
  display_name = "GKE nodes (${var.environment})"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "primary" {
  #checkov:skip=CKV_GCP_12:Dataplane V2 (ADVANCED_DATAPATH) enforces network policies itself; the legacy network_policy addon must stay off with it.
  project  = var.project_id
  name     = "energent-gke-${var.environment}"
  location = var.region

  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = true

  # The default pool lives only until the cluster is made, but it is made: as the nodes' own account, not the
  # Compute Engine default one (which may hold no role, or Editor), and as hardened as the real pool.
  node_config {
    service_account   = google_service_account.nodes.email
    oauth_scopes      = ["https://www.googleapis.com/auth/cloud-platform"]
    image_type        = "COS_CONTAINERD"
    boot_disk_kms_key = var.kms_key

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  network         = var.network
  subnetwork      = var.subnetwork
  networking_mode = "VPC_NATIVE"
  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  release_channel {
    channel = "REGULAR"
  }
  # No minimum version: the release channel chooses one GKE still offers.

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_cidr
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.admin_cidrs
      content {
        cidr_block   = cidr_blocks.value
        display_name = "admin"
      }
    }
  }

  authenticator_groups_config {
    security_group = var.rbac_security_group
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  datapath_provider           = "ADVANCED_DATAPATH"
  enable_shielded_nodes       = true
  enable_intranode_visibility = true

  database_encryption {
    state    = "ENCRYPTED"
    key_name = var.kms_key
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  addons_config {
    config_connector_config {
      enabled = true
    }
    gke_backup_agent_config {
      enabled = true
    }
    # Filestore shares as PersistentVolumes, ReadWriteMany volumes for the agents' shared files: storage class
    # energent-rwx (infra/cluster), since the built-in standard-rwx assumes the `default` network.
    gcp_filestore_csi_driver_config {
      enabled = true
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  resource_labels = {
    environment = var.environment
    service     = "energent-agents"
  }

  # node_config only described the removed default pool: changing it must not replace the cluster.
  lifecycle {
    ignore_changes = [node_config]
  }
}

resource "google_container_node_pool" "primary" {
  project  = var.project_id
  name     = "primary"
  cluster  = google_container_cluster.primary.id
  location = var.region

  # Per zone, like the regional pool it starts: one node in each of the region's zones, then the autoscaler.
  initial_node_count = 1

  # Totals across the region's zones (min_node_count would count per zone: 3 zones x 3 = 9 nodes).
  autoscaling {
    total_min_node_count = var.min_nodes
    total_max_node_count = var.max_nodes
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type      = "n2-standard-4"
    disk_size_gb      = 100
    disk_type         = "pd-ssd"
    image_type        = "COS_CONTAINERD"
    boot_disk_kms_key = var.kms_key
    service_account   = google_service_account.nodes.email
    oauth_scopes      = ["https://www.googleapis.com/auth/cloud-platform"]
    tags              = ["gke-node"]

    labels = {
      environment = var.environment
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# The platform pool: Flux's kustomize-controller, alone, so that its Pods have addresses of their own
# (platform-pods) and the dedicated clusters' control planes can admit Flux and no tenant's Pod. The taint keeps
# every other workload off it; README step 5 schedules the controller here.
resource "google_container_node_pool" "platform" {
  project  = var.project_id
  name     = "platform"
  cluster  = google_container_cluster.primary.id
  location = var.region

  initial_node_count = 1

  autoscaling {
    total_min_node_count = 1
    total_max_node_count = 3
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  network_config {
    pod_range = var.platform_pods_range
  }

  node_config {
    machine_type      = "e2-standard-2"
    disk_size_gb      = 50
    disk_type         = "pd-balanced"
    image_type        = "COS_CONTAINERD"
    boot_disk_kms_key = var.kms_key
    service_account   = google_service_account.nodes.email
    oauth_scopes      = ["https://www.googleapis.com/auth/cloud-platform"]
    tags              = ["gke-node"]

    labels = {
      environment        = var.environment
      "energent.ai/pool" = "platform"
    }

    taint {
      key    = "energent.ai/platform"
      value  = "true"
      effect = "NO_SCHEDULE"
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# --- Config Connector: what the provisioner renders in energent-infra, made in the tenants' project -----------

# The identity of the cluster's Config Connector (mode cluster: one controller for every namespace). It makes the
# tenants' Google service accounts, their Workload Identity bindings and the dedicated clusters, all in the
# tenants' project, where it holds its roles (infra/modules/tenants). It holds none on this project.
resource "google_service_account" "config_connector" {
  project      = var.project_id
  account_id   = "cnrm-${var.environment}"
  display_name = "Config Connector (${var.environment})"
}

# The pool exists once the cluster does: the binding names it from the cluster, so it is made after it.
resource "google_service_account_iam_member" "config_connector_workload_identity" {
  service_account_id = google_service_account.config_connector.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${google_container_cluster.primary.workload_identity_config[0].workload_pool}[cnrm-system/cnrm-controller-manager]"
}

resource "google_gke_backup_backup_plan" "daily" {
  project  = var.project_id
  name     = "energent-gke-daily-${var.environment}"
  cluster  = google_container_cluster.primary.id
  location = var.region

  retention_policy {
    backup_retain_days      = 30
    backup_delete_lock_days = 7
  }

  backup_schedule {
    cron_schedule = "0 2 * * *"
  }

  backup_config {
    include_volume_data = true
    include_secrets     = true
    all_namespaces      = true
    encryption_key {
      gcp_kms_encryption_key = var.kms_key
    }
  }
}
