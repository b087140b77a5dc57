# API Gateway in front of the HTTP deployments, configured from api-spec.yaml (the file the local gateway
# routes by). Terraform makes the API, the gateway and its first config; from then on Cloud Build publishes every
# config (energent-config-<env>-<build id>, labelled with the commit) and moves the gateway to it (cloudbuild-functions.yaml), and an apply
# leaves both alone.
#
# API Gateway runs in gateway_region (it is offered in a few regions only); the functions stay in `region`, and the
# spec's backends name them there (${region} below), so the gateway calls across regions.

resource "google_service_account" "gateway" {
  project      = var.project_id
  account_id   = "api-gateway"
  display_name = "API Gateway backend identity (${var.environment})"
}

resource "google_api_gateway_api" "energent" {
  provider = google-beta
  project  = var.project_id
  api_id   = "energent-api-${var.environment}"

  labels = {
    environment = var.environment
  }
}

# The API's own managed service (<api>-<hash>.apigateway.<project>.cloud.goog): a gateway answers only once it is
# enabled in the project.
resource "google_project_service" "managed_service" {
  project            = var.project_id
  service            = google_api_gateway_api.energent.managed_service
  disable_on_destroy = false
  depends_on         = [google_api_gateway_api_config.energent] # the service has a configuration to serve by then
}

resource "google_api_gateway_api_config" "energent" {
  provider             = google-beta
  project              = var.project_id
  api                  = google_api_gateway_api.energent.api_id
  api_config_id_prefix = "energent-config-${var.environment}-"

  openapi_documents {
    document {
      path = "api-spec.yaml"
      contents = base64encode(templatefile(var.api_spec_file, {
        project_id  = var.project_id
        region      = var.region # the functions' region, not the gateway's
        environment = var.environment
        issuer      = var.api_url
        audience    = "energent-api"
      }))
    }
  }

  gateway_config {
    backend_config {
      google_service_account = google_service_account.gateway.email
    }
  }

  lifecycle {
    create_before_destroy = true
    ignore_changes        = [openapi_documents]
  }
}

resource "google_api_gateway_gateway" "energent" {
  provider   = google-beta
  project    = var.project_id
  region     = var.gateway_region
  gateway_id = "energent-gateway-${var.environment}"
  api_config = google_api_gateway_api_config.energent.id

  labels = {
    environment = var.environment
  }

  lifecycle {
    ignore_changes = [api_config]
  }

  depends_on = [google_project_service.managed_service]
}
