"""SLA reports: the last one accepted before the period's close starts is the one invoiced."""

from __future__ import annotations

from billing.store.closes import latest_close
from energent_shared import clients, firestore
from energent_shared.clock import utcnow


class SlaReports:
    def __init__(self, db=None):
        self.db = db or clients.firestore()

    def put(self, tenant_id: str, report: dict) -> bool:
        """Store the report unless its period's close has begun, or a later period's (False: no close would read
        it). One transaction reads the latest close record, so a report and the start of a close are ordered:
        a report either lands before the close reads reports, or sees the close."""
        latest = latest_close(self.db)
        report_ref = firestore.tenant_doc(tenant_id, "sla_reports", report["period"], db=self.db)

        def attempt(transaction):
            last = next(iter(latest.stream(transaction=transaction)), None)
            if last is not None and last.get("period") >= report["period"]:
                return False
            transaction.set(report_ref, {**report, "received_at": utcnow()})
            return True

        return firestore.run_transaction(attempt, db=self.db)

    def ref(self, tenant_id: str, period: str):
        return firestore.tenant_doc(tenant_id, "sla_reports", period, db=self.db)

    def get(self, tenant_id: str, period: str) -> dict | None:
        return self.ref(tenant_id, period).get().to_dict()
