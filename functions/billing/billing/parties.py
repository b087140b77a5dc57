"""Who sells, who buys, and which VAT applies: the seller from `config/seller.json` (validated on load
like the price book), the customer from the tenant's `billing_profile` (validated by the provisioner when set).

Treatment by where the customer is: the Netherlands, or no profile at all -> `standard` (21 %); another EU
member state -> `reverse_charge` (0 %, the customer accounts for the VAT: art. 44 and 196 of the VAT Directive);
outside the EU -> `outside_scope` (0 %, the place of supply of a B2B service is where the customer is).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from billing.money import cents

HOME = "NL"
REVERSE_CHARGE_NOTE = "VAT reverse-charged (BTW verlegd): the customer accounts for the VAT (art. 196 VAT Directive)."
OUTSIDE_SCOPE_NOTE = "Service supplied to a customer outside the EU: outside the scope of Dutch and EU VAT."


class SellerError(ValueError):
    """The seller configuration is wrong; the message names the field."""


def eu_countries() -> frozenset[str]:
    """ISO 3166 codes of the EU member states (stdnum names Greece GR here; its VAT prefix is EL)."""
    from stdnum.eu.vat import MEMBER_STATES

    # XI is a VAT prefix, not a country; Monaco is part of France's VAT territory (VAT Directive art. 7).
    return frozenset(code.upper() for code in MEMBER_STATES if code != "xi") | {"MC"}


@dataclass(frozen=True)
class Seller:
    details: dict  # as the invoice shows it
    payment_terms_days: int
    standard_rate: Decimal


def _text(document: dict, field: str, where: str, maximum: int = 200) -> str:
    value = document.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > maximum:
        raise SellerError(f"{where}{field}: must be a non-blank string of at most {maximum} characters")
    return value


def parse_seller(document: object) -> Seller:
    from stdnum import iban
    from stdnum.nl import btw

    if not isinstance(document, dict):
        raise SellerError("seller: must be an object")
    address = document.get("address")
    if not isinstance(address, dict):
        raise SellerError("address: must be an object")
    for field in ("line1", "postal_code", "city"):
        _text(address, field, "address.")
    if address.get("country") != HOME:
        raise SellerError(f"address.country: the seller invoices from {HOME}, got {address.get('country')!r}")
    vat_id = _text(document, "vat_id", "")
    if not btw.is_valid(vat_id):
        raise SellerError(f"vat_id: {vat_id!r} is not a valid Dutch VAT number (NL, 9 digits, B, 2 digits)")
    coc = _text(document, "coc_number", "")
    if not re.fullmatch(r"[0-9]{8}", coc):
        raise SellerError(f"coc_number: a KvK number has 8 digits, got {coc!r}")
    if not iban.is_valid(_text(document, "iban", "")):
        raise SellerError(f"iban: {document['iban']!r} is not a valid IBAN")
    _text(document, "email", "")
    terms = document.get("payment_terms_days")
    if not isinstance(terms, int) or isinstance(terms, bool) or not 0 <= terms <= 120:
        raise SellerError(f"payment_terms_days: must be a whole number of days from 0 to 120, got {terms!r}")
    rates = document.get("vat_rates")
    try:
        rate = Decimal(rates["standard"]) if isinstance(rates, dict) and isinstance(rates.get("standard"), str) \
            else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or not 0 <= rate < 100:
        raise SellerError("vat_rates.standard: must be a decimal string such as \"21\"")
    details = {field: document[field] for field in ("legal_name", "vat_id", "coc_number", "iban", "email")}
    details.update(address=dict(address), payment_terms_days=terms, bic=document.get("bic"))
    _text(document, "legal_name", "")
    return Seller(details, terms, rate)


def load_seller(path: Path) -> Seller:
    try:
        return parse_seller(json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        raise SellerError(f"{path.name} is not valid JSON: {error}") from None


def parties(seller: Seller, tenant: Mapping[str, Any]) -> dict:
    """The invoice's `seller`, `customer`, `vat` (without its amount), `notes` and `warnings`."""
    profile = tenant.get("billing_profile")
    warnings, notes = [], []
    if not profile:
        customer = {"legal_name": tenant.get("display_name") or tenant["tenant_id"]}
        warnings.append("no billing profile: the customer's legal name, address and VAT number are missing; "
                        "Dutch VAT (21 %) is charged until they are set (PATCH the tenant's billing_profile)")
        treatment, rate = "standard", seller.standard_rate
    else:
        customer = {key: profile[key] for key in ("legal_name", "address", "vat_id", "email", "language",
                                                    "peppol_id", "buyer_reference", "order_reference")
                    if profile.get(key)}
        country = profile["address"]["country"]
        if country == HOME:
            treatment, rate = "standard", seller.standard_rate
        elif country in eu_countries():
            treatment, rate = "reverse_charge", Decimal(0)
            notes.append(f"{REVERSE_CHARGE_NOTE} Customer VAT number: {profile['vat_id']}.")
        else:
            treatment, rate = "outside_scope", Decimal(0)
            notes.append(OUTSIDE_SCOPE_NOTE)
    return {"seller": seller.details, "customer": customer, "vat": {"treatment": treatment, "rate": str(rate)},
            "notes": notes, "warnings": warnings}


def vat_amount(net: Decimal, rate: Decimal) -> Decimal:
    """VAT on the invoice's net, rounded once half-up to cents (per invoice, not per line)."""
    return cents(net * rate / 100)
