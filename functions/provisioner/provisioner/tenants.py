"""Tenant records: what a request may say, and how the status moves.

provisioning ─ok→ active ─tier or site change→ updating ─ok→ active
      │                  ╲                 │
      └──fail──→ failed ←─fail─────────────┘     failed ─ok (current manifests)→ active
any live status ─delete→ deleting ─ok→ deleted   (a failure while deleting keeps it deleting, with the message)
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from energent_shared import fields
from energent_shared.errors import Invalid
from energent_shared.firestore import valid_tenant_id
from energent_shared.tiers import TIERS
from provisioner.sites import SiteRules, validate_site

DEPLOYMENT_MODELS = ("multi-tenant", "dedicated", "hybrid")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_DISPLAY_NAME = 200
PUBLIC_FIELDS = ("tenant_id", "display_name", "tier", "deployment_model", "status", "status_message",
                 "billing_start", "billing_profile", "site", "site_state", "created_at", "updated_at")
PROFILE_FIELDS = {"legal_name": 200, "vat_id": 32, "email": 254, "buyer_reference": 200, "order_reference": 200}
PROFILE_LANGUAGES = ("en", "nl")  # the language of the customer's invoices (HTML and PDF)
ADDRESS_FIELDS = {"line1": 200, "line2": 200, "postal_code": 20, "city": 100, "country": 2}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# A hybrid tenant's BGP sessions: on, or cut off (by the route watchdog or the operator). The record holds None or
# {state: "quarantined", reason, prefixes, at}; a PATCH says which the operator wants.
SITE_STATES = ("enabled", "quarantined")


@dataclass(frozen=True)
class TenantSpec:
    """What the manifests are rendered from."""

    tenant_id: str
    tier: str
    deployment_model: str = "multi-tenant"
    master_cidr: str | None = None  # a dedicated cluster's control-plane range
    pods_cidr: str | None = None  # and its own Pod and Service ranges (two clusters never share them)
    services_cidr: str | None = None
    site: dict | None = None  # a hybrid tenant's site (validate_site)
    bgp_ranges: tuple[str, ...] = ()  # and its tunnels' link-local /30s, one per tunnel (bgp_ranges)
    spend_blocked: bool = False  # billing blocked it for its spend: a concurrent-workflow limit of 0
    site_enabled: bool = True  # False while the route watchdog (routes.py) or the operator has its BGP cut off


def _display_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_DISPLAY_NAME:
        raise Invalid(f"display_name must be a non-blank string of at most {MAX_DISPLAY_NAME} characters")
    return value.strip()


def _tier(value: object) -> str:
    if not isinstance(value, str) or value not in TIERS:
        raise Invalid(f"tier must be one of {', '.join(TIERS)}, got {value!r}")
    return value


def validate_create(body: dict, today: datetime.date, sites: SiteRules | None = None) -> dict:
    """The fields of a new tenant, or Invalid naming the first bad one. A hybrid tenant's `site` is checked against
    `sites`, the platform's rules (hybrid tenants are refused while the platform has none)."""
    fields.only(body, {"tenant_id", "display_name", "tier", "deployment_model", "billing_start", "billing_profile",
                       "site"})
    tenant_id = body.get("tenant_id")
    if not valid_tenant_id(tenant_id):
        raise Invalid(f"tenant_id {tenant_id!r} must match ^[a-z][a-z0-9-]{{2,30}}[a-z0-9]$")
    model = body.get("deployment_model", "multi-tenant")
    if model not in DEPLOYMENT_MODELS:
        raise Invalid(f"deployment_model must be one of {', '.join(DEPLOYMENT_MODELS)}, got {str(model)[:40]!r}")
    if model != "hybrid" and "site" in body:
        raise Invalid(f"site is for hybrid tenants only, not {model}")
    if model == "hybrid" and "site" not in body:
        raise Invalid("site is required for a hybrid tenant: {peer_ips, peer_asn, cidrs}")
    billing_start, profile = body.get("billing_start"), body.get("billing_profile")
    given = {"tenant_id": tenant_id, "display_name": _display_name(body.get("display_name")),
             "tier": _tier(body.get("tier")), "deployment_model": model,
             "billing_start": None if billing_start is None else _billing_start(billing_start, today),
             "billing_profile": None if profile is None else billing_profile(profile)}
    if model == "hybrid":
        given["site"] = validate_site(body["site"], sites)
    return given


