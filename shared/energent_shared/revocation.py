"""Is a verified token still good? API Gateway verifies statelessly, so every function asks this too.

A token is revoked when its `jti` is on the revocation list (entries expire with the tokens, through a
Firestore TTL policy on `expire_at`) or, for a tenant client, when its client is gone or no longer active. One
batched read answers both.
"""

from __future__ import annotations

import re

from energent_shared import clients

CLIENTS = "oauth_clients"
REVOKED_TOKENS = "revoked_tokens"
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def is_revoked(claims: dict, db=None) -> bool:
    jti, client_id = claims.get("jti"), claims.get("client_id")
    if not isinstance(jti, str) or not _DOCUMENT_ID.match(jti):
        return True
    db = db or clients.firestore()
    refs = [db.collection(REVOKED_TOKENS).document(jti)]
    tenant_client = claims.get("tenant_id") is not None
    if tenant_client:
        if not isinstance(client_id, str) or not _DOCUMENT_ID.match(client_id):
            return True
        refs.append(db.collection(CLIENTS).document(client_id))
    snapshots = {snapshot.reference.path: snapshot for snapshot in db.get_all(refs)}
    if snapshots[refs[0].path].exists:
        return True
    if tenant_client:
        client = snapshots[refs[1].path]
        return not client.exists or (client.to_dict() or {}).get("active") is not True
    return False
