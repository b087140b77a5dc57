# The on-call dashboard (guide, section 9.1): the functions per deployment, the API, Pub/Sub backlogs and dead
# letters, the GKE clusters (shared and dedicated, by cluster), storage, Firestore and the day-one failure counts.
# Two charts per row; each chart one or more time series queries.

locals {
  pubsub = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription"
  nodes  = "resource.type=\"k8s_node\" AND metric.type=\"kubernetes.io/node"
  user   = "metric.type=\"logging.googleapis.com/user"

  charts = [
    { title = "Function requests/s by deployment", unit = "1/s", queries = [
      { filter = "${local.functions} AND metric.type=\"run.googleapis.com/request_count\"", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = ["resource.label.service_name"] },
    ] },
    { title = "Function latency p95 by deployment", unit = "ms", queries = [
      { filter = "${local.functions} AND metric.type=\"run.googleapis.com/request_latencies\"", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group_by = ["resource.label.service_name"] },
    ] },
    { title = "Function 5xx answers/s by deployment", unit = "1/s", queries = [
      { filter = "${local.functions} AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\"", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = ["resource.label.service_name"] },
    ] },
    { title = "Function errors logged/s by deployment", unit = "1/s", queries = [
      { filter = "${local.user}/${google_logging_metric.function_errors.name}\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = ["metric.label.service"] },
    ] },
    { title = "API requests/s by response class", unit = "1/s", queries = [
      { filter = local.gateway_requests, aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = ["metric.label.response_code_class"] },
    ] },
    { title = "API latency p95", unit = "ms", queries = [
      { filter = "${local.gateway} AND metric.type=\"apigateway.googleapis.com/proxy/request_latencies\"", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group_by = [] },
    ] },
    { title = "Pub/Sub backlog by subscription", unit = "messages", queries = [
      { filter = "${local.pubsub}/num_undelivered_messages\" AND resource.labels.subscription_id=ends_with(\"-push\")", aligner = "ALIGN_MAX", reducer = "REDUCE_SUM", group_by = ["resource.label.subscription_id"] },
    ] },
    { title = "Oldest unacknowledged message by subscription", unit = "s", queries = [
      { filter = "${local.pubsub}/oldest_unacked_message_age\" AND resource.labels.subscription_id=ends_with(\"-push\")", aligner = "ALIGN_MAX", reducer = "REDUCE_MAX", group_by = ["resource.label.subscription_id"] },
    ] },
    { title = "Dead letters waiting by topic", unit = "messages", queries = [
      { filter = "${local.pubsub}/num_undelivered_messages\" AND resource.labels.subscription_id=ends_with(\"-dead-letter\")", aligner = "ALIGN_MAX", reducer = "REDUCE_SUM", group_by = ["resource.label.subscription_id"] },
    ] },
    { title = "Events delivered to dead letters/s", unit = "1/s", queries = [
      { filter = "${local.pubsub}/dead_letter_message_count\"", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = ["resource.label.subscription_id"] },
    ] },
    { title = "GKE node CPU (allocatable used) by cluster", unit = "ratio", queries = [
      { filter = "${local.nodes}/cpu/allocatable_utilization\"", aligner = "ALIGN_MEAN", reducer = "REDUCE_MEAN", group_by = ["resource.label.cluster_name"] },
    ] },
    { title = "GKE node memory (allocatable used) by cluster", unit = "ratio", queries = [
      { filter = "${local.nodes}/memory/allocatable_utilization\"", aligner = "ALIGN_MEAN", reducer = "REDUCE_MEAN", group_by = ["resource.label.cluster_name"] },
    ] },
    { title = "Fullest persistent volume by cluster", unit = "ratio", queries = [
      { filter = "resource.type=\"k8s_pod\" AND metric.type=\"kubernetes.io/pod/volume/utilization\"", aligner = "ALIGN_MEAN", reducer = "REDUCE_MAX", group_by = ["resource.label.cluster_name"] },
    ] },
    { title = "Filestore used", unit = "%", queries = [
      { filter = "resource.type=\"filestore_instance\" AND metric.type=\"file.googleapis.com/nfs/server/used_bytes_percent\"", aligner = "ALIGN_MEAN", reducer = "REDUCE_MAX", group_by = ["resource.label.instance_name"] },
    ] },
    { title = "Firestore document operations/s", unit = "1/s", queries = [
      for operation in ["read", "write", "delete"] : { filter = "metric.type=\"firestore.googleapis.com/document/${operation}_ops_count\"", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = [] }
    ] },
    { title = "Failures: GKE backups, Flux, monthly close", unit = "count", queries = [
      for metric in [google_logging_metric.gke_backup_failures, google_logging_metric.flux_controller_errors, google_logging_metric.flux_failures, google_logging_metric.close_failures] :
      { filter = "${local.user}/${metric.name}\"", aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", group_by = [] }
    ] },
  ]
}

resource "google_monitoring_dashboard" "energent" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Energent platform (${var.environment})"
    mosaicLayout = {
      columns = 12
      tiles = [for index, chart in local.charts : {
        xPos   = (index % 2) * 6
        yPos   = floor(index / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = chart.title
          xyChart = {
            dataSets = [for query in chart.queries : {
              plotType   = "LINE"
              targetAxis = "Y1"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = query.filter
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = query.aligner
                    crossSeriesReducer = query.reducer
                    groupByFields      = query.group_by
                  }
                }
              }
            }]
            yAxis = { label = chart.unit, scale = "LINEAR" }
          }
        }
      }]
    }
  })
}
