"""The shared guard against tokens signed by real keys, with the JWKS fetched over HTTP."""

import base64
import json
import time

import flask
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from energent_shared.guard import Guard, InvalidToken, TokenVerifier, jwks_resolver
from energent_shared.http import Problem
from tests.support import AUDIENCE, ISSUER, JwksServer, SigningKey

app = flask.Flask(__name__)


@pytest.fixture
def key():
    return SigningKey()


@pytest.fixture
def jwks(key):
    server = JwksServer(key)
    yield server
    server.close()


@pytest.fixture
def guard(jwks):
    return Guard(TokenVerifier(jwks_resolver(jwks.url, refetch_cooldown_s=0), issuer=ISSUER, audience=AUDIENCE))


def call(guard_method, headers, *args, **kwargs):
    with app.test_request_context("/", headers=headers):
        return guard_method(flask.request, *args, **kwargs)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def rejection(guard, headers, *args, **kwargs) -> Problem:
    with pytest.raises(Problem) as caught:
        call(guard.require, headers, *args, **kwargs)
    return caught.value


def test_a_valid_token_yields_its_principal(guard, key):
    principal = call(guard.authenticate, bearer(key.token(scope="usage:read billing:read", tenant_id="acme",
                                                          tier="basic")))
    assert principal.client_id == "client-1"
    assert principal.scopes == {"usage:read", "billing:read"}
    assert (principal.tenant_id, principal.tier) == ("acme", "basic")


def forged_tokens(key: SigningKey):
    public_pem = key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "c", "client_id": "c", "iat": now, "exp": now + 600, "jti": "j"}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid, "typ": "at+jwt"})
    header, _payload, signature = key.token().split(".")
    tampered_payload = base64.urlsafe_b64encode(json.dumps({**claims, "scope": "tenants:admin"}).encode())
    return {
        "alg none": (unsigned, "algorithm 'none'"),
        "HS256 with the public key": (_hs256(claims, public_pem, key.kid), "algorithm 'HS256'"),
        "foreign key under a known kid": (SigningKey(kid=key.kid).token(), "signature is invalid"),
        "tampered payload": (f"{header}.{tampered_payload.decode().rstrip('=')}.{signature}", "signature is invalid"),
        "expired": (key.token(exp=now - 1), "expired"),
        "not yet valid": (key.token(nbf=now + 120), "not valid yet"),
        "wrong issuer": (key.token(iss="https://evil.example"), "issuer"),
        "wrong audience": (key.token(aud="other-api"), "audience"),
        "unknown kid": (SigningKey().token(), "unknown key"),
        "not an access token": (key.token(headers={"typ": "JWT"}), "typ must be at+jwt"),
        "no jti": (key.token(jti=None), "'jti'"),
        "garbage": ("not.a.jwt", "well-formed"),
    }


def _hs256(claims, secret: bytes, kid: str) -> str:
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': kid, 'typ': 'at+jwt'}).encode())}." \
                    f"{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize("case", list(forged_tokens(SigningKey())))
def test_forged_and_invalid_tokens_are_refused_with_401(guard, key, case):
    token, reason = forged_tokens(key)[case]
    problem = rejection(guard, bearer(token), "usage:read")
    assert problem.status == 401
    assert reason in problem.detail
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_token_is_401(guard):
    assert rejection(guard, {}, "usage:read").status == 401


def test_a_new_kid_triggers_one_jwks_refresh(guard, jwks, key):
    call(guard.authenticate, bearer(key.token()))
    rotated = SigningKey()
    jwks.keys.append(rotated)
    before = jwks.fetches
    assert call(guard.authenticate, bearer(rotated.token())).client_id == "client-1"
    call(guard.authenticate, bearer(rotated.token()))
    assert jwks.fetches == before + 1


def test_the_forwarded_authorization_header_wins(guard, key):
    headers = {"Authorization": "Bearer gateway-identity-token", "X-Forwarded-Authorization": f"Bearer {key.token()}"}
    assert call(guard.authenticate, headers).client_id == "client-1"


def test_scope_and_tenant_checks(guard, key):
    tenant_token = key.token(scope="usage:read", tenant_id="acme")
    assert call(guard.require, bearer(tenant_token), "usage:read", "acme").tenant_id == "acme"
    assert rejection(guard, bearer(tenant_token), "usage:read", "globex").status == 403
    lacking = rejection(guard, bearer(tenant_token), "billing:read", "acme")
    assert lacking.detail == "token lacks the 'billing:read' scope"
    assert rejection(guard, bearer(tenant_token), "usage:read").status == 403  # platform-only operation
    operator = key.token(scope="usage:read tenants:admin")
    assert call(guard.require, bearer(operator), "usage:read", "globex").tenant_id is None


