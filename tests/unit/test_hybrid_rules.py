"""Hybrid tenants' pure parts: what a site may say, whose ranges it may take, the link-local ranges of its tunnels,
and the objects rendered for it (validated against the published schemas)."""

import copy
import datetime
import ipaddress
import json
import re

import pytest

from energent_shared.errors import Conflict, Invalid
from local.flux import Cluster, documents
from local.schemas import InvalidManifest, validate
from provisioner import manifests, psks, routes, sites, tenants

PLATFORM = manifests.Platform.for_environment("energent-prod", "production", tenants_project="energent-prod-tenants",
                                              vpn_addresses=("35.242.10.1", "35.242.10.2"),
                                              manifest_bucket="energent-manifests-production-energent-prod")
RULES = PLATFORM.site_rules
TODAY = datetime.date(2026, 11, 29)
SITE = {"peer_ips": ["145.100.10.1", "145.100.10.2"], "peer_asn": 65010, "cidrs": ["10.200.0.0/16", "192.168.7.0/24"]}
HYBRID = {"tenant_id": "acme", "display_name": "Acme", "tier": "standard", "deployment_model": "hybrid",
          "site": SITE}


def spec(tenant_id="acme", site=None, first=0, tier="standard") -> tenants.TenantSpec:
    return tenants.TenantSpec(tenant_id, tier, "hybrid", site=site or tenants.validate_site(SITE, RULES),
                              bgp_ranges=tuple(sites.bgp_ranges(PLATFORM.bgp_pool, first)))


def rendered(tenant_id="acme", site=None, removing=False, model="hybrid") -> dict[str, dict]:
    if model == "hybrid":
        files = manifests.render(spec(tenant_id, site), PLATFORM, removing=removing)
    else:
        files = manifests.render(tenants.TenantSpec(tenant_id, "standard", model, **(
            tenants.cluster_ranges(PLATFORM, 0) if model == "dedicated" else {})), PLATFORM, removing=removing)
    found = {}
    for path, content in files.items():
        for document in documents(content):
            name = (document.get("metadata") or {}).get("name")
            found[f"{document['kind']}/{name}" if name else path] = document
    return found


# --- what a site may say -----------------------------------------------------------------------------------------

def test_a_valid_hybrid_request_keeps_its_site_canonical():
    given = tenants.validate_create(HYBRID, TODAY, RULES)
    assert given["deployment_model"] == "hybrid" and given["site"] == SITE
    one = tenants.validate_site({**SITE, "peer_ips": ["145.100.10.1"], "peer_asn": 4200000000}, RULES)
    assert one["peer_ips"] == ["145.100.10.1"] and one["peer_asn"] == 4200000000


