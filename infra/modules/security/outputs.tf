# Whoever takes the key waits for the service agents' grants: a topic, bucket, secret or cluster made before
# its agent may use the key fails.
output "kms_key" {
  value      = google_kms_crypto_key.data.id
  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

output "access_log_bucket" {
  value = google_storage_bucket.access_logs.name
}
