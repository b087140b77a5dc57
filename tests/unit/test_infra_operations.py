"""Operating the estate: egress limited to what the platform needs, the edge in front of API Gateway, the alerts,
SLOs and dashboard on-call works from, and the Terraform pipeline."""

import re
from functools import partial

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


# --- the edge: load balancer, certificate, Cloud Armor ------------------------------------------------------


def test_the_load_balancer_serves_https_on_443_and_only_redirects_port_80():
    edge = partial(module_resources, "edge")
    rules_by_port = {rule["port_range"]: rule for rule in edge("google_compute_global_forwarding_rule").values()}
    assert set(rules_by_port) == {"443", "80"}
    for rule in rules_by_port.values():
        assert rule["load_balancing_scheme"] == "EXTERNAL_MANAGED"
        assert rule["ip_address"] == "${google_compute_global_address.api.address}"
    assert rules_by_port["443"]["target"] == "${google_compute_target_https_proxy.api.id}"
    assert rules_by_port["80"]["target"] == "${google_compute_target_http_proxy.https_redirect.id}"

    maps = edge("google_compute_url_map")
    redirect = maps[edge("google_compute_target_http_proxy")["https_redirect"]["url_map"].split(".")[1]]
    assert "default_service" not in redirect
    assert redirect["default_url_redirect"][0]["https_redirect"] is True

    proxy = edge("google_compute_target_https_proxy")["api"]
    assert proxy["url_map"] == "${google_compute_url_map.api.id}"
    assert maps["api"]["default_service"] == "${google_compute_backend_service.gateway.id}"
    assert proxy["ssl_certificates"] == ["${google_compute_managed_ssl_certificate.api.id}"]
    assert edge("google_compute_managed_ssl_certificate")["api"]["managed"][0]["domains"] == ["${var.domain}"]
    assert edge("google_compute_ssl_policy")["api"]["min_tls_version"] == "TLS_1_2"


def test_cloud_armor_guards_the_backend_that_reaches_api_gateway():
    edge = partial(module_resources, "edge")
    backend = edge("google_compute_backend_service")["gateway"]
    assert backend["load_balancing_scheme"] == "EXTERNAL_MANAGED"
    assert backend["security_policy"] == "${google_compute_security_policy.api.self_link}"
    assert backend["backend"][0]["group"] == "${google_compute_region_network_endpoint_group.gateway.id}"
    neg = edge("google_compute_region_network_endpoint_group")["gateway"]
    assert neg["provider"] == "google-beta" and neg["network_endpoint_type"] == "SERVERLESS"
    assert neg["serverless_deployment"][0] == {"platform": "apigateway.googleapis.com",
                                               "resource": "${var.gateway_id}", "__is_block__": True}

    policy = {rule["priority"]: rule for rule in edge("google_compute_security_policy")["api"]["rule"]}
    default = policy[max(policy)]
    assert max(policy) == 2147483647 and default["action"] == "allow"
    assert default["match"][0]["config"][0]["src_ip_ranges"] == ["*"]
    waf = {rule["match"][0]["expr"][0]["expression"].split("'")[1]: rule
           for rule in policy.values() if "expr" in rule["match"][0]}
    assert {"sqli-v33-stable", "xss-v33-stable", "cve-canary"} <= set(waf)
    assert all(rule["action"].startswith("deny") for rule in waf.values())
    assert waf["cve-canary"].get("preview", False) is False
    throttle = next(rule for rule in policy.values() if rule["action"] == "throttle")
    options = throttle["rate_limit_options"][0]
    assert options["enforce_on_key"] == "IP" and options["exceed_action"] == "deny(429)"
    assert options["rate_limit_threshold"][0]["interval_sec"] == 60
    # WAF verdicts come before the rate limit, whose conforming requests are allowed and end the evaluation.
    assert max(rule["priority"] for rule in waf.values()) < throttle["priority"] < default["priority"]


def test_the_api_url_of_every_environment_is_the_domain_the_load_balancer_serves():
    platform = (INFRA / "platform" / "main.tf").read_text()
    assert 'api_domain = trimprefix(var.api_url, "https://")' in platform
    assert "domain      = local.api_domain" in platform and "gateway_id  = module.gateway.gateway_id" in platform
    declared = {name: body for block in plain(terraform(INFRA / "platform" / "variables.tf"))["variable"]
                for name, body in block.items()}
    pattern = declared["api_url"]["validation"][0]["condition"].split('regex("')[1].split('", var.api_url')[0]
    pattern = pattern.replace("\\\\", "\\")
    for environment in ("dev", "staging", "production"):
        values = plain(terraform(INFRA / "environments" / environment / "terraform.tfvars"))
        assert re.fullmatch(pattern, values["api_url"]), values["api_url"]
        assert values["api_url"] == "https://" + values["api_url"].removeprefix("https://").rstrip("/")
    for bad in ("https://api.energent.ai/", "http://api.energent.ai", "https://api.energent.ai:8443"):
        assert not re.fullmatch(pattern, bad)
    providers = (INFRA / "platform" / "providers.tf").read_text()
    assert 'provider "google-beta"' in providers
    outputs = {name for block in plain(terraform(INFRA / "platform" / "outputs.tf"))["output"] for name in block}
    assert "api_ip" in outputs

