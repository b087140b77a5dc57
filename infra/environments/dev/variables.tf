variable "project_id" {
  type = string
}

variable "region" {
  type    = string
  default = "europe-west4"
}

variable "api_url" {
  type = string
}

variable "admin_cidrs" {
  type = list(string)
}

variable "alert_email" {
  type = string
}
