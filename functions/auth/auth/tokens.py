"""Access tokens: RFC 9068 JWTs signed with the current key.

A token is the JWS compact serialization (RFC 7515) of its claims, signed here with the key itself: the token path
never loads a JWT library (verification, which must refuse every malformed token, is PyJWT's, in the guard).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def _segment(part: dict) -> str:
    compact = json.dumps(part, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return base64.urlsafe_b64encode(compact).decode("ascii").rstrip("=")


def sign(claims: dict, key: SigningKey) -> str:
    signing_input = f"{_segment({'alg': ALGORITHM, 'kid': key.kid, 'typ': TOKEN_TYPE})}.{_segment(claims)}"
    signature = base64.urlsafe_b64encode(key.sign(signing_input.encode("ascii"))).decode("ascii").rstrip("=")
    return f"{signing_input}.{signature}"
