output "kms_key" {
  value = google_kms_crypto_key.data.id
}

output "access_log_bucket" {
  value = google_storage_bucket.access_logs.name
}
