variable "project_id" {
  description = "The platform's project: the Shared VPC host."
  type        = string
}

variable "tenants_project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "subnetwork" {
  description = "The platform's subnetwork (its name), where the dedicated clusters' nodes run."
  type        = string
}

variable "config_connector_account" {
  description = "The email of Config Connector's service account (infra/modules/gke)."
  type        = string
}

variable "dedicated_node_roles" {
  description = "The project roles a dedicated tenant's node service account holds (provisioner NODE_ROLES)."
  type        = list(string)
  default     = ["roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader"]
}

variable "flux_cluster_role" {
  description = "What Flux's kustomize-controller holds on each dedicated cluster, by a grant whose condition names that cluster (provisioner FLUX_CLUSTER_ROLE)."
  type        = string
  default     = "roles/container.developer"
}
