"""Operating the estate: egress limited to what the platform needs, the edge in front of API Gateway, the alerts,
SLOs and dashboard on-call works from, and the Terraform pipeline."""

from provisioner.manifests import Platform
from tests.unit.test_infra import INFRA, plain, resources_of, terraform


def module_resources(module: str, kind: str) -> dict[str, dict]:
    """`kind` resources of every .tf file of a module (resources() reads main.tf only)."""
    found: dict[str, dict] = {}
    for path in sorted((INFRA / "modules" / module).glob("*.tf")):
        found.update(resources_of(path, kind))
    return found


def module_locals(module: str) -> dict:
    values: dict = {}
    for path in sorted((INFRA / "modules" / module).glob("*.tf")):
        for block in plain(terraform(path)).get("locals", []):
            values.update(block)
    return values


def module_variables(module: str) -> dict[str, dict]:
    declared: dict[str, dict] = {}
    for block in plain(terraform(INFRA / "modules" / module / "variables.tf")).get("variable", []):
        declared.update(block)
    return declared


def rules(firewall: dict, verdict: str) -> dict[str, set[str]]:
    """protocol -> ports of a firewall rule's allow or deny blocks ("*" for every port)."""
    return {block["protocol"]: set(block.get("ports") or ["*"]) for block in firewall.get(verdict, [])}


# --- egress -------------------------------------------------------------------------------------------------


def test_egress_is_denied_below_every_allow():
    firewalls = module_resources("networking", "google_compute_firewall")
    deny = firewalls["deny_egress"]
    assert deny["direction"] == "EGRESS" and deny["destination_ranges"] == ["0.0.0.0/0"]
    assert rules(deny, "deny") == {"all": {"*"}} and not deny.get("target_tags")
    allows = {name: rule for name, rule in firewalls.items() if rule.get("direction") == "EGRESS" and "allow" in rule}
    assert allows and all(rule["priority"] < deny["priority"] < 65535 for rule in allows.values())


def test_egress_to_the_internet_is_https_and_dns_only():
    firewalls = module_resources("networking", "google_compute_firewall")
    anywhere = {name: rules(rule, "allow") for name, rule in firewalls.items()
                if rule.get("direction") == "EGRESS" and "allow" in rule and "0.0.0.0/0" in rule["destination_ranges"]}
    assert anywhere == {"egress_https": {"tcp": {"443"}}, "egress_dns": {"tcp": {"53"}, "udp": {"53"}}}


def test_private_nodes_reach_every_control_plane_and_each_other():
    firewalls = module_resources("networking", "google_compute_firewall")
    control_plane = firewalls["egress_control_plane"]
    assert control_plane["destination_ranges"] == "${var.control_plane_cidrs}"
    assert rules(control_plane, "allow") == {"tcp": {"443", "8132"}}
    cidrs = module_variables("networking")["control_plane_cidrs"]["default"]
    gke_master = module_variables("gke")["master_cidr"]["default"]
    assert cidrs == [gke_master, Platform("p").master_pool]  # the shared cluster's and the dedicated ones' pool
    internal = firewalls["egress_internal"]
    assert set(internal["destination_ranges"]) == {"${var.nodes_cidr}", "${var.pods_cidr}", "${var.connector_cidr}"}
    assert rules(internal, "allow") == {"all": {"*"}}
    nfs = rules(firewalls["egress_filestore"], "allow")
    assert nfs["tcp"] == nfs["udp"] and {"111", "2049"} <= nfs["tcp"]
    assert firewalls["egress_filestore"]["destination_ranges"] == ["${local.private_services_cidr}"]


def test_ingress_stays_closed_except_iap_and_health_checks():
    firewalls = module_resources("networking", "google_compute_firewall")
    ingress = {name for name, rule in firewalls.items() if rule.get("direction") == "INGRESS" and "allow" in rule}
    assert ingress == {"iap_ssh", "health_checks"}
    assert firewalls["deny_ingress"]["priority"] == 65000
