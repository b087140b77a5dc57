"""Who is calling, and may they do this?

Bearer JWTs (RFC 9068 access tokens from the auth function) are verified against the auth JWKS, cached and
refreshed when an unknown `kid` appears, in every deployment and every mode: a function trusts no identity it
did not verify itself. Behind API Gateway the caller's token arrives in `X-Forwarded-Authorization`; the
gateway's `X-Apigateway-Api-Userinfo` is never read, since anyone who may invoke the function could write it.
Verified tokens are remembered, so this costs a dictionary lookup per request. A revocation check runs too,
because the gateway verifies statelessly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from energent_shared.config import settings
from energent_shared.http import HeadersOf, Problem, caller_authorization

ALGORITHMS = ("ES256", "RS256")
# Instances' clocks differ a little: a token issued on one is not "not yet valid" on another (nbf, iat).
CLOCK_LEEWAY_S = 30

# Scopes only the operator and platform services hold; a tenant client never does.
PLATFORM_SCOPES = frozenset({"tenants:admin", "tokens:introspect", "usage:write"})
TENANT_SCOPES = frozenset({"clients:write", "usage:read", "billing:read", "billing:write"})
ALL_SCOPES = PLATFORM_SCOPES | TENANT_SCOPES
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]


@dataclass(frozen=True)
class Principal:
    client_id: str
    scopes: frozenset[str]
    tenant_id: str | None = None
    tier: str | None = None
    claims: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_tenant(self) -> bool:
        return self.tenant_id is not None

    @classmethod
    def from_claims(cls, claims: dict) -> Principal:
        client_id = claims.get("client_id") or claims.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise _unauthorized("token has no client_id")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise _unauthorized("token scope must be a space-separated string")
        tenant_id = claims.get("tenant_id")
        return cls(client_id, frozenset(scope.split()), tenant_id if isinstance(tenant_id, str) else None,
                   claims.get("tier") if isinstance(claims.get("tier"), str) else None, claims)


def _unauthorized(detail: str) -> Problem:
    # RFC 6750: error_description holds printable ASCII except '"' and '\\'; anything else would break the header.
    quoted = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in detail[:200])
    return Problem(401, detail, headers={"WWW-Authenticate": f'Bearer error="invalid_token", '
                                                             f'error_description="{quoted}"'})


def bearer_token(request: HeadersOf) -> str | None:
    """The caller's bearer token (see `caller_authorization` for where it travels)."""
    found = caller_authorization(request)
    return None if found is None else parse_bearer(*found)


def parse_bearer(header: str, value: str) -> str:
    """The token of a `Bearer <token>` header value, or a 401 naming the header."""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(f"{header} must be 'Bearer <token>'")
    return token.strip()


def revoked_token() -> Problem:
    return _unauthorized("token has been revoked")


class InvalidToken(Exception):
    """Why a token is not valid; the message is safe to show (it never quotes the token)."""


KeyResolver = Callable[[str], tuple[str, Any]]  # kid -> (algorithm, a verification key PyJWT accepts)


