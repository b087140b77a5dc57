"""How documents are numbered: one gap-free sequence per series and calendar year, for invoices (`2026-000001`)
and credit notes (`CN-2026-000001`). Pure: the store reads the counters inside the transaction that writes the
numbered documents and hands them to `Numbers`, so a number exists only together with its document.

Numbers have at least six digits and widen past 999999 (`2026-1000000`); they sort by (series, year, sequence),
never as strings, so the millionth-and-first invoice sorts after its predecessor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
PREFIX = {INVOICE: "", CREDIT_NOTE: "CN-"}
COUNTERS = {INVOICE: "invoice_counters", CREDIT_NOTE: "credit_note_counters"}  # collection of `{year}` documents
_NUMBER = re.compile(r"(CN-)?([0-9]{4})-([0-9]{6,12})")


def format_number(series: str, year: int, sequence: int) -> str:
    return f"{PREFIX[series]}{year:04d}-{sequence:06d}"


def parse(number: object) -> tuple[str, int, int] | None:
    """(series, year, sequence) of a well-formed number, else None."""
    found = _NUMBER.fullmatch(number) if isinstance(number, str) else None
    if found is None or (len(found.group(3)) > 6 and found.group(3).startswith("0")):
        return None
    return (CREDIT_NOTE if found.group(1) else INVOICE), int(found.group(2)), int(found.group(3))


def sort_key(number: str) -> tuple[str, int, int]:
    parsed = parse(number)
    if parsed is None:
        raise ValueError(f"{number!r} is not a document number")
    return parsed


@dataclass
class Numbers:
    """The next numbers of the series and years whose counters were read (`last`: the last number given out).
    `taken` holds the counters advanced, for the store to write in the same transaction."""

    last: dict[tuple[str, int], int]
    taken: dict[tuple[str, int], int] = field(default_factory=dict)

    def next_number(self, series: str, year: int) -> str:
        key = (series, year)
        if key not in self.last:
            raise KeyError(f"the {series} counter of {year} was not read in this transaction")
        sequence = self.taken.get(key, self.last[key]) + 1
        self.taken[key] = sequence
        return format_number(series, year, sequence)


def creditor_reference(number: str) -> str:
    """The payment reference of an invoice: an ISO 11649 structured creditor reference, `RF`, two check digits and
    the number without its hyphen (RF18 2026000001 for 2026-000001)."""
    body = number.replace("-", "")
    digits = "".join(str(int(character, 36)) for character in body + "RF00")
    return f"RF{98 - int(digits) % 97:02d}{body}"
