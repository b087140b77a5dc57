# The guide's alert thresholds (section 9.2): availability below 99.5 %, responses slower than 5 s or
# throughput below 500 RPS, resource use above 90 %, error rate above 5 %.

resource "google_monitoring_notification_channel" "oncall" {
  project      = var.project_id
  display_name = "Energent on-call (${var.environment})"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
}

resource "google_monitoring_uptime_check_config" "gateway" {
  project      = var.project_id
  display_name = "energent-gateway-${var.environment}"
  timeout      = "10s"
  period       = "60s"

  http_check {
    path         = "/.well-known/openid-configuration"
    port         = 443
    use_ssl      = true
    validate_ssl = true
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.gateway_host
    }
  }
}

locals {
  gateway_requests = "resource.type=\"apigateway.googleapis.com/Gateway\" AND metric.type=\"apigateway.googleapis.com/proxy/request_count\""
  channels         = [google_monitoring_notification_channel.oncall.id]
}

resource "google_monitoring_alert_policy" "availability" {
  project      = var.project_id
  display_name = "Availability below 99.5% (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "uptime check success ratio < 0.995 over 1 h"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.labels.check_id=\"${google_monitoring_uptime_check_config.gateway.uptime_check_id}\""
      comparison      = "COMPARISON_LT"
      threshold_value = 0.995
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_FRACTION_TRUE"
        cross_series_reducer = "REDUCE_MEAN"
      }
    }
  }
  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "latency" {
  project      = var.project_id
  display_name = "P95 latency above 5 s (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "gateway p95 latency > 5000 ms for 5 min"
    condition_threshold {
      filter          = "resource.type=\"apigateway.googleapis.com/Gateway\" AND metric.type=\"apigateway.googleapis.com/proxy/request_latencies\""
      comparison      = "COMPARISON_GT"
      threshold_value = 5000
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_95"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }
  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "throughput" {
  count        = var.alert_on_low_throughput ? 1 : 0
  project      = var.project_id
  display_name = "Throughput below 500 RPS (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "gateway requests < 500/s for 15 min"
    condition_threshold {
      filter          = local.gateway_requests
      comparison      = "COMPARISON_LT"
      threshold_value = 500
      duration        = "900s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "errors" {
  project      = var.project_id
  display_name = "Error rate above 5% (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "5xx / all gateway responses > 5% for 5 min"
    condition_threshold {
      filter             = "${local.gateway_requests} AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = local.gateway_requests
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.05
      duration           = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "resources" {
  project      = var.project_id
  display_name = "GKE node CPU or memory above 90% (${var.environment})"
  combiner     = "OR"
  dynamic "conditions" {
    for_each = {
      cpu    = "kubernetes.io/node/cpu/allocatable_utilization"
      memory = "kubernetes.io/node/memory/allocatable_utilization"
    }
    content {
      display_name = "${conditions.key} allocatable utilization > 90% for 10 min"
      condition_threshold {
        filter          = "resource.type=\"k8s_node\" AND metric.type=\"${conditions.value}\""
        comparison      = "COMPARISON_GT"
        threshold_value = 0.9
        duration        = "600s"
        aggregations {
          alignment_period   = "60s"
          per_series_aligner = "ALIGN_MEAN"
        }
      }
    }
  }
  notification_channels = local.channels
}

# Functions' own errors, from their structured logs.
resource "google_logging_metric" "function_errors" {
  project = var.project_id
  name    = "energent_function_errors_${var.environment}"
  filter  = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name:\"energent-\" AND severity>=ERROR"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "service"
      value_type = "STRING"
    }
  }
  label_extractors = {
    service = "EXTRACT(resource.labels.service_name)"
  }
}

# Dead letters mean events nobody processed: billing usage, tenant status, key rotations.
resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project_id
  display_name = "Undelivered events in a dead-letter subscription (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "dead-letter backlog > 0"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=ends_with(\"-dead-letter\") AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  notification_channels = local.channels
}