@pytest.mark.parametrize("site, message", [
    ({**SITE, "peer_ips": ["10.1.2.3"]}, "site.peer_ips[0] 10.1.2.3 is not a public address"),
    ({**SITE, "peer_ips": ["145.100.10.1", "192.168.1.1"]}, "site.peer_ips[1] 192.168.1.1 is not a public"),
    ({**SITE, "peer_ips": ["203.0.113.7"]}, "203.0.113.7 is not a public address"),  # documentation
    ({**SITE, "peer_ips": ["198.51.100.7"]}, "is not a public address"),
    ({**SITE, "peer_ips": ["192.0.2.1"]}, "is not a public address"),
    ({**SITE, "peer_ips": ["100.64.0.1"]}, "is not a public address"),  # shared address space (CGNAT)
    ({**SITE, "peer_ips": ["169.254.1.1"]}, "is not a public address"),
    ({**SITE, "peer_ips": ["127.0.0.1"]}, "is not a public address"),
    ({**SITE, "peer_ips": ["224.0.0.5"]}, "is not a public address"),  # multicast
    ({**SITE, "peer_ips": ["240.0.0.1"]}, "is not a public address"),
    ({**SITE, "peer_ips": ["192.88.99.1"]}, "is not a public address"),  # 6to4 relay anycast, deprecated
    ({**SITE, "peer_ips": ["0.0.0.0"]}, "is not a public address"),
    ({**SITE, "peer_ips": ["255.255.255.255"]}, "is not a public address"),
    ({**SITE, "peer_ips": []}, "site.peer_ips must be a list of 1 to 2"),
    ({**SITE, "peer_ips": ["145.100.10.1", "145.100.10.2", "145.100.10.3"]}, "1 to 2"),
    ({**SITE, "peer_ips": ["145.100.10.1", "145.100.10.1"]}, "given twice"),
    ({**SITE, "peer_ips": ["145.100.010.1"]}, "not an IPv4 address"),  # leading zeros: octal to some parsers
    ({**SITE, "peer_ips": ["145.100.10.1/32"]}, "must be an IPv4 address"),
    ({**SITE, "peer_ips": ["2001:db8::1"]}, "must be an IPv4 address"),
    ({**SITE, "peer_ips": ["١٤٥.100.10.1"]}, "must be an IPv4 address"),
    ({**SITE, "peer_ips": "145.100.10.1"}, "must be a list"),
    ({**SITE, "peer_ips": [145]}, "must be an IPv4 address"),
    ({**SITE, "peer_asn": 64514}, "site.peer_asn 64514 is the platform's own ASN"),
    ({**SITE, "peer_asn": 65000 + 535}, "must be a private ASN"),  # 65535: reserved
    ({**SITE, "peer_asn": 64511}, "must be a private ASN"),
    ({**SITE, "peer_asn": 15169}, "must be a private ASN"),  # a public ASN (Google's)
    ({**SITE, "peer_asn": 4294967295}, "must be a private ASN"),
    ({**SITE, "peer_asn": "65010"}, "must be a private ASN"),
    ({**SITE, "peer_asn": 65010.0}, "must be a private ASN"),
    ({**SITE, "peer_asn": True}, "must be a private ASN"),
    ({**SITE, "cidrs": []}, "site.cidrs must be a list of 1 to 8"),
    ({**SITE, "cidrs": [f"10.200.{n}.0/24" for n in range(9)]}, "1 to 8"),
    ({**SITE, "cidrs": ["172.30.0.0/16"]}, "site.cidrs[0] 172.30.0.0/16 lies outside the platform's site ranges "
                                           "(HYBRID_SITE_RANGES: 10.192.0.0/10, 192.168.0.0/16)"),
    ({**SITE, "cidrs": ["10.0.0.0/8"]}, "site.cidrs[0] 10.0.0.0/8 overlaps the platform's range 10.0.0.0/12"),
    ({**SITE, "cidrs": ["10.4.0.0/16"]}, "overlaps the platform's range 10.0.0.0/12"),  # the shared cluster's Pods
    ({**SITE, "cidrs": ["10.100.0.0/16"]}, "overlaps the platform's range 10.64.0.0/10"),  # dedicated Pods
    ({**SITE, "cidrs": ["10.128.0.0/16"]}, "overlaps the platform's range 10.128.0.0/15"),  # dedicated Services
    ({**SITE, "cidrs": ["172.20.0.0/24"]}, "overlaps the platform's range 172.20.0.0/14"),  # control planes
    ({**SITE, "cidrs": ["10.200.0.1/16"]}, "did you mean 10.200.0.0/16?"),
    ({**SITE, "cidrs": ["10.192.0.0/10"]}, "site.cidrs[0] 10.192.0.0/10 is wider than a /16"),  # every site's
    ({**SITE, "cidrs": ["10.200.0.0/15"]}, "is wider than a /16"),
    ({**SITE, "peer_ips": ["145.100.10.1", "35.242.10.2"]}, "site.peer_ips[1] 35.242.10.2 is the platform's own"),
    ({**SITE, "cidrs": ["10.200.0.0"]}, "must be an IPv4 range"),
    ({**SITE, "cidrs": ["10.200.0.0/33"]}, "is not a valid range"),
    ({**SITE, "cidrs": ["10.200.0.0/16", "10.200.5.0/24"]}, "site.cidrs[1] 10.200.5.0/24 overlaps 10.200.0.0/16 of "
                                                            "the same site"),
    ({**SITE, "cidrs": "10.200.0.0/16"}, "must be a list"),
    ({"peer_ips": ["145.100.10.1"], "cidrs": ["10.200.0.0/16"]}, "site.peer_asn is required"),
    ({**SITE, "psk": "mine"}, "site has unknown field(s): psk"),
    ([], "site must be an object"),
])
def test_sites_are_validated_naming_the_field(site, message):
    with pytest.raises(Invalid) as caught:
        tenants.validate_create({**HYBRID, "site": site}, TODAY, RULES)
    assert message in str(caught.value)


