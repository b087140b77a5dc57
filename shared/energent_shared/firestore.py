"""Firestore access: tenant-scoped paths, transactions that survive contention, create-if-absent, batches,
and reads shared by the requests an event loop serves at once.

Layout: every tenant's data lives under `tenants/{tenant_id}/...`, so a tenant-scoped query can never reach
another tenant's documents and a tenant's data can be exported or deleted as one subtree.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

from energent_shared import clients

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{2,30}[a-z0-9]$")


def valid_tenant_id(tenant_id: object) -> TypeGuard[str]:
    return isinstance(tenant_id, str) and TENANT_ID.fullmatch(tenant_id) is not None


def checked_tenant_id(tenant_id: str) -> str:
    """`tenant_id` if it is a valid tenant id; a ValueError before any path is made of it otherwise."""
    if not valid_tenant_id(tenant_id):
        raise ValueError(f"invalid tenant id {tenant_id!r}")
    return tenant_id


def tenant_doc(tenant_id: str, *path: str, db=None):
    """`tenants/{tenant_id}` or a document below it, e.g. tenant_doc(t, "clients", client_id)."""
    checked_tenant_id(tenant_id)
    if len(path) % 2:
        raise ValueError(f"a document path needs collection/id pairs, got {path!r}")
    return (db or clients.firestore()).document("tenants", tenant_id, *path)


def tenant_path(tenant_id: str) -> str:
    """`tenants/{tenant_id}` as a document path (for `SharedReads`)."""
    return f"tenants/{checked_tenant_id(tenant_id)}"


def tenant_collection(tenant_id: str, collection: str, db=None):
    return tenant_doc(tenant_id, db=db).collection(collection)


DIRECTORY_SHARDS = 64  # changing it moves tenants to other shards: every entry must then be written again


def directory_doc(tenant_id: str, db=None):
    """`tenant_directory/{nn}`, the shard that lists the tenant: a map `tenants` of tenant id -> when the tenant was
    deleted (null while it lives). The provisioner writes an entry in the commit that writes the tenant's record, so a
    shard read at R tells exactly which of its tenants existed at R and which had been deleted by then: an instance
    that has seen none of them learns a sixty-fourth of all tenants from one document."""
    return (db or clients.firestore()).document("tenant_directory", directory_shard(checked_tenant_id(tenant_id)))


def directory_shard(tenant_id: str) -> str:
    import zlib

    return f"{zlib.crc32(tenant_id.encode()) % DIRECTORY_SHARDS:02d}"


def put_directory_entry(writer, tenant_id: str, deleted_at, db=None) -> None:
    """Writes the tenant's directory entry with `writer`: the batch or transaction that writes its record."""
    put_directory_entries(writer, {tenant_id: deleted_at}, db=db)


def put_directory_entries(writer, entries: dict, db=None) -> None:
    """Writes directory entries (tenant id -> deleted_at) with `writer`, one write per shard."""
    shards: dict[str, tuple[Any, dict]] = {}  # shard -> (its document, its entries)
    for tenant_id, deleted_at in entries.items():
        shard = directory_doc(tenant_id, db=db)  # checks every id, not one per shard
        shards.setdefault(shard.id, (shard, {}))[1][tenant_id] = deleted_at
    for shard, listed in shards.values():
        writer.set(shard, {"tenants": listed}, merge=True)


def drop_directory_entry(writer, tenant_id: str, db=None) -> None:
    """Takes the tenant's directory entry out with `writer`, the batch that deletes its record."""
    from google.cloud.firestore_v1 import DELETE_FIELD

    put_directory_entries(writer, {tenant_id: DELETE_FIELD}, db=db)


def retryable(exc: BaseException | None) -> bool:
    """Whether a Firestore call that raised `exc` is worth another attempt: contention, a deadline, the service
    briefly away."""
    from google.api_core import exceptions

    if isinstance(exc, (exceptions.Aborted, exceptions.Conflict, exceptions.DeadlineExceeded,
                        exceptions.ServiceUnavailable, exceptions.InternalServerError)):
        return True
    # The client wraps a commit it gave up on in a ValueError whose cause is the real error.
    return isinstance(exc, ValueError) and exc.__cause__ is not None and retryable(exc.__cause__)


def run_transaction(fn: Callable[[Any], T], *, attempts: int = 12, base_delay_s: float = 0.05,
                    max_delay_s: float = 2.0, db=None) -> T:
    """Run `fn(transaction)` until it commits, with jittered exponential backoff between attempts.

    The client retries an aborted commit only a few times and without pause; under contention on one
    document (the emulator aborts overlapping transactions after a 2 s lock wait) that loses updates.
    `fn` must be free of side effects outside the transaction: it can run more than once.
    """
    from google.cloud import firestore as firestore_lib

    db = db or clients.firestore()
    for attempt in range(1, attempts + 1):
        transaction = db.transaction(max_attempts=1)
        try:
            return firestore_lib.transactional(fn)(transaction)
        except Exception as exc:
            if attempt == attempts or not retryable(exc):
                raise
        delay = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
        time.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not cryptography
    raise AssertionError("unreachable")


def create_if_absent(ref, data: dict) -> bool:
    """Create `ref` with `data` unless it exists: True if this call created it.

    The idempotency primitive: the first writer of a key wins atomically, every redelivery sees False.
    """
    from google.api_core.exceptions import AlreadyExists

    try:
        ref.create(data)
    except AlreadyExists:
        return False
    return True


def write_batched(writes: Iterable[tuple[Any, dict]], *, batch_size: int = 500, db=None) -> int:
    """Set many documents in atomic batches of at most `batch_size` (Firestore's limit is 500)."""
    if not 1 <= batch_size <= 500:
        raise ValueError("batch_size must be between 1 and 500")
    db = db or clients.firestore()
    written = 0
    for chunk in _chunks(writes, batch_size):
        batch = db.batch()
        for ref, data in chunk:
            batch.set(ref, data)
        batch.commit()
        written += len(chunk)
    return written


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class SharedReads:
    """Documents by path for an event loop serving many requests at once: requests waiting at the same moment
    share one batched Firestore read. A read starts only after every request in it arrived, so it stays strongly
    consistent; requests arriving while `max_in_flight` reads are under way gather for the next one. One per
    event loop (`clients.per_event_loop`). (asyncio is imported where it is used: only auth runs an event loop,
    and the import costs the other functions' cold starts ~9 ms.)
    """

    def __init__(self, client_factory: Callable = clients.firestore_async, *, max_in_flight: int = 2,
                 max_batch: int = 200):
        import asyncio

        self._client_factory = client_factory
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_batch = max_batch
        self._gathering: tuple[set[str], asyncio.Future] | None = None
        self._sending: set[asyncio.Task] = set()  # the loop holds tasks weakly

    async def read(self, paths: Iterable[str]) -> dict[str, dict | None]:
        """Each document's fields, None for a missing one (the answer may hold other requests' documents too)."""
        import asyncio

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
