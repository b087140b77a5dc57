"""Fields of a request body, checked one way in every function: names the body may hold, and bounded, printable
text. Each refusal is an `Invalid` that names the field, so every 400 reads alike."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal, overload

from energent_shared.errors import Invalid, shown


def only(body: Mapping[str, object], allowed: Collection[str], within: str | None = None) -> None:
    """Refuse fields the body may not hold; `within` names a nested object (`billing_profile.address`)."""
    unknown = set(body) - set(allowed)
    if unknown:
        raise Invalid(f"{within} has unknown field(s): {shown(unknown)}" if within else
                      f"unknown field(s): {shown(unknown)}")


@overload
def text(body: Mapping[str, object], name: str, maximum: int, *, required: Literal[True] = True,
         within: str | None = None) -> str: ...


@overload
def text(body: Mapping[str, object], name: str, maximum: int, *, required: bool,
         within: str | None = None) -> str | None: ...


def text(body: Mapping[str, object], name: str, maximum: int, *, required: bool = True,
         within: str | None = None) -> str | None:
    """`body[name]` as a non-blank string of at most `maximum` printable characters, without surrounding blanks;
    None when it is absent (or null) and not `required`."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > maximum or not value.isprintable():
        path = f"{within}.{name}" if within else name
        raise Invalid(f"{path} must be a non-blank string of at most {maximum} printable characters")
    return value.strip()
