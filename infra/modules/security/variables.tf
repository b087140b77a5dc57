variable "project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "environment" {
  type = string
}

variable "lock_retention" {
  description = "Lock the audit-log bucket's 7-year retention policy (irreversible: production only)."
  type        = bool
  default     = false
}
