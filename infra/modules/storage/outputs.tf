output "bucket_names" {
  description = "Bucket env variable -> bucket name."
  value       = { for key, bucket in google_storage_bucket.data : key => bucket.name }
}
