"""Hybrid tenants' side of the estate, checked statically as the other infra tests do: the HA VPN gateway and its BGP
router, the firewall that lets the shared cluster's nodes reach the sites, the ranges the provisioner checks sites
against, the settings that reach it (Terraform, Cloud Build, README), and External Secrets Operator with its store."""

import ipaddress

import yaml

from local.schemas import validate
from provisioner import manifests, psks
from tests.unit.test_deploy_owner import deployed_env, locals_of
from tests.unit.test_infra import INFRA, ROOT, plain, resources, resources_of, terraform
from tests.unit.test_infra_identities import kustomize, module_call, variables_in
from tests.unit.test_infra_pipeline import readme_section, triggers
from tools import cloudbuild, registry

NETWORKING = INFRA / "modules" / "networking"
PLATFORM = manifests.Platform.for_environment("energent-dev", "dev", tenants_project="energent-dev-tenants")


def variables(module: str) -> dict[str, dict]:
    return {n: b for block in plain(terraform(INFRA / "modules" / module / "variables.tf"))["variable"]
            for n, b in block.items()}


def outputs(path) -> dict[str, dict]:
    return {n: b for block in plain(terraform(path))["output"] for n, b in block.items()}


def test_the_vpn_gateway_and_its_router_are_the_ones_the_provisioner_renders_tunnels_onto():
    gateway = resources("networking", "google_compute_ha_vpn_gateway")["hybrid"]
    router = resources("networking", "google_compute_router")["hybrid"]
    assert gateway["name"].replace("${var.environment}", "dev") == PLATFORM.vpn_gateway == "energent-vpn-dev"
    assert router["name"].replace("${var.environment}", "dev") == PLATFORM.vpn_router
    assert gateway["network"] == router["network"] == "${google_compute_network.vpc.id}"
    assert gateway["region"] == router["region"] == "${var.region}"
    # Not the NAT router: Cloud NAT has a router of its own, which no tenant object names.
    nat = resources("networking", "google_compute_router_nat")["nat"]
    assert nat["router"] == "${google_compute_router.router.name}"
    assert router["name"] != resources("networking", "google_compute_router")["router"]["name"]
    # BGP: the provisioner's ASN, advertising the shared cluster's Pods and nothing else.
    bgp = router["bgp"][0]
    assert bgp["asn"] == "${var.hybrid_asn}" and variables("networking")["hybrid_asn"]["default"] == PLATFORM.asn
    assert bgp["advertise_mode"] == "CUSTOM" and bgp["advertised_groups"] == []
    assert [r["range"] for r in bgp["advertised_ip_ranges"]] == ["${var.pods_cidr}"]
    assert [variables("networking")["pods_cidr"]["default"]] == list(PLATFORM.advertised_ranges)


def test_the_vpn_addresses_and_the_asn_reach_the_provisioner_as_settings():
    networking_out = outputs(NETWORKING / "outputs.tf")
    assert networking_out["hybrid_vpn_addresses"]["value"] == (
        "${google_compute_ha_vpn_gateway.hybrid.vpn_interfaces[*].ip_address}")
    call = module_call("functions")
    assert call["hybrid_vpn_addresses"] == "${module.networking.hybrid_vpn_addresses}"
    assert call["hybrid_asn"] == "${module.networking.hybrid_asn}"
    assert call["hybrid_site_ranges"] == "${module.networking.hybrid_site_ranges}"
    env = locals_of("functions")["common_env"]
    assert env["HYBRID_VPN_ADDRESSES"] == '${join(",", var.hybrid_vpn_addresses)}'
    assert env["HYBRID_ASN"] == "${tostring(var.hybrid_asn)}"
    assert env["HYBRID_SITE_RANGES"] == '${join(",", var.hybrid_site_ranges)}'
    # Cloud Build deploys every function with the same three, from the trigger's substitutions, which README step 6
    # sets from the root module's outputs.
    platform_out = outputs(INFRA / "platform" / "outputs.tf")
    steps = {s["id"]: s for s in yaml.safe_load((ROOT / "cloudbuild-functions.yaml").read_text())["steps"]}
    trigger = triggers()["energent-functions-$ENV"]
    section = readme_section()
    for setting, output in (("HYBRID_VPN_ADDRESSES", "hybrid_vpn_addresses"), ("HYBRID_ASN", "hybrid_asn"),
                            ("HYBRID_SITE_RANGES", "hybrid_site_ranges")):
        assert output in platform_out, output
        for deployment in registry.load().deployments:
            assert deployed_env(steps[f"deploy-{deployment.name}"])[setting] == f"${{_{setting}}}"
        assert f"_{setting}=$(terraform -chdir=infra/platform output -raw {output})" in section
    assert "$HYBRID" in trigger
    assert cloudbuild.pipeline(registry.load())["substitutions"]["_HYBRID_SITE_RANGES"] == ",".join(
        PLATFORM.site_ranges)
    assert variables("networking")["hybrid_site_ranges"]["default"] == list(PLATFORM.site_ranges)


