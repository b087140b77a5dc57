"""Is a verified token still good? API Gateway verifies statelessly, so every function asks this too.

A token is revoked when its `jti` is on the revocation list (entries expire with the tokens, through a
Firestore TTL policy on `expire_at`) or, for a tenant client, when its client is gone or no longer active, or
its tenant is being deleted (the DELETE marks the tenant before it answers, so no token of it works afterwards,
whether or not the tenant-events consumer has run). One batched, strongly consistent read answers it: a
revocation that has returned is seen by every later request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping

from energent_shared import clients
from energent_shared.tenants import GONE

CLIENTS = "oauth_clients"
REVOKED_TOKENS = "revoked_tokens"
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

# (revocation entry, client record, tenant record) paths; None: the token cannot be valid
Deciding = tuple[str, str | None, str | None] | None


def _deciding_documents(claims: dict) -> Deciding:
    jti, client_id, tenant_id = claims.get("jti"), claims.get("client_id"), claims.get("tenant_id")
    if not isinstance(jti, str) or not _DOCUMENT_ID.match(jti):
        return None
    if tenant_id is None:
        return f"{REVOKED_TOKENS}/{jti}", None, None
    if isinstance(client_id, str) and _DOCUMENT_ID.match(client_id) and isinstance(tenant_id, str) \
            and _DOCUMENT_ID.match(tenant_id):
        return f"{REVOKED_TOKENS}/{jti}", f"{CLIENTS}/{client_id}", f"tenants/{tenant_id}"
    return None


def _is_revoked(deciding: Deciding, found: Mapping[str, dict | None]) -> bool:
    if deciding is None:
        return True
    entry, client, tenant = deciding
    if found[entry] is not None:
        return True
    if client is None:
        return False
    return (found[client] or {}).get("active") is not True or (found[tenant] or {}).get("status", "deleted") in GONE


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


class SharedReads:
    """`revoked` for an event loop serving many requests at once: requests waiting at the same moment share one
    Firestore read. A read starts only after every request in it arrived, so it stays strongly consistent;
    requests arriving while `max_in_flight` reads are under way gather for the next one. One per event loop.
    """

    def __init__(self, client_factory: Callable = clients.firestore_async, *, max_in_flight: int = 2,
                 max_batch: int = 200):
        self._client_factory = client_factory
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_batch = max_batch
        self._gathering: tuple[set[str], asyncio.Future] | None = None
        self._sending: set[asyncio.Task] = set()  # the loop holds tasks weakly

    async def revoked(self, many: list[dict]) -> list[bool]:
        plans = [_deciding_documents(claims) for claims in many]
        paths = _paths(plans)
        found = await self._read(paths) if paths else {}
        return [_is_revoked(plan, found) for plan in plans]

    async def _read(self, paths: list[str]) -> dict[str, dict | None]:
        if self._gathering is None or len(self._gathering[0]) >= self._max_batch:
            loop = asyncio.get_running_loop()
            result = loop.create_future()
            result.add_done_callback(_retrieve)  # a failure nobody waits for any more is not an error to log
            self._gathering = (set(), result)
            task = loop.create_task(self._send(self._gathering))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        wanted, result = self._gathering
        wanted.update(paths)
        return await asyncio.shield(result)  # a cancelled request must not cancel the others' read

    async def _send(self, batch: tuple[set[str], asyncio.Future]) -> None:
        wanted, result = batch
        async with self._slots:
            if self._gathering is batch:
                self._gathering = None  # from here on, newcomers gather for the next read
            try:
                db = self._client_factory()
                found = {snapshot.reference.path: snapshot.to_dict() if snapshot.exists else None
                         async for snapshot in db.get_all([db.document(path) for path in sorted(wanted)])}
            except Exception as error:  # every waiting request gets the failure
                result.set_exception(error)
            else:
                result.set_result(found)


def _retrieve(result: asyncio.Future) -> None:
    if not result.cancelled():
        result.exception()
