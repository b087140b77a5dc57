variable "project_id" {
  type = string
}

variable "gateway_region" {
  description = "The API gateway's region: a serverless network endpoint group must be in its gateway's region."
  type        = string
}

variable "environment" {
  type = string
}

variable "domain" {
  description = "Host name of the public API (the host of api_url), served with a Google-managed certificate."
  type        = string
}

variable "gateway_id" {
  description = "Id of the API Gateway gateway the load balancer sends requests to."
  type        = string
}

variable "requests_per_minute_per_ip" {
  description = "Requests one client address may send per minute before Cloud Armor answers 429."
  type        = number
  default     = 3000
}