@pytest.mark.parametrize("body, message", [
    ({k: v for k, v in HYBRID.items() if k != "site"}, "site is required for a hybrid tenant"),
    ({**HYBRID, "deployment_model": "multi-tenant"}, "site is for hybrid tenants only, not multi-tenant"),
    ({**HYBRID, "deployment_model": "dedicated"}, "site is for hybrid tenants only, not dedicated"),
    ({k: v for k, v in HYBRID.items() if k != "deployment_model"}, "site is for hybrid tenants only"),
])
def test_a_site_belongs_to_hybrid_tenants_and_to_them_all(body, message):
    with pytest.raises(Invalid) as caught:
        tenants.validate_create(body, TODAY, RULES)
    assert message in str(caught.value)


def test_a_platform_without_its_vpn_gateway_takes_no_hybrid_tenant():
    bare = manifests.Platform(project="p")
    assert bare.site_rules is None
    with pytest.raises(Invalid, match="HYBRID_VPN_ADDRESSES"):
        tenants.validate_create(HYBRID, TODAY, bare.site_rules)


def test_the_deployment_model_never_changes_and_only_a_hybrid_tenant_has_a_site():
    record = {"tenant_id": "acme", "deployment_model": "multi-tenant"}
    tenants.check_patch(record, tenants.validate_patch({"deployment_model": "multi-tenant"}, TODAY, RULES))
    with pytest.raises(Invalid, match="deployment_model cannot change after create: tenant acme is multi-tenant"):
        tenants.check_patch(record, tenants.validate_patch({"deployment_model": "hybrid"}, TODAY, RULES))
    with pytest.raises(Invalid, match="site is for hybrid tenants only, not multi-tenant"):
        tenants.check_patch(record, tenants.validate_patch({"site": SITE}, TODAY, RULES))
    hybrid = {"tenant_id": "acme", "deployment_model": "hybrid"}
    tenants.check_patch(hybrid, tenants.validate_patch({"site": SITE}, TODAY, RULES))
    with pytest.raises(Invalid, match="cannot change"):
        tenants.check_patch(hybrid, tenants.validate_patch({"deployment_model": "dedicated"}, TODAY, RULES))
    with pytest.raises(Invalid, match="deployment_model must be one of"):
        tenants.validate_patch({"deployment_model": "mainframe"}, TODAY, RULES)
    with pytest.raises(Invalid, match=r"site\.cidrs"):
        tenants.validate_patch({"site": {**SITE, "cidrs": ["8.8.8.0/24"]}}, TODAY, RULES)


def test_a_tenant_shows_its_site_and_nothing_secret():
    assert "site" in tenants.PUBLIC_FIELDS
    assert not any("key" in field or "secret" in field or "bgp" in field for field in tenants.PUBLIC_FIELDS)


# --- whose ranges a site may take --------------------------------------------------------------------------------

def test_a_site_may_not_take_another_live_site_s_ranges_and_names_it():
    live = {"beta": ["10.200.0.0/16"], "gamma": ["192.168.0.0/24"]}
    with pytest.raises(Conflict) as caught:
        sites.claim("acme", ["10.210.0.0/16", "10.200.128.0/17"], live, 64)
    assert str(caught.value) == "site.cidrs 10.200.128.0/17 overlaps 10.200.0.0/16 of hybrid tenant beta"
    with pytest.raises(Conflict, match=re.escape("192.168.0.0/16 overlaps 192.168.0.0/24 of hybrid tenant gamma")):
        sites.claim("acme", ["192.168.0.0/16"], live, 64)  # a wider range over a narrower one
    taken = sites.claim("acme", ["10.210.0.0/16"], live, 64)
    assert taken == {**live, "acme": ["10.210.0.0/16"]}
    # A tenant changing its own site may keep or reshape its own ranges.
    assert sites.claim("beta", ["10.200.0.0/15"], live, 64)["beta"] == ["10.200.0.0/15"]
    assert sites.claim("beta", None, live, 64) == {"gamma": ["192.168.0.0/24"]}  # released when deleted


def test_the_router_holds_so_many_sites_and_a_change_of_site_needs_no_new_place():
    live = {f"t{n:03d}": [f"10.{200 + n // 256}.{n % 256}.0/24"] for n in range(4)}
    with pytest.raises(Conflict, match="holds 4 sites"):
        sites.claim("late", ["10.210.0.0/24"], live, 4)
    assert sites.claim("t001", ["10.210.0.0/24"], live, 4)["t001"] == ["10.210.0.0/24"]


# --- link-local ranges ----------------------------------------------------------------------------------------------

