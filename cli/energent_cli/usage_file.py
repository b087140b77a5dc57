"""Usage files (pure): JSON lines of CloudEvents, or CSV with a header `tenant_id,meter,quantity[,time][,id]`,
turned into usage CloudEvents and cut into batches the API takes (at most 1,000 events and 1 MiB)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

SOURCE = "//energent.ai/cli/usage-send"
USAGE_TYPE = "ai.energent.usage.v1"
MAX_EVENTS = 1000
MAX_BYTES = 1024 * 1024 - 4096  # the API's limit, less room for the array around the events
CSV_COLUMNS = ("tenant_id", "meter", "quantity")


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


def derived_id(fields: tuple[str, ...], occurrence: int) -> str:
    """An id from the row's content and how many identical rows came before it: identical rows count
    separately, and sending the same file again repeats every id, so nothing counts twice."""
    return "row-" + hashlib.sha256(json.dumps([*fields, occurrence]).encode()).hexdigest()[:32]


def read(text: str, name: str = "") -> Iterator[dict | BadRow]:
    """Events (and the rows that cannot be events) of a usage file, in order."""
    stripped = text.lstrip()
    if name.endswith((".jsonl", ".json", ".ndjson")) or stripped.startswith("{"):
        yield from _json_lines(text)
    else:
        yield from _csv(text)


def _json_lines(text: str) -> Iterator[dict | BadRow]:
    seen: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as error:
            yield BadRow(number, f"not JSON: {error}")
            continue
        if not isinstance(event, dict):
            yield BadRow(number, "not a JSON object")
            continue
        event = {"specversion": "1.0", "type": USAGE_TYPE, "source": SOURCE, **event}
        if not event.get("id"):
            fields = (json.dumps(event.get("data"), sort_keys=True), str(event.get("time", "")))
            seen[fields] = seen.get(fields, 0) + 1
            event["id"] = derived_id(fields, seen[fields])
        yield event


def _csv(text: str) -> Iterator[dict | BadRow]:
    rows = csv.reader(io.StringIO(text))
    header = [column.strip() for column in next(rows, [])]
    if header[:3] != list(CSV_COLUMNS) or not set(header[3:]) <= {"time", "id"}:
        yield BadRow(1, f"the header must be {','.join(CSV_COLUMNS)}[,time][,id], got {','.join(header)[:80]!r}")
        return
    seen: dict[tuple[str, ...], int] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield BadRow(number, f"{len(row)} columns where the header has {len(header)}")
            continue
        values = dict(zip(header, (cell.strip() for cell in row), strict=True))
        fields = (values["tenant_id"], values["meter"], values["quantity"], values.get("time", ""))
        seen[fields] = seen.get(fields, 0) + 1
        event = {"specversion": "1.0", "type": USAGE_TYPE, "source": SOURCE,
                 "id": values.get("id") or derived_id(fields, seen[fields]),
                 "data": {"tenant_id": values["tenant_id"], "meter": values["meter"], "quantity": values["quantity"]}}
        if values.get("time"):
            event["time"] = values["time"]
        yield event


def batches(events: Iterable[dict]) -> Iterator[list[dict]]:
    """Consecutive events in batches within the API's limits."""
    batch, size = [], 2
    for event in events:
        length = len(json.dumps(event).encode()) + 1
        if batch and (len(batch) == MAX_EVENTS or size + length > MAX_BYTES):
            yield batch
            batch, size = [], 2
        batch.append(event)
        size += length
    if batch:
        yield batch
