"""Billing's domain errors: the shared vocabulary (energent_shared.errors), which the entry points' HTTP layer
answers with its status."""

from energent_shared.errors import Conflict, Invalid, NotFound
from energent_shared.errors import DomainError as BillingError

__all__ = ["BillingError", "Conflict", "Invalid", "NotFound"]
