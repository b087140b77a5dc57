"""What a tenant's closes have billed: the watermark of the last close, the base fee per period, and each period's
usage as it stood when it was last invoiced (so the next close bills only the difference)."""

from __future__ import annotations

from collections.abc import Sequence

from billing.store.grants import Grants, GrantUse
from billing.store.usage_counters import WRITE_TIMEOUT_S
from billing.usage import DayTotals, Totals
from energent_shared import clients, firestore


class Ledger:
    """Per tenant, what its closes have billed: `billing/ledger` holds the watermark (the read time of the last
    close, so counters written later are found by the next one), the last closed period and the base fee billed
    per period; `billed_usage/{period}` the period's usage as it stood when it was last invoiced."""

    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def ref(self, tenant_id: str):
        return firestore.tenant_doc(tenant_id, "billing", "ledger", db=self.db)

    def read(self, tenant_id: str):
        """The ledger snapshot; its `read_time` is the moment every later read of this close starts from."""
        return self.ref(tenant_id).get(timeout=WRITE_TIMEOUT_S)

    def billed(self, tenant_id: str, period: str) -> DayTotals:
        data = firestore.tenant_doc(tenant_id, "billed_usage", period, db=self.db).get().to_dict() or {}
        return {(day, meter): Totals.of(totals) for day, meters in data.get("days", {}).items()
                for meter, totals in meters.items()}

    def commit(self, tenant_id: str, seen, ledger: dict, billed: dict[str, DayTotals], draft: dict | None,
               period: str, grants: Sequence[GrantUse] = ()) -> bool:
        """Write the draft invoice, the usage it billed, what it takes of the credit grants and the new ledger at
        once, provided nobody changed the ledger (or a grant taken) since it was read. False: a concurrent close of
        this tenant, or a change of a grant, got there first."""
        from google.api_core.exceptions import AlreadyExists, FailedPrecondition

        batch = self.db.batch()
        for use in grants:
            Grants.write(batch, use, db=self.db)
        if draft is not None:
            batch.create(firestore.tenant_doc(tenant_id, "invoices", period, db=self.db), draft)
        for billed_period, days in billed.items():
            by_day: dict[str, dict] = {}
            for (day, meter), totals in days.items():
                by_day.setdefault(day, {})[meter] = totals.as_dict()
            batch.set(firestore.tenant_doc(tenant_id, "billed_usage", billed_period, db=self.db), {"days": by_day})
        if seen.exists:
            batch.update(self.ref(tenant_id), ledger, option=self.db.write_option(last_update_time=seen.update_time))
        else:
            batch.create(self.ref(tenant_id), ledger)
        try:
            batch.commit(timeout=WRITE_TIMEOUT_S)
        except (AlreadyExists, FailedPrecondition):
            return False
        return True