def _verify(token: str, resolve_key: KeyResolver, *, issuer: str, audience: str, leeway_s: float) -> tuple[str, dict]:
    """(kid, claims) of a valid RFC 9068 access token, or `InvalidToken` saying what is wrong with it.

    The algorithm comes from the key, never from the token alone, so `alg: none` and HS256-with-a-public-key
    forgeries fail before any signature check.
    """
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("token is not a well-formed JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise InvalidToken(f"token algorithm {str(header.get('alg'))[:20]!r} is not accepted")
    if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
        raise InvalidToken("token is not an access token (typ must be at+jwt)")
    if not isinstance(header.get("kid"), str):
        raise InvalidToken("token has no kid")
    algorithm, key = resolve_key(header["kid"])
    if algorithm != header["alg"]:
        raise InvalidToken("token algorithm does not match its key")
    try:
        # The leeway forgives clock differences at the start of a token's life (nbf, iat), never at its end.
        claims = jwt.decode(token, key, algorithms=[algorithm], audience=audience, issuer=issuer, leeway=leeway_s,
                            options={"require": _REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token has expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("token is not valid yet") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("token audience is not accepted") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("token issuer is not accepted") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"token lacks the '{exc.claim}' claim") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("token signature is invalid") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"token is invalid: {exc}") from None
    if not isinstance(claims["exp"], (int, float)) or claims["exp"] <= time.time():
        raise InvalidToken("token has expired")
    return header["kid"], claims


class TokenVerifier:
    """Verifies access tokens and remembers the ones that were valid.

    A caller presents the same token on every request until it expires, and an ES256 verification costs a
    hundred times a dictionary lookup. Only valid tokens are remembered (the exact string is the key, so a
    forgery never matches), at most `capacity` of them; a remembered token is checked again for expiry and for
    its key still being published, so a retired or disabled key ends it exactly as a fresh verification would.
    """

    def __init__(self, resolve_key: KeyResolver, *, issuer: str, audience: str, leeway_s: float = CLOCK_LEEWAY_S,
                 capacity: int = 10_000, clock: Callable[[], float] = time.time):
        self.resolve_key = resolve_key
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._capacity = capacity
        self._clock = clock
        self._verified: dict[str, tuple[str, dict]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict:
        remembered = self._verified.get(token)
        if remembered is None:
            kid, claims = _verify(token, self.resolve_key, issuer=self.issuer, audience=self.audience,
                                  leeway_s=self.leeway_s)
            with self._lock:
                if len(self._verified) >= self._capacity:
                    del self._verified[next(iter(self._verified))]  # the oldest
                self._verified[token] = (kid, claims)
            return dict(claims)
        kid, claims = remembered
        if claims["exp"] <= self._clock():
            with self._lock:
                self._verified.pop(token, None)
            raise InvalidToken("token has expired")
        self.resolve_key(kid)  # InvalidToken once the key is no longer published
        return dict(claims)


def jwks_resolver(jwks_url: str, *, cache_s: float = 300, refetch_cooldown_s: float = 1.0) -> KeyResolver:
    """Keys from a JWKS URL, cached for `cache_s` and refetched (at most once per cooldown) on an unknown kid."""
    client = None

    def resolve(kid: str) -> tuple[str, object]:
        nonlocal client
        import jwt

        if client is None:
            client = jwt.PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=cache_s,
                                     cooldown_duration=refetch_cooldown_s, timeout=5)
        try:
            key = client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise Problem(503, "signing keys are unavailable; retry shortly", headers={"Retry-After": "1"}) from None
        except jwt.PyJWKClientError:
            raise InvalidToken("token was signed by an unknown key") from None
        return key.algorithm_name, key.key

    return resolve


class Guard:
    def __init__(self, verifier: TokenVerifier, *, is_revoked: Callable[[dict], bool] | None = None):
        self.verifier = verifier
        self.is_revoked = is_revoked

    def verify(self, token: str) -> dict:
        """The claims of a valid access token, or a 401 Problem saying what is wrong with it."""
        try:
            return self.verifier.verify(token)
        except InvalidToken as invalid:
            raise _unauthorized(str(invalid)) from None

    def claims(self, request: HeadersOf) -> dict:
        """The caller's verified claims, before any revocation check."""
        token = bearer_token(request)
        if token is None:
            raise Problem(401, "an access token is required", headers={"WWW-Authenticate": "Bearer"})
        return self.verify(token)

    def authenticate(self, request: HeadersOf) -> Principal:
        claims = self.claims(request)
        if self.is_revoked is not None and self.is_revoked(claims):
            raise revoked_token()
        return Principal.from_claims(claims)

    def require(self, request: HeadersOf, scope: str, tenant_id: str | None = None) -> Principal:
        """Authenticate, then demand `scope` and, for a tenant-scoped resource, that a tenant caller owns it.

        Platform callers (no `tenant_id` claim) reach any tenant with the scope; tenant callers only their own.
        """
        return self.authorize(self.authenticate(request), scope, tenant_id)

    def require_own_or(self, request: HeadersOf, scope: str, tenant_id: str) -> Principal:
        """A tenant caller reaches its own tenant whatever its scopes; a platform caller needs `scope`."""
        principal = self.authenticate(request)
        if principal.is_tenant:
            if principal.tenant_id != tenant_id:
                raise Problem(403, "token does not grant access to this tenant")
            return principal
        return self.authorize(principal, scope)

    def require_any(self, request: HeadersOf, scopes: tuple[str, ...], tenant_id: str | None = None) -> Principal:
        """As `require`, with any one of `scopes` enough (GET spend: `usage:read` or `billing:read`)."""
        principal = self.authenticate(request)
        held = next((scope for scope in scopes if scope in principal.scopes), scopes[0])
        return self.authorize(principal, held, tenant_id)

    @staticmethod
    def authorize(principal: Principal, scope: str, tenant_id: str | None = None) -> Principal:
        if scope not in principal.scopes:
            raise Problem(403, f"token lacks the '{scope}' scope",
                          headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
        if principal.is_tenant and tenant_id != principal.tenant_id:
            raise Problem(403, "token does not grant access to this tenant" if tenant_id else
                               "this operation is not available to tenant tokens")
        return principal


@cache
def default_guard() -> Guard:
    """The guard of a function other than auth: keys from the auth JWKS, revocation from Firestore."""
    from energent_shared.revocation import is_revoked

    config = settings()
    verifier = TokenVerifier(jwks_resolver(config.jwks_url), issuer=config.token_issuer, audience=config.token_audience)
    return Guard(verifier, is_revoked=is_revoked)
