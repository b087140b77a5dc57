variable "project_id" {
  type = string
}

variable "region" {
  type    = string
  default = "europe-west4"
}

variable "environment" {
  type = string
  validation {
    condition     = contains(["dev", "staging", "production"], var.environment)
    error_message = "environment must be dev, staging or production."
  }
}

variable "api_url" {
  description = "Public base URL of the API (the token issuer), e.g. https://api.energent.ai."
  type        = string
}

variable "admin_cidrs" {
  description = "Networks allowed to reach the GKE control plane."
  type        = list(string)
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