def test_bgp_ranges_are_distinct_30s_of_the_pool_and_never_the_metadata_server_s():
    handed = [r for first in range(0, 16382, sites.TUNNELS) for r in sites.bgp_ranges("169.254.0.0/16", first)]
    networks = [ipaddress.ip_network(r) for r in handed]
    assert len(set(networks)) == len(networks) == 16382 and all(n.prefixlen == 30 for n in networks)
    assert ipaddress.ip_network("169.254.169.252/30") not in networks
    assert sites.bgp_ranges("169.254.0.0/16", 0) == ["169.254.0.0/30", "169.254.0.4/30"]
    with pytest.raises(ValueError, match="no /30 left"):
        sites.bgp_ranges("169.254.0.0/16", 16382)
    with pytest.raises(ValueError, match="no /30 left"):
        sites.bgp_ranges("169.254.169.240/28", 2)  # .248, then .252 is skipped and the pool ends
    with pytest.raises(ValueError, match="link-local"):
        sites.bgp_ranges("10.0.0.0/16", 0)
    assert sites.session("169.254.0.4/30") == ("169.254.0.5", "169.254.0.6")


# --- what is rendered ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tier", ["basic", "standard", "premium", "enterprise"])
@pytest.mark.parametrize("peers", [1, 2])
def test_every_hybrid_object_validates_against_its_schema(tier, peers):
    site = tenants.validate_site({**SITE, "peer_ips": SITE["peer_ips"][:peers]}, RULES)
    for content in manifests.render(spec(site=site, tier=tier), PLATFORM).values():
        assert json.loads(content)
        for document in documents(content):
            validate(document)


def test_a_hybrid_tenant_s_connection_is_made_in_the_platform_s_project_on_its_gateway_and_router():
    objects = rendered()
    gateway = objects["ComputeExternalVPNGateway/tenant-acme"]
    assert gateway["spec"]["redundancyType"] == "TWO_IPS_REDUNDANCY"
    assert gateway["spec"]["interface"] == [{"id": 0, "ipAddress": "145.100.10.1"},
                                            {"id": 1, "ipAddress": "145.100.10.2"}]
    vpn = [d for d in objects.values() if d["apiVersion"].startswith("compute.cnrm")]
    assert {d["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"] for d in vpn} == {"energent-prod"}
    assert {d["metadata"]["namespace"] for d in vpn} == {"energent-infra"}
    for tunnel in (0, 1):
        spec_ = objects[f"ComputeVPNTunnel/tenant-acme-{tunnel}"]["spec"]
        assert spec_["vpnGatewayRef"] == {
            "external": "projects/energent-prod/regions/europe-west4/vpnGateways/energent-vpn-production"}
        assert (spec_["vpnGatewayInterface"], spec_["peerExternalGatewayInterface"]) == (tunnel, tunnel)
        assert spec_["peerExternalGatewayRef"] == {"name": "tenant-acme"} and spec_["ikeVersion"] == 2
        assert spec_["routerRef"] == {
            "external": "projects/energent-prod/regions/europe-west4/routers/energent-vpn-router-production"}
        # The key: a reference to the tenant's own Secret, never a value.
        assert spec_["sharedSecret"] == {"valueFrom": {"secretKeyRef": {"name": "tenant-acme-vpn",
                                                                        "key": f"tunnel-{tunnel}"}}}
        interface = objects[f"ComputeRouterInterface/tenant-acme-{tunnel}"]["spec"]
        assert interface["vpnTunnelRef"] == {"name": f"tenant-acme-{tunnel}"}
        # An interface and a peer take the router's name (their CRDs: "the `name` field of a ComputeRouter"), and
        # the stand-in's schemas refuse a path there.
        assert interface["routerRef"] == {"external": "energent-vpn-router-production"}
        peer = objects[f"ComputeRouterPeer/tenant-acme-{tunnel}"]["spec"]
        assert peer["routerRef"] == {"external": "energent-vpn-router-production"}
        assert peer["enable"] is True
        assert peer["routerInterfaceRef"] == {"name": f"tenant-acme-{tunnel}"} and peer["peerAsn"] == 65010
    # A single address: both tunnels to its one interface.
    single = rendered(site=tenants.validate_site({**SITE, "peer_ips": ["145.100.10.1"]}, RULES))
    assert single["ComputeExternalVPNGateway/tenant-acme"]["spec"]["redundancyType"] == (
        "SINGLE_IP_INTERNALLY_REDUNDANT")
    assert {single[f"ComputeVPNTunnel/tenant-acme-{t}"]["spec"]["peerExternalGatewayInterface"] for t in (0, 1)} == {0}


