# What on-call needs from day one: events nobody processed, a failed cluster backup, Flux failing to apply, a
# monthly close that failed, and spending. Failures found in logs are counted by log-based metrics.

locals {
  # Each registry deployment's Cloud Run service (a missing name fails the plan, not the alert).
  service = { for name in var.deployments : name => "energent-${name}-${var.environment}" }
}

# --- dead letters -------------------------------------------------------------------------------------------

# One policy per dead-letter subscription: a message there is an event that failed every delivery (usage not
# billed, a tenant status not moved, a key not rotated). Kept 7 days on the subscription.
resource "google_monitoring_alert_policy" "dead_letters" {
  for_each     = var.dead_letter_subscriptions
  project      = var.project_id
  display_name = "Dead letters on ${each.value} (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "${each.value} holds undelivered messages"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${each.value}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  documentation {
    content   = "Events of ${each.key} failed every delivery. Fix the cause (the deployment's errors), then replay: docs/runbook.md, \"Replay a dead-letter topic\"."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels
}

# --- Backup for GKE -----------------------------------------------------------------------------------------

# Backup for GKE logs every change of a backup (platform log backup_change, on its backup plan's monitored
# resource); a failed one ends in state FAILED.
resource "google_logging_metric" "gke_backup_failures" {
  project = var.project_id
  name    = "energent_gke_backup_failures_${var.environment}"
  filter  = <<-EOT
    resource.type="gkebackup.googleapis.com/BackupPlan"
    AND logName="projects/${var.project_id}/logs/gkebackup.googleapis.com%2Fbackup_change"
    AND (jsonPayload.inputBackup.state="FAILED" OR severity>=ERROR)
  EOT
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "gke_backup_failures" {
  project      = var.project_id
  display_name = "GKE backup failed (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "a Backup for GKE backup failed"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.gke_backup_failures.name}\" AND resource.type=\"gkebackup.googleapis.com/BackupPlan\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    content   = "`gcloud beta container backup-restore backups list --location=REGION --backup-plan=energent-gke-daily-${var.environment}` shows the failed backup and its state reason. Restoring a namespace: docs/runbook.md."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels

  depends_on = [time_sleep.log_metrics]
}

# --- Flux ---------------------------------------------------------------------------------------------------

# Flux failing, from both ends, one metric per resource type (a condition on a log-based metric reads one type):
# its source and kustomize controllers logging errors (JSON lines with "level"; a bucket it cannot read, a manifest
# it cannot apply), and the provisioner recording a failure Flux reported for a tenant (flux.outcome at WARNING; the
# tenant turns `failed`).
resource "google_logging_metric" "flux_controller_errors" {
  project = var.project_id
  name    = "energent_flux_controller_errors_${var.environment}"
  filter  = <<-EOT
    resource.type="k8s_container" AND resource.labels.namespace_name="flux-system"
    AND labels."k8s-pod/app"=("kustomize-controller" OR "source-controller") AND jsonPayload.level="error"
  EOT
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_logging_metric" "flux_failures" {
  project = var.project_id
  name    = "energent_flux_failures_${var.environment}"
  filter  = <<-EOT
    resource.type="cloud_run_revision" AND resource.labels.service_name="${local.service["provisioner-flux-events"]}"
    AND jsonPayload.event="flux.outcome" AND severity="WARNING"
  EOT
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "flux_failures" {
  project      = var.project_id
  display_name = "Flux failures (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "Flux's controllers logged errors in the last 10 min"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.flux_controller_errors.name}\" AND resource.type=\"k8s_container\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  conditions {
    display_name = "Flux reported a tenant it could not apply in the last 10 min"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.flux_failures.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    content   = "`flux get kustomizations -n flux-system --status-selector ready=false` and `energent tenants list --status failed`. After a platform fix, re-render the tenants: docs/runbook.md."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels

  depends_on = [time_sleep.log_metrics]
}

# --- the monthly close --------------------------------------------------------------------------------------

# A close that failed: refused (billing logs period.close_refused when a close event cannot start, e.g. the
# month has not ended or an earlier month is not closed), a step that raised on the event deployment
# (period.close_step_failed, with the step's type and period; it is retried and, after 10 attempts,
# dead-lettered), or POST .../periods/P:close answering 5xx.
resource "google_logging_metric" "close_failures" {
  project = var.project_id
  name    = "energent_billing_close_failures_${var.environment}"
  filter  = <<-EOT
    resource.type="cloud_run_revision" AND (
      (resource.labels.service_name="${local.service["billing-events"]}"
        AND (jsonPayload.event="period.close_refused" OR jsonPayload.event="period.close_step_failed"))
      OR (resource.labels.service_name="${local.service["billing"]}" AND log_id("run.googleapis.com/requests")
        AND httpRequest.requestMethod="POST" AND httpRequest.requestUrl:":close" AND httpRequest.status>=500)
    )
  EOT
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "close_failures" {
  project      = var.project_id
  display_name = "Monthly close failed (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "a period close was refused or failed"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.close_failures.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    content   = "`energent periods show YYYY-MM` shows how far the close got; closing is idempotent, so `energent periods close YYYY-MM --wait` resumes it once the cause is fixed. Steps that failed every delivery wait on billing-events-dead-letter (docs/runbook.md)."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels

  depends_on = [time_sleep.log_metrics]
}

# --- spend control: checks and webhook deliveries ------------------------------------------------------------

# A spend check that failed (billing-spend logs spend.step_failed and is redelivered; a crossing or a block that
# cannot be checked is late), and webhook deliveries that gave up after their last attempt (webhook.failed: the
# tenant's receiver refused or could not be reached for over an hour; informational for the tenant, an alert only
# when many fail at once, which points at our side).
resource "google_logging_metric" "spend_failures" {
  for_each = {
    spend_checks = "resource.labels.service_name=\"${local.service["billing-spend"]}\" AND jsonPayload.event=\"spend.step_failed\""
    webhooks     = "resource.labels.service_name=\"${local.service["billing-webhooks"]}\" AND jsonPayload.event=\"webhook.failed\""
  }
  project = var.project_id
  name    = "energent_billing_${each.key}_failures_${var.environment}"
  filter  = "resource.type=\"cloud_run_revision\" AND ${each.value}"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "spend_failures" {
  for_each     = { spend_checks = 0, webhooks = 20 }
  project      = var.project_id
  display_name = "Spend control failing: ${each.key} (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "${each.key} failures above ${each.value} in 10 minutes"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.spend_failures[each.key].name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = each.value
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    content   = "Spend checks (budget crossings, the spend block) or webhook deliveries are failing: see the billing-spend and billing-webhooks logs. Checks are redelivered and the minute's sweep republishes what was lost; steps that failed every delivery wait on spend-events-dead-letter and webhook-deliveries-dead-letter (docs/runbook.md)."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels

  depends_on = [time_sleep.log_metrics]
}

# --- hybrid tenants' routes -------------------------------------------------------------------------------------

# The route watchdog (functions/provisioner/provisioner/routes.py), every minute: a site announced a prefix outside
# its ranges (routes.outside_site; it is cut off: routes.quarantined), a route came from no tenant's BGP session
# (routes.unattributed), or the check itself failed (routes.check_failed: nothing is being watched).
resource "google_logging_metric" "route_violations" {
  project = var.project_id
  name    = "energent_route_violations_${var.environment}"
  filter  = <<-EOT
    resource.type="cloud_run_revision" AND resource.labels.service_name="${local.service["provisioner-flux-events"]}"
    AND severity>=ERROR AND (jsonPayload.event="routes.outside_site" OR jsonPayload.event="routes.quarantined"
      OR jsonPayload.event="routes.unattributed" OR jsonPayload.event="routes.check_failed")
  EOT
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "route_violations" {
  project      = var.project_id
  display_name = "Hybrid site announced foreign routes, or the route check failed (${var.environment})"
  combiner     = "OR"
  conditions {
    display_name = "the route watchdog found or cut off a site, or could not look"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.route_violations.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    content   = "A hybrid site announced prefixes outside its ranges and its BGP sessions are cut off (`energent tenants get TENANT` shows site_state), a route came from no tenant's session, or the check could not read the router. docs/runbook.md, \"Hybrid tenants: routes a site announces\"."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels

  depends_on = [time_sleep.log_metrics]
}

# --- spending -----------------------------------------------------------------------------------------------

data "google_project" "project" {
  project_id = var.project_id
}

# The project's spending this month against its budget (in the billing account's currency), to on-call's email
# as well as to the billing account's administrators.
resource "google_billing_budget" "monthly" {
  billing_account = var.billing_account
  display_name    = "Energent ${var.environment} monthly budget"

  budget_filter {
    projects = ["projects/${data.google_project.project.number}"]
  }

  amount {
    specified_amount {
      units = tostring(var.monthly_budget)
    }
  }

  threshold_rules {
    threshold_percent = 0.5
  }
  threshold_rules {
    threshold_percent = 0.9
  }
  threshold_rules {
    threshold_percent = 1.0
  }

  all_updates_rule {
    monitoring_notification_channels = local.channels
    disable_default_iam_recipients   = false
  }
}
