"""The Dutch VAT return of a quarter (aangifte omzetbelasting) and its ICP listing (opgaaf intracommunautaire
prestaties), from the issued invoices and credit notes dated in the quarter. A pure function of the documents.

Which box each VAT treatment feeds, and why, is config/ledger.json's (`vat_codes.*.box`): domestic services at
21 % in box 1a (turnover and VAT), services reverse-charged to EU businesses in box 3b and, per customer VAT
number, in the ICP listing; services to businesses outside the EU in no box, shown apart as `outside_return` so
the return reconciles with the books. Turnover is the net amount (after SLA credits and grants, which lower the
taxable amount); VAT is the documents' own VAT, rounded per document as invoiced. A credit note's JSON carries
negated amounts, so it subtracts in the quarter it is issued.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing.ledger import Ledger

ZERO = Decimal("0.00")
_QUARTER = re.compile(r"(2[0-9]{3})-Q([1-4])")


class InvalidQuarter(ValueError):
    """A quarter that is not `YYYY-Qn` (a year from 2000 to 2999, n from 1 to 4)."""


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @property
    def first_day(self) -> datetime.date:
        return datetime.date(self.year, 3 * self.number - 2, 1)

    @property
    def last_day(self) -> datetime.date:
        following = datetime.date(self.year + 1, 1, 1) if self.number == 4 else \
            datetime.date(self.year, 3 * self.number + 1, 1)
        return following - datetime.timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


def parse_quarter(text: object) -> Quarter:
    if not isinstance(text, str) or not _QUARTER.fullmatch(text):
        raise InvalidQuarter(f"a quarter is written YYYY-Qn, a year from 2000 to 2999 and n from 1 to 4 (2026-Q4); "
                             f"got {text!r}")
    return Quarter(int(text[:4]), int(text[-1]))


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"


def _compact(vat_id: str) -> str:
    return re.sub(r"[\s.\-]", "", vat_id).upper()


def tax_date(document: Mapping) -> str:
    """The day a document counts for in the return. A service reverse-charged to a business in another member state
    is supplied when it is completed, the last day of the month billed (art. 64(1) and 66 VAT Directive), however
    late the invoice: the ICP listing must match what the customer declares. Everything else counts on its issue
    date (domestic VAT is due on the invoice's date, art. 13 Wet OB), and a credit note in the quarter it is issued."""
    if document["vat"]["treatment"] == "reverse_charge" and "invoice_number" not in document:
        year, month = int(document["period"][:4]), int(document["period"][5:7])
        following = datetime.date(year + month // 12, month % 12 + 1, 1)
        return (following - datetime.timedelta(days=1)).isoformat()
    return document["issue_date"]


def vat_return(quarter: str | Quarter, documents: Iterable[Mapping], ledger: Ledger) -> dict:
    """`{period, boxes: {"1a": {turnover, vat}, "3b": {turnover}}, outside_return: {turnover}, icp: [{vat_id,
    country, turnover}]}` for the issued invoices and credit notes among `documents` whose tax date (`tax_date`)
    falls in the quarter. The ICP listing has one row per customer VAT number whose turnover in the quarter is not
    zero."""
    quarter = quarter if isinstance(quarter, Quarter) else parse_quarter(quarter)
    first, last = quarter.first_day.isoformat(), quarter.last_day.isoformat()
    domestic_turnover = domestic_vat = eu_turnover = outside = ZERO
    icp: dict[str, dict] = {}
    for document in documents:
        if not document.get("number") or document.get("status") == "draft":
            continue
        if not first <= tax_date(document) <= last:
            continue
        treatment = document["vat"]["treatment"]
        net, vat = Decimal(document["net"]), Decimal(document["vat"]["amount"])
        box = ledger.box(treatment)
        if box == "1a":
            domestic_turnover += net
            domestic_vat += vat
        elif box == "3b":
            eu_turnover += net
            customer = document["customer"]
            vat_id = _compact(customer["vat_id"])
            row = icp.setdefault(vat_id, {"vat_id": vat_id, "country": customer["address"]["country"],
                                          "turnover": ZERO})
            row["turnover"] += net
        else:
            outside += net
    listing = [{**row, "turnover": _money(row["turnover"])}
               for _, row in sorted(icp.items(), key=lambda item: (item[1]["country"], item[0])) if row["turnover"]]
    return {"period": str(quarter),
            "boxes": {"1a": {"turnover": _money(domestic_turnover), "vat": _money(domestic_vat)},
                      "3b": {"turnover": _money(eu_turnover)}},
            "outside_return": {"turnover": _money(outside)},
            "icp": listing}
