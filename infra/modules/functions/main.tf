# Every deployment of functions/registry.yaml — read here, so code, Cloud Build and Terraform share one list —
# with its own service account and only the access it needs; the platform's topics, each with a dead-letter
# topic; a Pub/Sub push subscription with an OIDC identity, retries and dead-lettering for every event
# deployment (the shape the local stack runs); the secrets the functions use; and the registry's schedules.

locals {
  registry      = yamldecode(file(var.registry_file))
  deployments   = { for d in local.registry.deployments : d.name => d }
  http          = { for name, d in local.deployments : name => d if try(d.topic, null) == null }
  events        = { for name, d in local.deployments : name => d if try(d.topic, null) != null }
  folders       = toset([for d in local.registry.deployments : d.source])
  topics        = toset(local.registry.topics)
  dead_letter   = { for topic in local.topics : topic => "${topic}-dead-letter" }
  function_name = { for name, d in local.deployments : name => "energent-${name}-${var.environment}" }
  portal_login  = "/portal/login" # auth/portal.py LOGIN_PATH

  # Named by project id, as Cloud Build names them (a secret's `name` attribute gives the project number).
  secret_names = {
    PORTAL_CLIENT_SECRET   = "projects/${var.project_id}/secrets/${google_secret_manager_secret.portal.secret_id}"
    SIGNING_KEY_SECRET     = "projects/${var.project_id}/secrets/${google_secret_manager_secret.signing.secret_id}"
    OPERATOR_CLIENT_SECRET = "projects/${var.project_id}/secrets/${google_secret_manager_secret.operator.secret_id}"
    WEBHOOK_KEY_SECRET     = "projects/${var.project_id}/secrets/${google_secret_manager_secret.webhook_key.secret_id}"
  }

  # Every deployment's environment, exactly what Cloud Build deploys it with (tools/cloudbuild.py; a test
  # compares the two): Terraform's only counts until the first build.
  common_env = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    ENVIRONMENT          = var.environment
    TOKEN_ISSUER         = var.api_url
    TOKEN_AUDIENCE       = "energent-api"
    JWKS_URL             = "${var.api_url}/.well-known/jwks.json"
    TENANTS_PROJECT      = var.tenants_project_id
    HYBRID_VPN_ADDRESSES = join(",", var.hybrid_vpn_addresses)
    HYBRID_ASN           = tostring(var.hybrid_asn)
    HYBRID_SITE_RANGES   = join(",", var.hybrid_site_ranges)
  }
  env = { for name, d in local.deployments : name => merge(
    local.common_env,
    { for key in try(d.buckets, []) : key => var.bucket_names[key] },
    { for key in try(d.secrets, []) : key => local.secret_names[key] },
    try(d.env, {}),
  ) }

  # Topics a deployment publishes to are the topics named in its env (e.g. TENANT_EVENTS_TOPIC: tenant-events).
  publishes = merge([for name, d in local.deployments : {
    for topic in values(try(d.env, {})) : "${name}/${topic}" => { deployment = name, topic = topic }
    if contains(local.registry.topics, topic)
  }]...)
  secret_access = merge([for name, d in local.deployments : {
    for key in try(d.secrets, []) : "${name}/${key}" => { deployment = name, secret = key }
  }]...)
  bucket_access = merge([for name, d in local.deployments : {
    for key in try(d.buckets, []) : "${name}/${key}" => { deployment = name, bucket = key }
  }]...)
}

data "google_project" "project" {
  project_id = var.project_id
}

# --- identities ---------------------------------------------------------------------------------------------

resource "google_service_account" "function" {
  for_each     = local.deployments
  project      = var.project_id
  account_id   = "fn-${each.key}"
  display_name = "Function ${each.key} (${var.environment})"
}

resource "google_project_iam_member" "firestore" {
  for_each = { for name, d in local.deployments : name => d if try(d.firestore, true) }
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publishes
  project  = var.project_id
  topic    = google_pubsub_topic.topic[each.value.topic].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.function[each.value.deployment].email}"
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each  = local.secret_access
  project   = var.project_id
  secret_id = local.secret_names[each.value.secret]
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.deployment].email}"
}

