"""Client credentials: ids, secrets and the scopes a client may hold or request.

Secrets are 256 random bits, so a single SHA-256 is as strong as any slow hash here (slow hashes protect
guessable passwords; nothing guesses 2^256) and keeps token issuance fast. Only the hash is stored, and it is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from energent_shared.errors import Forbidden, Invalid, shown
from energent_shared.guard import ALL_SCOPES, PLATFORM_SCOPES, TENANT_SCOPES

CLIENT_ID = re.compile(r"^cl_[0-9a-f]{24}$")
_HASH_PREFIX = "sha256:"
MAX_NAME_LENGTH = 100


class ScopeError(Invalid):
    """Scopes that are malformed, unknown or not for this kind of client."""


class ScopeNotHeld(Forbidden):
    """A caller tried to grant a scope it does not hold itself."""


def new_client_id() -> str:
    return "cl_" + secrets.token_hex(12)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return _HASH_PREFIX + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def requested_scopes(scope: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """RFC 6749 §3.3: absent means everything the client holds; otherwise a subset of it."""
    if scope is None:
        return allowed
    requested = frozenset(scope.split(" "))
    if "" in requested or any(not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", s) for s in requested):
        raise ScopeError("scope must be space-separated scope tokens")
    beyond = requested - allowed
    if beyond:
        raise ScopeError(f"the client does not hold {shown(beyond)}")
    return requested


def tenant_client_scopes(scopes: object, caller_scopes: frozenset[str]) -> frozenset[str]:
    """The scopes of a new tenant client: known, tenant-grantable, held by the caller. Raises ScopeError or
    ScopeNotHeld with a precise message."""
    if not isinstance(scopes, list) or not scopes:
        raise ScopeError("scopes must be a non-empty array of scope names")
    if not all(isinstance(s, str) for s in scopes):
        raise ScopeError("scopes must be strings")
    wanted = frozenset(scopes)
    unknown = wanted - ALL_SCOPES
    if unknown:
        raise ScopeError(f"unknown scope(s): {shown(unknown)}")
    platform = wanted & PLATFORM_SCOPES
    if platform:
        raise ScopeError(f"a tenant client cannot hold {', '.join(sorted(platform))}")
    not_held = wanted - caller_scopes
    if not_held:
        raise ScopeNotHeld(f"a caller can only grant scopes it holds; it lacks {', '.join(sorted(not_held))}")
    assert wanted <= TENANT_SCOPES
    return wanted