def billing_profile(profile: object) -> dict:
    """The customer as invoices name it (§7.3), or Invalid naming the bad field. EU VAT numbers are checked
    for format and check digits (python-stdnum), countries against ISO 3166-1 (pycountry)."""
    import pycountry
    from stdnum.eu import vat

    if not isinstance(profile, dict):
        raise Invalid("billing_profile must be an object")
    fields.only(profile, {*PROFILE_FIELDS, "address", "language", "peppol_id"}, "billing_profile")
    address = profile.get("address")
    if not isinstance(address, dict):
        raise Invalid("billing_profile.address must be an object")
    fields.only(address, ADDRESS_FIELDS, "billing_profile.address")
    written = {name: fields.text(address, name, limit, required=name != "line2", within="billing_profile.address")
               for name, limit in ADDRESS_FIELDS.items()}
    country: str = written["country"] or ""
    clean: dict[str, Any] = {"legal_name": fields.text(profile, "legal_name", 200, within="billing_profile"),
                             "address": {k: v for k, v in written.items() if v is not None}}
    if not (country.isascii() and country.isupper()) or pycountry.countries.get(alpha_2=country) is None:
        raise Invalid(f"billing_profile.address.country must be an ISO 3166-1 alpha-2 code such as NL, "
                      f"got {country!r}")
    email = fields.text(profile, "email", 254, required=False, within="billing_profile")
    if email is not None:
        if not _EMAIL.fullmatch(email):
            raise Invalid(f"billing_profile.email is not an email address: {email[:60]!r}")
        clean["email"] = email
    vat_id = fields.text(profile, "vat_id", 32, required=False, within="billing_profile")
    in_eu = country.lower() in vat.MEMBER_STATES or country == "MC"  # Monaco is France for VAT
    if in_eu and vat_id is None and country != "NL":
        raise Invalid(f"billing_profile.vat_id is required for a customer in {country}: invoices to other EU "
                      "countries are reverse-charged and must name the customer's VAT number")
    if in_eu and vat_id is not None:
        from stdnum.exceptions import ValidationError

        if not vat_id.isascii():
            raise Invalid(f"billing_profile.vat_id must be written in ASCII letters and digits, got "
                          f"{vat_id[:32]!r}")
        prefix = "EL" if country == "GR" else "FR" if country == "MC" else country
        try:
            compact = vat.compact(vat_id)
        except ValidationError:
            raise Invalid(f"billing_profile.vat_id {vat_id[:32]!r} is not a valid {prefix} VAT number") from None
        if not compact.startswith(prefix):
            raise Invalid(f"billing_profile.vat_id must start with {prefix} for a customer in {country}, "
                          f"got {vat_id[:32]!r}")
        if not vat.is_valid(compact):
            raise Invalid(f"billing_profile.vat_id {vat_id[:32]!r} is not a valid {prefix} VAT number "
                          "(format or check digits)")
        vat_id = compact
    if vat_id is not None:
        clean["vat_id"] = vat_id
    for reference in ("buyer_reference", "order_reference"):  # BT-10 and the purchase order, BT-13, of e-invoices
        given = fields.text(profile, reference, 200, required=False, within="billing_profile")
        if given is not None:
            clean[reference] = given
    if profile.get("language") is not None:
        if profile["language"] not in PROFILE_LANGUAGES:
            raise Invalid(f"billing_profile.language must be one of {', '.join(PROFILE_LANGUAGES)}, got "
                          f"{str(profile['language'])[:20]!r}")
        clean["language"] = profile["language"]
    if profile.get("peppol_id") is not None:
        clean["peppol_id"] = _peppol_id(profile["peppol_id"])
    return clean


def _peppol_id(value: object) -> dict:
    """The customer's Peppol address: a scheme of Peppol's EAS list and an identifier (printable, at most 100)."""
    from energent_shared.peppol import EAS_CODES

    if not isinstance(value, dict):
        raise Invalid("billing_profile.peppol_id must be an object {scheme, id}")
    fields.only(value, {"scheme", "id"}, "billing_profile.peppol_id")
    scheme = value.get("scheme")
    if not isinstance(scheme, str) or scheme not in EAS_CODES:
        raise Invalid(f"billing_profile.peppol_id.scheme must be a code of Peppol's Electronic Address Scheme list "
                      f"(e.g. 0106 for a KvK number, 9944 for a Dutch VAT number), got {str(scheme)[:10]!r}")
    return {"scheme": scheme, "id": fields.text(value, "id", 100, within="billing_profile.peppol_id")}


