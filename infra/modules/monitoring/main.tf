# The guide's alert thresholds (section 9.2): availability below 99.5 %, responses slower than 5 s or
# throughput below 500 RPS, resource use above 90 % (CPU, memory and storage), error rates above 5 % (server and
# client errors) and functions failing. SLOs and their burn-rate alerts are in slo.tf, the alerts for day-one
# operations (dead letters, backups, Flux, the monthly close, the budget) in operations.tf, the dashboard in
# dashboard.tf. Alerts that call for a procedure name its section of docs/runbook.md.

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
  display_name = "energent-api-${var.environment}" # through the load balancer, as clients call it
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
      host       = var.api_host
    }
  }
}

locals {
  gateway          = "resource.type=\"apigateway.googleapis.com/Gateway\" AND resource.labels.gateway_id=\"${var.gateway_id}\""
  gateway_requests = "${local.gateway} AND metric.type=\"apigateway.googleapis.com/proxy/request_count\""
  # Gen2 functions run as Cloud Run services of the same name.
  functions = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=starts_with(\"energent-\")"
  channels  = [google_monitoring_notification_channel.oncall.id]
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
      filter          = "${local.gateway} AND metric.type=\"apigateway.googleapis.com/proxy/request_latencies\""
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

# Monitoring refuses a policy on a log-based metric it does not know yet ("Cannot find metric(s)"), for up to about
# ten minutes after the metric was made: every policy on one waits this long after the metrics, and again whenever
# a metric is added or renamed.
resource "time_sleep" "log_metrics" {
  create_duration = "600s"
  triggers = {
    for metric in [
      google_logging_metric.function_errors, google_logging_metric.gke_backup_failures,
      google_logging_metric.flux_controller_errors, google_logging_metric.flux_failures,
      google_logging_metric.close_failures, google_logging_metric.spend_failures["spend_checks"],
      google_logging_metric.spend_failures["webhooks"], google_logging_metric.route_violations,
    ] : metric.name => metric.id
  }
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

# Client errors beyond the server's (guide, section 9.2: 4xx above 5 %): a surge means a broken client release,
# expired credentials in a platform service, or someone probing. Only with real traffic (above 1 request/s).
resource "google_monitoring_alert_policy" "client_errors" {
  project      = var.project_id
  display_name = "Client error rate above 5% (${var.environment})"
  combiner     = "AND"
  conditions {
    display_name = "4xx / all gateway responses > 5% for 10 min"
    condition_threshold {
      filter             = "${local.gateway_requests} AND metric.labels.response_code_class=\"4xx\""
      denominator_filter = local.gateway_requests
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.05
      duration           = "600s"
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
  conditions {
    display_name = "gateway requests > 1/s"
    condition_threshold {
      filter          = local.gateway_requests
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "600s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  notification_channels = local.channels
}

# A function failing: errors it logged (unhandled exceptions, crashes, out-of-memory kills) or 5xx answers,
# per deployment. Event deployments answer 5xx to Pub/Sub when a delivery fails; it is retried, then dead-lettered.
resource "google_monitoring_alert_policy" "function_errors" {
  project      = var.project_id
  display_name = "Function errors (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "more than 5 errors logged by one deployment in 5 min"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.function_errors.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 5
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service"]
      }
    }
  }
  conditions {
    display_name = "a deployment answers 5xx to more than 1% of its requests for 5 min"
    condition_threshold {
      filter             = "${local.functions} AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = "${local.functions} AND metric.type=\"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.01
      duration           = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }
  documentation {
    content   = "Find the failing deployment's errors: `gcloud logging read 'resource.type=\"cloud_run_revision\" AND severity>=ERROR' --freshness=1h`. Failed events are retried, then kept on the dead-letter subscription: docs/runbook.md, \"Replay a dead-letter topic\"."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels

  depends_on = [time_sleep.log_metrics]
}

# Storage above 90 % (guide, section 9.2): tenants' persistent volumes, the nodes' disks (pods' ephemeral
# storage: a full disk evicts pods) and the shared Filestore share.
resource "google_monitoring_alert_policy" "storage" {
  project      = var.project_id
  display_name = "Storage above 90% (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "a persistent volume is more than 90% full for 10 min"
    condition_threshold {
      filter          = "resource.type=\"k8s_pod\" AND metric.type=\"kubernetes.io/pod/volume/utilization\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0.9
      duration        = "600s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
    }
  }
  conditions {
    display_name = "a node's disk is more than 90% used for 10 min"
    condition_threshold {
      filter             = "resource.type=\"k8s_node\" AND metric.type=\"kubernetes.io/node/ephemeral_storage/used_bytes\""
      denominator_filter = "resource.type=\"k8s_node\" AND metric.type=\"kubernetes.io/node/ephemeral_storage/total_bytes\""
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.9
      duration           = "600s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
      denominator_aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
    }
  }
  conditions {
    display_name = "the Filestore share is more than 90% used for 10 min"
    condition_threshold {
      filter          = "resource.type=\"filestore_instance\" AND metric.type=\"file.googleapis.com/nfs/server/used_bytes_percent\""
      comparison      = "COMPARISON_GT"
      threshold_value = 90
      duration        = "600s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
    }
  }
  notification_channels = local.channels
}
