"""Build-time tooling shared by the local stack, the tests and Cloud Build."""
