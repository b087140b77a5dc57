# Firestore (all state) and the GitOps and invoice buckets, with the guide's backup and retention
# (section 11.1): application data recoverable to the minute for 7 days (PITR) and backed up daily for 90 days.
# Shared file systems are Filestore instances the cluster's CSI driver makes per claim (infra/cluster).

resource "google_firestore_database" "main" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.region
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"
}

# Only the functions, through IAM, touch Firestore; no client SDK may read or write (the guide's rules "block"
# was a comment inside a database resource, not rules at all).
resource "google_firebaserules_ruleset" "deny_clients" {
  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = <<-EOT
        rules_version = '2';
        service cloud.firestore {
          match /databases/{database}/documents {
            match /{document=**} {
              allow read, write: if false;
            }
          }
        }
      EOT
    }
  }

  depends_on = [google_firestore_database.main]
}

# A release names its ruleset by resource name; the ruleset's `name` is only the id the service gave it.
resource "google_firebaserules_release" "firestore" {
  project      = var.project_id
  name         = "cloud.firestore"
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.deny_clients.name}"
}

resource "google_firestore_backup_schedule" "daily" {
  project   = var.project_id
  database  = google_firestore_database.main.name
  retention = "7776000s" # 90 days

  daily_recurrence {}
}

# Records that expire: revocations (with the tokens they revoke) and idempotency claims of key rotations.
resource "google_firestore_field" "revoked_tokens_ttl" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "revoked_tokens"
  field      = "expire_at"

  ttl_config {}
}

# Portal sign-in codes and sessions, kept until a session could have ended (auth/portal.py).
resource "google_firestore_field" "portal_codes_ttl" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "portal_codes"
  field      = "expire_at"

  ttl_config {}
}

resource "google_firestore_field" "portal_sessions_ttl" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "portal_sessions"
  field      = "expire_at"

  ttl_config {}
}

# Spend check markers (one per tenant and ten-second window of usage) are kept a day after their window.
resource "google_firestore_field" "spend_checks_ttl" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "spend_checks"
  field      = "expire_at"

  ttl_config {}
}

# The spend sweep's queries: pending records older than a moment, oldest first (an equality and a range on two
# fields need a composite index).
resource "google_firestore_index" "spend_checks_overdue" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "spend_checks"

  fields {
    field_path = "evaluated"
    order      = "ASCENDING"
  }
  fields {
    field_path = "not_before"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "spend_outbox_stale" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "spend_outbox"

  fields {
    field_path = "pending"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "ASCENDING"
  }
}

# Daily rollup markers (one per page of tenants a day's rollup walked) are kept a week.
resource "google_firestore_field" "usage_rollup_runs_ttl" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "usage_rollup_runs"
  field      = "expire_at"

  ttl_config {}
}

# Billing's usage documents index only what a query reads (functions/billing/billing/store/usage_counters.py). An
# automatic single-field index keeps an ascending and a descending entry per field of every document: for the
# exactly-once records (one per usage event, kept for ever, looked up by key only) they would be most of their size.
# The tenant directory's shards (shared/energent_shared/firestore.py) are read by key; indexed, their map of
# thousands of tenants would near the 40,000 index entries a document may have.
locals {
  unindexed_fields = {
    usage_events     = ["tenant_id", "meter", "micros", "time", "time_given", "source", "id", "via", "received_at", "commit"]
    usage_shards     = ["tenant_id", "meter", "count", "units", "micros", "max_micros", "days", "rollup", "rolled_at"]
    tenant_directory = ["tenants"]
  }
}

resource "google_firestore_field" "unindexed" {
  for_each = merge([for collection, fields in local.unindexed_fields :
  { for field in fields : "${collection}.${field}" => { collection = collection, field = field } }]...)

  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = each.value.collection
  field      = each.value.field

  index_config {}
}

# Tenants with an open credit grant, asked once per page of a close for tenants whose ledger does not say yet: a
# collection-group query on `open`, beside each tenant's own query of its grants.
resource "google_firestore_field" "credit_grants_open" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "credit_grants"
  field      = "open"

  index_config {
    indexes {
      query_scope = "COLLECTION"
      order       = "ASCENDING"
    }
    indexes {
      query_scope = "COLLECTION_GROUP"
      order       = "ASCENDING"
    }
  }
}

resource "google_storage_bucket" "data" {
  for_each = var.bucket_prefixes

  project                     = var.project_id
  name                        = "${each.value}-${var.environment}-${var.project_id}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Issued invoices and credit notes are kept unchanged for the 7 years of the Dutch fiscal retention duty
  # (art. 52 AWR). GCS does not combine a retention policy with versioning, so that bucket has none; the lock is
  # irreversible (the bucket can then never be deleted early), so only production locks it.
  versioning {
    enabled = each.key != "INVOICE_BUCKET"
  }

  dynamic "retention_policy" {
    for_each = each.key == "INVOICE_BUCKET" ? [1] : []
    content {
      retention_period = 220924800 # 7 years of 365 days plus two leap days
      is_locked        = var.lock_invoice_retention
    }
  }

  encryption {
    default_kms_key_name = var.kms_key
  }

  logging {
    log_bucket = var.access_log_bucket
  }

  # Old generations kept a year (the guide's retention for configuration).
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 365
    }
    action {
      type = "Delete"
    }
  }
}

# Flux's `tenants` Kustomization (infra/flux/tenants.yaml) applies ./tenants of the manifest bucket, which holds
# nothing until the first tenant: a path that does not exist fails the reconcile, and the Flux alert with it. This
# object makes the folder exist from the start; it is neither YAML nor JSON, so it applies nothing.
resource "google_storage_bucket_object" "tenants_folder" {
  bucket       = google_storage_bucket.data["MANIFEST_BUCKET"].name
  name         = "tenants/README"
  content_type = "text/plain"
  content      = "Every tenant's manifests, written by the provisioner: tenants/<id>/manifests/ and tenants/<id>/sync/.\n"
}
