variable "project_id" {
  type = string
}

variable "environment" {
  type = string
}

variable "alert_email" {
  type = string
}

variable "gateway_host" {
  description = "Host name of the API gateway."
  type        = string
}

variable "alert_on_low_throughput" {
  description = "Only production carries the traffic the guide's 500 RPS floor assumes."
  type        = bool
  default     = false
}
