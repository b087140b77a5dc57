"""The route watchdog: what each hybrid tenant's site announces over BGP, and which site to cut off.

Why a watchdog. The platform's VPN router installs every route a site announces VPC-wide, and a site that announces
0.0.0.0/0 (a MED of 0 becomes priority 0, ahead of the default internet route), another tenant's ranges or a more
specific of them, a public prefix or an unused part of the platform's own pools captures traffic that is not its
own. The place to refuse such routes is the router: a Cloud Router route policy (`google_compute_router_route_policy`
in the google provider 6.50) that accepts the tenant's ranges and drops the rest. But a route policy acts only
through a BGP peer's `importPolicies`, and the peers are Config Connector's ComputeRouterPeer objects, whose CRD has
no such field. The ways around that were weighed and refused:
  - Terraform cannot own the peers: they come and go with tenants, rendered by the provisioner.
  - A second writer patching `importPolicies` onto peers Config Connector owns: Config Connector writes the whole
    BGP peer on every reconcile from its own schema, so the policy would be dropped again without a trace.
  - The provisioner making the peers through the Compute API itself: it would bypass the GitOps path, the
    admission policy and Flux's status, which is what keeps tenant objects reviewable and their removal certain.
  - `customLearnedRoutePriority`, or advertising our own more specifics: neither rejects a route; they only
    reorder or shadow some.
So the platform detects and cuts off: every minute (Cloud Scheduler, `ROUTES_CHECK` on provisioning-events) the
router's status is read (Compute `routers.getRouterStatus`), each learned route is attributed to the tenant whose
BGP peer address is its next hop, and a tenant with any prefix outside its own ranges (the site's `cidrs`, and those
still held while a change of them reaches Flux) is quarantined: its BGP peers are rendered `enable: false` through
the normal render-and-deliver path, so Config Connector ends the sessions and the routes are withdrawn, the tenant
record says why (`site_state`), and an ERROR log raises an alert (infra/modules/monitoring). Only the operator lifts
it (PATCH `site_state: enabled`), once the customer has fixed its announcements; a site that still announces what is
not its own is cut off again at the next check.

The residual window: a bad route is in force from the moment it is learned until the check after it (at most the
one-minute schedule), plus the delivery (a hybrid tenant's Flux source is polled every minute) and Config Connector's
update of the peer. The status lists the routes the router prefers (`bestRoutesForRouter`) and those installed
(`bestRoutes`); a stray route that loses to a better one is not listed, and is judged the moment it wins. The
runbook says how to look for default and public routes by hand and cut a peer off at once.

The decision (`judge`) is pure; `RouterRoutes` is the adapter over the real client (google-cloud-compute, imported
only when a check runs).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from provisioner import sites

ROUTES_CHECK = "ai.energent.provisioner.routes.check.v1"
QUARANTINED = "quarantined"
ENABLED = "enabled"
MAX_LISTED = 20  # prefixes named in a status or a log line


@dataclass(frozen=True)
class Learned:
    """A route the router learned: its prefix and the BGP peer address it leads to ("" if none is given)."""

    next_hop: str
    prefix: str


@dataclass(frozen=True)
class Site:
    """What a tenant's BGP sessions may announce: from its customer addresses, prefixes inside `ranges`."""

    peers: tuple[str, ...]
    ranges: tuple[str, ...]


def site_of(record: dict) -> Site:
    """The customer's side of each of the tenant's sessions, and the ranges it may announce: its site's `cidrs` and
    the ranges still held while a change of them reaches Flux."""
    peers = tuple(sites.session(bgp_range)[1] for bgp_range in record.get("bgp_ranges") or ())
    return Site(peers, tuple([*record["site"]["cidrs"], *(record.get("retiring_cidrs") or [])]))


def inside(prefix: str, ranges: Iterable[str]) -> bool:
    """Whether `prefix` is an IPv4 network inside one of `ranges` (anything unreadable is not)."""
    try:
        network = ipaddress.IPv4Network(prefix)
    except ValueError:
        return False
    return any(network.subnet_of(ipaddress.IPv4Network(r)) for r in ranges)


def judge(tenant_sites: Mapping[str, Site], learned: Iterable[Learned]) -> tuple[dict[str, list[str]], list[Learned]]:
    """({tenant: the prefixes it announced outside its ranges}, the routes whose next hop is no tenant's peer)."""
    owner = {peer: tenant for tenant, site in tenant_sites.items() for peer in site.peers}
    strays: dict[str, list[str]] = {}
    unattributed: list[Learned] = []
    for route in learned:
        tenant = owner.get(route.next_hop)
        if tenant is None:
            if route not in unattributed:
                unattributed.append(route)
        elif not inside(route.prefix, tenant_sites[tenant].ranges) and route.prefix not in strays.get(tenant, []):
            strays.setdefault(tenant, []).append(route.prefix)
    return {tenant: sorted(prefixes) for tenant, prefixes in strays.items()}, unattributed


def quarantine_reason(prefixes: list[str]) -> str:
    shown = ", ".join(prefixes[:MAX_LISTED]) + (f" and {len(prefixes) - MAX_LISTED} more"
                                                if len(prefixes) > MAX_LISTED else "")
    return (f"the site announced routes outside its ranges ({shown}); its BGP sessions are off until the operator "
            "re-enables them (PATCH site_state: enabled) once the customer's router announces only the site's cidrs")


def _default_client():
    from google.cloud import compute_v1

    return compute_v1.RoutersClient()


class RouterRoutes:
    """The routes the platform's VPN router learned, from Compute Engine (`routers.getRouterStatus`)."""

    def __init__(self, project: str, region: str, router: str, client_factory: Callable = _default_client):
        self.project, self.region, self.router = project, region, router
        self._client_factory = client_factory

    def learned(self) -> list[Learned]:
        status = self._client_factory().get_router_status(project=self.project, region=self.region,
                                                           router=self.router)
        found: list[Learned] = []
        for route in [*status.result.best_routes_for_router, *status.result.best_routes]:
            learned = Learned(route.next_hop_ip, route.dest_range)
            if learned not in found:
                found.append(learned)
        return found
