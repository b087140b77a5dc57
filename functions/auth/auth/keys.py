"""Signing keys and their rollover.

Each enabled version of the signing-key secret is one P-256 key (PKCS#8 PEM). Its `kid` is the RFC 7638
thumbprint of its public key, so every instance names a key the same way without extra state.

Rollover, with API Gateway caching the JWKS for `jwks_cache`:
- a new key is published at once and signs only from `created + activation_delay`, so every cache has seen
  it before the first token it signs arrives (the very first key signs at once: no cache can lack it);
- a key stops signing when a newer key activates, and stays published until every token it signed has
  expired and every cache has refreshed: `successor activation + token_ttl + jwks_cache`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

# cryptography is imported where keys are made, loaded or used, not with the module: the tenant-events deployment
# shares this code and never touches a key, and the others load keys while Secret Manager answers.

ALGORITHM = "ES256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict:
    numbers = public_key.public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big"))}


def thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, without whitespace."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def generate_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class KeyVersion:
    """One enabled version of the signing-key secret."""

    name: str  # projects/P/secrets/S/versions/N
    created_at: datetime
    pem: bytes

    @property
    def number(self) -> int:
        return int(self.name.rsplit("/", 1)[1])


@dataclass(frozen=True)
class SigningKey:
    kid: str
    version: str
    number: int
    private_key: ec.EllipticCurvePrivateKey
    activates_at: datetime

    @cached_property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict:
        return {**public_jwk(self.public_key), "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def sign(self, data: bytes) -> bytes:
        """ES256 (RFC 7518 §3.4): ECDSA over SHA-256, the signature as R and S of 32 bytes each."""
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self.private_key.sign(data, _ecdsa_sha256()))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@lru_cache(maxsize=1)
def _ecdsa_sha256():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(hashes.SHA256())


@lru_cache(maxsize=64)
def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("a signing key must be an EC P-256 private key")
    return key


@dataclass(frozen=True)
class Rollover:
    activation_delay: timedelta
    token_ttl: timedelta
    jwks_cache: timedelta

    def keys(self, versions: list[KeyVersion]) -> list[SigningKey]:
        """Enabled versions as keys, oldest first, each with its activation time."""
        ordered = sorted(versions, key=lambda v: v.number)
        keys = []
        for index, version in enumerate(ordered):
            private_key = load_private_key(version.pem)
            delay = timedelta(0) if index == 0 else self.activation_delay
            keys.append(SigningKey(thumbprint(public_jwk(private_key.public_key())), version.name, version.number,
                                   private_key, version.created_at + delay))
        return keys

    def signing_key(self, keys: list[SigningKey], now: datetime) -> SigningKey:
        """The newest key that has activated."""
        if not keys:
            raise LookupError("there is no enabled signing key")
        active = [key for key in keys if key.activates_at <= now]
        return active[-1] if active else keys[0]

    def pending(self, keys: list[SigningKey], now: datetime) -> SigningKey | None:
        """The newest key if it has not activated yet. While one is pending, another rotation would only add a key
        that never signs before it is retired: rotations wait, so the JWKS holds at most one key ahead."""
        return keys[-1] if keys and keys[-1].activates_at > now else None

    def published(self, keys: list[SigningKey], now: datetime) -> list[SigningKey]:
        """Keys a verifier may still need: not yet retired past every token's expiry plus the cache time."""
        grace = self.token_ttl + self.jwks_cache
        published = []
        for index, key in enumerate(keys):
            successors = [k.activates_at for k in keys[index + 1:] if k.activates_at <= now]
            if not successors or min(successors) + grace > now:
                published.append(key)
        return published

    def next_change(self, keys: list[SigningKey], now: datetime) -> datetime:
        """When `published` or `signing_key` may next answer differently: a key activating, or a predecessor's
        grace after an activation running out (the far future if neither is ahead)."""
        grace = self.token_ttl + self.jwks_cache
        ahead = [moment for key in keys for moment in (key.activates_at, key.activates_at + grace) if moment > now]
        return min(ahead, default=datetime.max.replace(tzinfo=now.tzinfo))
