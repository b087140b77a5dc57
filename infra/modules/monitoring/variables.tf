variable "project_id" {
  type = string
}

variable "environment" {
  type = string
}

variable "alert_email" {
  type = string
}

variable "api_host" {
  description = "Host name of the public API (the load balancer's domain): the uptime check calls what clients call."
  type        = string
}

variable "gateway_id" {
  description = "Id of the API Gateway gateway whose requests the SLOs and error alerts count."
  type        = string
}

variable "deployments" {
  description = "Names of the registry's deployments (functions/registry.yaml); each runs as energent-<name>-<env>."
  type        = list(string)
}

variable "dead_letter_subscriptions" {
  description = "Topic -> the subscription holding its dead letters; each gets an alert."
  type        = map(string)
}

variable "billing_account" {
  description = "Billing account the budget watches."
  type        = string
}

variable "monthly_budget" {
  description = "Monthly budget in the billing account's currency."
  type        = number
}

variable "alert_on_low_throughput" {
  description = "Only production carries the traffic the guide's 500 RPS floor assumes."
  type        = bool
  default     = false
}
