"""Portal sessions: one-time sign-in links to the tenant portal, redeemed like OAuth authorization codes.

The flow is RFC 6749's authorization code grant with the authorization step replaced by whoever may act for the
tenant (the operator, or the tenant's own client with `billing:read`) asking for a link:

1. `POST /v1/tenants/{t}/portal-sessions` makes a code: 256 random bits, of which only the SHA-256 is stored
   (`portal_codes/{hash}`), bound to the tenant, the creator and the creator's scopes (an operator's: every tenant
   scope), valid `CODE_TTL`. The link is `<issuer>/portal/login?code=<code>`.
2. The portal redeems it at the token endpoint (`grant_type=authorization_code`), authenticated as its own client
   (its secret lives in Secret Manager, as the operator's does); no other client may. The redemption is one
   Firestore transaction that reads the code and marks it used, so of two racing redemptions exactly one commits:
   the other is retried by the transaction, sees the code used, and gets `invalid_grant`. A code used a second time
   also ends the session it started (RFC 6749 §4.1.2: a code seen twice was likely stolen).
3. The redemption starts a session of at most `SESSION_TTL` (`portal_sessions/{sid}`) and answers an access token
   plus a session handle (the `refresh_token`): 256 random bits again, `sid` being its SHA-256, so the handle is
   stored nowhere. With the handle the portal gets fresh access tokens (`grant_type=refresh_token`) until the
   session ends; an access token never outlives its session.

A session's tokens carry `sid`, the creator as `client_id` and the creator's token as `creator_jti`, with the
session's tenant and scopes. Revocation (`energent_shared.revocation`) reads the session and the creator token's
revocation entry beside the client and tenant records it already reads: a token dies when its session is ended
(sign-out revokes the handle), when the token that asked for the link is revoked (RFC 7009: what a leaked token
opened goes with it), when the creator client is deleted (the creator's record is read unless the creator is the
operator, who has none), when the tenant is being deleted, and at the session's end. A session's token cannot open
another session, so a session never extends itself.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass

from energent_shared import firestore
from energent_shared.guard import TENANT_SCOPES, Principal
from energent_shared.revocation import PORTAL_SESSIONS
from energent_shared.tenants import GONE

PORTAL_CODES = "portal_codes"
CODE_TTL = datetime.timedelta(minutes=10)
SESSION_TTL = datetime.timedelta(hours=1)
LOGIN_PATH = "/portal/login"


class GrantRefused(Exception):
    """The code or handle gives nothing (RFC 6749 `invalid_grant`); the message says why, without the secret."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def session_scopes(creator: Principal) -> frozenset[str]:
    """What a session may do: the operator's session every tenant scope, anyone else's the tenant scopes it holds."""
    if not creator.is_tenant and "tenants:admin" in creator.scopes:
        return TENANT_SCOPES
    return creator.scopes & TENANT_SCOPES


def new_code(tenant_id: str, creator: Principal, now: datetime.datetime) -> tuple[str, dict]:
    """(the code, the record stored under its hash)."""
    code = secrets.token_urlsafe(32)
    expires = now + CODE_TTL
    return code, {"tenant_id": tenant_id, "scopes": sorted(session_scopes(creator)),
                  "creator_client_id": creator.client_id, "creator_jti": creator.claims["jti"],
                  "operator": not creator.is_tenant,
                  "created_at": now, "expires_at": expires, "expire_at": expires + SESSION_TTL, "used_at": None,
                  "session": None}


@dataclass(frozen=True)
class Session:
    sid: str
    tenant_id: str
    scopes: frozenset[str]
    creator_client_id: str
    creator_jti: str
    operator: bool
    ends_at: datetime.datetime

    @classmethod
    def of(cls, sid: str, record: dict) -> Session:
        return cls(sid, record["tenant_id"], frozenset(record["scopes"]), record["creator_client_id"],
                   record["creator_jti"], bool(record["operator"]), record["ends_at"])


def creator_refusal(session_or_code: dict, client: dict | None, tenant: dict | None,
                    creator_revoked: dict | None) -> str | None:
    """Why the creator, its token or the tenant no longer allows the session, or None."""
    if tenant is None or tenant.get("status") in GONE:
        return "the tenant is no longer active"
    if creator_revoked is not None:
        return "the token that asked for the link was revoked"
    if not session_or_code["operator"] and (client is None or client.get("active") is not True):
        return "the client that opened this session was deleted"
    return None


