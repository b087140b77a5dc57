"""Credit grants in Firestore: `tenants/{T}/credit_grants/{id}` {grant_id, amount, remaining, open, reason,
expires_on, created_at, uses: [{period, amount, at}]}.

What a grant gives is written with the invoice that takes it: at the close in the draft's batch, conditional on the
grant being unchanged since it was read (a close that lost the race drafts again), and for a held draft in one
transaction with the draft. So `remaining` falls exactly once per invoice, whoever races.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.money import cents
from energent_shared import clients, firestore
from energent_shared.clock import rfc3339, utcnow


@dataclass(frozen=True)
class GrantUse:
    """What one invoice takes of one grant, and the grant as it was read (its `update_time` guards the write)."""

    ref: object
    update_time: object
    remaining: Decimal
    entry: dict


class Grants:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def collection(self, tenant_id: str):
        return firestore.tenant_collection(tenant_id, "credit_grants", db=self.db)

    def add(self, tenant_id: str, grant: dict) -> dict:
        grant_id = f"gr-{uuid.uuid4().hex[:16]}"
        record = {**grant, "grant_id": grant_id, "remaining": grant["amount"], "open": True,
                  "created_at": rfc3339(utcnow(), "milliseconds"), "uses": []}
        self.collection(tenant_id).document(grant_id).create(record)
        return record

    def listing(self, tenant_id: str) -> list[dict]:
        return sorted((s.to_dict() for s in self.collection(tenant_id).stream()),
                      key=lambda g: (g["created_at"], g["grant_id"]))

    def open_snapshots(self, tenant_id: str, transaction=None) -> list:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.collection(tenant_id).where(filter=FieldFilter("open", "==", True))
        return list(query.stream(transaction=transaction) if transaction is not None else query.stream())

    def available(self, tenant_id: str) -> list[tuple[dict, object]]:
        """Grants with something left: (record, its update time)."""
        return [(s.to_dict(), s.update_time) for s in self.open_snapshots(tenant_id)]

    def uses(self, tenant_id: str, taken: Sequence[tuple[Mapping, Decimal]], read: Mapping[str, object],
             period: str) -> list[GrantUse]:
        """The writes of what an invoice of `period` takes (`taken`: from grants.apply), each guarded by the update
        time its grant was read at (`read`: grant id -> update time)."""
        at = rfc3339(utcnow(), "seconds")
        return [GrantUse(self.collection(tenant_id).document(grant["grant_id"]), read[grant["grant_id"]],
                         cents(Decimal(grant["remaining"]) - amount),
                         {"period": period, "amount": str(cents(amount)), "at": at}) for grant, amount in taken]

    @staticmethod
    def write(writer, use: GrantUse, guarded: bool = True, db=None) -> None:
        from google.cloud.firestore import ArrayUnion

        updates = {"remaining": str(use.remaining), "open": use.remaining > 0, "uses": ArrayUnion([use.entry])}
        if guarded and db is not None:
            writer.update(use.ref, updates, option=db.write_option(last_update_time=use.update_time))
        else:
            writer.update(use.ref, updates)

    def take_for_draft(self, tenant_id: str, draft_ref, decide: Callable[[dict, list[dict]], tuple[dict, list]],
                       period: str) -> bool:
        """In one transaction: the draft at `draft_ref` (still a draft) takes what `decide(draft, grants)` says from
        the grants with something left. True if it took any."""
        def attempt(transaction):
            draft = draft_ref.get(transaction=transaction).to_dict()
            if not draft or draft.get("status") != "draft":
                return False
            snapshots = self.open_snapshots(tenant_id, transaction)
            changed, taken = decide(draft, [s.to_dict() for s in snapshots])
            if not taken:
                return False
            transaction.set(draft_ref, changed)
            for use in self.uses(tenant_id, taken, {s.id: s.update_time for s in snapshots}, period):
                self.write(transaction, use, guarded=False)
            return True

        return firestore.run_transaction(attempt, db=self.db)
