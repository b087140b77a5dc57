"""The records billing reads and writes, typed once: tenants as the provisioner keeps them, invoice lines, invoices
with their lifecycle, credit notes, payments and the customer balance. Money and quantities are decimal strings
(never floats), exactly as the JSON carries them."""

from __future__ import annotations

import datetime
from typing import Any, TypedDict


class Address(TypedDict, total=False):
    line1: str
    line2: str
    postal_code: str
    city: str
    country: str


class Profile(TypedDict, total=False):
    legal_name: str
    address: Address
    vat_id: str
    email: str


class TierChange(TypedDict):
    tier: str
    at: datetime.datetime | str


class Tenant(TypedDict, total=False):
    tenant_id: str
    display_name: str
    tier: str
    status: str
    deployment_model: str
    billing_start: str | None
    billing_profile: Profile | None
    created_at: datetime.datetime | str
    deleted_at: datetime.datetime | None
    tier_history: list[TierChange]


class Band(TypedDict):
    quantity: str
    unit_price: str


class Proration(TypedDict):
    days: int
    days_in_month: int


class Line(TypedDict, total=False):
    kind: str  # base_fee | usage | late_usage (invoices); credit (a partial credit note)
    meter: str
    period: str  # late usage and late base fees: the period supplied
    quantity: str  # the metered quantity (a max meter: its peak; late usage: what was added)
    billable_quantity: str  # what is charged, after the allowance
    included: str  # the allowance the line was priced against
    unit: str
    unit_price: str
    bands: list[Band]
    proration: Proration
    amount: str
    description: str


class Vat(TypedDict):
    treatment: str  # standard | reverse_charge | outside_scope
    rate: str
    amount: str


class Payment(TypedDict):
    amount: str
    reference: str
    paid_at: str


class LateEntry(TypedDict, total=False):
    period: str
    meter: str
    quantity: str
    kind: str  # base_fee


class Invoice(TypedDict, total=False):
    """An invoice: as drafted, then as issued (`number` and the issue fields), then with its lifecycle (payments,
    credit notes, the balance applied) which only the API shows, never the archive."""

    tenant_id: str
    period: str
    currency: str
    tier: str
    deployment_model: str
    price_book: str
    lines: list[Line]
    subtotal: str
    sla: dict[str, Any] | None
    sla_credit: str
    net: str
    vat: Vat
    total: str
    late_usage: list[LateEntry]
    seller: dict[str, Any]
    customer: dict[str, Any]
    notes: list[str]
    warnings: list[str]
    status: str  # draft | final | partially_paid | paid | credited
    held: bool  # a draft held for want of a billing profile
    number: str
    issued_at: str
    issue_date: str
    due_date: str
    payment_reference: str
    replaces: str
    replaced_by: str
    balance_applied: str
    payments: list[Payment]
    amount_paid: str
    credit_notes: list[str]
    credited_net: str
    credited_vat: str
    credited_total: str
    amount_due: str


class CreditNote(TypedDict, total=False):
    tenant_id: str
    period: str
    currency: str
    tier: str
    number: str
    invoice_number: str
    invoice_date: str
    reason: str
    lines: list[Line]
    subtotal: str
    sla: dict[str, Any] | None
    sla_credit: str
    net: str
    vat: Vat
    total: str
    seller: dict[str, Any]
    customer: dict[str, Any]
    notes: list[str]
    issued_at: str
    issue_date: str
    status: str


class BalanceEntry(TypedDict, total=False):
    amount: str  # positive: owed to the customer; negative: used on an invoice
    reason: str
    document_number: str
    at: str


class Balance(TypedDict):
    currency: str
    amount: str
