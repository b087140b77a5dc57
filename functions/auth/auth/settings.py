"""Auth's own settings (the shared ones — project, issuer, audience — come from energent_shared.config)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from auth.keys import Rollover
from energent_shared import config

ACTIVATION_MARGIN_S = 60  # beyond the JWKS cache time, before a new key signs


def _seconds(name: str, default: float, maximum: float) -> timedelta:
    return timedelta(seconds=config.number(name, default, maximum))


@dataclass(frozen=True)
class AuthSettings:
    signing_key_secret: str
    operator_client_secret: str
    rollover: Rollover
    key_cache_ttl_s: float
    auth_events_topic: str  # where POST /v1/keys:rotate sends Secret Manager's rotation notice
    portal_client_secret: str = ""  # the portal's client (auth/portal.py), from Secret Manager like the operator's


@cache
def auth_settings() -> AuthSettings:
    signing = config.text("SIGNING_KEY_SECRET", required="the Secret Manager secret holding the signing keys")
    # Only the HTTP deployment authenticates the operator; the rotation deployment has no access to it.
    operator = config.text("OPERATOR_CLIENT_SECRET")
    token_ttl = _seconds("TOKEN_TTL_S", 900, 3600)
    if token_ttl < timedelta(seconds=60):
        raise ValueError("TOKEN_TTL_S must be at least 60 seconds")
    return AuthSettings(
        signing_key_secret=signing,
        operator_client_secret=operator,
        # API Gateway caches the JWKS for 5 minutes: a new key signs only once every cache has seen it, with a
        # margin for the gateway's fetch and the instances' clocks.
        rollover=Rollover(activation_delay=_seconds("KEY_ACTIVATION_DELAY_S", 300 + ACTIVATION_MARGIN_S, 86400),
                          token_ttl=token_ttl, jwks_cache=_seconds("JWKS_CACHE_S", 300, 86400)),
        key_cache_ttl_s=_seconds("KEY_CACHE_TTL_S", 5, 300).total_seconds(),
        auth_events_topic=config.text("AUTH_EVENTS_TOPIC", "auth-events"),
        portal_client_secret=config.text("PORTAL_CLIENT_SECRET"),
    )
