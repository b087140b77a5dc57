variable "project_id" {
  type = string
}

variable "region" {
  type = string
}

variable "environment" {
  type = string
}

variable "api_spec_file" {
  type = string
}

variable "api_url" {
  description = "Public base URL of the API (the token issuer), served through this gateway."
  type        = string
}
