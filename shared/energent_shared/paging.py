"""Lists page the same way everywhere (CONTRACT §3): `page_size`, `page_token`, `next_page_token`."""

from __future__ import annotations

from energent_shared.errors import Invalid


def page_size_param(raw: str | None, default: int = 50, maximum: int = 100) -> int:
    """`page_size` of a list request."""
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 1 <= int(raw) <= maximum:
        raise Invalid(f"page_size must be an integer from 1 to {maximum}")
    return int(raw)


def page_token_param(raw: str | None, max_length: int = 40) -> str | None:
    """`page_token` of a list whose token is a document id: None for the first page. What a list answers is checked
    against what it stores; this refuses only what could never be one of its tokens."""
    if not raw:
        return None
    if len(raw) > max_length:
        raise Invalid("page_token is not valid")
    return raw
