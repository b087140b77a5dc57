"""Auth's pure rules: key rollover, client credentials and scopes, token claims."""

import base64
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from auth import credentials, keys, tokens

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ROLLOVER = keys.Rollover(activation_delay=timedelta(minutes=5), token_ttl=timedelta(minutes=15),
                         jwks_cache=timedelta(minutes=5))


def version(number: int, created: datetime) -> keys.KeyVersion:
    return keys.KeyVersion(f"projects/p/secrets/k/versions/{number}", created, keys.generate_pem())


def test_the_first_key_signs_at_once_and_a_new_key_only_after_the_delay():
    ring = ROLLOVER.keys([version(1, T0), version(2, T0 + timedelta(days=30))])
    rotated = T0 + timedelta(days=30)
    assert ROLLOVER.signing_key(ring, T0).number == 1
    assert ROLLOVER.signing_key(ring, rotated + timedelta(minutes=4, seconds=59)).number == 1
    assert ROLLOVER.signing_key(ring, rotated + timedelta(minutes=5)).number == 2


def test_a_new_key_is_published_at_once_and_the_old_one_until_its_tokens_and_caches_expire():
    rotated = T0 + timedelta(days=30)
    ring = ROLLOVER.keys([version(1, T0), version(2, rotated)])
    activated = rotated + timedelta(minutes=5)
    assert [k.number for k in ROLLOVER.published(ring, rotated)] == [1, 2]
    last_moment = activated + timedelta(minutes=20) - timedelta(seconds=1)
    assert [k.number for k in ROLLOVER.published(ring, last_moment)] == [1, 2]
    assert [k.number for k in ROLLOVER.published(ring, activated + timedelta(minutes=20))] == [2]


def test_published_keys_and_signing_key_hold_until_next_change():
    ring = ROLLOVER.keys([version(1, T0), version(2, T0 + timedelta(hours=1)), version(3, T0 + timedelta(hours=2))])

    def state(moment):
        return [k.number for k in ROLLOVER.published(ring, moment)], ROLLOVER.signing_key(ring, moment).number

    moment, changes = T0, []
    while moment < T0 + timedelta(hours=3):
        following = ROLLOVER.next_change(ring, moment)
        step = moment
        while step < min(following, T0 + timedelta(hours=3)):
            assert state(step) == state(moment)
            step += timedelta(seconds=30)
        changes.append(following)
        moment = following
    # the boundaries: each activation (2 and 3 after the delay) and 20 minutes after it (a grace running out)
    assert changes[:4] == [T0 + timedelta(minutes=20), T0 + timedelta(hours=1, minutes=5),
                           T0 + timedelta(hours=1, minutes=25), T0 + timedelta(hours=2, minutes=5)]
    assert ROLLOVER.next_change(ring, T0 + timedelta(days=1)).year == 9999


def test_the_ring_is_ordered_by_version_and_a_missing_ring_is_an_error():
    ring = ROLLOVER.keys([version(3, T0 + timedelta(days=2)), version(2, T0)])
    assert [k.number for k in ring] == [2, 3]
    assert ring[0].activates_at == T0  # the oldest enabled key needs no delay
    with pytest.raises(LookupError):
        ROLLOVER.signing_key([], T0)


def test_kid_is_the_rfc7638_thumbprint_and_jwk_is_public_only():
    key = ROLLOVER.keys([version(1, T0)])[0]
    jwk = key.jwk()
    assert key.kid == keys.thumbprint(jwk) == jwk["kid"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert jwk["alg"] == "ES256" and "d" not in jwk


def test_only_p256_keys_are_accepted():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ValueError, match="P-256"):
        keys.load_private_key(p384)


def test_secrets_are_256_bits_and_stored_as_a_hash_compared_exactly():
    secret = credentials.new_secret()
    assert len(secret) >= 43
    stored = credentials.hash_secret(secret)
    assert secret not in stored
    assert credentials.secret_matches(secret, stored)
    assert not credentials.secret_matches(secret + "x", stored)
    assert credentials.CLIENT_ID.match(credentials.new_client_id())


