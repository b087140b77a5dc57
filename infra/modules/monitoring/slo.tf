# SLOs for the availability the SLA promises (guide, section 12.3; contract section 6): 99.9 % for tenants on the
# shared cluster (multi-tenant and hybrid alike: the multi-tenant SLO is the hybrid tenants' too), 99.95 % for
# dedicated ones. Availability is request-based: the share of API Gateway requests
# answered without a server error (5xx) over a rolling 30 days; client errors are the caller's.
#
# No request metric tells the two kinds of tenant apart: the control plane serves both, and neither API Gateway's
# nor Cloud Run's request metrics carry a tenant or its deployment model. So both SLOs count the same requests, the
# API every tenant depends on, with each model's goal: the dedicated one spends its budget first, and says when
# the control plane alone would already break the dedicated SLA. What only a dedicated tenant depends on, its own
# cluster, is created at run time by the provisioner (Config Connector) and has no endpoint Terraform can name
# at plan time; an uptime check per dedicated tenant would have to be rendered with its cluster.
#
# Burn-rate alerts follow the SRE workbook's multi-window scheme on a 30-day window: page when the last hour
# burned 2 % of the budget (14.4 x) and the last 5 minutes still burn that fast; warn when the last 6 hours burned
# 5 % (6 x) and the last 30 minutes still do. The short window ends an alert soon after the burning stops.

locals {
  availability_slos = {
    "multi-tenant" = { goal = 0.999, display_name = "99.9% of API requests without a server error (multi-tenant SLA)" }
    "dedicated"    = { goal = 0.9995, display_name = "99.95% of API requests without a server error (dedicated SLA)" }
  }

  burn_rates = {
    fast = { factor = 14.4, long_window = "3600s", short_window = "300s", severity = "CRITICAL" }
    slow = { factor = 6, long_window = "21600s", short_window = "1800s", severity = "WARNING" }
  }

  burn_rate_alerts = { for pair in setproduct(keys(local.availability_slos), keys(local.burn_rates)) :
    "${pair[0]}-${pair[1]}" => { slo = pair[0], burn = local.burn_rates[pair[1]], speed = pair[1] }
  }
}

resource "google_monitoring_custom_service" "api" {
  project      = var.project_id
  service_id   = "energent-api-${var.environment}"
  display_name = "Energent API (${var.environment})"
}

resource "google_monitoring_slo" "availability" {
  for_each            = local.availability_slos
  project             = var.project_id
  service             = google_monitoring_custom_service.api.service_id
  slo_id              = "availability-${each.key}"
  display_name        = each.value.display_name
  goal                = each.value.goal
  rolling_period_days = 30

  request_based_sli {
    good_total_ratio {
      total_service_filter = local.gateway_requests
      bad_service_filter   = "${local.gateway_requests} AND metric.labels.response_code_class=\"5xx\""
    }
  }
}

resource "google_monitoring_alert_policy" "slo_burn_rate" {
  for_each     = local.burn_rate_alerts
  project      = var.project_id
  display_name = "SLO ${each.value.slo}: error budget burning ${each.value.burn.factor}x (${var.environment})"
  combiner     = "AND"
  severity     = each.value.burn.severity

  conditions {
    display_name = "burn rate over ${each.value.burn.long_window} above ${each.value.burn.factor}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.availability[each.value.slo].name}\", \"${each.value.burn.long_window}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.burn.factor
      duration        = "0s"
    }
  }
  conditions {
    display_name = "burn rate over ${each.value.burn.short_window} above ${each.value.burn.factor}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.availability[each.value.slo].name}\", \"${each.value.burn.short_window}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.burn.factor
      duration        = "0s"
    }
  }

  documentation {
    content   = "The API is answering server errors fast enough to spend the ${each.value.slo} SLA's 30-day error budget (${each.value.speed} burn). See the gateway's 5xx by function on the Energent dashboard and the function errors alert."
    mime_type = "text/markdown"
  }
  notification_channels = local.channels
}
