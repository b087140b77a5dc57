"""The EPC QR code on an invoice (EPC069-12, version 002: a SEPA credit transfer a banking app fills in by scanning).

The payload is twelve lines at most, separated by a line feed: `BCD`, version `002`, character set `1` (UTF-8),
`SCT`, the BIC (optional within the EEA since version 002), the beneficiary's name (≤ 70), the IBAN, the amount as
`EUR12.34`, the purpose code (empty), the structured remittance information (the ISO 11649 RF reference, which
leaves the unstructured line empty) — trailing empty lines are left off, as the guidelines allow. The symbol uses
error correction level M and byte mode without an ECI header, at most version 13 (331 bytes), as the guidelines ask.

The image is drawn by segno (pure Python, no system libraries), imported only when an image is made, so billing's
cold start does not pay for it.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal

from billing import payment_reference

MAX_PAYLOAD_BYTES = 331
MAX_VERSION = 13
MAX_AMOUNT = Decimal("999999999.99")
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?")


def payload(*, name: str, iban: str, amount: Decimal | str, reference: str, bic: str | None = None) -> str:
    """The text the QR code carries. Raises ValueError for what a banking app would reject: an amount outside
    0.01 to 999,999,999.99 or with more than two decimals, a malformed IBAN or BIC, a name that is empty or longer
    than 70 characters, a reference that is not a valid RF reference."""
    from stdnum import iban as iban_number

    iban = iban.replace(" ", "").upper()
    if not iban_number.is_valid(iban):
        raise ValueError(f"IBAN {iban!r} is not a valid IBAN (country, length, check digits)")
    bic = (bic or "").replace(" ", "").upper()
    if bic and not _BIC.fullmatch(bic):
        raise ValueError(f"BIC {bic!r} must have 8 or 11 characters")
    name = " ".join(name.split())
    if not 1 <= len(name) <= 70:
        raise ValueError(f"the beneficiary's name must have 1 to 70 characters, it has {len(name)}")
    value = Decimal(str(amount))
    if value != value.quantize(Decimal("0.01")) or not Decimal("0.01") <= value <= MAX_AMOUNT:
        raise ValueError(f"the amount must be 0.01 to {MAX_AMOUNT} with at most two decimals, got {amount}")
    reference = payment_reference.electronic(reference)
    if not payment_reference.is_valid(reference):
        raise ValueError(f"{reference!r} is not a valid ISO 11649 creditor reference")
    text = "\n".join(("BCD", "002", "1", "SCT", bic, name, iban, f"EUR{value:.2f}", "", reference))
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"the payload has {size} bytes; an EPC QR code holds {MAX_PAYLOAD_BYTES} at most")
    return text


def for_invoice(invoice: dict) -> str | None:
    """The payload for an issued invoice: the seller's legal name, IBAN and BIC, the amount due at issue
    (`total` - `balance_applied`) and the invoice's RF reference (derived from the number when the JSON has none).
    None when nothing is due: a QR code for EUR 0.00 would only confuse the payer."""
    seller = invoice["seller"]
    due = Decimal(invoice["total"]) - Decimal(invoice.get("balance_applied") or "0")
    if due <= 0:
        return None
    reference = invoice.get("payment_reference") or payment_reference.creditor_reference(invoice["number"])
    return payload(name=seller["legal_name"], iban=seller["iban"], amount=due, reference=reference,
                   bic=seller.get("bic"))


def _symbol(text: str):
    import segno

    symbol = segno.make(text, error="m", mode="byte", encoding="utf-8", micro=False, boost_error=False)
    # Unreachable within 331 bytes at level M; kept as the guidelines' bound (a micro code's version is a str).
    if isinstance(symbol.version, int) and symbol.version > MAX_VERSION:
        raise ValueError(f"the payload needs QR version {symbol.version}; EPC allows at most {MAX_VERSION}")
    return symbol


def png(text: str, scale: int = 4) -> bytes:
    """The QR code as a PNG (black on white, the quiet zone of four modules): what fpdf2's `image()` draws."""
    out = io.BytesIO()
    _symbol(text).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def svg(text: str) -> bytes:
    """The QR code as SVG without a fixed size (a viewBox in modules): the HTML or fpdf2 sets the size it is drawn
    at, and it stays sharp at any size."""
    out = io.BytesIO()
    _symbol(text).save(out, kind="svg", border=4, xmldecl=False, svgns=True, nl=False, omitsize=True)
    return out.getvalue()
