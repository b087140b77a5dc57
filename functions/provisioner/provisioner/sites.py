"""A hybrid tenant's site: what a request may say about it, whose ranges it may take, and the link-local ranges of
its tunnels.

A site is `{peer_ips, peer_asn, cidrs}`: the customer's VPN gateway (one or two public addresses), the ASN its
router speaks BGP with, and the ranges the tenant's agents may reach there (`cidrs`). The platform reaches it through
two HA VPN tunnels on its own HA VPN gateway, with a BGP session per tunnel on the platform's Cloud Router
(infra/modules/networking).

Ranges. Every site's `cidrs` lie inside the platform's site ranges (HYBRID_SITE_RANGES): every tenant's egress
allows exclude those ranges statically, so onboarding a site re-renders nobody else, and only the tenant's own
NetworkPolicy opens its ranges. No two live sites (of tenants not yet deleted) overlap, or routes learned from one
site could carry another's traffic. That is decided in one Firestore transaction over one registry document of
every live site's ranges (store.SiteRegistry): two requests racing for overlapping ranges meet on that document,
and the second sees the first's claim. One document holds it because the platform's Cloud Router holds at most 128
BGP sessions, two per site: 64 sites, a few kilobytes, changed by an operator's request a few times a day, far below
a document's size and write-rate limits. A second router (another region, say) is a second document.

Link-local ranges. Each tunnel's BGP session runs on a /30 of `bgp_pool` (169.254.0.0/16, RFC 3927): the platform's
side takes its first host, the customer's the second. They are handed out by a counter, never again (like a
dedicated cluster's ranges), so a deleted tenant's /30s stay retired and no two sessions in the VPC ever share one.
169.254.169.252/30 holds the metadata server and is skipped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from energent_shared import fields
from energent_shared.errors import Conflict, Invalid

TUNNELS = 2  # HA VPN: one tunnel per interface of the platform's gateway
MAX_PEER_IPS = 2
MAX_CIDRS = 8
# The widest range a site may take. A customer's agents reach a few subnets of its own (an ERP, a file server): a /16
# is 65,536 addresses, and eight of them are more than any site has. Wider claims would let one tenant take the
# site ranges from everyone (10.192.0.0/10 is 64 /16s: one claim could hold them all) and would make the route
# watchdog's test, "is every learned prefix inside the tenant's ranges?", as weak as the claim is wide.
WIDEST_PREFIX = 16
PRIVATE_ASNS = ((64512, 65534), (4200000000, 4294967294))  # RFC 6996, less the last of each (RFC 7300)
METADATA_RANGE = ipaddress.IPv4Network("169.254.169.252/30")
LINK_LOCAL = ipaddress.IPv4Network("169.254.0.0/16")
_DOTTED = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_CIDR = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}")
# Not globally routable, beyond what `ipaddress` calls not global: multicast, the deprecated 6to4 relay anycast
# (RFC 7526) and the IETF protocol assignments block (no VPN gateway lives there).
_NOT_PEERS = tuple(ipaddress.IPv4Network(n) for n in ("224.0.0.0/4", "192.88.99.0/24", "192.0.0.0/24"))


@dataclass(frozen=True)
class SiteRules:
    """What the platform allows a site: its ranges inside `site_ranges`, clear of `platform_ranges`, and a peer ASN
    other than the platform's own."""

    site_ranges: tuple[str, ...]
    platform_ranges: tuple[str, ...]
    platform_asn: int
    platform_addresses: tuple[str, ...] = ()  # the platform's own HA VPN gateway: never a customer's


def _addresses(value: object, platform: tuple[str, ...] = ()) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PEER_IPS:
        raise Invalid(f"site.peer_ips must be a list of 1 to {MAX_PEER_IPS} IPv4 addresses")
    found: list[str] = []
    for index, address in enumerate(value):
        where = f"site.peer_ips[{index}]"
        if not isinstance(address, str) or not _DOTTED.fullmatch(address):
            raise Invalid(f"{where} must be an IPv4 address such as 203.0.113.7, got {str(address)[:40]!r}")
        try:
            parsed = ipaddress.IPv4Address(address)
        except ValueError:
            raise Invalid(f"{where} {address!r} is not an IPv4 address") from None
        if not parsed.is_global or any(parsed in network for network in _NOT_PEERS):
            raise Invalid(f"{where} {address} is not a public address: the customer's VPN gateway must be "
                          "reachable on the internet (private, shared, documentation, multicast and reserved "
                          "ranges are refused)")
        if str(parsed) in platform:
            raise Invalid(f"{where} {address} is the platform's own VPN gateway: give the customer's gateway")
        if str(parsed) in found:
            raise Invalid(f"{where} {address} is given twice")
        found.append(str(parsed))
    return found


def _asn(value: object, platform_asn: int) -> int:
    if type(value) is not int or not any(low <= value <= high for low, high in PRIVATE_ASNS):
        raise Invalid(f"site.peer_asn must be a private ASN, 64512-65534 or 4200000000-4294967294, got "
                      f"{str(value)[:20]!r}")
    if value == platform_asn:
        raise Invalid(f"site.peer_asn {value} is the platform's own ASN: the customer's router needs another one")
    return value


