"""Firestore operations counted as they are billed, and what they cost at list price.

`Counted` wraps a client's API stub (the layer every read and write of the client library passes through), so the
figures are the requests actually sent, not an estimate: a commit bills one write per document written (a write with
transforms is still one write) and one delete per document deleted; a lookup bills one read per document asked for
(found or not); a query bills one read per document returned and at least one. An aggregation query (count()) bills
one read per batch of up to 1,000 index entries: counted as one here.

PRICES are Firestore Standard edition list prices in europe-west4 (Netherlands), USD, as published on the Firestore
pricing page in 2025 (regional location; storage per GiB and month). Override with BENCH_PRICE_READ, _WRITE, _DELETE
(per 100,000) and BENCH_PRICE_GIB_MONTH when the page says otherwise.

`storage_bytes` is the documented storage-size rule (document name, field names and values, 32 bytes per document,
and one entry per single-field index, ascending and descending, for every indexed field) applied to the documents
as stored.
"""

from __future__ import annotations

import datetime
import os
import threading
from dataclasses import dataclass, field

PRICES_AS_OF = "2025"
PRICES = {  # USD: per 100,000 operations; storage per GiB-month
    "read": float(os.environ.get("BENCH_PRICE_READ", "0.033")),
    "write": float(os.environ.get("BENCH_PRICE_WRITE", "0.099")),
    "delete": float(os.environ.get("BENCH_PRICE_DELETE", "0.011")),
    "gib_month": float(os.environ.get("BENCH_PRICE_GIB_MONTH", "0.165")),
}


@dataclass
class Ops:
    reads: int = 0
    writes: int = 0
    deletes: int = 0
    commits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, reads: int = 0, writes: int = 0, deletes: int = 0, commits: int = 0) -> None:
        with self._lock:
            self.reads += reads
            self.writes += writes
            self.deletes += deletes
            self.commits += commits

    def snapshot(self) -> Ops:
        with self._lock:
            return Ops(self.reads, self.writes, self.deletes, self.commits)

    def __sub__(self, other: Ops) -> Ops:
        return Ops(self.reads - other.reads, self.writes - other.writes, self.deletes - other.deletes,
                   self.commits - other.commits)

    def cost(self) -> float:
        """USD at PRICES."""
        return (self.reads * PRICES["read"] + self.writes * PRICES["write"] + self.deletes * PRICES["delete"]) / 1e5


class Counted:
    """The client's API stub, counting what passes through it (the stub's other calls pass unchanged)."""

    def __init__(self, api, ops: Ops):
        self._api, self.ops = api, ops

    def __getattr__(self, name):
        return getattr(self._api, name)

    def commit(self, request=None, **kwargs):
        response = self._api.commit(request=request, **kwargs)
        writes = list(request["writes"] if isinstance(request, dict) else request.writes)
        deletes = sum(1 for write in writes if _is_delete(write))
        self.ops.add(writes=len(writes) - deletes, deletes=deletes, commits=1)
        return response

    def batch_get_documents(self, request=None, **kwargs):
        asked = request["documents"] if isinstance(request, dict) else request.documents
        self.ops.add(reads=len(asked))
        return self._api.batch_get_documents(request=request, **kwargs)

    def run_query(self, request=None, **kwargs):
        ops = self.ops

        def counted(responses):
            returned = 0
            try:
                for response in responses:
                    if _has_document(response):
                        returned += 1
                    yield response
            finally:  # a stream given up part way is billed for what it delivered
                ops.add(reads=max(1, returned))

        return counted(self._api.run_query(request=request, **kwargs))

    def run_aggregation_query(self, request=None, **kwargs):
        self.ops.add(reads=1)
        return self._api.run_aggregation_query(request=request, **kwargs)


def _is_delete(write) -> bool:
    if isinstance(write, dict):
        return bool(write.get("delete"))
    return bool(getattr(write, "delete", ""))


def _has_document(response) -> bool:
    if isinstance(response, dict):
        return bool(response.get("document"))
    return "document" in response and bool(response.document.name)


def count(db) -> Ops:
    """Count every operation `db` (a firestore.Client) sends from now on."""
    ops = Ops()
    db._firestore_api_internal = Counted(db._firestore_api, ops)
    return ops


def _value_size(value) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, datetime.datetime)):
        return 8
    if isinstance(value, str):
        return len(value.encode()) + 1
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(k).encode()) + 1 + _value_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) for v in value)
    raise TypeError(f"no storage size for {type(value).__name__}")


def _name_size(path: str) -> int:
    return sum(len(segment.encode()) + 1 for segment in path.split("/")) + 16


def storage_bytes(snapshot, indexed: bool) -> int:
    """Bytes a stored document takes, with one ascending and one descending index entry per top-level field when
    its fields are `indexed` (automatic single-field indexes), or none (every field exempted)."""
    data = snapshot.to_dict() or {}
    path = snapshot.reference.path
    name = _name_size(path)
    size = name + sum(len(k.encode()) + 1 + _value_size(v) for k, v in data.items()) + 32
    if indexed:
        collection = path.split("/")[-2]
        for key, value in data.items():
            entry = len(collection.encode()) + 1 + name + len(key.encode()) + 1 + _value_size(value) + 32
            size += 2 * entry
    return size