def _read(snapshots, *refs) -> list[dict | None]:
    """The records of `refs` from a `get_all`, whose answers come in no particular order."""
    found = {snapshot.reference.path: snapshot.to_dict() if snapshot.exists else None for snapshot in snapshots}
    return [found.get(ref.path) for ref in refs]


class PortalStore:
    """`portal_codes/{sha256(code)}` and `portal_sessions/{sha256(handle)}`; both carry `expire_at` for a TTL
    policy, so neither collection grows."""

    def __init__(self, db):
        self.db = db

    def create_code(self, code: str, record: dict) -> None:
        self.db.collection(PORTAL_CODES).document(digest(code)).create(record)

    def _creator_refs(self, record: dict):
        from energent_shared.revocation import CLIENTS, REVOKED_TOKENS

        return (self.db.collection(CLIENTS).document(record["creator_client_id"]),
                firestore.tenant_doc(record["tenant_id"], db=self.db),
                self.db.collection(REVOKED_TOKENS).document(record["creator_jti"]))

    def redeem(self, code: str, now: datetime.datetime) -> tuple[str, Session, str | None]:
        """(handle, session, tier) for an unused, unexpired code, in one transaction; `GrantRefused` otherwise."""
        code_ref = self.db.collection(PORTAL_CODES).document(digest(code))

        def redeem(transaction) -> tuple[str, Session, str | None] | str:
            found = code_ref.get(transaction=transaction)
            if not found.exists:
                return "the link is not valid"
            record = found.to_dict()
            if record.get("used_at") is not None:
                if record.get("session"):  # seen twice: whoever redeemed it first loses the session too
                    transaction.set(self.db.collection(PORTAL_SESSIONS).document(record["session"]),
                                    {"active": False, "ended_at": now, "ended_because": "link used again"},
                                    merge=True)
                return "the link was already used"
            if record["expires_at"] <= now:
                return "the link has expired"
            refs = self._creator_refs(record)
            client, tenant, revoked = _read(transaction.get_all(list(refs)), *refs)
            refusal = creator_refusal(record, client, tenant, revoked)
            if refusal:
                return refusal
            handle = secrets.token_urlsafe(32)
            sid = digest(handle)
            ends = now + SESSION_TTL
            session = {"tenant_id": record["tenant_id"], "scopes": record["scopes"],
                       "creator_client_id": record["creator_client_id"], "creator_jti": record["creator_jti"],
                       "operator": record["operator"],
                       "created_at": now, "ends_at": ends, "expire_at": ends, "active": True}
            transaction.create(self.db.collection(PORTAL_SESSIONS).document(sid), session)
            transaction.update(code_ref, {"used_at": now, "session": sid})
            return handle, Session.of(sid, session), (tenant or {}).get("tier")

        outcome = firestore.run_transaction(redeem, db=self.db)
        if isinstance(outcome, str):
            raise GrantRefused(outcome)
        return outcome

    def refresh(self, handle: str, now: datetime.datetime) -> tuple[Session, str | None]:
        """The live session a handle names and its tenant's tier, read afresh; `GrantRefused` otherwise."""
        session_ref = self.db.collection(PORTAL_SESSIONS).document(digest(handle))
        found = session_ref.get()
        if not found.exists:
            raise GrantRefused("the session is not valid")
        record = found.to_dict()
        if record.get("active") is not True:
            raise GrantRefused("the session was ended")
        if record["ends_at"] <= now:
            raise GrantRefused("the session has ended")
        refs = self._creator_refs(record)
        client, tenant, revoked = _read(self.db.get_all(list(refs)), *refs)
        refusal = creator_refusal(record, client, tenant, revoked)
        if refusal:
            raise GrantRefused(refusal)
        return Session.of(session_ref.id, record), (tenant or {}).get("tier")

    def end(self, handle: str, now: datetime.datetime) -> bool:
        """Ends the session a handle names (sign-out); False if there is none."""
        session_ref = self.db.collection(PORTAL_SESSIONS).document(digest(handle))
        from google.api_core.exceptions import NotFound

        try:
            session_ref.update({"active": False, "ended_at": now, "ended_because": "signed out"})
        except NotFound:
            return False
        return True
