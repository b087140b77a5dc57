variable "project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "environment" {
  type = string
}

variable "network" {
  type = string
}

variable "subnetwork" {
  type = string
}

variable "kms_key" {
  description = "KMS key for etcd secrets, node boot disks and backups."
  type        = string
}

variable "master_cidr" {
  type    = string
  default = "172.16.0.0/28"
}

variable "admin_cidrs" {
  description = "Networks allowed to reach the control plane."
  type        = list(string)
}

variable "rbac_security_group" {
  description = "Google Group whose nested groups are Kubernetes RBAC subjects (Google Groups for RBAC)."
  type        = string
  default     = "gke-security-groups@energent.ai"
}

variable "min_nodes" {
  type    = number
  default = 1
}

variable "max_nodes" {
  type    = number
  default = 10
}

variable "platform_pods_range" {
  description = "The subnetwork's secondary range the platform pool's Pods take their addresses from."
  type        = string
  default     = "platform-pods"
}