def test_requested_scopes_narrow_but_never_widen():
    held = frozenset({"usage:read", "billing:read"})
    assert credentials.requested_scopes(None, held) == held
    assert credentials.requested_scopes("usage:read", held) == {"usage:read"}
    with pytest.raises(credentials.ScopeError, match="does not hold clients:write"):
        credentials.requested_scopes("usage:read clients:write", held)
    with pytest.raises(credentials.ScopeError, match="space-separated"):
        credentials.requested_scopes("usage:read  billing:read", held)


@pytest.mark.parametrize("scopes, caller, error, message", [
    ([], {"clients:write"}, credentials.ScopeError, "non-empty array"),
    ("usage:read", {"clients:write"}, credentials.ScopeError, "non-empty array"),
    (["usage:write"], {"usage:write"}, credentials.ScopeError, "cannot hold usage:write"),
    (["tenants:admin"], {"tenants:admin"}, credentials.ScopeError, "cannot hold tenants:admin"),
    (["coffee:make"], {"clients:write"}, credentials.ScopeError, "unknown scope(s): coffee:make"),
    (["billing:read"], {"clients:write", "usage:read"}, credentials.ScopeNotHeld, "lacks billing:read"),
])
def test_new_tenant_clients_get_only_tenant_scopes_the_caller_holds(scopes, caller, error, message):
    with pytest.raises(error) as caught:
        credentials.tenant_client_scopes(scopes, frozenset(caller))
    assert message in str(caught.value)


def test_tokens_carry_the_rfc9068_claims():
    key = ROLLOVER.keys([version(1, T0)])[0]
    grant = tokens.Grant("cl_1", frozenset({"usage:read", "billing:read"}), "acme", "premium")
    claims = tokens.claims_for(grant, issuer="https://api", audience="energent-api", now=T0,
                               ttl=timedelta(minutes=15))
    token = tokens.sign(claims, key)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
    assert claims["sub"] == claims["client_id"] == "cl_1"
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    assert claims["scope"] == "billing:read usage:read"
    assert (claims["tenant_id"], claims["tier"]) == ("acme", "premium")
    operator = tokens.claims_for(tokens.Grant("op", frozenset({"tenants:admin"})), issuer="i", audience="a",
                                 now=T0, ttl=timedelta(minutes=1))
    assert "tenant_id" not in operator and "tier" not in operator
    assert operator["jti"] != claims["jti"]


def test_signed_tokens_verify_with_two_independent_jwt_libraries():
    """Our JWS signing against PyJWT and joserfc, until a signature whose R or S is shorter than 32 bytes (about
    1 in 128) has shown that it is still padded to the fixed width ES256 requires."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import ECKey

    key = ROLLOVER.keys([version(1, T0)])[0]
    public_pem = key.public_key.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    jose_key = ECKey.import_key(public_pem)
    short = 0
    for n in range(10_000):
        claims = {"sub": f"c{n}", "iat": 1, "scope": "usage:read", "name": "é\u4e2d"}
        token = tokens.sign(claims, key)
        raw_signature = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
        assert len(raw_signature) == 64
        short += raw_signature[0] == 0 or raw_signature[32] == 0
        assert jwt.decode(token, public_pem, algorithms=["ES256"], options={"verify_aud": False}) == claims
        assert jose_jwt.decode(token, jose_key, algorithms=["ES256"]).claims == claims
        if short and n >= 50:
            break
    assert short
    forged = tokens.sign({"sub": "c0"}, ROLLOVER.keys([version(2, T0)])[0])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public_pem, algorithms=["ES256"])


def test_a_rotation_notice_names_the_signing_secret_by_project_number_or_id():
    from energent_shared.secrets import same_secret

    configured = "projects/energent-dev/secrets/auth-signing-key"  # SIGNING_KEY_SECRET, as deployed
    assert same_secret("projects/123456789012/secrets/auth-signing-key", configured)  # Secret Manager's notice
    assert same_secret(configured, configured)
    assert not same_secret("projects/123456789012/secrets/operator-client", configured)
    assert not same_secret("projects/energent-prod/secrets/auth-signing-key", configured)
    assert not same_secret("projects/123/secrets/auth-signing-key", "projects/456/secrets/auth-signing-key")
    assert not same_secret("auth-signing-key", configured) and not same_secret("", configured)