def test_no_range_of_the_network_is_a_site_range_and_the_provisioner_knows_them_all():
    defaults = variables("networking")
    ranges = [defaults[name]["default"] for name in (
        "nodes_cidr", "pods_cidr", "services_cidr", "platform_pods_cidr", "connector_cidr", "private_services_cidr",
        "dedicated_master_pool", "dedicated_pods_pool", "dedicated_services_pool")]
    ranges.append(variables("gke")["master_cidr"]["default"])
    platform = [ipaddress.ip_network(r) for r in PLATFORM.platform_ranges]
    for cidr in map(ipaddress.ip_network, ranges):
        assert any(cidr.subnet_of(p) for p in platform), cidr  # every range a site is checked against
        assert not any(cidr.overlaps(ipaddress.ip_network(s)) for s in PLATFORM.site_ranges), cidr
    # The private services range is fixed by Terraform, not chosen by Google: the provisioner can know it.
    reserved = resources("networking", "google_compute_global_address")["private_services"]
    assert reserved["address"] == "${cidrhost(var.private_services_cidr, 0)}"
    assert reserved["prefix_length"] == '${tonumber(split("/", var.private_services_cidr)[1])}'


def test_only_the_shared_cluster_s_nodes_may_reach_the_sites_through_the_firewall():
    rule = resources_of(NETWORKING / "egress.tf", "google_compute_firewall")["egress_hybrid_sites"]
    assert rule["direction"] == "EGRESS" and rule["destination_ranges"] == "${var.hybrid_site_ranges}"
    assert rule["priority"] < resources_of(NETWORKING / "egress.tf", "google_compute_firewall")["deny_egress"][
        "priority"]
    assert rule["target_service_accounts"] == ["${var.hybrid_nodes_service_account}"] and "target_tags" not in rule
    assert module_call("networking")["hybrid_nodes_service_account"] == "${module.gke.nodes_service_account}"
    assert outputs(INFRA / "modules" / "gke" / "outputs.tf")["nodes_service_account"]["value"] == (
        "${google_service_account.nodes.email}")
    # The shared cluster's pools run as that account; a dedicated cluster's nodes as their own (nd-, nh-).
    pools = resources("gke", "google_container_node_pool")
    assert {p["node_config"][0]["service_account"] for p in pools.values()} == {
        "${google_service_account.nodes.email}"}


