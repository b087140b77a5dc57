"""Auth: tenant-scoped OAuth2 access tokens, JWKS, introspection, revocation and key rotation.

Entry points are added with the auth deployments of functions/registry.yaml.
"""
