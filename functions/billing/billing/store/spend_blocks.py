"""Whether a tenant is blocked for its spend: `tenants/{T}/spend_state/block` {blocked, generation, period,
changed_at}. Each change takes the next generation and writes its event into the spend outbox in the same
transaction, so the provisioner (which applies only a generation newer than the one it has) can never be left on
an older state by events that arrive out of order or twice."""

from __future__ import annotations

from collections.abc import Callable

from billing.store.spend_outbox import OUTBOX, SpendOutbox
from energent_shared import clients, firestore
from energent_shared.clock import utcnow


class SpendBlocks:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, tenant_id: str):
        return firestore.tenant_doc(tenant_id, "spend_state", "block", db=self.db)

    def get(self, tenant_id: str) -> dict:
        return self.ref(tenant_id).get().to_dict() or {"blocked": False, "generation": 0}

    def change(self, tenant_id: str, blocked: bool, event: Callable[[int], bytes]) -> str | None:
        """Set the block to `blocked`; if that changes it, the next generation's event (`event(generation)`) is
        recorded with it. Returns the outbox key of that event, or None when nothing changed."""
        ref = self.ref(tenant_id)
        if bool(self.get(tenant_id)["blocked"]) == blocked:
            # Most checks change nothing: a plain (strongly consistent) read answers them without taking the
            # document's lock, which concurrent checks of one tenant would otherwise queue on and abort.
            return None

        def attempt(transaction):
            state = ref.get(transaction=transaction).to_dict() or {"blocked": False, "generation": 0}
            if bool(state["blocked"]) == blocked:
                return None
            generation = int(state["generation"]) + 1
            now = utcnow()
            key = f"block~{tenant_id}~{generation:09d}"
            transaction.set(ref, {"blocked": blocked, "generation": generation, "changed_at": now})
            transaction.create(self.db.collection(OUTBOX).document(key),
                               SpendOutbox.record(tenant_id, event(generation)))
            return key

        return firestore.run_transaction(attempt, db=self.db)
