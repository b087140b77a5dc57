"""Invoices, credit notes and the customer balance in Firestore; the rules that change them are in lifecycle.py.

    tenants/{T}/invoices/{period}            the period's invoice: a draft, then the issued invoice with its
                                             lifecycle (payments, credit notes, balance applied)
    tenants/{T}/invoices/{period}~{number}   an invoice the period's current one replaced (reissue)
    tenants/{T}/documents/{number}           every issued invoice and credit note exactly as issued: what the
                                             archive is written and repaired from
    tenants/{T}/billing/balance              the customer balance: money owed to the customer
    tenants/{T}/balance_entries/{id}         what made it
    tenants/{T}/requests/{sha256(key)}       what a credit sent with an Idempotency-Key did: a retry gets it again
    invoice_counters/{year}, credit_note_counters/{year}   the last number of each series and year
    billing_journal/{T}~{number}[~{ref}]     what the books must record, by date: each document issued and each
                                             payment, written with it (the journal and VAT return read by date)

Every change runs `decide` inside one transaction that reads the invoice, the balance and the counters it may
draw numbers from, and writes what the decision says together (see lifecycle.py for why that makes money exact).
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from billing.lifecycle import Change
from billing.numbering import COUNTERS, INVOICE, Numbers, sort_key
from billing.records import CreditNote, Invoice
from energent_shared import clients, firestore

Decide = Callable[[Invoice | None, Decimal, Numbers], Change | None]
JOURNAL = "billing_journal"


def utc_date(moment: str) -> str:
    """The UTC date of an RFC 3339 moment, as the books date it."""
    return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(datetime.UTC).date().isoformat()


class Invoices:
    def __init__(self, db=None, currency: str = "EUR"):
        self.db = db or clients.firestore()
        self.currency = currency

    # --- where things are ---------------------------------------------------------------------------------------

    def ref(self, tenant_id: str, key: str):
        return firestore.tenant_doc(tenant_id, "invoices", key, db=self.db)

    def document_ref(self, tenant_id: str, number: str):
        return firestore.tenant_doc(tenant_id, "documents", number, db=self.db)

    def balance_ref(self, tenant_id: str):
        return firestore.tenant_doc(tenant_id, "billing", "balance", db=self.db)

    def request_ref(self, tenant_id: str, key: str):
        return firestore.tenant_doc(tenant_id, "requests", hashlib.sha256(key.encode()).hexdigest(), db=self.db)

    def replayed(self, tenant_id: str, key: str) -> dict | None:
        """What the change sent with idempotency key `key` did: {period, invoice, documents} (numbers)."""
        return self.request_ref(tenant_id, key).get().to_dict()

    def counter_ref(self, series: str, year: int):
        return self.db.collection(COUNTERS[series]).document(str(year))

    # --- reads --------------------------------------------------------------------------------------------------

    def get(self, tenant_id: str, period: str) -> Invoice | None:
        return self.ref(tenant_id, period).get().to_dict()

    def issued_document(self, tenant_id: str, number: str) -> tuple[str, Invoice | CreditNote] | None:
        """(kind, the document exactly as issued) for `number`: `invoice` or `credit_note`."""
        found = self.document_ref(tenant_id, number).get().to_dict()
        return None if found is None else (found["kind"], found["document"])

    def current(self, tenant_id: str, number: str) -> tuple[str, Invoice | CreditNote] | None:
        """(kind, the document as it stands now): an invoice with its lifecycle, or a credit note."""
        issued = self.issued_document(tenant_id, number)
        if issued is None or issued[0] != INVOICE:
            return issued
        period = issued[1]["period"]
        for key in (period, f"{period}~{number}"):
            record = self.get(tenant_id, key)
            if record is not None and record.get("number") == number:
                return INVOICE, record
        return issued

    def listing(self, tenant_id: str) -> list[Invoice]:
        """Every invoice of the tenant, drafts held for a billing profile included; by period, then by number (a
        reissue after the invoice it replaced)."""
        found = [snapshot.to_dict() for snapshot in firestore.tenant_collection(tenant_id, "invoices", db=self.db)
                 .stream()]
        return sorted(found, key=lambda i: (i["period"], sort_key(i["number"]) if i.get("number") else ("", 0, 0)))

    def credit_notes(self, tenant_id: str) -> list[CreditNote]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = firestore.tenant_collection(tenant_id, "documents", db=self.db).where(
            filter=FieldFilter("kind", "==", "credit_note")).stream()
        return sorted((snapshot.get("document") for snapshot in found), key=lambda note: sort_key(note["number"]))

    def held(self, tenant_id: str) -> list[str]:
        """Periods of the tenant's drafts held for want of a billing profile, oldest first."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        found = firestore.tenant_collection(tenant_id, "invoices", db=self.db).where(
            filter=FieldFilter("held", "==", True)).stream()
        return sorted(snapshot.get("period") for snapshot in found if snapshot.get("status") == "draft")

    def balance(self, tenant_id: str) -> dict[str, Any]:
        summary = self.balance_ref(tenant_id).get().to_dict() or {}
        entries = firestore.tenant_collection(tenant_id, "balance_entries", db=self.db).order_by("at").limit(1000)
        return {"currency": self.currency, "amount": summary.get("amount", "0.00"),
                "entries": [{k: v for k, v in snapshot.to_dict().items() if k != "seq"} for snapshot in
                            entries.stream()]}

    # --- changes ------------------------------------------------------------------------------------------------

    def change(self, tenant_id: str, period: str, decide: Decide, *, series: tuple[str, ...] = (),
               year: int | None = None, number: str | None = None, progress=None,
               request: str | None = None) -> tuple[Invoice | None, Change | None]:
        """Run `decide(invoice, balance, numbers)` on the period's current invoice (or, given `number`, on the one
        numbered so, current or replaced) in one transaction with the tenant's balance and the counters of
        `series` in `year`, and write its change. `progress`: the close record that counts a held draft issued
        here. `request`: the caller's idempotency key; a key seen before decides nothing again (see `replayed`).
        Returns (the invoice after, the change or None)."""
        from google.cloud.firestore import Increment

        current_ref, balance_ref = self.ref(tenant_id, period), self.balance_ref(tenant_id)
        counter_refs = {(name, year): self.counter_ref(name, year) for name in series if year is not None}
        request_ref = None if request is None else self.request_ref(tenant_id, request)

        def attempt(transaction):
            snapshots = {s.reference.path: s for s in self.db.get_all(
                [current_ref, balance_ref, *counter_refs.values(), *([request_ref] if request_ref else [])],
                transaction=transaction)}
            if request_ref is not None and snapshots[request_ref.path].exists:
                return snapshots[current_ref.path].to_dict(), None
            ref = current_ref
            record = snapshots[current_ref.path].to_dict()
            if number is not None and (record is None or record.get("number") != number):
                ref = self.ref(tenant_id, f"{period}~{number}")
                record = ref.get(transaction=transaction).to_dict()
            balance = Decimal((snapshots[balance_ref.path].to_dict() or {}).get("amount", "0.00"))
            numbers = Numbers({key: (snapshots[r.path].to_dict() or {}).get("last", 0)
                               for key, r in counter_refs.items()})
            change = decide(record, balance, numbers)
            if change is None:
                return record, None
            if change.replaced is not None:
                transaction.set(self.ref(tenant_id, f"{period}~{change.replaced['number']}"), change.replaced)
                transaction.set(current_ref, change.record)
            else:
                transaction.set(ref, change.record)
            self._write(transaction, tenant_id, change, balance, numbers)
            earlier = {payment["reference"] for payment in (record or {}).get("payments", [])}
            for payment in change.record.get("payments", []):
                if payment["reference"] not in earlier:
                    self._journal(transaction, tenant_id, "payment", change.record["number"],
                                  utc_date(payment["paid_at"]), payment["reference"])
            if request_ref is not None:
                transaction.create(request_ref, {"period": period, "invoice": change.record["number"],
                                                 "documents": [d["number"] for d in change.documents]})
            if progress is not None and record is not None and record.get("status") == "draft":
                transaction.update(progress, {"held": Increment(-1), "issued": Increment(1)})
            return change.record, change

        return firestore.run_transaction(attempt, db=self.db)

    def _write(self, transaction, tenant_id: str, change: Change, balance: Decimal, numbers: Numbers) -> None:
        """The parts of a change beside the invoice itself: its documents as issued, the balance, the counters."""
        for document in change.documents:
            kind = "credit_note" if "invoice_number" in document else INVOICE
            transaction.create(self.document_ref(tenant_id, document["number"]),
                               {"kind": kind, "document": document, "period": document["period"]})
            invoice_number = str(document.get("invoice_number") or document["number"])  # a credit note's invoice
            self._journal(transaction, tenant_id, kind, invoice_number, document["issue_date"],
                          document=document["number"], period=document["period"])
        if change.balance:
            added = sum((Decimal(entry["amount"]) for entry in change.balance), Decimal("0.00"))
            transaction.set(self.balance_ref(tenant_id), {"currency": self.currency, "amount": str(balance + added),
                                                          "updated_at": datetime.datetime.now(datetime.UTC)})
            for index, entry in enumerate(change.balance):
                transaction.set(firestore.tenant_doc(tenant_id, "balance_entries", uuid.uuid4().hex, db=self.db),
                                {**entry, "seq": index})
        for (name, year), last in numbers.taken.items():
            transaction.set(self.counter_ref(name, year), {"last": last})

    def _journal(self, transaction, tenant_id: str, kind: str, invoice_number: str, date: str,
                 reference: str | None = None, document: str | None = None, period: str | None = None) -> None:
        """What the books record on `date`: a document issued (of `period`), or a payment of an invoice (by its
        reference)."""
        key = f"{tenant_id}~{document or invoice_number}" + (
            f"~{hashlib.sha256(reference.encode()).hexdigest()[:24]}" if reference else "")
        transaction.set(self.db.collection(JOURNAL).document(key),
                        {"date": date, "tenant_id": tenant_id, "kind": kind, "invoice_number": invoice_number,
                         "document_number": document or invoice_number, **({"period": period} if period else {})})

    def journal_between(self, first: str, last: str) -> list[dict]:
        """What the books record from `first` through `last` (YYYY-MM-DD, inclusive)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.db.collection(JOURNAL).where(filter=FieldFilter("date", ">=", first)).where(
            filter=FieldFilter("date", "<=", last))
        return [snapshot.to_dict() for snapshot in query.stream()]

    def issued_for(self, periods: list[str]) -> list[dict]:
        """The documents issued for any of `periods` (the months supplied), whenever they were issued."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.db.collection(JOURNAL).where(filter=FieldFilter("period", "in", periods))
        return [snapshot.to_dict() for snapshot in query.stream()]

    def issue_step(self, period: str, step_ref, progress_ref, last_step: bool, tenant_ids: list[str], decide: Callable[
            [Invoice, dict | None, Decimal, Numbers], Change | None], year: int) -> tuple[list[Invoice], bool]:
        """The close's numbering step: the drafts of `tenant_ids`, in tenant order, each decided by `decide(draft,
        tenant, balance, numbers)` (issued, or held: None) in one transaction with the year's invoice counter and the
        step's marker `step_ref`, so a number exists only with its invoice and the step happens once. The tenants'
        records are read in the same transaction: a billing profile set meanwhile is either seen here or set
        after this step committed (and then it issues what this step held). The close's progress (`progress_ref`)
        counts them in the same transaction. Returns (the invoices issued, whether this call did the step)."""
        from google.cloud.firestore import Increment

        drafts = [self.ref(tenant_id, period) for tenant_id in sorted(tenant_ids)]
        tenants = [firestore.tenant_doc(tenant_id, db=self.db) for tenant_id in sorted(tenant_ids)]
        balances = [self.balance_ref(tenant_id) for tenant_id in sorted(tenant_ids)]
        counter = self.counter_ref(INVOICE, year)

        def attempt(transaction):
            done = step_ref.get(transaction=transaction)
            if done.exists:
                return [], False
            snapshots = {s.reference.path: s for s in self.db.get_all(
                [*drafts, *tenants, *balances, counter], transaction=transaction)}
            numbers = Numbers({(INVOICE, year): (snapshots[counter.path].to_dict() or {}).get("last", 0)})
            issued, held = [], 0
            for draft_ref, tenant_ref, balance_ref in zip(drafts, tenants, balances, strict=True):
                draft = snapshots[draft_ref.path].to_dict()
                if draft is None or draft.get("status") != "draft":
                    continue
                balance = Decimal((snapshots[balance_ref.path].to_dict() or {}).get("amount", "0.00"))
                change = decide(draft, snapshots[tenant_ref.path].to_dict(), balance, numbers)
                if change is None:
                    held += 1
                    if not draft.get("held"):
                        transaction.update(draft_ref, {"held": True})
                    continue
                transaction.set(draft_ref, change.record)
                self._write(transaction, draft["tenant_id"], change, balance, Numbers({}))
                issued.append(change.record)
            for (name, counter_year), last in numbers.taken.items():
                transaction.set(self.counter_ref(name, counter_year), {"last": last})
            transaction.create(step_ref, {"invoices": [f"{i['tenant_id']} {i['number']}" for i in issued],
                                          "held": held})
            transaction.update(progress_ref, {"issued": Increment(len(issued)), "held": Increment(held),
                                              "numbered_all": last_step})
            return issued, True

        return firestore.run_transaction(attempt, db=self.db)