def test_bgp_sessions_use_their_own_30s_and_advertise_only_the_platform_s_pod_range():
    objects = rendered()
    for tunnel, bgp_range in enumerate(sites.bgp_ranges(PLATFORM.bgp_pool, 0)):
        network = ipaddress.ip_network(bgp_range)
        interface = objects[f"ComputeRouterInterface/tenant-acme-{tunnel}"]["spec"]
        peer = objects[f"ComputeRouterPeer/tenant-acme-{tunnel}"]["spec"]
        ours = ipaddress.ip_interface(interface["ipRange"])
        assert ours.network == network and ours.ip == network.network_address + 1
        assert peer["ipAddress"] == {"external": str(ours.ip)}
        assert ipaddress.ip_address(peer["peerIpAddress"]) == network.network_address + 2
        assert peer["advertiseMode"] == "CUSTOM" and "advertisedGroups" not in peer
        assert [r["range"] for r in peer["advertisedIpRanges"]] == ["10.4.0.0/14"]
    assert list(PLATFORM.advertised_ranges) == ["10.4.0.0/14"]


def test_the_keys_reach_the_tunnels_through_an_external_secret_that_names_secret_manager_and_holds_no_key():
    objects = rendered()
    external = objects["ExternalSecret/tenant-acme-vpn"]
    assert external["metadata"]["namespace"] == "energent-infra"
    assert external["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": "hybrid-psks"}
    assert external["spec"]["target"]["name"] == "tenant-acme-vpn"
    assert external["spec"]["data"] == [
        {"secretKey": "tunnel-0", "remoteRef": {"key": "hybrid-psk-acme-0", "version": "1"}},
        {"secretKey": "tunnel-1", "remoteRef": {"key": "hybrid-psk-acme-1", "version": "1"}}]
    assert psks.secret_id("acme", 1) == "hybrid-psk-acme-1"
    for document in objects.values():  # no Secret is ever rendered, and no value of one
        assert document["kind"] != "Secret" and '"value"' not in json.dumps(document.get("spec", {}))


def test_only_the_tenant_s_namespace_reaches_its_site_and_every_tenant_s_egress_skips_every_site():
    objects = rendered()
    allow = objects["NetworkPolicy/allow-site"]
    assert allow["metadata"]["namespace"] == "tenant-acme" and allow["spec"]["podSelector"] == {}
    assert allow["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": "10.200.0.0/16"}},
                                               {"ipBlock": {"cidr": "192.168.7.0/24"}}]}]
    for model in ("multi-tenant", "dedicated", "hybrid"):
        others = rendered(tenant_id="other", model=model, site=tenants.validate_site(
            {**SITE, "cidrs": ["10.220.0.0/16"]}, RULES))
        https = others["NetworkPolicy/allow-https-egress"]["spec"]["egress"][0]["to"][0]["ipBlock"]
        assert https["cidr"] == "0.0.0.0/0"
        assert set(https["except"]) >= {"10.192.0.0/10", "192.168.0.0/16"}, model
        # No egress allow of another tenant reaches acme's ranges.
        for key, policy in others.items():
            if key.startswith("NetworkPolicy/") and key != "NetworkPolicy/allow-site":
                for rule in policy["spec"].get("egress", []):
                    for peer in rule.get("to", []):
                        block = peer.get("ipBlock")
                        if block:
                            reach = ipaddress.ip_network(block["cidr"])
                            excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
                            for cidr in SITE["cidrs"]:
                                site = ipaddress.ip_network(cidr)
                                assert not reach.overlaps(site) or any(site.subnet_of(e) for e in excepted), (
                                    model, key, cidr)
    assert "NetworkPolicy/allow-site" not in rendered(model="multi-tenant")


def test_a_new_site_changes_no_other_tenant_s_files():
    """Every site lies in the static site ranges: another tenant's rendering is the same whatever sites exist."""
    before = manifests.render(tenants.TenantSpec("other", "basic"), PLATFORM)
    rendered(tenant_id="acme")
    assert manifests.render(tenants.TenantSpec("other", "basic"), PLATFORM) == before


