output "function_uris" {
  value = { for name, f in google_cloudfunctions2_function.function : name => f.service_config[0].uri }
}

output "topics" {
  value = { for name, topic in google_pubsub_topic.topic : name => topic.id }
}

output "flux_service_accounts" {
  value = { for name, account in google_service_account.flux : name => account.email }
}
