"""The domain's refusals, one vocabulary for every function: services raise them with a message that says why,
and the entry points' HTTP layer answers each with its status (energent_shared.http)."""

from __future__ import annotations

from collections.abc import Collection


class DomainError(Exception):
    """Something the caller asked for that cannot be done; the message says why."""

    status = 400


class Invalid(DomainError):
    """Malformed input."""

    status = 400


class Forbidden(DomainError):
    """The caller may not do this (e.g. grant a scope it does not hold)."""

    status = 403


class NotFound(DomainError):
    """No such tenant, client, invoice, period or run."""

    status = 404


class Conflict(DomainError):
    """Not possible in the current state."""

    status = 409


class Unavailable(DomainError):
    """A dependency failed and nothing was changed: the caller may retry."""

    status = 503

    def __init__(self, message: str, retry_after_s: int = 5):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def shown(names: Collection[str], most: int = 5, length: int = 40) -> str:
    """Names taken from a request (unknown fields, scopes), for a message: sorted, a few, each shortened, control
    characters escaped, so an error never echoes a megabyte or a terminal escape back."""
    listed = [repr(name[:length])[1:-1] for name in sorted(names)[:most]]
    return ", ".join(listed) + (f" and {len(names) - most} more" if len(names) > most else "")