def test_the_connection_is_applied_before_the_namespace_and_removed_before_the_tenant_is_deleted():
    for removing in (False, True):
        objects = rendered(removing=removing)
        tenant, cloud = objects["Kustomization/tenant-acme"], objects["Kustomization/cloud-tenant-acme"]
        assert tenant["spec"]["dependsOn"] == [{"name": "cloud-tenant-acme"}]
        assert cloud["spec"]["path"] == "./tenants/acme/manifests/cloud" and cloud["spec"]["prune"] is True
        assert "kubeConfig" not in tenant["spec"]  # its namespace is on the shared cluster
    live, removing = (manifests.render(spec(), PLATFORM, removing=flag) for flag in (False, True))
    # The VPN goes; the keys' ExternalSecret stays until the tenant is deleted, so no tunnel's deletion waits on a
    # Secret already gone (its keys are what Config Connector reads to delete it too).
    kept = json.loads(removing["tenants/acme/manifests/cloud/objects.json"])["items"]
    assert [(o["kind"], o["metadata"]["name"]) for o in kept] == [("ExternalSecret", "tenant-acme-vpn")]
    assert kept[0] in json.loads(live["tenants/acme/manifests/cloud/objects.json"])["items"]
    assert json.loads(removing["tenants/acme/manifests/objects.json"])["items"] == []
    assert len(json.loads(live["tenants/acme/manifests/cloud/objects.json"])["items"]) == 10


def test_a_site_change_rewrites_the_tenant_s_objects_only():
    """New ranges change its NetworkPolicy; a new gateway address or ASN its connection; nothing else."""
    before = manifests.render(spec(), PLATFORM)

    def changed(**site) -> set[str]:
        after = manifests.render(spec(site=tenants.validate_site({**SITE, **site}, RULES)), PLATFORM)
        return {path for path in after if after[path] != before[path]}

    assert changed(cidrs=["10.230.0.0/16"]) == {"tenants/acme/manifests/objects.json"}
    assert changed(peer_ips=["145.100.10.9"]) == {"tenants/acme/manifests/cloud/objects.json"}
    assert changed(peer_asn=65020) == {"tenants/acme/manifests/cloud/objects.json"}


def test_a_hybrid_tenant_without_its_allocations_is_never_rendered():
    with pytest.raises(ValueError, match="no site or no BGP ranges"):
        manifests.render(tenants.TenantSpec("acme", "basic", "hybrid", site=SITE), PLATFORM)


def test_a_typo_in_a_vpn_object_is_caught_by_its_schema():
    tunnel = copy.deepcopy(rendered()["ComputeVPNTunnel/tenant-acme-0"])
    tunnel["spec"]["sharedSecret"]["valueFrom"]["secretKeyRef"]["nmae"] = "x"
    with pytest.raises(InvalidManifest, match="nmae"):
        validate(tunnel)
    both = copy.deepcopy(rendered()["ComputeVPNTunnel/tenant-acme-0"])
    both["spec"]["vpnGatewayRef"]["name"] = "energent-vpn"  # a reference is a name or an external, never both
    with pytest.raises(InvalidManifest):
        validate(both)
    peer = copy.deepcopy(rendered()["ComputeRouterPeer/tenant-acme-0"])
    del peer["spec"]["peerAsn"]
    with pytest.raises(InvalidManifest, match="peerAsn"):
        validate(peer)
    secret = copy.deepcopy(rendered()["ExternalSecret/tenant-acme-vpn"])
    secret["spec"]["data"][0]["remoteRef"]["verison"] = "1"
    with pytest.raises(InvalidManifest, match="verison"):
        validate(secret)


def test_the_platform_refuses_site_ranges_that_meet_its_own():
    with pytest.raises(ValueError, match=re.escape("10.0.0.0/8 (HYBRID_SITE_RANGES) overlaps 10.0.0.0/12")):
        manifests.Platform(project="p", site_ranges=("10.0.0.0/8",))
    with pytest.raises(ValueError, match=re.escape("overlaps 10.192.0.0/10")):
        manifests.Platform(project="p", site_ranges=("10.192.0.0/10", "10.200.0.0/16"))
    with pytest.raises(ValueError, match="2 interfaces"):
        manifests.Platform(project="p", vpn_addresses=("35.1.1.1",))


def test_a_hybrid_tenant_s_sla_target_is_99_9_percent():
    from decimal import Decimal

    from billing.sla import AVAILABILITY_TARGET, credit_pct

    assert AVAILABILITY_TARGET["hybrid"] == Decimal("99.9") == AVAILABILITY_TARGET["multi-tenant"]
    assert credit_pct("hybrid", Decimal("99.85"), Decimal("100"), None) == Decimal("10")  # one started 0.1 % short
    assert credit_pct("hybrid", Decimal("99.9"), Decimal("100"), None) == Decimal("0")