# Reading `latest` is not enough for auth: it lists the versions to publish every key still in use.
resource "google_secret_manager_secret_iam_member" "signing_key_versions" {
  for_each  = { for name, d in local.deployments : name => d if contains(try(d.secrets, []), "SIGNING_KEY_SECRET") }
  project   = var.project_id
  secret_id = google_secret_manager_secret.signing.name
  role      = "roles/secretmanager.viewer"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

# The rotation deployment adds and disables signing-key versions.
resource "google_secret_manager_secret_iam_member" "key_rotation" {
  for_each  = { for name, d in local.events : name => d if d.topic == "auth-events" }
  project   = var.project_id
  secret_id = google_secret_manager_secret.signing.name
  role      = "roles/secretmanager.secretVersionManager"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_storage_bucket_iam_member" "objects" {
  for_each = local.bucket_access
  bucket   = var.bucket_names[each.value.bucket]
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.function[each.value.deployment].email}"
}

resource "google_service_account" "pusher" {
  project      = var.project_id
  account_id   = "pubsub-push-${var.environment}"
  display_name = "Pub/Sub push to event functions (${var.environment})"
}

# Push authentication needs nothing more: Pub/Sub's service agent mints the OIDC tokens of this account without a
# role on it (projects made after April 2021), and whoever creates a push subscription must be able to act as it
# (Terraform's account owns the project). Each event deployment lets it invoke (pusher_invoker below).

# --- builds -------------------------------------------------------------------------------------------------

# Cloud Functions builds every deployment with Cloud Build as this account (build_config.service_account below,
# --build-service-account in cloudbuild-functions.yaml). Without it a new project builds as the default Compute
# Engine account, which holds no role at all where the organisation policy blocks automatic grants.
resource "google_service_account" "builder" {
  project      = var.project_id
  account_id   = "fn-builder-${var.environment}"
  display_name = "Cloud Functions builds (${var.environment})"
}

# Build logs, and the built images in the gcf-artifacts repository (made by Cloud Functions on the first build).
resource "google_project_iam_member" "builder" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.builder.email}"
}

# The source it builds: Terraform's zips in the sources bucket, and what gcloud uploads, which Cloud Functions keeps
# in gcf-v2-sources-<project number>-<region> (with a key hash appended under CMEK). That bucket is made by the
# service on the first deploy, so it is named by prefix, in Cloud Storage's resource names.
resource "google_storage_bucket_iam_member" "builder_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.builder.email}"
}

resource "google_project_iam_member" "builder_reads_uploaded_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.builder.email}"

  condition {
    title       = "function-sources-only"
    description = "The buckets Cloud Functions keeps uploaded function sources in."
    expression  = "resource.name.startsWith('projects/_/buckets/gcf-v2-sources-${data.google_project.project.number}-${var.region}')"
  }
}

# --- source -------------------------------------------------------------------------------------------------

resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = "energent-function-sources-${var.environment}-${var.project_id}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = var.kms_key
  }

  logging {
    log_bucket = var.access_log_bucket
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 10
    }
    action {
      type = "Delete"
    }
  }
}

# `make package` writes build/functions/<name>: the function folder with the shared library and config. Terraform
# creates each function from it once; from then on Cloud Build deploys the code (cloudbuild-functions.yaml).
data "archive_file" "source" {
  for_each    = local.folders
  type        = "zip"
  source_dir  = "${var.build_dir}/${each.value}"
  output_path = "${var.build_dir}/${replace(each.value, "/", "-")}.zip"
}

resource "google_storage_bucket_object" "source" {
  for_each = local.folders
  bucket   = google_storage_bucket.sources.name
  name     = "${replace(each.value, "/", "-")}-${data.archive_file.source[each.value].output_md5}.zip"
  source   = data.archive_file.source[each.value].output_path
}

