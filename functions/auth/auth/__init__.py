"""Auth domain: token rules, signing-key rollover, client credentials. Pure; adapters live in store.py."""