# --- the router's name, immutable fields, and what a quarantine renders ---------------------------------------

def test_interfaces_and_peers_name_the_router_by_name_and_tunnels_by_path_as_their_crds_take_them():
    objects = rendered()
    interface, peer = objects["ComputeRouterInterface/tenant-acme-0"], objects["ComputeRouterPeer/tenant-acme-0"]
    tunnel = objects["ComputeVPNTunnel/tenant-acme-0"]
    path = PLATFORM.vpn_router_path
    for document, wrong in ((interface, path), (peer, path), (tunnel, PLATFORM.vpn_router)):
        validate(document)
        broken = copy.deepcopy(document)
        broken["spec"]["routerRef"] = {"external": wrong}
        with pytest.raises(InvalidManifest, match="routerRef"):
            validate(broken)


def test_config_connector_s_immutable_fields_cannot_change_on_the_cluster():
    """A new peer address would change the external gateway's interfaces and the tunnels' peer interface, which
    Config Connector refuses (its CRDs mark them Immutable): the cluster stand-in refuses it as the webhook does,
    and lets a change of a mutable field (a peer's ASN) through."""
    cluster = Cluster()
    before = [o for o in rendered().values() if o.get("apiVersion", "").startswith("compute.")]
    cluster.apply("cloud-tenant-acme", before)
    one_address = tenants.validate_site({**SITE, "peer_ips": ["145.100.10.9"]}, RULES)
    after = [o for o in rendered(site=one_address).values() if o.get("apiVersion", "").startswith("compute.")]
    refused = cluster.refused(after)
    assert "ComputeExternalVPNGateway/energent-infra/tenant-acme" in refused
    assert "spec.interface, spec.redundancyType" in refused
    tunnel = [o for o in after if o["kind"] == "ComputeVPNTunnel"][1]
    assert cluster.refused([tunnel]).endswith("immutable: [spec.peerExternalGatewayInterface]")
    new_asn = tenants.validate_site({**SITE, "peer_asn": 65020}, RULES)
    assert cluster.refused([o for o in rendered(site=new_asn).values()
                            if o.get("apiVersion", "").startswith("compute.")]) == ""
    cluster.apply("cloud-tenant-acme", [])  # pruned: made again from scratch, anything goes
    assert cluster.refused(after) == ""


def test_a_site_s_gateway_addresses_cannot_change_and_the_refusal_says_why():
    record = {"tenant_id": "acme", "deployment_model": "hybrid", "site": tenants.validate_site(SITE, RULES)}
    for peer_ips in (["145.100.10.9", "145.100.10.2"], ["145.100.10.1"], ["145.100.10.2", "145.100.10.1"]):
        with pytest.raises(Invalid, match=r"site\.peer_ips cannot change: .* immutable"):
            tenants.check_patch(record, {"site": tenants.validate_site({**SITE, "peer_ips": peer_ips}, RULES)})
    tenants.check_patch(record, {"site": tenants.validate_site({**SITE, "peer_asn": 65020, "cidrs": [
        "10.230.0.0/16"]}, RULES)})
    with pytest.raises(Invalid, match="site_state is for hybrid tenants only"):
        tenants.check_patch({**record, "deployment_model": "dedicated"}, {"site_state": "enabled"})
    with pytest.raises(Invalid, match="site_state must be one of enabled, quarantined"):
        tenants.validate_patch({"site_state": "off"}, TODAY, RULES)


def test_a_quarantined_site_s_peers_are_rendered_off_and_said_on_when_lifted():
    on = rendered()
    files = manifests.render(tenants.TenantSpec(**{**spec().__dict__, "site_enabled": False}), PLATFORM)
    off = {f"{d['kind']}/{d['metadata']['name']}": d for content in files.values() for d in documents(content)
           if "metadata" in d}
    on = {key: document for key, document in on.items() if "metadata" in document}
    for tunnel in (0, 1):
        assert on[f"ComputeRouterPeer/tenant-acme-{tunnel}"]["spec"]["enable"] is True
        assert off[f"ComputeRouterPeer/tenant-acme-{tunnel}"]["spec"]["enable"] is False
        validate(off[f"ComputeRouterPeer/tenant-acme-{tunnel}"])
    # Only the peers differ: the tunnels stay up, so the customer can fix its announcements and be let back.
    assert {k for k in on if on[k] != off.get(k)} == {"ComputeRouterPeer/tenant-acme-0",
                                                      "ComputeRouterPeer/tenant-acme-1"}