def test_external_secrets_operator_reads_the_keys_as_its_own_account_from_a_namespaced_store_only():
    built = kustomize(INFRA / "external-secrets")
    assert variables_in(built) == {"PROJECT_ID", "ENVIRONMENT"}
    release = next(o for o in built if o["kind"] == "HelmRelease")
    values = release["spec"]["values"]
    account = resources("functions", "google_service_account")["external_secrets"]["account_id"]
    assert values["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        account.replace("${var.environment}", "${ENVIRONMENT}") + "@${PROJECT_ID}.iam.gserviceaccount.com")
    binding = resources("functions", "google_service_account_iam_member")["external_secrets_workload_identity"]
    assert binding["member"] == (f"serviceAccount:${{var.workload_pool}}[{release['spec']['targetNamespace']}/"
                                 f"{values['serviceAccount']['name']}]")
    assert release["spec"]["chart"]["spec"]["version"].count(".") == 2  # pinned
    for flag in ("processClusterExternalSecret", "processClusterStore", "processClusterGenerator",
                 "processClusterPushSecret", "processPushSecret"):
        assert values[flag] is False, flag
    assert values["global"]["nodeSelector"] == {"energent.ai/pool": "platform"}
    store = yaml.safe_load((INFRA / "external-secrets" / "secret-store.yaml").read_text())
    validate(store)
    assert store["metadata"] == {"name": psks.SECRET_STORE, "namespace": PLATFORM.config_connector_namespace}
    assert store["spec"]["provider"] == {"gcpsm": {"projectID": "${TENANTS_PROJECT_ID}"}}  # no key: its identity
    # It may read the keys and nothing else; the provisioner's deployments make, read and delete them.
    reads = resources("functions", "google_project_iam_member")["external_secrets_reads_keys"]
    assert reads["role"] == "roles/secretmanager.secretAccessor" and reads["project"] == "${var.tenants_project_id}"
    keepers = resources("functions", "google_project_iam_member")["hybrid_keys"]
    assert keepers["for_each"] == "${local.key_keepers}"
    provisioners = {d.name for d in registry.load().deployments if d.source == "functions/provisioner"}
    assert provisioners == {"provisioner", "provisioner-flux-events", "provisioner-spend-events"}
    assert 'd.source == "functions/provisioner"' in locals_of("functions")["key_keepers"]
    role = resources("functions", "google_project_iam_custom_role")["hybrid_keys"]
    assert role["project"] == "${var.tenants_project_id}"
    assert {p.split(".")[0] for p in role["permissions"]} == {"secretmanager"}
    assert psks.PREFIX == "hybrid-psk-"
    apis = resources_of(INFRA / "platform" / "main.tf", "google_project_service")["tenant_apis"]["for_each"]
    assert "secretmanager.googleapis.com" in apis
    section = readme_section()
    assert section.index("kubectl kustomize infra/external-secrets") < section.index("secret-store.yaml")
    assert section.index("flux install") < section.index("infra/external-secrets")


def firewall_verdict(rules: dict[str, dict], account: str, destination: str, protocol: str, port: int) -> str:
    """What the VPC firewall does with one egress packet of a VM running as `account`: the matching rule of the
    lowest priority number decides, a deny winning a tie (Compute Engine's order); none: the implied allow."""
    ranges = {"${var.hybrid_site_ranges}": PLATFORM.site_ranges}
    matching = []
    for name, rule in rules.items():
        targets = rule.get("target_service_accounts")
        if rule["direction"] != "EGRESS" or (targets and account not in targets):
            continue
        destinations = rule["destination_ranges"]
        # A rule naming the network's own ranges by reference (nodes, Pods, control planes) is not about these.
        destinations = ranges.get(destinations, []) if isinstance(destinations, str) else destinations
        if not any(ipaddress.IPv4Address(destination) in ipaddress.IPv4Network(d) for d in destinations
                   if not d.startswith("$")):
            continue
        for verdict in ("allow", "deny"):
            for block in rule.get(verdict, []):
                ports = block.get("ports") or []
                if block["protocol"] in ("all", protocol) and (not ports or str(port) in ports):
                    matching.append((rule["priority"], verdict == "allow", verdict, name))
    return min(matching)[2] if matching else "allow"


def test_no_vm_but_the_shared_cluster_s_nodes_reaches_a_site_on_any_port():
    """HTTPS and DNS are open to 0.0.0.0/0 for every VM; the sites' ranges are not: a dedicated cluster's nodes and
    the functions' connector are refused there on 443 and 53 too, the shared nodes (where hybrid tenants run) are
    let through on any port, and the internet is as before."""
    rules = resources_of(NETWORKING / "egress.tf", "google_compute_firewall")
    shared, others = "${var.hybrid_nodes_service_account}", ("nd-acme@tenants", "fn-connector@platform")
    for site in ("10.200.1.5", "10.192.0.1", "10.255.255.254", "192.168.7.9"):
        for protocol, port in (("tcp", 443), ("tcp", 53), ("udp", 53), ("tcp", 22), ("udp", 500)):
            assert firewall_verdict(rules, shared, site, protocol, port) == "allow", (site, port)
            for account in others:
                assert firewall_verdict(rules, account, site, protocol, port) == "deny", (account, site, port)
    for account in (shared, *others):
        assert firewall_verdict(rules, account, "142.250.1.1", "tcp", 443) == "allow"
        assert firewall_verdict(rules, account, "142.250.1.1", "tcp", 22) == "deny"
    deny = rules["deny_egress_hybrid_sites"]
    assert deny["destination_ranges"] == "${var.hybrid_site_ranges}" and "target_service_accounts" not in deny
    others_first = min(rule["priority"] for name, rule in rules.items()
                       if name not in ("egress_hybrid_sites", "deny_egress_hybrid_sites"))
    assert rules["egress_hybrid_sites"]["priority"] < deny["priority"] < others_first
