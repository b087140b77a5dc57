terraform {
  # 1.11: write-only arguments and ephemeral resources, which keep every secret out of the state and the plans.
  required_version = ">= 1.11"

  # Partial configuration: each environment's bucket is in environments/<env>/backend.hcl.
  backend "gcs" {}

  # The exact versions and their checksums are in .terraform.lock.hcl, committed: every run installs the same
  # providers, verified against the registry's published checksums.
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.50"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.1"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }
}