# --- functions ----------------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "function" {
  for_each = local.deployments
  project  = var.project_id
  name     = local.function_name[each.key]
  location = var.region

  build_config {
    runtime         = "python311"
    entry_point     = each.value.entry_point
    service_account = google_service_account.builder.id
    environment_variables = try(each.value.topic, null) == null ? {} : {
      GOOGLE_FUNCTION_SIGNATURE_TYPE = "cloudevent"
    }
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.value.source].name
      }
    }
  }

  service_config {
    available_memory   = try(each.value.memory, "256Mi")
    timeout_seconds    = try(each.value.timeout_s, 60)
    min_instance_count = try(each.value.min_instances, 0)
    max_instance_count = try(each.value.max_instances, 20)
    # Several requests per instance (functions-framework serves 8 threads); more than one needs a whole vCPU.
    max_instance_request_concurrency = try(each.value.concurrency, 8)
    available_cpu                    = "1"
    service_account_email            = google_service_account.function[each.key].email
    vpc_connector                    = var.vpc_connector
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    ingress_settings                 = try(each.value.topic, null) == null ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.env[each.key]
  }

  labels = {
    environment = var.environment
    deployment  = each.key
  }

  # One owner each: Terraform makes the function and its settings; Cloud Build deploys its code and its
  # environment on every change (gcloud uploads the source elsewhere, adds variables of its own and labels the
  # function deployment-tool: cli-gcloud), and an apply must not put back Terraform's first zip or undo a deploy.
  lifecycle {
    ignore_changes = [build_config[0].source, service_config[0].environment_variables, labels]
  }

  # The first build runs as the builder: its roles come first, and have had time to take effect.
  depends_on = [time_sleep.builder_roles_propagate]
}

# Grants to an account made a moment ago can take minutes to reach every service; the first builds would be refused.
resource "time_sleep" "builder_roles_propagate" {
  create_duration = "120s"
  depends_on = [
    google_project_iam_member.builder,
    google_storage_bucket_iam_member.builder_reads_sources,
    google_project_iam_member.builder_reads_uploaded_sources,
  ]
}

# HTTP deployments answer only API Gateway; event deployments only their push subscription.
resource "google_cloud_run_service_iam_member" "gateway_invoker" {
  for_each = local.http
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.gateway_service_account}"
}

resource "google_cloud_run_service_iam_member" "pusher_invoker" {
  for_each = local.events
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

# --- topics and subscriptions -------------------------------------------------------------------------------

resource "google_pubsub_topic" "topic" {
  for_each     = local.topics
  project      = var.project_id
  name         = each.value
  kms_key_name = var.kms_key
}

resource "google_pubsub_topic" "dead_letter" {
  for_each     = local.dead_letter
  project      = var.project_id
  name         = each.value
  kms_key_name = var.kms_key
}

# Dead letters wait here for an operator (a topic without a subscription would drop them).
resource "google_pubsub_subscription" "dead_letter" {
  for_each                   = local.dead_letter
  project                    = var.project_id
  name                       = each.value
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter
  project  = var.project_id
  topic    = google_pubsub_topic.dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription" "push" {
  for_each             = local.events
  project              = var.project_id
  name                 = "${each.key}-push"
  topic                = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds = min(600, try(each.value.timeout_s, 60))

  push_config {
    push_endpoint = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.topic].id
    max_delivery_attempts = 10
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.events
  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# --- secrets ------------------------------------------------------------------------------------------------

# Secret Manager announces rotations on auth-events; auth adds the new key version.
resource "google_pubsub_topic_iam_member" "secret_manager_notifications" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["auth-events"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-secretmanager.iam.gserviceaccount.com"
}

resource "google_secret_manager_secret" "signing" {
  project   = var.project_id
  secret_id = local.registry.secrets.SIGNING_KEY_SECRET

  # Automatic replication needs a global key; the data key is regional, so the secret lives in the region.
  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = var.kms_key
        }
      }
    }
  }

  topics {
    name = google_pubsub_topic.topic["auth-events"].id
  }

  rotation {
    rotation_period    = "2592000s" # 30 days
    next_rotation_time = timeadd(plantimestamp(), "720h")
  }

  lifecycle {
    ignore_changes = [rotation[0].next_rotation_time]
  }

  depends_on = [google_pubsub_topic_iam_member.secret_manager_notifications]
}

