"""Credit grants (promotional or contractual credit), as pure rules: what a POST may say, which grants an invoice
may take, in which order, and how much.

An invoice takes grants after its charge lines and its SLA credit, before VAT: one line `{kind: "credit_grant",
grant_id, amount: -x}` per grant it takes, so `net = subtotal - sla_credit + sum(credit_grant amounts)`, never
below 0. Grants are taken oldest expiry first, grants without expiry last (then oldest first); a grant whose
`expires_on` falls before the period's last day is not taken (`expires_on` is inclusive). A grant serves invoices
issued after it was made: a period's invoice takes what is left of the grants when it is drafted at the close (and
a draft held for a billing profile takes, when it is issued, grants made since); a reissue keeps the lines of the
invoice it replaces, so a grant is used once whatever is re-closed or reissued. The upcoming invoice and `spend`
show what the open period would take now.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

from billing import periods
from billing.budgets import amount
from billing.money import cents
from energent_shared import fields
from energent_shared.errors import Invalid

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_REASON = 500
ZERO = Decimal("0.00")


def parse(body: Mapping[str, object], today: datetime.date) -> dict:
    """{amount, reason, expires_on} of a new grant, or Invalid naming the field."""
    fields.only(body, {"amount", "reason", "expires_on"})
    given = amount(body.get("amount"), "amount")
    reason = fields.text(body, "reason", MAX_REASON)
    expires_on = body.get("expires_on")
    if expires_on is not None:
        if not isinstance(expires_on, str) or not _DATE.fullmatch(expires_on):
            raise Invalid("expires_on must be a date YYYY-MM-DD")
        try:
            day = datetime.date.fromisoformat(expires_on)
        except ValueError:
            raise Invalid(f"expires_on {expires_on!r} is not a real date") from None
        if day < today:
            raise Invalid(f"expires_on {expires_on} has already passed")
    return {"amount": str(given), "reason": reason, "expires_on": expires_on}


def usable(grant: Mapping, period: str) -> bool:
    """Whether `grant` may serve `period`'s invoice: something left, and not expired before the period's last day."""
    if Decimal(grant["remaining"]) <= 0:
        return False
    return grant.get("expires_on") is None or periods.days(period)[-1].isoformat() <= grant["expires_on"]


def order(grant: Mapping) -> tuple:
    return (grant.get("expires_on") is None, grant.get("expires_on") or "", str(grant.get("created_at")),
            grant["grant_id"])


def description(grant: Mapping) -> str:
    until = f", valid through {grant['expires_on']}" if grant.get("expires_on") else ""
    return f"Credit grant: {grant['reason']}{until}"


def apply(draft: dict, grants: Iterable[Mapping], period: str) -> tuple[dict, list[tuple[Mapping, Decimal]]]:
    """The draft with the grant lines it takes, `net` lowered by them (never below 0) and, if it has VAT already,
    its VAT and total again; and what each grant gives: [(grant, amount)]."""
    net = Decimal(draft["net"])
    lines = list(draft["lines"])
    uses: list[tuple[Mapping, Decimal]] = []
    for grant in sorted((g for g in grants if usable(g, period)), key=order):
        if net <= 0:
            break
        take = min(Decimal(grant["remaining"]), net)
        lines.append({"kind": "credit_grant", "grant_id": grant["grant_id"], "amount": str(cents(-take)),
                      "description": description(grant)})
        net -= take
        uses.append((grant, take))
    if not uses:
        return draft, []
    changed = {**draft, "lines": lines, "net": str(cents(net)), "total": str(cents(net))}
    if "vat" in draft:
        from billing.parties import vat_amount

        vat = vat_amount(net, Decimal(draft["vat"]["rate"]))
        changed.update(vat={**draft["vat"], "amount": str(vat)}, total=str(cents(net + vat)))
    return changed, uses


def view(grant: Mapping, currency: str) -> dict:
    """A grant as the API shows it."""
    return {"id": grant["grant_id"], "amount": grant["amount"], "remaining": grant["remaining"],
            "currency": currency, "reason": grant["reason"], "expires_on": grant.get("expires_on"),
            "created_at": grant["created_at"], "uses": list(grant.get("uses", []))}
