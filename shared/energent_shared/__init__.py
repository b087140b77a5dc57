"""Energent shared library: config, Google clients, Firestore, Secret Manager, events, HTTP, guard, logging, tiers.

Modules import their Google client libraries lazily, so a function pays at cold start only for what it uses.
"""
