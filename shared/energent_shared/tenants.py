"""The tenant vocabulary every function shares: statuses (CONTRACT §3) and the events that announce them (§4).
The provisioner produces them; auth, billing and the revocation check read them."""

from __future__ import annotations

STATUSES = ("provisioning", "active", "updating", "failed", "deleting", "deleted")
GONE = ("deleting", "deleted")  # a tenant in these no longer acts: its tokens are dead, it gets no new clients

EVENT_SOURCE = "//energent.ai/provisioner"
CREATED = "ai.energent.tenant.created.v1"
ACTIVATED = "ai.energent.tenant.activated.v1"
UPDATED = "ai.energent.tenant.updated.v1"
DELETED = "ai.energent.tenant.deleted.v1"
EVENT_TYPES = {"created": CREATED, "activated": ACTIVATED, "updated": UPDATED, "deleted": DELETED}
