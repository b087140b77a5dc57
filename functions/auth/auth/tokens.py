"""Access tokens: RFC 9068 JWTs signed with the current key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from auth.keys import ALGORITHM, SigningKey

TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret


@dataclass(frozen=True)
class Grant:
    """What a token is issued for: the client, its tenant (None for the operator) and the granted scopes."""

    client_id: str
    scopes: frozenset[str]
    tenant_id: str | None = None
    tier: str | None = None


def claims_for(grant: Grant, *, issuer: str, audience: str, now: datetime, ttl: timedelta) -> dict:
    issued = int(now.timestamp())
    claims = {
        "iss": issuer,
        "sub": grant.client_id,
        "client_id": grant.client_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
        "jti": secrets.token_urlsafe(16),
        "scope": " ".join(sorted(grant.scopes)),
    }
    if grant.tenant_id is not None:
        claims["tenant_id"] = grant.tenant_id
        claims["tier"] = grant.tier
    return claims


def sign(claims: dict, key: SigningKey) -> str:
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": TOKEN_TYPE})
