"""Billing's domain errors: the shared vocabulary (energent_shared.errors), which the entry points' HTTP layer
answers with their status."""

from energent_shared.errors import Conflict, Invalid, NotFound

__all__ = ["Conflict", "Invalid", "NotFound"]