# No secret is ever in Terraform's state or in a saved plan, so neither is worth stealing: whoever may read them
# (every branch's plan account) learns nothing that signs a token or authenticates as the operator. The first
# signing key and the operator's secret are ephemeral values (made in memory by the run that applies, never
# written down) handed to Secret Manager through write-only arguments (sent once, when the version is made, and
# never read back: refreshing a version whose data is write-only reads its metadata, not its payload). Every later
# key is made by auth itself and never leaves Secret Manager.
ephemeral "tls_private_key" "first_signing_key" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "google_secret_manager_secret_version" "first_signing_key" {
  secret                 = google_secret_manager_secret.signing.id
  secret_data_wo         = ephemeral.tls_private_key.first_signing_key.private_key_pem_pkcs8
  secret_data_wo_version = 1

  # Auth disables the version once it is retired (or an operator does, after a compromise): an apply must not
  # enable it again.
  lifecycle {
    ignore_changes = [enabled]
  }
}

# The portal's own client (functions/auth/auth/portal.py): auth authenticates it, the portal redeems sign-in links
# with it. Made like the operator's: in memory by the apply, written once, never in the state.
resource "google_secret_manager_secret" "portal" {
  project   = var.project_id
  secret_id = local.registry.secrets.PORTAL_CLIENT_SECRET

  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = var.kms_key
        }
      }
    }
  }
}

ephemeral "random_password" "portal" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret_version" "portal" {
  secret = google_secret_manager_secret.portal.id
  secret_data_wo = jsonencode({
    client_id     = "energent-portal"
    client_secret = ephemeral.random_password.portal.result
  })
  secret_data_wo_version = 1
}

# A sign-in link carries its one-time code in the query string until the person presses Continue (auth/portal.py).
# The request logs of Cloud Run and API Gateway keep whole URLs, readable by anyone who may view logs: those lines
# are not stored. The portal logs each sign-in itself, without the code.
resource "google_logging_project_exclusion" "portal_sign_in_links" {
  project     = var.project_id
  name        = "portal-sign-in-links-${var.environment}"
  description = "Request log lines of portal sign-in links: their URL holds a one-time code"
  filter      = "httpRequest.requestUrl:\"${local.portal_login}?\""
}

resource "google_secret_manager_secret" "operator" {
  project   = var.project_id
  secret_id = local.registry.secrets.OPERATOR_CLIENT_SECRET

  # Automatic replication needs a global key; the data key is regional, so the secret lives in the region.
  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = var.kms_key
        }
      }
    }
  }
}

ephemeral "random_password" "operator" {
  length  = 48
  special = false
}

# A new operator secret: `terraform apply -replace=module.functions.google_secret_manager_secret_version.operator`
# makes a new version from a new ephemeral password and destroys the old one (docs/runbook.md).
resource "google_secret_manager_secret_version" "operator" {
  secret = google_secret_manager_secret.operator.id
  secret_data_wo = jsonencode({
    client_id     = "energent-operator"
    client_secret = ephemeral.random_password.operator.result
  })
  secret_data_wo_version = 1
}

# The key that seals tenants' webhook secrets in Firestore (billing/secret_box.py: AES-256-GCM under SHA-256 of
# this payload). Made in memory by the apply, like the operator's secret; only billing and billing-webhooks read it.
# A new key: `terraform apply -replace=module.functions.google_secret_manager_secret_version.webhook_key` after
# adding a version by hand; sealed secrets name the version they were sealed with, so keep old versions enabled.
resource "google_secret_manager_secret" "webhook_key" {
  project   = var.project_id
  secret_id = local.registry.secrets.WEBHOOK_KEY_SECRET

  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = var.kms_key
        }
      }
    }
  }
}

ephemeral "random_password" "webhook_key" {
  length  = 64
  special = false
}

resource "google_secret_manager_secret_version" "webhook_key" {
  secret                 = google_secret_manager_secret.webhook_key.id
  secret_data_wo         = ephemeral.random_password.webhook_key.result
  secret_data_wo_version = 1
}

# --- schedules: the monthly close, the spend checks' month start and sweep ----------------------------------

