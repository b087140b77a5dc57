output "function_uris" {
  value = { for name, f in google_cloudfunctions2_function.function : name => f.service_config[0].uri }
}

output "topics" {
  value = { for name, topic in google_pubsub_topic.topic : name => topic.id }
}

output "flux_service_accounts" {
  value = { for name, account in google_service_account.flux : name => account.email }
}

output "dead_letter_subscriptions" {
  description = "Topic -> the subscription that keeps its dead letters."
  value       = { for topic, subscription in google_pubsub_subscription.dead_letter : topic => subscription.name }
}

output "sources_bucket" {
  description = "Where Terraform uploads the functions' source zips."
  value       = google_storage_bucket.sources.name
}

output "external_secrets_service_account" {
  description = "External Secrets Operator's account: infra/external-secrets annotates its controller with it."
  value       = google_service_account.external_secrets.email
}