def test_revoked_tokens_are_refused(jwks, key):
    revoked = set()
    guard = Guard(TokenVerifier(jwks_resolver(jwks.url), issuer=ISSUER, audience=AUDIENCE),
                  is_revoked=lambda c: c["jti"] in revoked)
    token = key.token(jti="j-1")
    call(guard.authenticate, bearer(token))
    revoked.add("j-1")
    assert rejection(guard, bearer(token), "usage:read").detail == "token has been revoked"


def test_the_gateways_userinfo_header_alone_grants_nothing(key):
    """Whoever may invoke a function can write X-Apigateway-Api-Userinfo: only a verified token counts."""
    guard = Guard(TokenVerifier(static_resolver(key)[0], issuer=ISSUER, audience=AUDIENCE))
    operator = {"client_id": "op", "sub": "op", "jti": "a", "scope": "tenants:admin usage:write"}
    userinfo = base64.urlsafe_b64encode(json.dumps(operator).encode()).decode().rstrip("=")
    assert rejection(guard, {"X-Apigateway-Api-Userinfo": userinfo}, "tenants:admin").status == 401
    tenant = key.token(scope="usage:read", tenant_id="acme")
    forbidden = rejection(guard, {"X-Apigateway-Api-Userinfo": userinfo, "Authorization": f"Bearer {tenant}"},
                          "tenants:admin")
    assert forbidden.status == 403  # the verified token speaks, not the header


def test_clock_leeway_forgives_a_token_issued_a_moment_ahead_but_not_an_expired_one(key):
    now = int(time.time())
    verifier = TokenVerifier(static_resolver(key)[0], issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify(key.token(nbf=now + 10, iat=now + 10))["nbf"] == now + 10
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(key.token(exp=now - 1))


def static_resolver(*keys: SigningKey):
    published = {k.kid: k for k in keys}

    def resolve(kid):
        if kid not in published:
            raise InvalidToken("token was signed by an unknown key")
        return "ES256", published[kid].private.public_key()

    return resolve, published


def test_a_remembered_token_is_refused_once_it_expires(key):
    now = [time.time()]
    verifier = TokenVerifier(static_resolver(key)[0], issuer=ISSUER, audience=AUDIENCE, clock=lambda: now[0])
    token = key.token(exp=int(now[0]) + 60)
    assert verifier.verify(token)["exp"] == int(now[0]) + 60
    assert verifier.verify(token)["jti"]  # remembered
    now[0] += 61
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_a_remembered_token_is_refused_once_its_key_is_unpublished(key):
    resolve, published = static_resolver(key)
    verifier = TokenVerifier(resolve, issuer=ISSUER, audience=AUDIENCE)
    token = key.token()
    verifier.verify(token)
    del published[key.kid]
    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(token)


def test_remembered_tokens_are_bounded_and_invalid_ones_never_remembered(key):
    verifier = TokenVerifier(static_resolver(key)[0], issuer=ISSUER, audience=AUDIENCE, capacity=2)
    tokens = [key.token() for _ in range(3)]
    for token in tokens:
        verifier.verify(token)
    with pytest.raises(InvalidToken):
        verifier.verify(key.token(aud="other-api"))
    assert list(verifier._verified) == tokens[1:]
    assert [verifier.verify(t)["jti"] for t in tokens] == [jwt.decode(t, options={"verify_signature": False})["jti"]
                                                          for t in tokens]


def test_a_tenant_reaches_its_own_tenant_with_any_scope_and_the_operator_needs_the_scope(key):
    guard = Guard(TokenVerifier(static_resolver(key)[0], issuer=ISSUER, audience=AUDIENCE))
    own = bearer(key.token(scope="usage:read", tenant_id="acme"))
    assert call(guard.require_own_or, own, "tenants:admin", "acme").tenant_id == "acme"
    with pytest.raises(Problem) as caught:
        call(guard.require_own_or, own, "tenants:admin", "other")
    assert caught.value.status == 403
    assert call(guard.require_own_or, bearer(key.token(scope="tenants:admin")), "tenants:admin", "acme").scopes
    with pytest.raises(Problem) as caught:
        call(guard.require_own_or, bearer(key.token(scope="usage:write")), "tenants:admin", "acme")
    assert caught.value.status == 403