# Every schedule of the registry, as a CloudEvent on its topic (no period: billing closes the month that just
# ended; the spend steps need no data). Each step they start is idempotent, so a repeated delivery changes nothing.
resource "google_cloud_scheduler_job" "schedule" {
  for_each  = { for s in try(local.registry.schedules, []) : s.name => s }
  project   = var.project_id
  name      = "energent-${each.key}-${var.environment}"
  region    = var.region
  schedule  = each.value.schedule
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.topic[each.value.topic].id
    attributes = {
      "content-type" = "application/cloudevents+json"
    }
    data = base64encode(jsonencode({
      specversion     = "1.0"
      type            = each.value.type
      source          = "//cloudscheduler.googleapis.com/energent-${each.key}"
      id              = each.key
      datacontenttype = "application/json"
      data            = {}
    }))
  }
}

moved {
  from = google_cloud_scheduler_job.monthly_close
  to   = google_cloud_scheduler_job.schedule["monthly-close"]
}

# --- the deploy pipeline's identity ---------------------------------------------------------------------------

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "deployer-${var.environment}"
  display_name = "Cloud Build deploys (${var.environment})"
}

resource "google_project_iam_member" "deployer" {
  for_each = toset(["roles/cloudfunctions.developer", "roles/apigateway.admin", "roles/logging.logWriter"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.deployer.email}"
}

# It may deploy functions that run as their own accounts and are built as the builder, and configs that call them
# as the gateway.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = merge(
    { for name, account in google_service_account.function : name => account.name },
    {
      gateway = "projects/${var.project_id}/serviceAccounts/${var.gateway_service_account}"
      builder = google_service_account.builder.name
    },
  )
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deployer.email}"
}

# --- GitOps: Flux reads the manifest bucket, reports on provisioning-events, applies dedicated clusters -------

locals {
  # Flux controller (its Kubernetes service account in flux-system) -> its Google service account's short name;
  # infra/flux/service-accounts.yaml annotates each Kubernetes service account with the Google one.
  flux_controllers = {
    "source-controller"       = "source"
    "notification-controller" = "notify"
    "kustomize-controller"    = "kustomize"
  }
}

resource "google_service_account" "flux" {
  for_each     = local.flux_controllers
  project      = var.project_id
  account_id   = "flux-${each.value}-${var.environment}"
  display_name = "Flux ${each.key} (${var.environment})"
}

# The pool is the platform cluster's, named from the cluster (var.workload_pool): these wait for it to exist.
resource "google_service_account_iam_member" "flux_workload_identity" {
  for_each           = google_service_account.flux
  service_account_id = each.value.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.workload_pool}[flux-system/${each.key}]"
}

# Flux's GCS client gets the bucket's metadata (storage.buckets.get) before it lists and reads objects:
# objectViewer alone (objects.get, objects.list) fails that first call.
resource "google_storage_bucket_iam_member" "flux_reads_manifests" {
  bucket = var.bucket_names["MANIFEST_BUCKET"]
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.flux["source-controller"].email}"
}

resource "google_storage_bucket_iam_member" "flux_reads_manifest_bucket" {
  bucket = var.bucket_names["MANIFEST_BUCKET"]
  role   = "roles/storage.legacyBucketReader"
  member = "serviceAccount:${google_service_account.flux["source-controller"].email}"
}

resource "google_pubsub_topic_iam_member" "flux_reports" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["provisioning-events"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.flux["notification-controller"].email}"
}

# A dedicated tenant's Kustomization reaches the tenant's own cluster through Workload Identity (kubeConfig
# configMapRef with provider gcp). kustomize-controller holds no role on any cluster here: the provisioner renders,
# with each dedicated cluster, a grant of container.developer on the tenants' project whose condition names that
# cluster alone (manifests.py, flux_grant).

# --- Hybrid tenants' tunnel keys: Secret Manager in the tenants' project ------------------------------------------

# The provisioner makes each hybrid tenant's keys (hybrid-psk-<tenant>-<tunnel>), reads them for GET .../site and
# deletes them with the tenant; External Secrets Operator reads them into the Kubernetes Secret the tunnels name
# (functions/provisioner/provisioner/psks.py). Both reach those secrets and no other: a secret is named in the
# condition by its project number, as IAM sees it. Creating a secret is checked on the project, which the
# provisioner's condition admits: a secret of another name it could make but never read.
data "google_project" "tenants" {
  project_id = var.tenants_project_id
}