def _cidrs(value: object, rules: SiteRules) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CIDRS:
        raise Invalid(f"site.cidrs must be a list of 1 to {MAX_CIDRS} IPv4 ranges")
    allowed = [ipaddress.IPv4Network(r) for r in rules.site_ranges]
    platform = [ipaddress.IPv4Network(r) for r in rules.platform_ranges]
    found: list[ipaddress.IPv4Network] = []
    for index, cidr in enumerate(value):
        where = f"site.cidrs[{index}]"
        if not isinstance(cidr, str) or not _CIDR.fullmatch(cidr):
            raise Invalid(f"{where} must be an IPv4 range such as 10.200.0.0/16, got {str(cidr)[:40]!r}")
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError as error:
            hint = ""
            if "host bits" in str(error):
                hint = f"; did you mean {ipaddress.IPv4Network(cidr, strict=False)}?"
            raise Invalid(f"{where} {cidr} is not a valid range{hint}") from None
        clash = next((str(p) for p in platform if network.overlaps(p)), None)
        if clash is not None:
            raise Invalid(f"{where} {cidr} overlaps the platform's range {clash}")
        if not any(network.subnet_of(a) for a in allowed):
            raise Invalid(f"{where} {cidr} lies outside the platform's site ranges (HYBRID_SITE_RANGES: "
                          f"{', '.join(rules.site_ranges)})")
        if network.prefixlen < WIDEST_PREFIX:
            raise Invalid(f"{where} {cidr} is wider than a /{WIDEST_PREFIX}: give the subnets the agents reach")
        same = next((str(f) for f in found if f.overlaps(network)), None)
        if same is not None:
            raise Invalid(f"{where} {cidr} overlaps {same} of the same site")
        found.append(network)
    return [str(network) for network in found]


def validate_site(value: object, rules: SiteRules | None) -> dict:
    """The site as stored, or Invalid naming the first bad field."""
    if rules is None:
        raise Invalid("this platform takes no hybrid tenants: its HA VPN gateway is not configured "
                      "(HYBRID_VPN_ADDRESSES)")
    if not isinstance(value, dict):
        raise Invalid("site must be an object {peer_ips, peer_asn, cidrs}")
    fields.only(value, {"peer_ips", "peer_asn", "cidrs"}, "site")
    for name in ("peer_ips", "peer_asn", "cidrs"):
        if name not in value:
            raise Invalid(f"site.{name} is required")
    return {"peer_ips": _addresses(value["peer_ips"], rules.platform_addresses),
            "peer_asn": _asn(value["peer_asn"], rules.platform_asn), "cidrs": _cidrs(value["cidrs"], rules)}


def claim(tenant_id: str, cidrs: list[str] | None, live: Mapping[str, list[str]], max_sites: int
          ) -> dict[str, list[str]]:
    """The registry of live sites after `tenant_id` takes `cidrs` (None: gives its ranges up), or Conflict naming
    the other tenant whose ranges overlap, or saying the platform's router is full."""
    others = {tenant: ranges for tenant, ranges in live.items() if tenant != tenant_id}
    if cidrs is None:
        return others
    for cidr in cidrs:
        network = ipaddress.IPv4Network(cidr)
        for tenant, ranges in sorted(others.items()):
            clash = next((r for r in ranges if network.overlaps(ipaddress.IPv4Network(r))), None)
            if clash is not None:
                raise Conflict(f"site.cidrs {cidr} overlaps {clash} of hybrid tenant {tenant}")
    if tenant_id not in live and len(others) >= max_sites:
        raise Conflict(f"the platform's Cloud Router holds {max_sites} sites (two BGP sessions each), all taken")
    return {**others, tenant_id: list(cidrs)}


def retiring(old: list[str], new: list[str], already: list[str] | None = None) -> list[str]:
    """The ranges a site change leaves held but no longer the site's: the old ranges (and any still retiring from an
    earlier change) that the new site does not name. They stay claimed until Flux reports the tenant's new rendering
    applied: until then its namespace may still hold the NetworkPolicy that opens them, and another tenant taking
    them would have its site reached by this tenant's agents."""
    found: list[str] = []
    for cidr in [*(already or []), *old]:
        if cidr not in new and cidr not in found:
            found.append(cidr)
    return found


def bgp_ranges(pool: str, first: int) -> list[str]:
    """The link-local /30s of a site's tunnels: the `first`-th and the next ones of `pool`, counting every /30 but
    the metadata server's (the counter hands each index out once)."""
    network = ipaddress.IPv4Network(pool)
    if not network.subnet_of(LINK_LOCAL) or network.prefixlen > 30:
        raise ValueError(f"the BGP pool {pool} must be a link-local range of a /30 or more")
    metadata = None
    if METADATA_RANGE.subnet_of(network):
        metadata = (int(METADATA_RANGE.network_address) - int(network.network_address)) // 4
    ranges = []
    for index in range(first, first + TUNNELS):
        number = index + (1 if metadata is not None and index >= metadata else 0)
        if number >= 2 ** (30 - network.prefixlen):
            raise ValueError(f"the BGP pool {pool} has no /30 left: every one was handed out once")
        ranges.append(str(ipaddress.IPv4Network((int(network.network_address) + 4 * number, 30))))
    return ranges


def session(bgp_range: str) -> tuple[str, str]:
    """(the platform's address, the customer's address) in a tunnel's /30."""
    network = ipaddress.IPv4Network(bgp_range)
    return str(network.network_address + 1), str(network.network_address + 2)
