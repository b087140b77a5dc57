"""Payment references a bank can check: ISO 11649 structured creditor references ("RF" references).

An invoice's reference is `RF`, two check digits and the invoice number without its hyphens: 2026-000001 becomes
RF18 2026 0000 01. The check digits are ISO 7064 MOD 97-10, as in an IBAN, so a banking app rejects a mistyped
reference before the money leaves, and the payment is matched to its invoice by the number it carries.
"""

from __future__ import annotations

import re

_BODY = re.compile(r"[0-9A-Z]{1,21}")
_REFERENCE = re.compile(r"RF[0-9]{2}[0-9A-Z]{1,21}")


def _numeric(text: str) -> int:
    """Letters as numbers (A = 10 ... Z = 35), digits as themselves, read as one integer."""
    return int("".join(str(int(character, 36)) for character in text))


def creditor_reference(number: str) -> str:
    """The RF reference of a document number (hyphens dropped; at most 21 letters and digits remain)."""
    body = number.replace("-", "").upper()
    if not _BODY.fullmatch(body):
        raise ValueError(f"a creditor reference holds 1 to 21 letters and digits; {number!r} does not give that")
    return f"RF{98 - _numeric(body + 'RF00') % 97:02d}{body}"


def electronic(reference: str) -> str:
    """The reference as it is sent and stored: no spaces, upper case."""
    return reference.replace(" ", "").upper()


def is_valid(reference: str) -> bool:
    """True for a well-formed RF reference with correct check digits, in electronic or printed form."""
    compact = electronic(reference)
    return bool(_REFERENCE.fullmatch(compact)) and _numeric(compact[4:] + compact[:4]) % 97 == 1


def printed(reference: str) -> str:
    """The printed form ISO 11649 recommends: groups of four characters (RF18 2026 0000 01)."""
    compact = electronic(reference)
    return " ".join(compact[index:index + 4] for index in range(0, len(compact), 4))
