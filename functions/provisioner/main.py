"""Provisioner: tenant lifecycle on GKE, per-tier manifests delivered through the GitOps bucket.

Entry points are added with the provisioner deployments of functions/registry.yaml.
"""
