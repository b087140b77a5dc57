"""The seller's chart of accounts for billing's journal and the VAT code and return box of each VAT treatment,
from config/ledger.json (documented in that file, changeable without code), checked when it is loaded."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BOXES = ("1a", "3b", None)
ROLES = ("bank", "receivables", "customer_balance", "vat_payable", "base_fee", "usage_other", "credit", "sla_credit",
         "credit_grant")
TREATMENTS = ("standard", "reverse_charge", "outside_scope")


class LedgerError(ValueError):
    """config/ledger.json is wrong; the message names the field."""


@dataclass(frozen=True)
class Ledger:
    accounts: dict[str, str]  # code -> name
    postings: dict  # role -> code; "usage": meter -> code
    vat_codes: dict[str, dict]  # treatment -> {code, box, about}

    def revenue(self, line: Mapping) -> str:
        kind = line.get("kind")
        if kind == "base_fee":
            return self.postings["base_fee"]
        if kind in ("usage", "late_usage"):
            return self.postings["usage"].get(line.get("meter"), self.postings["usage_other"])
        if kind == "credit_grant":
            return self.postings["credit_grant"]
        if kind == "credit":
            return self.postings["credit"]
        raise ValueError(f"a line of kind {kind!r} has no account in the ledger")

    def vat_code(self, treatment: str) -> str:
        return self.vat_codes[treatment]["code"]

    def box(self, treatment: str) -> str | None:
        return self.vat_codes[treatment]["box"]


def parse_ledger(document: object) -> Ledger:
    if not isinstance(document, dict):
        raise LedgerError("ledger: must be an object")
    accounts = document.get("accounts")
    if not isinstance(accounts, dict) or not accounts or not all(
            isinstance(code, str) and isinstance(name, str) and code and name for code, name in accounts.items()):
        raise LedgerError("accounts: must map account codes to names")
    postings = document.get("postings")
    if not isinstance(postings, dict):
        raise LedgerError("postings: must be an object")
    for role in ROLES:
        if postings.get(role) not in accounts:
            raise LedgerError(f"postings.{role}: {postings.get(role)!r} is not an account of `accounts`")
    usage = postings.get("usage")
    if not isinstance(usage, dict):
        raise LedgerError("postings.usage: must map meters to accounts")
    for meter, code in usage.items():
        if code not in accounts:
            raise LedgerError(f"postings.usage.{meter}: {code!r} is not an account of `accounts`")
    vat_codes = document.get("vat_codes")
    if not isinstance(vat_codes, dict):
        raise LedgerError("vat_codes: must be an object")
    for treatment in TREATMENTS:
        entry = vat_codes.get(treatment)
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str) or not entry["code"]:
            raise LedgerError(f"vat_codes.{treatment}.code: must be a non-empty string")
        if entry.get("box", "missing") not in BOXES:
            raise LedgerError(f"vat_codes.{treatment}.box: must be \"1a\", \"3b\" or null")
    return Ledger(dict(accounts), dict(postings), {t: dict(vat_codes[t]) for t in TREATMENTS})


def load_ledger(path: Path) -> Ledger:
    try:
        return parse_ledger(json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        raise LedgerError(f"{path.name} is not valid JSON: {error}") from None