locals {
  hybrid_keys = "projects/${data.google_project.tenants.number}/secrets/hybrid-psk-"
  # The provisioner's deployments: the API makes keys, the Flux events deployment deletes a deleted tenant's.
  key_keepers = toset([for name, d in local.deployments : name if d.source == "functions/provisioner"])
}

resource "google_project_iam_custom_role" "hybrid_keys" {
  project     = var.tenants_project_id
  role_id     = "energentHybridKeys"
  title       = "Hybrid tenants' tunnel keys"
  description = "Make, read and delete the pre-shared keys of hybrid tenants' VPN tunnels."
  permissions = ["secretmanager.secrets.create", "secretmanager.secrets.delete", "secretmanager.secrets.get",
  "secretmanager.versions.add", "secretmanager.versions.access", "secretmanager.versions.get"]
}

resource "google_project_iam_member" "hybrid_keys" {
  for_each = local.key_keepers
  project  = var.tenants_project_id
  role     = google_project_iam_custom_role.hybrid_keys.id
  member   = "serviceAccount:${google_service_account.function[each.key].email}"

  condition {
    title       = "hybrid-tunnel-keys-only"
    description = "The hybrid-psk-* secrets, and making them."
    expression  = "resource.type == 'cloudresourcemanager.googleapis.com/Project' || resource.name.startsWith('${local.hybrid_keys}')"
  }
}

# External Secrets Operator's controller (Kubernetes service account external-secrets/external-secrets on the
# platform's cluster, annotated by infra/external-secrets): it reads the keys, nothing else.
resource "google_service_account" "external_secrets" {
  project      = var.project_id
  account_id   = "eso-${var.environment}"
  display_name = "External Secrets Operator: hybrid tunnel keys (${var.environment})"
}

resource "google_service_account_iam_member" "external_secrets_workload_identity" {
  service_account_id = google_service_account.external_secrets.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.workload_pool}[external-secrets/external-secrets]"
}

resource "google_project_iam_member" "external_secrets_reads_keys" {
  project = var.tenants_project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = "serviceAccount:${google_service_account.external_secrets.email}"

  condition {
    title       = "hybrid-tunnel-keys-only"
    description = "The hybrid-psk-* secrets."
    expression  = "resource.name.startsWith('${local.hybrid_keys}')"
  }
}

# --- the route watchdog -----------------------------------------------------------------------------------------

# Every minute, a check of what hybrid tenants' sites announce over BGP (functions/provisioner/provisioner/routes.py
# says why a watchdog and not a route policy): a CloudEvent on provisioning-events, taken by the provisioner's event
# deployment, which reads the VPN router's status and cuts off a site that announced a prefix outside its ranges.
# A missed or repeated run changes nothing: the next one looks again.
resource "google_cloud_scheduler_job" "route_watch" {
  project   = var.project_id
  name      = "energent-route-watch-${var.environment}"
  region    = var.region
  schedule  = "* * * * *"
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.topic["provisioning-events"].id
    attributes = {
      "content-type" = "application/cloudevents+json"
    }
    data = base64encode(jsonencode({
      specversion     = "1.0"
      type            = "ai.energent.provisioner.routes.check.v1"
      source          = "//cloudscheduler.googleapis.com/energent-route-watch"
      id              = "route-watch"
      datacontenttype = "application/json"
      data            = {}
    }))
  }
}

# What the check reads: the VPN router's status (routers.getRouterStatus is authorized as compute.routers.get), on
# that router alone, by the deployment that takes provisioning-events.
resource "google_project_iam_custom_role" "router_status" {
  project     = var.project_id
  role_id     = "energentRouterStatus"
  title       = "The VPN router's status"
  description = "Read a Cloud Router and the routes it learned."
  permissions = ["compute.routers.get"]
}

resource "google_project_iam_member" "route_watch" {
  project = var.project_id
  role    = google_project_iam_custom_role.router_status.id
  member  = "serviceAccount:${google_service_account.function["provisioner-flux-events"].email}"

  condition {
    title       = "vpn-router-only"
    description = "The hybrid tenants' VPN router."
    expression  = "resource.name == 'projects/${var.project_id}/regions/${var.region}/routers/${var.hybrid_router}'"
  }
}
