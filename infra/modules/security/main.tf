# Keys, audit logging and the security log sink. Customer-managed keys rotate every 90 days; audit logs are
# kept 7 years (guide, section 11.1) in a locked bucket.

data "google_project" "project" {
  project_id = var.project_id
}

resource "google_kms_key_ring" "energent" {
  project  = var.project_id
  name     = "energent-${var.environment}"
  location = var.region
}

resource "google_kms_crypto_key" "data" {
  name            = "energent-data"
  key_ring        = google_kms_key_ring.energent.id
  rotation_period = "7776000s" # 90 days
  purpose         = "ENCRYPT_DECRYPT"

  lifecycle {
    prevent_destroy = true
  }
}

# The Google-managed service agents that encrypt with the key on our behalf. On a new project some do not
# exist until asked for: these resources make them, so the grants below never name a missing account. GKE's is
# asked for too, but its identity may come back without an email: the grant names it by its fixed address.
resource "google_project_service_identity" "agents" {
  provider = google-beta
  for_each = toset(["secretmanager.googleapis.com", "pubsub.googleapis.com", "gkebackup.googleapis.com",
  "container.googleapis.com"])
  project = var.project_id
  service = each.value
}

locals {
  # Agents whose identity resource returns an email; the others by their documented addresses.
  agents_by_email = toset(["secretmanager.googleapis.com", "pubsub.googleapis.com", "gkebackup.googleapis.com"])
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "service_agents" {
  for_each = merge(
    { for service in local.agents_by_email : service => "serviceAccount:${google_project_service_identity.agents[service].email}" },
    {
      "storage.googleapis.com"   = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
      "compute.googleapis.com"   = "serviceAccount:service-${data.google_project.project.number}@compute-system.iam.gserviceaccount.com"
      "container.googleapis.com" = "serviceAccount:service-${data.google_project.project.number}@container-engine-robot.iam.gserviceaccount.com"
    },
  )
  crypto_key_id = google_kms_crypto_key.data.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value

  depends_on = [google_project_service_identity.agents]
}

resource "google_project_iam_audit_config" "all_services" {
  project = var.project_id
  service = "allServices"
  audit_log_config {
    log_type = "ADMIN_READ"
  }
  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# Where every bucket's access logs go.
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log destination; logging it into itself would loop.
  project                     = var.project_id
  name                        = "energent-access-logs-${var.environment}-${var.project_id}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.data.id
  }

  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }

  # Versioning keeps what the age rule deletes as a noncurrent version: gone a month later.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

# Cloud Storage delivers the access logs of every bucket as this Google group; without the grant no log arrives.
# (An organisation policy restricting members to the company's domain needs an exception for it.)
resource "google_storage_bucket_iam_member" "access_log_delivery" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}

resource "google_storage_bucket" "audit_logs" {
  project                     = var.project_id
  name                        = "energent-audit-logs-${var.environment}-${var.project_id}"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Audit logs are kept seven years and cannot be deleted sooner. GCS does not combine a retention policy with
  # versioning; the lock is irreversible, so only production locks it (dev and staging can still be deleted).
  #checkov:skip=CKV_GCP_78:A retention policy keeps every object; GCS does not allow versioning beside it.
  retention_policy {
    retention_period = 220752000
    is_locked        = var.lock_retention
  }

  versioning {
    enabled = false
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.data.id
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type          = "SetStorageClass"
      storage_class = "ARCHIVE"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

# Security-relevant activity: IAM and GKE admin activity, and the functions' own security events.
resource "google_logging_project_sink" "security" {
  project                = var.project_id
  name                   = "energent-security-${var.environment}"
  destination            = "storage.googleapis.com/${google_storage_bucket.audit_logs.name}"
  unique_writer_identity = true
  # OR binds tighter than AND in the logging query language: every group is parenthesised.
  filter = <<-EOT
    (logName:"cloudaudit.googleapis.com" AND (protoPayload.serviceName="container.googleapis.com" OR
    protoPayload.serviceName="iam.googleapis.com" OR protoPayload.serviceName="secretmanager.googleapis.com"))
    OR (jsonPayload.event=("client.authentication_failed" OR "token.revoked" OR "key.rotated" OR "key.retired"
    OR "client.created" OR "client.deleted"))
  EOT
}

resource "google_storage_bucket_iam_member" "security_sink_writer" {
  bucket = google_storage_bucket.audit_logs.name
  role   = "roles/storage.objectCreator"
  member = google_logging_project_sink.security.writer_identity
}
