"""What auth does, over its adapters: issue, introspect and revoke tokens, manage tenant clients, publish and
rotate signing keys. Pure rules live in keys, tokens and credentials; I/O in store."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

from auth import credentials, keys, portal, store, tokens
from auth.oauth import ClientCredentials, OAuthError, invalid_client
from auth.settings import AuthSettings
from energent_shared import fields, firestore, secrets
from energent_shared.clock import rfc3339, utcnow
from energent_shared.errors import Conflict, Forbidden, Invalid, NotFound
from energent_shared.events import PubSubMessage
from energent_shared.guard import ALL_SCOPES, InvalidToken, TokenVerifier
from energent_shared.logging import get_logger, log_event
from energent_shared.paging import page_size_param
from energent_shared.tenants import GONE

logger = get_logger("auth")
ROTATION_LEASE = datetime.timedelta(minutes=2)


class RotationInProgress(RuntimeError):
    """Another delivery of the same notification is rotating right now; retry later."""


@dataclass
class Auth:
    settings: AuthSettings
    issuer: str
    audience: str
    clients: store.ClientStore
    revocations: store.RevocationStore
    signing_keys: store.SigningKeyStore
    db: Any
    verifier: TokenVerifier = field(init=False)
    _loaded: tuple[list, list[keys.SigningKey]] = field(init=False, default=([], []))
    _published: tuple[list, datetime.datetime, dict[str, keys.SigningKey]] = field(
        init=False, default=([], datetime.datetime.min.replace(tzinfo=datetime.UTC), {}))

    def __post_init__(self) -> None:
        self.verifier = TokenVerifier(self.resolve_key, issuer=self.issuer, audience=self.audience)

    # --- keys -------------------------------------------------------------------------------------------------

    async def keys_loaded(self) -> None:
        """Listing the signing keys again once their cache has expired is a blocking Secret Manager call: done in
        a worker thread, so the event loop never waits on it."""
        if not self.signing_keys.is_fresh():
            import asyncio

            await asyncio.to_thread(self.signing_keys.versions)

    def _keys(self) -> list[keys.SigningKey]:
        versions = self.signing_keys.versions()
        loaded_from, loaded = self._loaded
        if versions is not loaded_from:  # the store hands out the same list until it lists the versions again
            loaded = self.settings.rollover.keys(versions)
            self._loaded = (versions, loaded)
        return loaded

    def jwks(self, now: datetime.datetime | None = None) -> dict:
        published = self.settings.rollover.published(self._keys(), now or utcnow())
        return {"keys": [key.jwk() for key in published]}

    def resolve_key(self, kid: str) -> tuple[str, object]:
        """Verification keys straight from the published set: auth never fetches its own JWKS over HTTP. The set
        is worked out again only when the versions were listed again or a key activated or retired since."""
        now, all_keys = utcnow(), self._keys()
        computed_for, valid_until, by_kid = self._published
        if all_keys is not computed_for or now >= valid_until:
            rollover = self.settings.rollover
            by_kid = {key.kid: key for key in rollover.published(all_keys, now)}
            self._published = (all_keys, rollover.next_change(all_keys, now), by_kid)
        if kid not in by_kid:
            raise InvalidToken("token was signed by an unknown key")
        return keys.ALGORITHM, by_kid[kid].public_key

    # --- client authentication and tokens ---------------------------------------------------------------------

    async def authenticate_client(self, given: ClientCredentials) -> tokens.Grant:
        """The grant a client may receive, or `invalid_client` — one answer for every failure, so a caller
        cannot tell an unknown client from a wrong secret. The client's and its tenant's records are read on
        every call: a deleted client or tenant gets nothing from the next request on."""
        operator_id, operator_secret = self.operator_credentials()
        if hmac.compare_digest(given.client_id.encode(), operator_id.encode()):
            if hmac.compare_digest(given.client_secret.encode(), operator_secret.encode()):
                return tokens.Grant(operator_id, ALL_SCOPES)
            return self._refuse(given.client_id, "wrong_secret")
        portal_client = self.portal_credentials()
        if portal_client and hmac.compare_digest(given.client_id.encode(), portal_client[0].encode()):
            # The portal holds no scope itself: it only redeems sign-in links and refreshes their sessions.
            if hmac.compare_digest(given.client_secret.encode(), portal_client[1].encode()):
                return tokens.Grant(portal_client[0], frozenset())
            return self._refuse(given.client_id, "wrong_secret")
        if not credentials.CLIENT_ID.match(given.client_id):
            return self._refuse(None, "malformed_client_id")
        record, tenant = await self.clients.with_tenant(given.client_id)
        if record is None:
            return self._refuse(given.client_id, "unknown_client")
        if not credentials.secret_matches(given.client_secret, record["secret_hash"]):
            return self._refuse(given.client_id, "wrong_secret")
        if not record.get("active"):
            return self._refuse(given.client_id, "client_deleted")
        if tenant is None or tenant.get("status") in GONE:
            return self._refuse(given.client_id, "tenant_gone")
        return tokens.Grant(record["client_id"], frozenset(record["scopes"]), record["tenant_id"], tenant.get("tier"))

    def operator_credentials(self) -> tuple[str, str]:
        return store.operator_credentials(self.settings.operator_client_secret)

    def portal_credentials(self) -> tuple[str, str] | None:
        """The portal client's (id, secret), or None where no portal is deployed."""
        secret = self.settings.portal_client_secret
        return store.operator_credentials(secret) if secret else None

    def is_portal(self, grant: tokens.Grant) -> bool:
        found = self.portal_credentials()
        return found is not None and grant.client_id == found[0]

    def _refuse(self, client_id: str | None, reason: str):
        log_event(logger, "client.authentication_failed", severity=logging.WARNING, client_id=client_id,
                  reason=reason)
        raise invalid_client("unknown client or wrong secret")

    async def issue_token(self, given: ClientCredentials, scope: str | None) -> dict:
        grant = await self.authenticate_client(given)
        if self.is_portal(grant):
            raise OAuthError("unauthorized_client", "this client may only redeem portal sign-in links")
        try:
            scopes = credentials.requested_scopes(scope, grant.scopes)
        except credentials.ScopeError as error:
            raise OAuthError("invalid_scope", str(error)) from None
        grant = tokens.Grant(grant.client_id, scopes, grant.tenant_id, grant.tier)
        await self.keys_loaded()  # they may have expired while the records were read
        now = utcnow()
        ttl = self.settings.rollover.token_ttl
        key = self.settings.rollover.signing_key(self._keys(), now)
        claims = tokens.claims_for(grant, issuer=self.issuer, audience=self.audience, now=now, ttl=ttl)
        return {"access_token": tokens.sign(claims, key), "token_type": "Bearer",
                "expires_in": int(ttl.total_seconds()), "scope": claims["scope"]}

    # --- portal sessions (auth/portal.py) -----------------------------------------------------------------------

    def open_portal_session(self, tenant_id: str, body: dict, creator) -> dict:
        """A one-time sign-in link for the tenant's portal, acting with the creator's scopes."""
        fields.only(body, set())
        if creator.claims.get("sid") is not None:
            raise Forbidden("a portal session cannot open another one")
        self._live_tenant(tenant_id)
        now = utcnow()
        code, record = portal.new_code(tenant_id, creator, now)
        portal.PortalStore(self.db).create_code(code, record)
        log_event(logger, "portal.link_created", tenant_id=tenant_id, created_by=creator.client_id,
                  scopes=record["scopes"])
        return {"url": f"{self.issuer}{portal.LOGIN_PATH}?code={code}",
                "expires_at": rfc3339(record["expires_at"], "seconds")}

    def _session_token(self, session: portal.Session, tier: str | None, now: datetime.datetime) -> dict:
        ttl = min(self.settings.rollover.token_ttl, session.ends_at - now)
        grant = tokens.Grant(session.creator_client_id, session.scopes, session.tenant_id, tier)
        key = self.settings.rollover.signing_key(self._keys(), now)
        claims = {**tokens.claims_for(grant, issuer=self.issuer, audience=self.audience, now=now, ttl=ttl),
                  "sid": session.sid, "creator_jti": session.creator_jti}
        return {"access_token": tokens.sign(claims, key), "token_type": "Bearer",
                "expires_in": int(claims["exp"] - claims["iat"]), "scope": claims["scope"],
                "tenant_id": session.tenant_id,
                "refresh_token_expires_in": int((session.ends_at - now).total_seconds())}

    async def portal_grant(self, given: ClientCredentials, grant_type: str, form: dict[str, str]) -> dict:
        """`authorization_code` (a sign-in link's code) or `refresh_token` (a session handle), for the portal only."""
        import asyncio

        grant = await self.authenticate_client(given)
        if not self.is_portal(grant):
            raise OAuthError("unauthorized_client", f"this client may not use the {grant_type} grant")
        secret = form.get("code" if grant_type == "authorization_code" else "refresh_token")
        if not secret:
            raise OAuthError("invalid_request", "code is required" if grant_type == "authorization_code" else
                             "refresh_token is required")
        store_ = portal.PortalStore(self.db)
        now = utcnow()
        try:
            if grant_type == "authorization_code":
                handle, session, tier = await asyncio.to_thread(store_.redeem, secret, now)
            else:
                handle = None
                session, tier = await asyncio.to_thread(store_.refresh, secret, now)
        except portal.GrantRefused as refused:
            log_event(logger, "portal.grant_refused", severity=logging.WARNING, grant_type=grant_type,
                      reason=str(refused))
            raise OAuthError("invalid_grant", str(refused)) from None
        await self.keys_loaded()
        issued = self._session_token(session, tier, utcnow())
        if handle is not None:
            issued["refresh_token"] = handle
            log_event(logger, "portal.session_started", tenant_id=session.tenant_id, sid=session.sid,
                      created_by=session.creator_client_id)
        return issued

    def end_portal_session(self, handle: str) -> None:
        if portal.PortalStore(self.db).end(handle, utcnow()):
            log_event(logger, "portal.session_ended", sid=portal.digest(handle))

    def verify(self, token: str) -> dict:
        return self.verifier.verify(token)

    def valid_claims(self, token: str) -> dict | None:
        """The claims of a valid token, None for anything else (RFC 7662 does not say why)."""
        try:
            return self.verify(token)
        except InvalidToken:
            return None

    def revoke(self, grant: tokens.Grant, token: str) -> None:
        """RFC 7009 for an authenticated client: the same answer whatever the token; only the client's own valid
        tokens are revoked."""
        try:
            claims = self.verify(token)
        except InvalidToken:
            return
        if claims["client_id"] != grant.client_id:
            return
        # Kept past the token's own end while a portal session it opened may live (the sessions read the entry).
        expires_at = datetime.datetime.fromtimestamp(claims["exp"], datetime.UTC) + portal.CODE_TTL + \
            portal.SESSION_TTL
        self.revocations.revoke(claims["jti"], grant.client_id, expires_at)
        log_event(logger, "token.revoked", client_id=grant.client_id, jti=claims["jti"])

    # --- tenant clients ---------------------------------------------------------------------------------------

    def _live_tenant(self, tenant_id: str) -> dict:
        tenant = store.tenant_record(tenant_id, db=self.db)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        if tenant.get("status") in GONE:
            raise Conflict(f"tenant {tenant_id} is {tenant['status']}")
        return tenant

    def create_client(self, tenant_id: str, body: dict, caller_client_id: str, caller_scopes: frozenset[str]) -> dict:
        fields.only(body, {"scopes", "name"})
        scopes = credentials.tenant_client_scopes(body.get("scopes"), caller_scopes)
        name = fields.text(body, "name", credentials.MAX_NAME_LENGTH, required=False)
        self._live_tenant(tenant_id)
        secret = credentials.new_secret()
        record = {"client_id": credentials.new_client_id(), "tenant_id": tenant_id, "name": name,
                  "scopes": sorted(scopes), "secret_hash": credentials.hash_secret(secret), "active": True,
                  "created_at": utcnow(), "created_by": caller_client_id}
        self.clients.create(record)
        log_event(logger, "client.created", client_id=record["client_id"], tenant_id=tenant_id,
                  scopes=record["scopes"], created_by=caller_client_id)
        return {**public_client(record), "client_secret": secret}

    def list_clients(self, tenant_id: str, page_size: str | None, page_token: str | None) -> dict:
        size = page_size_param(page_size)
        after = decode_page_token(page_token)
        records = self.clients.active_for_tenant(tenant_id, size + 1, after)
        page = records[:size]
        next_token = encode_page_token(page[-1]["client_id"]) if len(records) > size else ""
        return {"clients": [public_client(r) for r in page], "next_page_token": next_token}

    def delete_client(self, tenant_id: str, client_id: str, caller_client_id: str) -> None:
        if not credentials.CLIENT_ID.match(client_id) or not self.clients.deactivate(
                tenant_id, client_id, f"deleted by {caller_client_id}"):
            raise NotFound(f"tenant {tenant_id} has no client {client_id}")
        log_event(logger, "client.deleted", client_id=client_id, tenant_id=tenant_id, deleted_by=caller_client_id)

    # --- rotation ---------------------------------------------------------------------------------------------

    def rotate(self, message: PubSubMessage) -> str:
        """Handle a Secret Manager notification; a SECRET_ROTATE of the signing secret adds one key, however
        often it is delivered. Returns what happened."""
        event_type, secret_id = message.attribute("eventType"), message.attribute("secretId")
        if event_type != "SECRET_ROTATE" or not secrets.same_secret(secret_id or "", self.signing_keys.secret):
            log_event(logger, "rotation.ignored", event_type=event_type, secret_id=secret_id)
            return "ignored"
        notified_at = message.attribute("timestamp") or message.message_id or ""
        rotation_id = hashlib.sha256(f"{secret_id}|{notified_at}".encode()).hexdigest()[:40]
        ref = self.db.collection(store.ROTATIONS).document(rotation_id)
        now = utcnow()
        claim = {"state": "started", "started_at": now, "secret": secret_id, "notified_at": notified_at}
        if not firestore.create_if_absent(ref, claim):
            snapshot = ref.get()
            if snapshot.get("state") == "done":
                log_event(logger, "rotation.duplicate", secret_id=secret_id, version=snapshot.get("version"))
                return "duplicate"
            if snapshot.get("started_at") + ROTATION_LEASE > now:
                raise RotationInProgress(f"rotation {rotation_id} is in progress")
            # The earlier attempt died; take over its claim unless someone else just did.
            ref.update({"started_at": now}, option=self.db.write_option(last_update_time=snapshot.update_time))
            started_at = snapshot.get("started_at")
        else:
            started_at = now
        self.signing_keys.invalidate()
        versions = self.signing_keys.versions()
        # An earlier attempt may have added the version and died before recording it.
        added = [v for v in versions if v.created_at >= started_at]
        pending = None if added else self.pending_key(utcnow())
        if pending is not None:  # another rotation's key has yet to activate: a second one would never sign
            return self._skipped(ref, secret_id, pending.version)
        if not added:
            newest = max((v.name for v in versions), key=lambda name: int(name.rsplit("/", 1)[1]), default="none")
            if not self._claim_successor(newest, rotation_id, now):  # a concurrent rotation adds the next key
                return self._skipped(ref, secret_id, newest)
        version = added[-1].name if added else self.signing_keys.add(keys.generate_pem())
        ref.update({"state": "done", "version": version, "finished_at": utcnow()})
        log_event(logger, "key.rotated", secret_id=secret_id, version=version)
        self._disable_retired(utcnow())
        return "rotated"

    def _claim_successor(self, newest: str, rotation_id: str, now: datetime.datetime) -> bool:
        """Whether this rotation may add the version after `newest`: one rotation does, however many race (a claim
        left by one that died is taken over once its lease has run out)."""
        successor = self.db.collection(store.SUCCESSORS).document(newest.replace("/", "~"))
        if firestore.create_if_absent(successor, {"rotation": rotation_id, "claimed_at": now}):
            return True
        claimed = successor.get()
        if claimed.get("rotation") == rotation_id:
            return True
        if claimed.get("claimed_at") + ROTATION_LEASE > now:
            return False
        from google.api_core.exceptions import FailedPrecondition

        try:
            successor.update({"rotation": rotation_id, "claimed_at": now},
                             option=self.db.write_option(last_update_time=claimed.update_time))
        except FailedPrecondition:
            return False
        return True

    def _skipped(self, ref, secret_id: str | None, because_of: str) -> str:
        ref.update({"state": "done", "version": None, "skipped_for": because_of, "finished_at": utcnow()})
        log_event(logger, "rotation.skipped", secret_id=secret_id, because_of=because_of)
        return "skipped"

    def pending_key(self, now: datetime.datetime) -> keys.SigningKey | None:
        """The key a rotation added that has not activated yet, if any (from the versions as last listed)."""
        return self.settings.rollover.pending(self._keys(), now)

    def _disable_retired(self, now: datetime.datetime) -> None:
        """Versions past their publication window are disabled, so they can never sign or verify again."""
        all_keys = self._keys()
        keep = {key.version for key in self.settings.rollover.published(all_keys, now)}
        for key in all_keys:
            if key.version not in keep:
                self.signing_keys.disable(key.version)
                log_event(logger, "key.retired", version=key.version, kid=key.kid)


def introspection(claims: dict | None, revoked: bool) -> dict:
    """RFC 7662: anything not valid, for whatever reason, is just inactive."""
    if claims is None or revoked:
        return {"active": False}
    return {"active": True, "token_type": "Bearer", **claims}


def tenant_deleted(clients: store.ClientStore, tenant_id: str) -> int:
    """Every client of a deleted tenant stops working; repeating it changes nothing."""
    count = clients.deactivate_all(tenant_id, "tenant deleted")
    log_event(logger, "tenant.clients_revoked", tenant_id=tenant_id, clients=count)
    return count


def public_client(record: dict) -> dict:
    return {"client_id": record["client_id"], "tenant_id": record["tenant_id"], "name": record.get("name"),
            "scopes": record["scopes"], "created_at": record["created_at"]}


def encode_page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_page_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        last_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 underneath
        raise Invalid("page_token is not valid") from None
    if not credentials.CLIENT_ID.match(last_id):
        raise Invalid("page_token is not valid")
    return last_id