def test_a_hybrid_tenant_s_source_is_polled_every_minute_others_every_ten():
    assert rendered()["Bucket/tenant-acme"]["spec"]["interval"] == "1m"
    for model in ("multi-tenant", "dedicated"):
        assert rendered(model=model)["Bucket/tenant-acme"]["spec"]["interval"] == "10m"


def test_ranges_a_change_leaves_stay_held_until_flux_has_applied_it():
    assert sites.retiring(["10.200.0.0/16", "192.168.7.0/24"], ["10.200.0.0/16"]) == ["192.168.7.0/24"]
    assert sites.retiring(["10.201.0.0/16"], ["10.202.0.0/16"], ["192.168.7.0/24", "10.202.0.0/16"]) == [
        "192.168.7.0/24", "10.201.0.0/16"]  # still retiring from before, unless taken back
    assert sites.retiring(["10.200.0.0/16"], ["10.200.0.0/16"]) == []


# --- the route watchdog's decision -----------------------------------------------------------------------------

ACME = routes.Site(("169.254.0.2", "169.254.0.6"), ("10.200.0.0/16", "192.168.7.0/24"))
BRAVO = routes.Site(("169.254.0.10", "169.254.0.14"), ("10.201.0.0/16",))


@pytest.mark.parametrize("prefix", [
    "0.0.0.0/0",  # the default route: everything that leaves the VPC
    "10.201.0.0/16", "10.201.4.0/24",  # another tenant's site, or a more specific of it
    "8.8.8.0/24", "35.191.0.0/16",  # public prefixes (Google's own health checks among them)
    "10.64.0.0/10", "10.100.0.0/16", "172.20.0.0/14", "172.21.0.0/24",  # the dedicated pools beyond the slots
    "10.4.0.0/14", "10.0.0.0/8",  # the platform's own Pods, or a cover of them
    "10.200.0.0/15",  # wider than its own
    "::/0", "not a prefix",
])
def test_a_route_outside_the_site_s_own_ranges_is_a_stray(prefix):
    learned = [routes.Learned("169.254.0.6", prefix), routes.Learned("169.254.0.2", "10.200.0.0/16")]
    strays, unattributed = routes.judge({"acme": ACME, "bravo": BRAVO}, learned)
    assert strays == {"acme": [prefix]} and unattributed == []


def test_routes_inside_the_site_s_ranges_are_its_own_and_every_route_is_judged_by_who_announced_it():
    learned = [routes.Learned("169.254.0.2", "10.200.0.0/16"), routes.Learned("169.254.0.6", "10.200.128.0/17"),
               routes.Learned("169.254.0.2", "192.168.7.128/25"), routes.Learned("169.254.0.10", "10.201.0.0/16"),
               routes.Learned("169.254.0.14", "10.200.0.0/16"),  # bravo announcing acme's range
               routes.Learned("169.254.0.14", "10.200.0.0/16"),
               routes.Learned("169.254.99.2", "10.250.0.0/16"), routes.Learned("", "0.0.0.0/0")]
    strays, unattributed = routes.judge({"acme": ACME, "bravo": BRAVO}, learned)
    assert strays == {"bravo": ["10.200.0.0/16"]}
    assert unattributed == [routes.Learned("169.254.99.2", "10.250.0.0/16"), routes.Learned("", "0.0.0.0/0")]
    assert routes.judge({"acme": ACME}, []) == ({}, [])


def test_a_site_s_peers_and_ranges_come_from_its_record():
    record = {"bgp_ranges": ["169.254.0.0/30", "169.254.0.4/30"], "site": {"cidrs": ["10.200.0.0/16"]},
              "retiring_cidrs": ["192.168.7.0/24"]}
    assert routes.site_of(record) == routes.Site(("169.254.0.2", "169.254.0.6"), ("10.200.0.0/16", "192.168.7.0/24"))
    reason = routes.quarantine_reason([f"10.{n}.0.0/16" for n in range(25)])
    assert "10.0.0.0/16" in reason and "10.19.0.0/16" in reason and "10.20.0.0/16" not in reason
    assert "and 5 more" in reason and "site_state: enabled" in reason
