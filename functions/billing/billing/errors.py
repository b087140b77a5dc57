"""Billing's domain errors; the HTTP and event entry points translate them (main.py)."""


class BillingError(Exception):
    """Something the caller asked for that billing cannot do; the message says why."""


class Invalid(BillingError):
    """Malformed input."""


class NotFound(BillingError):
    """No such tenant, invoice or period."""


class Conflict(BillingError):
    """Not possible in the current state (a period not ended, already closing, closed...)."""
