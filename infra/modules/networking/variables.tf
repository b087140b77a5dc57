variable "project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "environment" {
  type = string
}

variable "nodes_cidr" {
  type    = string
  default = "10.0.0.0/20"
}

variable "pods_cidr" {
  type    = string
  default = "10.4.0.0/14"
}

variable "services_cidr" {
  type    = string
  default = "10.8.0.0/20"
}

variable "platform_pods_cidr" {
  description = "The Pods of the shared cluster's platform pool (Flux): the only network dedicated control planes admit."
  type        = string
  default     = "10.12.0.0/20"
}

variable "connector_cidr" {
  type    = string
  default = "10.8.16.0/28"
}

variable "shared_master_cidr" {
  description = "The shared cluster's control-plane range (infra/modules/gke master_cidr, passed from there)."
  type        = string
}

variable "dedicated_master_pool" {
  description = "The pool the provisioner takes dedicated clusters' control-plane /28s from (DEDICATED_MASTER_POOL)."
  type        = string
  default     = "172.20.0.0/14"
}

variable "dedicated_pods_pool" {
  description = "Where the provisioner takes each dedicated cluster's Pod range (a /17) from: its Platform.pods_pool."
  type        = string
  default     = "10.64.0.0/10"
}

variable "dedicated_services_pool" {
  description = "Where the provisioner takes each dedicated cluster's Service range (a /22) from: Platform.services_pool."
  type        = string
  default     = "10.128.0.0/15"
}

variable "dedicated_cluster_slots" {
  description = <<-EOT
    Dedicated clusters the subnetwork has Pod and Service ranges for (provisioner DEDICATED_CLUSTER_SLOTS): a
    cluster index is never given twice, so this counts every dedicated tenant ever made. A subnetwork holds at most
    30 secondary ranges; the shared cluster takes 3 (its Pods, Services and platform Pods), each slot 2.
  EOT
  type        = number
  default     = 12

  validation {
    condition     = var.dedicated_cluster_slots >= 0 && var.dedicated_cluster_slots <= 13
    error_message = "dedicated_cluster_slots is 0 to 13: 3 + 2 x slots secondary ranges must fit the subnetwork's 30."
  }
}

variable "private_services_cidr" {
  description = "The private services range (Filestore's peering), fixed so the provisioner knows every range of the network: inside the shared cluster's 10.0.0.0/12 (provisioner Platform.shared_ranges)."
  type        = string
  default     = "10.8.32.0/20"
}

variable "hybrid_asn" {
  description = "The ASN of the Cloud Router that speaks BGP with hybrid tenants' sites (provisioner HYBRID_ASN): a private one, which no site may take."
  type        = number
  default     = 64514

  validation {
    condition     = (var.hybrid_asn >= 64512 && var.hybrid_asn <= 65534) || (var.hybrid_asn >= 4200000000 && var.hybrid_asn <= 4294967294)
    error_message = "hybrid_asn is a private ASN: 64512-65534 or 4200000000-4294967294."
  }
}

variable "hybrid_site_ranges" {
  description = "Where hybrid tenants' sites may lie (provisioner HYBRID_SITE_RANGES): the shared cluster's nodes may reach them, every tenant's egress allows exclude them, only a tenant's own NetworkPolicy opens its site's ranges. Clear of every range of the network."
  type        = list(string)
  default     = ["10.192.0.0/10", "192.168.0.0/16"]
}

variable "hybrid_nodes_service_account" {
  description = "The shared cluster's nodes' service account (infra/modules/gke): hybrid tenants run there, and only those nodes may reach the sites."
  type        = string
}
