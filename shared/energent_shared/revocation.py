"""Is a verified token still good? API Gateway verifies statelessly, so every function asks this too.

A token is revoked when its `jti` is on the revocation list (entries expire with the tokens, through a
Firestore TTL policy on `expire_at`) or, for a tenant client, when its client is gone or no longer active, or
its tenant is being deleted (the DELETE marks the tenant before it answers, so no token of it works afterwards,
whether or not the tenant-events consumer has run). A portal session's token (claim `sid`, see auth/portal.py)
is also revoked once its session was ended or has run out, or the token that opened it (`creator_jti`) was
revoked, and its creator's client record is read only when the session says the creator was a tenant client (the
operator has none). One batched, strongly consistent read
answers it: a revocation that has returned is seen by every later request.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from energent_shared import clients, firestore
from energent_shared.tenants import GONE

CLIENTS = "oauth_clients"
REVOKED_TOKENS = "revoked_tokens"
PORTAL_SESSIONS = "portal_sessions"
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

# (revocation entry, client record, tenant record, portal session, the session creator's revocation entry) paths;
# None: the token cannot be valid
Deciding = tuple[str, str | None, str | None, str | None, str | None] | None


def _deciding_documents(claims: dict) -> Deciding:
    jti, client_id, tenant_id = claims.get("jti"), claims.get("client_id"), claims.get("tenant_id")
    sid, creator_jti = claims.get("sid"), claims.get("creator_jti")
    if not isinstance(jti, str) or not _DOCUMENT_ID.match(jti):
        return None
    if sid is not None and not (isinstance(sid, str) and _DOCUMENT_ID.match(sid) and tenant_id is not None
                                and isinstance(creator_jti, str) and _DOCUMENT_ID.match(creator_jti)):
        return None
    session = f"{PORTAL_SESSIONS}/{sid}" if sid is not None else None
    creator = f"{REVOKED_TOKENS}/{creator_jti}" if sid is not None else None
    if tenant_id is None:
        return f"{REVOKED_TOKENS}/{jti}", None, None, None, None
    if isinstance(client_id, str) and _DOCUMENT_ID.match(client_id) and isinstance(tenant_id, str) \
            and _DOCUMENT_ID.match(tenant_id):
        return f"{REVOKED_TOKENS}/{jti}", f"{CLIENTS}/{client_id}", f"tenants/{tenant_id}", session, creator
    return None


def _session_ended(session: dict | None, client: str, tenant: str) -> bool:
    """A portal session that was ended, has run out, or is not the one of this token's creator and tenant."""
    if session is None or session.get("active") is not True:
        return True
    ends_at = session.get("ends_at")
    if not isinstance(ends_at, datetime.datetime) or ends_at <= datetime.datetime.now(datetime.UTC):
        return True
    return (f"{CLIENTS}/{session.get('creator_client_id')}" != client
            or f"tenants/{session.get('tenant_id')}" != tenant)


def _is_revoked(deciding: Deciding, found: Mapping[str, dict | None]) -> bool:
    if deciding is None:
        return True
    entry, client, tenant, session, creator = deciding
    if found[entry] is not None or (creator is not None and found[creator] is not None):
        return True
    if client is None or tenant is None:
        return False
    tenant_record = found[tenant]
    if (tenant_record or {}).get("status", "deleted") in GONE:
        return True
    if session is not None:
        record = found[session]
        if _session_ended(record, client, tenant):
            return True
        if (record or {}).get("operator") is True:
            return False  # opened by the operator, whose client has no record
    return (found[client] or {}).get("active") is not True


def _paths(plans: list[Deciding]) -> list[str]:
    return sorted({path for plan in plans if plan for path in plan if path})


def is_revoked(claims: dict, db=None) -> bool:
    return revoked([claims], db)[0]


def revoked(many: list[dict], db=None) -> list[bool]:
    """`is_revoked` for several tokens in one round trip (introspection checks the caller and the subject)."""
    db = db or clients.firestore()
    plans = [_deciding_documents(claims) for claims in many]
    paths = _paths(plans)
    found = {snapshot.reference.path: snapshot.to_dict() if snapshot.exists else None
             for snapshot in db.get_all([db.document(path) for path in paths])} if paths else {}
    return [_is_revoked(plan, found) for plan in plans]


class SharedReads(firestore.SharedReads):
    """`revoked` on reads shared by the requests an event loop serves at once (see `firestore.SharedReads`)."""

    async def revoked(self, many: list[dict]) -> list[bool]:
        plans = [_deciding_documents(claims) for claims in many]
        paths = _paths(plans)
        found = await self.read(paths) if paths else {}
        return [_is_revoked(plan, found) for plan in plans]
