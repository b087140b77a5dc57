variable "project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "environment" {
  type = string
}

variable "kms_key" {
  type = string
}

variable "bucket_prefixes" {
  description = "Bucket env variable -> name prefix, from functions/registry.yaml."
  type        = map(string)
}

variable "access_log_bucket" {
  type = string
}

variable "lock_invoice_retention" {
  description = "Lock the invoice bucket's 7-year retention policy (irreversible: production only)."
  type        = bool
  default     = false
}