def _billing_start(value: object, today: datetime.date) -> str:
    """Exactly YYYY-MM-DD in ASCII digits, a real date, not in the future (week or ordinal dates are refused)."""
    parsed = None
    if not isinstance(value, str):
        raise Invalid(f"billing_start must be a date YYYY-MM-DD, got {str(value)[:40]!r}")
    if _DATE.fullmatch(value):
        try:
            parsed = datetime.date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise Invalid(f"billing_start must be a date YYYY-MM-DD, got {str(value)[:40]!r}")
    if parsed > today:
        raise Invalid("billing_start may not be in the future; it defaults to the day the tenant "
                      "first becomes active")
    return value


def validate_patch(body: dict, today: datetime.date, sites: SiteRules | None = None) -> dict:
    """The changes a PATCH asks for. `deployment_model` may be given only as it is (checked against the record by
    the caller), `site` only for a hybrid tenant (likewise)."""
    fields.only(body, {"tier", "display_name", "billing_start", "billing_profile", "site", "deployment_model",
                       "site_state"})
    if not body:
        raise Invalid("nothing to change: give tier, display_name, billing_start, billing_profile and/or site")
    changes: dict[str, Any] = {}
    if "tier" in body:
        changes["tier"] = _tier(body["tier"])
    if "display_name" in body:
        changes["display_name"] = _display_name(body["display_name"])
    if "billing_start" in body:
        changes["billing_start"] = _billing_start(body["billing_start"], today)
    if "billing_profile" in body:
        changes["billing_profile"] = billing_profile(body["billing_profile"])
    if "deployment_model" in body:
        if body["deployment_model"] not in DEPLOYMENT_MODELS:
            raise Invalid(f"deployment_model must be one of {', '.join(DEPLOYMENT_MODELS)}")
        changes["deployment_model"] = body["deployment_model"]
    if "site" in body:
        changes["site"] = validate_site(body["site"], sites)
    if "site_state" in body:
        if body["site_state"] not in SITE_STATES:
            raise Invalid(f"site_state must be one of {', '.join(SITE_STATES)}, got {str(body['site_state'])[:20]!r}")
        changes["site_state"] = body["site_state"]
    return changes


def check_patch(record: dict, changes: dict) -> None:
    """What a PATCH may not do to this tenant: change its deployment model (its cluster, network and identities
    were made for it), give a site to a tenant that is not hybrid, or change a site's gateway addresses.

    Why a new peer address is refused rather than applied by making the gateway and tunnels again under new names:
    Config Connector refuses any change to an external VPN gateway's `interface` and `redundancyType` and to a
    tunnel's `peerExternalGatewayInterface` and `sharedSecret` (Immutable in their CRDs), so a new address means a
    new gateway, new tunnels with new keys, new router interfaces on new /30s and new BGP sessions, all made beside
    the old ones and the old ones removed only after the new ones are up, while the customer configures its side
    anew. That is a second onboarding under the same tenant; until the platform supports it as one, a clear 400
    keeps the tenant's connection as it is instead of a change that Flux could never apply."""
    model = record["deployment_model"]
    if changes.get("deployment_model", model) != model:
        raise Invalid(f"deployment_model cannot change after create: tenant {record['tenant_id']} is {model}")
    for field in ("site", "site_state"):
        if field in changes and model != "hybrid":
            raise Invalid(f"{field} is for hybrid tenants only, not {model}")
    if "site" in changes and record.get("site") and changes["site"]["peer_ips"] != record["site"]["peer_ips"]:
        raise Invalid(f"site.peer_ips cannot change: the customer's VPN gateway addresses are fixed in Compute "
                      f"Engine once its tunnels exist (an external VPN gateway's interfaces and a tunnel's peer "
                      f"interface are immutable); tenant {record['tenant_id']} keeps "
                      f"{', '.join(record['site']['peer_ips'])}. A new gateway address is a new connection: "
                      "delete the tenant and onboard the site again")


def on_flux_outcome(status: str, succeeded: bool) -> str | None:
    """The next status after Flux reports on the tenant's current manifests; None: no change."""
    if status == "deleted":
        return None
    if succeeded:
        return {"provisioning": "active", "updating": "active", "failed": "active", "deleting": "deleted"}.get(status)
    return None if status == "deleting" else "failed"


def _hashed(prefix: str, tenant_id: str, salt: str = "") -> str:
    digest = base64.b32encode(hashlib.sha256(f"{salt}{tenant_id}".encode()).digest()).decode().lower()
    return f"{prefix}{digest[:27]}"


