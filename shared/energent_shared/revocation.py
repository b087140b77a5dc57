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
    return revoked([claims], db)[0]


def revoked(many: list[dict], db=None) -> list[bool]:
    """`is_revoked` for several tokens in one round trip (introspection checks the caller and the subject)."""
    db = db or clients.firestore()
    wanted: list[tuple] = []
    for claims in many:
        jti, client_id = claims.get("jti"), claims.get("client_id")
        if not isinstance(jti, str) or not _DOCUMENT_ID.match(jti):
            wanted.append(None)
            continue
        token_ref = db.collection(REVOKED_TOKENS).document(jti)
        if claims.get("tenant_id") is None:
            wanted.append((token_ref, None))
        elif isinstance(client_id, str) and _DOCUMENT_ID.match(client_id):
            wanted.append((token_ref, db.collection(CLIENTS).document(client_id)))
        else:
            wanted.append(None)
    refs = {ref.path: ref for pair in wanted if pair for ref in pair if ref is not None}
    found = {snapshot.reference.path: snapshot for snapshot in db.get_all(list(refs.values()))} if refs else {}
    answers = []
    for pair in wanted:
        if pair is None:
            answers.append(True)
            continue
        token_ref, client_ref = pair
        if found[token_ref.path].exists:
            answers.append(True)
        elif client_ref is not None:
            client = found[client_ref.path]
            answers.append(not client.exists or (client.to_dict() or {}).get("active") is not True)
        else:
            answers.append(False)
    return answers
