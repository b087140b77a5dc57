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

variable "connector_cidr" {
  type    = string
  default = "10.8.16.0/28"
}

variable "control_plane_cidrs" {
  description = <<-EOT
    Ranges of the GKE control planes the nodes in this network talk to: the shared cluster's master CIDR
    (infra/modules/gke master_cidr) and the pool the provisioner takes dedicated clusters' /28s from
    (DEDICATED_MASTER_POOL, default 172.20.0.0/14).
  EOT
  type        = list(string)
  default     = ["172.16.0.0/28", "172.20.0.0/14"]
}