def google_service_account_id(tenant_id: str) -> str:
    """The tenant's Google service account id (6 to 30 characters), distinct for distinct tenants.

    Ids that fit are `tenant-<id>`: its namespace's own name, so the cluster's admission policy can tell that an
    account's Workload Identity binding names that namespace. Longer ones become `tn-` and 27 base32 characters of
    SHA-256 (135 bits: no collision can be searched for); the prefixes differ in their second letter, so the two
    forms never meet."""
    plain = f"tenant-{tenant_id}"
    return plain if len(plain) <= 30 else _hashed("tn-", tenant_id)


def node_service_account_id(tenant_id: str) -> str:
    """A dedicated tenant's node service account: `nd-<id>` when it fits (ids up to 27 characters), so the admission
    policy can tell a node pool runs as its own tenant's account, else `nh-` and 27 base32 characters of SHA-256. The
    prefixes never meet a workload account's (`tenant-`, `tn-`) or each other."""
    plain = f"nd-{tenant_id}"
    return plain if len(plain) <= 30 else _hashed("nh-", tenant_id, "nodes:")


def nth_block(pool: str, index: int, prefix: int, what: str, clear_of: tuple[str, ...] = ()) -> str:
    """The `index`th /`prefix` of `pool`; refuses a pool that overlaps a range in `clear_of` or is used up."""
    network = ipaddress.ip_network(pool)
    if network.version != 4 or network.prefixlen > prefix:
        raise ValueError(f"the {what} pool {pool} must be an IPv4 range of a /{prefix} or more")
    for other in clear_of:
        if network.overlaps(ipaddress.ip_network(other)):
            raise ValueError(f"the {what} pool {pool} overlaps {other}")
    blocks = 2 ** (prefix - network.prefixlen)
    if not 0 <= index < blocks:
        raise ValueError(f"the {what} pool {pool} has no /{prefix} left ({blocks} allocated)")
    return str(ipaddress.ip_network((int(network.network_address) + 2 ** (32 - prefix) * index, prefix)))


def master_cidr(pool: str, index: int, shared: str) -> str:
    """The `index`th /28 of `pool` for a dedicated cluster's control plane, clear of the shared cluster's."""
    return nth_block(pool, index, 28, "dedicated control-plane", (shared,))


def cluster_ranges(platform, index: int) -> dict[str, str]:
    """A dedicated cluster's control-plane, Pod and Service ranges: the `index`th block of each of the platform's
    pools (`index` is handed out once and never again, so no two clusters share a range). The Pod and Service ranges
    exist in the platform's subnetwork for the first `dedicated_slots` indexes only (infra/modules/networking makes
    them: GKE cannot add ranges to a Shared VPC subnetwork)."""
    if not 0 <= index < platform.dedicated_slots:
        raise ValueError(f"every one of the platform's {platform.dedicated_slots} dedicated cluster slots is taken: "
                         "raise dedicated_cluster_slots (infra/modules/networking) and DEDICATED_CLUSTER_SLOTS")
    return {"master_cidr": master_cidr(platform.master_pool, index, platform.shared_master_cidr),
            "pods_cidr": nth_block(platform.pods_pool, index, 17, "dedicated Pod", platform.shared_ranges),
            "services_cidr": nth_block(platform.services_pool, index, 22, "dedicated Service",
                                       (*platform.shared_ranges, platform.pods_pool))}


def range_name(kind: str, cidr: str | None) -> str:
    """The name of a dedicated cluster's secondary range in the platform's subnetwork: its kind and its addresses
    (infra/modules/networking names them the same way), e.g. dedicated-pods-10-64-0-0-17."""
    if cidr is None:
        raise ValueError(f"a dedicated cluster without its {kind} range")
    return f"dedicated-{kind}-{cidr.replace('.', '-').replace('/', '-')}"


def namespace(tenant_id: str) -> str:
    return f"tenant-{tenant_id}"


def tier_change(record: dict, tier: str, at: datetime.datetime) -> list[dict]:
    """The record's tier history with a change to `tier` at `at` (billing prorates by it, §7.2)."""
    history = record.get("tier_history") or [{"tier": record["tier"], "at": record["created_at"]}]
    return [*history, {"tier": tier, "at": at}]


def public_view(record: dict) -> dict:
    return {field: record.get(field) for field in PUBLIC_FIELDS}
