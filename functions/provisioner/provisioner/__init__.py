"""Provisioner domain: tenant rules and status machine, manifest rendering, Flux events. Pure; I/O in store.py."""
