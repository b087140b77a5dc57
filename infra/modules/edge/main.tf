# The API's public front door (guide, section 2.2: SSL termination and Cloud Armor): a global external Application
# Load Balancer serving the API's domain with a Google-managed certificate, Cloud Armor in front, and API Gateway
# behind it through a serverless network endpoint group. Port 80 only redirects to HTTPS.
#
# The gateway's own *.gateway.dev host name stays reachable (API Gateway has no ingress setting): clients, token
# issuer and JWKS use the domain, and every function verifies tokens itself either way.

resource "google_compute_global_address" "api" {
  project      = var.project_id
  name         = "energent-api-${var.environment}"
  ip_version   = "IPV4"
  address_type = "EXTERNAL"
}

# Issued once the domain's A record points at the address above. A new domain gets a new certificate before the
# old one goes, so the proxy is never without one.
resource "google_compute_managed_ssl_certificate" "api" {
  project = var.project_id
  name    = "energent-api-${var.environment}-${substr(sha256(var.domain), 0, 8)}"

  managed {
    domains = [var.domain]
  }

  lifecycle {
    create_before_destroy = true
  }
}

# TLS 1.2 and up with forward-secret ciphers only; TLS 1.3 is negotiated whenever the client offers it.
resource "google_compute_ssl_policy" "api" {
  project         = var.project_id
  name            = "energent-api-${var.environment}"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

# Serverless NEGs for API Gateway are a preview feature: the google-beta provider carries serverless_deployment.
# The NEG must be in the region of the gateway it points at (gateway_region), not the functions'.
resource "google_compute_region_network_endpoint_group" "gateway" {
  provider              = google-beta
  project               = var.project_id
  name                  = "energent-gateway-${var.environment}"
  region                = var.gateway_region
  network_endpoint_type = "SERVERLESS"

  serverless_deployment {
    platform = "apigateway.googleapis.com"
    resource = var.gateway_id
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Cloud Armor, in order of priority (the first matching rule that allows or denies ends the evaluation):
# 1000  Log4Shell probes (cve-canary): denied; nothing legitimate matches it.
# 1100  SQL injection, 1200 cross-site scripting (OWASP CRS 3.3, sensitivity 1): in preview, logged but not
#       enforced. No SQL database or HTML-rendering client sits behind this API (Firestore, JSON), while legitimate
#       bodies do look like attacks to these rules: Dutch addresses ('s-Hertogenbosch), names with apostrophes,
#       free-text display names. Switch `preview` off once the load balancer's logs show no false positives.
# 2000  At most requests_per_minute_per_ip per client address; more answers 429.
# last  Everything else is allowed (API Gateway verifies the tokens).
resource "google_compute_security_policy" "api" {
  project     = var.project_id
  name        = "energent-api-${var.environment}"
  description = "Energent API (${var.environment}): WAF and per-client rate limit in front of API Gateway"
  type        = "CLOUD_ARMOR"

  advanced_options_config {
    json_parsing = "STANDARD" # the WAF rules read JSON bodies as values, not as one opaque string
    log_level    = "NORMAL"
  }

  rule {
    description = "Log4j JNDI lookups (CVE-2021-44228)"
    action      = "deny(403)"
    priority    = 1000
    match {
      expr {
        expression = "evaluatePreconfiguredWaf('cve-canary')"
      }
    }
  }

  rule {
    description = "SQL injection (OWASP CRS), preview"
    action      = "deny(403)"
    priority    = 1100
    preview     = true
    match {
      expr {
        expression = "evaluatePreconfiguredWaf('sqli-v33-stable', {'sensitivity': 1})"
      }
    }
  }

  rule {
    description = "Cross-site scripting (OWASP CRS), preview"
    action      = "deny(403)"
    priority    = 1200
    preview     = true
    match {
      expr {
        expression = "evaluatePreconfiguredWaf('xss-v33-stable', {'sensitivity': 1})"
      }
    }
  }

  rule {
    description = "Per-client rate limit"
    action      = "throttle"
    priority    = 2000
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"
      rate_limit_threshold {
        count        = var.requests_per_minute_per_ip
        interval_sec = 60
      }
    }
  }

  rule {
    description = "Default: allow"
    action      = "allow"
    priority    = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}

# Serverless backends take no health check, port or timeout; every request is logged (Cloud Armor's verdicts,
# preview ones included, appear in these logs).
resource "google_compute_backend_service" "gateway" {
  project               = var.project_id
  name                  = "energent-gateway-${var.environment}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = google_compute_security_policy.api.self_link

  backend {
    group = google_compute_region_network_endpoint_group.gateway.id
  }

  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_url_map" "api" {
  project         = var.project_id
  name            = "energent-api-${var.environment}"
  default_service = google_compute_backend_service.gateway.id
}

resource "google_compute_target_https_proxy" "api" {
  project          = var.project_id
  name             = "energent-api-${var.environment}"
  url_map          = google_compute_url_map.api.id
  ssl_certificates = [google_compute_managed_ssl_certificate.api.id]
  ssl_policy       = google_compute_ssl_policy.api.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project_id
  name                  = "energent-api-https-${var.environment}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_protocol           = "TCP"
  ip_address            = google_compute_global_address.api.address
  port_range            = "443"
  target                = google_compute_target_https_proxy.api.id
}

# Plain HTTP reaches no backend: every request is redirected to the same URL over HTTPS.
resource "google_compute_url_map" "https_redirect" {
  project = var.project_id
  name    = "energent-api-redirect-${var.environment}"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "https_redirect" {
  project = var.project_id
  name    = "energent-api-redirect-${var.environment}"
  url_map = google_compute_url_map.https_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project_id
  name                  = "energent-api-http-${var.environment}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_protocol           = "TCP"
  ip_address            = google_compute_global_address.api.address
  port_range            = "80"
  target                = google_compute_target_http_proxy.https_redirect.id
}
