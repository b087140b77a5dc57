variable "project_id" {
  type = string
}

variable "region" {
  description = "The functions' region: api-spec.yaml's backends are https://<region>-<project>.cloudfunctions.net/..."
  type        = string
}

variable "gateway_region" {
  description = "Where the gateway runs: a region API Gateway is offered in, which need not be the functions'."
  type        = string
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
