variable "project_id" {
  type = string
}

variable "tenants_project_id" {
  description = <<-EOT
    The tenants' project: every tenant's Google service account and the dedicated tenants' clusters, apart from the
    platform's identities (infra/modules/tenants). Made in README step 1, in the same organisation and folder.
  EOT
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.tenants_project_id)) && var.tenants_project_id != var.project_id
    error_message = "tenants_project_id is a project id of its own, not the platform's project."
  }
}

variable "region" {
  type    = string
  default = "europe-west4"
}

variable "gateway_region" {
  description = <<-EOT
    Where API Gateway's gateway and the load balancer's serverless NEG run. API Gateway is offered in a few regions
    only (not the functions' europe-west4); the functions stay in `region` and the gateway calls them there.
  EOT
  type        = string
  default     = "europe-west1"

  validation {
    condition = contains([
      "asia-northeast1", "australia-southeast1", "europe-west1", "europe-west2", "us-central1", "us-east1",
      "us-east4", "us-west2", "us-west3", "us-west4",
    ], var.gateway_region)
    error_message = "gateway_region must be a region API Gateway is offered in (its deployment model's list)."
  }
}

variable "environment" {
  type = string
  validation {
    condition     = contains(["dev", "staging", "production"], var.environment)
    error_message = "environment must be dev, staging or production."
  }
}

variable "api_url" {
  description = "Public base URL of the API (the token issuer): https:// and the domain the load balancer serves."
  type        = string

  validation {
    condition     = can(regex("^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.api_url))
    error_message = "api_url is https:// and a host name, nothing more (no port, path or trailing slash)."
  }
}

variable "admin_cidrs" {
  description = <<-EOT
    Networks allowed to reach the platform cluster's control plane: the operators' office or VPN ranges (an empty
    list would leave kubectl no way in). Dedicated clusters answer on their private endpoints only, to Flux.
  EOT
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) > 0
    error_message = "admin_cidrs is empty: set the operators' office or VPN ranges (kubectl reaches the clusters from there)."
  }

  validation {
    condition     = alltrue([for cidr in var.admin_cidrs : can(cidrhost(cidr, 0))])
    error_message = "admin_cidrs holds something that is not an IPv4 or IPv6 range in CIDR notation."
  }

  validation {
    condition = alltrue([for cidr in var.admin_cidrs : !anytrue([
      for example in ["192.0.2.", "198.51.100.", "203.0.113."] : startswith(cidr, example)
    ])])
    error_message = "admin_cidrs holds a documentation range (RFC 5737): set the real office or VPN ranges."
  }
}

variable "alert_email" {
  type = string
}

variable "min_nodes" {
  type    = number
  default = 1
}

variable "max_nodes" {
  type    = number
  default = 10
}

variable "billing_account" {
  description = "Billing account the project is charged to (gcloud billing accounts list), for the budget alert."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.billing_account))
    error_message = "billing_account is the id of the project's billing account, e.g. 01A2B3-C4D5E6-F7A8B9: set it in terraform.tfvars."
  }
}

variable "monthly_budget" {
  description = "Monthly budget of the project, in the billing account's currency; alerts at 50, 90 and 100 %."
  type        = number
}
