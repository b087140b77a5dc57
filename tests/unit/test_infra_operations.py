"""Operating the estate: egress limited to what the platform needs, the edge in front of API Gateway, the alerts,
SLOs and dashboard on-call works from, who may reach the control planes, and the README's and runbook's commands.
The Terraform pipeline: test_infra_pipeline.py."""

import ipaddress
import re
import shutil
import subprocess
from decimal import Decimal
from functools import partial

import pytest
import yaml

from provisioner.manifests import Platform
from tests.unit.test_infra import INFRA, plain, resources_of, terraform
from tools import registry


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
    assert control_plane["destination_ranges"] == "${local.control_plane_cidrs}"
    assert rules(control_plane, "allow") == {"tcp": {"443", "8132"}}
    assert module_locals("networking")["control_plane_cidrs"] == ["${var.shared_master_cidr}",
                                                                  "${var.dedicated_master_pool}"]
    # The shared cluster's range comes from the cluster's own setting; the pool is the provisioner's.
    assert "default" not in module_variables("networking")["shared_master_cidr"]
    platform = (INFRA / "platform" / "main.tf").read_text()
    assert "shared_master_cidr = module.gke.master_cidr" in platform.split('module "networking"')[1].split("}")[0]
    gke_outputs = {name: body for block in plain(terraform(INFRA / "modules" / "gke" / "outputs.tf"))["output"]
                   for name, body in block.items()}
    assert gke_outputs["master_cidr"]["value"] == "${var.master_cidr}"
    assert module_variables("gke")["master_cidr"]["default"] == Platform("p").shared_master_cidr
    assert module_variables("networking")["dedicated_master_pool"]["default"] == Platform("p").master_pool
    internal = firewalls["egress_internal"]
    assert set(internal["destination_ranges"]) == {"${var.nodes_cidr}", "${var.pods_cidr}", "${var.platform_pods_cidr}",
                                                   "${var.connector_cidr}", "${var.dedicated_pods_pool}",
                                                   "${var.dedicated_services_pool}"}
    assert rules(internal, "allow") == {"all": {"*"}}
    # The dedicated clusters' Pod and Service ranges come from the provisioner's pools, clear of the shared ones.
    variables = module_variables("networking")
    platform = Platform("p")
    assert variables["dedicated_pods_pool"]["default"] == platform.pods_pool
    assert variables["dedicated_services_pool"]["default"] == platform.services_pool
    shared = [ipaddress.ip_network(variables[name]["default"]) for name in (
        "nodes_cidr", "pods_cidr", "services_cidr", "connector_cidr", "platform_pods_cidr")]
    assert not any(a.overlaps(b) for i, a in enumerate(shared) for b in shared[i + 1:])
    assert all(taken.subnet_of(ipaddress.ip_network(platform.shared_ranges[0])) for taken in shared)
    pools = [ipaddress.ip_network(platform.pods_pool), ipaddress.ip_network(platform.services_pool)]
    assert not any(pool.overlaps(taken) for pool in pools for taken in shared)
    assert "at most 30 secondary ranges" in (INFRA / "modules" / "networking" / "egress.tf").read_text()
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
    assert "domain         = local.api_domain" in platform and "gateway_id     = module.gateway.gateway_id" in platform
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


# API Gateway's locations (its deployment model's list): europe-west4, the functions' region, is not one of them.
API_GATEWAY_REGIONS = {"asia-northeast1", "australia-southeast1", "europe-west1", "europe-west2", "us-central1",
                       "us-east1", "us-east4", "us-west2", "us-west3", "us-west4"}


def test_api_gateway_runs_in_a_region_that_offers_it_and_calls_the_functions_in_theirs():
    declared = {name: body for block in plain(terraform(INFRA / "platform" / "variables.tf"))["variable"]
                for name, body in block.items()}
    gateway_region = declared["gateway_region"]
    assert gateway_region["default"] in API_GATEWAY_REGIONS
    assert declared["region"]["default"] not in API_GATEWAY_REGIONS  # why the two differ
    offered = set(gateway_region["validation"][0]["condition"].split('"')[1::2])
    assert offered == API_GATEWAY_REGIONS
    platform = (INFRA / "platform" / "main.tf").read_text()
    assert "gateway_region = var.gateway_region" in platform.split('module "gateway"')[1].split("module ")[0]
    assert "gateway_region = var.gateway_region" in platform.split('module "edge"')[1].split("module ")[0]
    # The gateway lives in gateway_region; the spec it serves names the functions in theirs.
    gateway = module_resources("gateway", "google_api_gateway_gateway")["energent"]
    assert gateway["region"] == "${var.gateway_region}"
    config = module_resources("gateway", "google_api_gateway_api_config")["energent"]
    assert "region = var.region," in config["openapi_documents"][0]["document"][0]["contents"]
    assert "https://${region}-${project_id}.cloudfunctions.net/" in (INFRA.parent / "api-spec.yaml").read_text()
    # A serverless NEG must be in its gateway's region.
    neg = module_resources("edge", "google_compute_region_network_endpoint_group")["gateway"]
    assert neg["region"] == "${var.gateway_region}"
    assert "region" not in module_variables("edge")
    # Cloud Build deploys the functions and renders the spec in _REGION, and moves the gateway in _GATEWAY_REGION.
    pipeline = yaml.safe_load((INFRA.parent / "cloudbuild-functions.yaml").read_text())
    steps = {step["id"]: step for step in pipeline["steps"]}
    assert pipeline["substitutions"]["_GATEWAY_REGION"] == gateway_region["default"]
    assert "--location=${_GATEWAY_REGION}" in steps["gateway"]["args"]
    assert "--region ${_REGION}" in steps["package"]["args"][1]
    assert all("--region=${_REGION}" in step["args"] for name, step in steps.items() if name.startswith("deploy-"))
    readme = (INFRA.parent / "README.md").read_text()
    assert "_GATEWAY_REGION=$GATEWAY_REGION" in readme and "output -raw gateway_region" in readme


# --- alerts, SLOs, dashboard --------------------------------------------------------------------------------


def test_slos_hold_the_sla_targets_the_invoices_credit_against():
    from billing.sla import AVAILABILITY_TARGET

    slos = module_locals("monitoring")["availability_slos"]
    assert {model: slo["goal"] for model, slo in slos.items()} == {"multi-tenant": 0.999, "dedicated": 0.9995}
    # Hybrid tenants run on the shared cluster: the multi-tenant SLO is theirs too (same API, same goal).
    assert {model: Decimal(str(slos["multi-tenant" if model == "hybrid" else model]["goal"])) * 100
            for model in AVAILABILITY_TARGET} == AVAILABILITY_TARGET
    slo = module_resources("monitoring", "google_monitoring_slo")["availability"]
    assert slo["for_each"] == "${local.availability_slos}" and slo["rolling_period_days"] == 30
    ratio = slo["request_based_sli"][0]["good_total_ratio"][0]
    assert ratio["total_service_filter"] == "${local.gateway_requests}"
    assert ratio["bad_service_filter"] == '${local.gateway_requests} AND metric.labels.response_code_class=\\"5xx\\"'
    main = (INFRA / "modules" / "monitoring" / "main.tf").read_text()
    assert 'resource.labels.gateway_id=\\"${var.gateway_id}\\"' in main  # this environment's gateway only


def test_burn_rate_alerts_are_the_workbooks_two_windows_per_slo():
    burn = module_locals("monitoring")["burn_rates"]
    seconds = lambda window: int(window.removesuffix("s"))  # noqa: E731
    assert {speed: (rate["factor"], seconds(rate["long_window"]), seconds(rate["short_window"]))
            for speed, rate in burn.items()} == {"fast": (14.4, 3600, 300), "slow": (6, 21600, 1800)}
    # 2 % of a 30-day budget in an hour, 5 % in six hours; each short window a twelfth of its long one.
    for speed, share in (("fast", 0.02), ("slow", 0.05)):
        rate = burn[speed]
        assert rate["factor"] * seconds(rate["long_window"]) / (30 * 86400) == pytest.approx(share)
        assert seconds(rate["long_window"]) == 12 * seconds(rate["short_window"])
    alerts = module_locals("monitoring")["burn_rate_alerts"]
    assert "setproduct(keys(local.availability_slos), keys(local.burn_rates))" in alerts
    policy = module_resources("monitoring", "google_monitoring_alert_policy")["slo_burn_rate"]
    assert policy["for_each"] == "${local.burn_rate_alerts}" and policy["combiner"] == "AND"
    long, short = (c["condition_threshold"][0] for c in policy["conditions"])
    assert "${each.value.burn.long_window}" in long["filter"] and "${each.value.burn.short_window}" in short["filter"]
    for window in (long, short):  # both windows burn faster than the factor, at the same moment
        assert window["filter"].startswith("select_slo_burn_rate(")
        assert "google_monitoring_slo.availability[each.value.slo].name" in window["filter"]
        assert window["threshold_value"] == "${each.value.burn.factor}" and window["comparison"] == "COMPARISON_GT"


def test_every_dead_letter_topic_has_a_subscription_and_an_alert():
    functions = (INFRA / "modules" / "functions" / "main.tf").read_text()
    assert 'dead_letter   = { for topic in local.topics : topic => "${topic}-dead-letter" }' in functions
    subscriptions = resources_of(INFRA / "modules" / "functions" / "main.tf", "google_pubsub_subscription")
    assert subscriptions["dead_letter"]["for_each"] == "${local.dead_letter}"
    assert subscriptions["push"]["dead_letter_policy"][0]["dead_letter_topic"] == (
        "${google_pubsub_topic.dead_letter[each.value.topic].id}")
    outputs = {name: body for block in plain(terraform(INFRA / "modules" / "functions" / "outputs.tf"))["output"]
               for name, body in block.items()}
    assert "google_pubsub_subscription.dead_letter" in outputs["dead_letter_subscriptions"]["value"]
    platform = (INFRA / "platform" / "main.tf").read_text()
    assert "dead_letter_subscriptions = module.functions.dead_letter_subscriptions" in platform
    alert = module_resources("monitoring", "google_monitoring_alert_policy")["dead_letters"]
    assert alert["for_each"] == "${var.dead_letter_subscriptions}"
    condition = alert["conditions"][0]["condition_threshold"][0]
    assert 'subscription_id=\\"${each.value}\\"' in condition["filter"]
    assert "subscription/num_undelivered_messages" in condition["filter"]
    assert condition["comparison"] == "COMPARISON_GT" and condition["threshold_value"] == 0


def test_day_one_failures_are_counted_from_logs_that_exist():
    metrics = module_resources("monitoring", "google_logging_metric")
    alerts = module_resources("monitoring", "google_monitoring_alert_policy")
    for name in ("gke_backup_failures", "flux_failures", "close_failures", "function_errors"):
        assert f"google_logging_metric.{name}.name" in str(alerts[name]["conditions"]), name
    assert "google_logging_metric.flux_controller_errors.name" in str(alerts["flux_failures"]["conditions"])
    assert 'resource.labels.namespace_name="flux-system"' in metrics["flux_controller_errors"]["filter"]
    assert "gkebackup.googleapis.com%2Fbackup_change" in metrics["gke_backup_failures"]["filter"]
    flux = metrics["flux_failures"]["filter"]
    assert 'jsonPayload.event="flux.outcome"' in flux and 'local.service["provisioner-flux-events"]' in flux
    close = metrics["close_failures"]["filter"]
    assert 'jsonPayload.event="period.close_refused"' in close and 'local.service["billing-events"]' in close
    # The events the metrics look for are the ones the code logs.
    root = INFRA.parent
    assert 'log_event(logger, "period.close_refused"' in (root / "functions/billing/main.py").read_text()
    provisioner = (root / "functions/provisioner/provisioner/service.py").read_text()
    assert 'log_event(logger, "flux.outcome", severity=logging.INFO if outcome.succeeded else logging.WARNING' in (
        provisioner)
    routes = metrics["route_violations"]["filter"]
    assert 'local.service["provisioner-flux-events"]' in routes and "severity>=ERROR" in routes
    logged = set(re.findall(r'"(routes\.[a-z_]+)"', provisioner + (root / "functions/provisioner/main.py").read_text()))
    watched = set(re.findall(r'jsonPayload\.event="(routes\.[a-z_]+)"', routes))
    assert watched == logged - {"routes.checked", "routes.skipped"}, (watched, logged)
    names = {d.name for d in registry.load().deployments}
    assert {"billing", "billing-events", "provisioner-flux-events"} <= names
    assert "deployments               = [for d in local.registry.deployments : d.name]" in (
        (INFRA / "platform" / "main.tf").read_text())


def resource_types(log_filter: str) -> set[str]:
    return set(re.findall(r'resource\.type=\\?"([^"\\]+)', log_filter))


def test_every_log_metric_reads_one_resource_type_and_its_policies_wait_until_monitoring_knows_it():
    metrics = module_resources("monitoring", "google_logging_metric")
    assert len(metrics) >= 5
    for name, metric in metrics.items():
        # One monitored resource type per metric, named at the start: a condition reads one type.
        assert len(resource_types(metric["filter"])) == 1, name
        assert " OR resource.type" not in metric["filter"] and "(resource.type" not in metric["filter"], name
    pause = module_resources("monitoring", "time_sleep")["log_metrics"]
    assert int(pause["create_duration"].removesuffix("s")) >= 600
    waited_for = set(re.findall(r"google_logging_metric\.(\w+)", pause["triggers"]))
    assert waited_for == set(metrics)
    policies = module_resources("monitoring", "google_monitoring_alert_policy")
    on_log_metrics = {name: policy for name, policy in policies.items() if "google_logging_metric." in str(policy)}
    assert set(on_log_metrics) == {"function_errors", "gke_backup_failures", "flux_failures", "close_failures",
                                   "spend_failures", "route_violations"}
    for name, policy in on_log_metrics.items():
        assert policy["depends_on"] == ["${time_sleep.log_metrics}"], name
        for condition in policy["conditions"]:
            condition_filter = condition["condition_threshold"][0]["filter"]
            metric = re.search(r"google_logging_metric\.(\w+)\.name", condition_filter)
            if metric:  # the condition names the metric's own resource type
                assert resource_types(condition_filter) == resource_types(metrics[metric.group(1)]["filter"]), name
    # The time provider is declared where it is used and in the root module; the schema test leaves it unchecked.
    for path in (INFRA / "modules" / "monitoring" / "versions.tf", INFRA / "platform" / "versions.tf"):
        providers = plain(terraform(path))["terraform"][0]["required_providers"][0]
        assert providers["time"]["source"] == "hashicorp/time", path


def test_storage_and_client_errors_alert_above_the_guides_thresholds():
    alerts = module_resources("monitoring", "google_monitoring_alert_policy")
    storage = {c["condition_threshold"][0]["filter"].split('metric.type=\\"')[1].split("\\")[0]:
               c["condition_threshold"][0]["threshold_value"] for c in alerts["storage"]["conditions"]}
    assert storage == {"kubernetes.io/pod/volume/utilization": 0.9,
                       "kubernetes.io/node/ephemeral_storage/used_bytes": 0.9,
                       "file.googleapis.com/nfs/server/used_bytes_percent": 90}
    client = alerts["client_errors"]["conditions"][0]["condition_threshold"][0]
    assert 'response_code_class=\\"4xx\\"' in client["filter"] and client["threshold_value"] == 0.05


def test_the_budget_alerts_at_half_most_and_all_of_it():
    budget = module_resources("monitoring", "google_billing_budget")["monthly"]
    assert [rule["threshold_percent"] for rule in budget["threshold_rules"]] == [0.5, 0.9, 1.0]
    assert budget["billing_account"] == "${var.billing_account}"
    assert budget["all_updates_rule"][0]["monitoring_notification_channels"] == "${local.channels}"
    assert "billingbudgets.googleapis.com" in (INFRA / "platform" / "main.tf").read_text()


def test_the_dashboard_covers_functions_pubsub_gke_and_firestore():
    charts = module_locals("monitoring")["charts"]
    text = str(charts)
    for metric in ("run.googleapis.com/request_count", "run.googleapis.com/request_latencies",
                   "num_undelivered_messages", "-dead-letter", "cpu/allocatable_utilization",
                   "memory/allocatable_utilization", "firestore.googleapis.com/document/"):
        assert metric in text, metric
    assert all(set(query) == {"filter", "aligner", "reducer", "group_by"} for chart in charts
               for query in chart["queries"] if isinstance(query, dict))
    dashboard = module_resources("monitoring", "google_monitoring_dashboard")["energent"]
    assert "local.charts" in dashboard["dashboard_json"]


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_the_terraform_files_are_formatted_as_the_pipelines_fmt_check_wants():
    checked = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-diff", str(INFRA)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout[-4000:]


# --- replaying dead letters (docs/runbook.md) ---------------------------------------------------------------


class FakeDeadLetters:
    """A dead-letter subscription and its source topic, as far as the replay uses them."""

    def __init__(self, count: int, fail_publish: bool = False):
        from google.pubsub_v1.types import PubsubMessage, ReceivedMessage

        self.waiting = [ReceivedMessage(ack_id=f"ack-{n}", message=PubsubMessage(
            data=f"event-{n}".encode(), message_id=str(n),
            attributes={"content-type": "application/cloudevents+json", "ce-id": str(n),
                        "CloudPubSubDeadLetterSourceDeliveryCount": "10",
                        "CloudPubSubDeadLetterSourceSubscription": "billing-events-push"})) for n in range(count)]
        self.leased: dict[str, object] = {}
        self.published: list = []
        self.acked: list[str] = []
        self.fail_publish = fail_publish

    def pull(self, *, subscription, max_messages, timeout):
        from google.pubsub_v1.types import PullResponse

        assert subscription == "projects/energent-dev/subscriptions/billing-events-dead-letter"
        batch, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        self.leased.update({item.ack_id: item for item in batch})
        return PullResponse(received_messages=batch)

    def publish(self, *, topic, messages):
        assert topic == "projects/energent-dev/topics/billing-events"
        if self.fail_publish:
            raise RuntimeError("publish failed")
        self.published.extend(messages)

    def acknowledge(self, *, subscription, ack_ids):
        self.acked.extend(ack_ids)

    def modify_ack_deadline(self, *, subscription, ack_ids, ack_deadline_seconds):
        assert ack_deadline_seconds == 0
        self.waiting = [self.leased.pop(ack_id) for ack_id in ack_ids] + self.waiting


def test_replay_republishes_dead_letters_with_their_own_attributes_then_acknowledges():
    from tools.replay_dead_letters import replay

    fake = FakeDeadLetters(250)
    assert replay(fake, fake, "energent-dev", "billing-events", out=lambda _: None) == 250
    assert [m.data for m in fake.published] == [f"event-{n}".encode() for n in range(250)]
    assert all(dict(m.attributes) == {"content-type": "application/cloudevents+json", "ce-id": m.data.decode()[6:]}
               for m in fake.published)
    assert fake.acked == [f"ack-{n}" for n in range(250)] and not fake.waiting


def test_replay_acknowledges_nothing_it_could_not_publish_and_a_dry_run_moves_nothing():
    from tools.replay_dead_letters import replay

    failing = FakeDeadLetters(3, fail_publish=True)
    with pytest.raises(RuntimeError):
        replay(failing, failing, "energent-dev", "billing-events", out=lambda _: None)
    assert failing.acked == []  # they come back to the dead-letter subscription when their lease ends
    looked = FakeDeadLetters(3)
    shown: list[str] = []
    assert replay(looked, looked, "energent-dev", "billing-events", dry_run=True, out=shown.append) == 3
    assert len(shown) == 3 and "CloudPubSubDeadLetter" not in "".join(shown)
    assert looked.published == [] and looked.acked == [] and len(looked.waiting) == 3
    limited = FakeDeadLetters(10)
    assert replay(limited, limited, "energent-dev", "billing-events", limit=4, out=lambda _: None) == 4
    assert len(limited.waiting) == 6


# --- the README's deployment and the runbook ----------------------------------------------------------------

ROOT = INFRA.parent


def test_the_deployment_from_zero_uses_the_names_terraform_expects():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying an environment from zero")[1].split("### What it costs")[0]
    for environment in ("dev", "staging", "production"):
        bucket = plain(terraform(INFRA / "environments" / environment / "backend.hcl"))["bucket"]
        assert bucket == f"energent-tfstate-{environment}"
    assert 'gcloud storage buckets create "gs://energent-tfstate-$ENV"' in section
    assert '--versioning' in section
    assert 'terraform init -backend-config="../environments/$ENV/backend.hcl"' in section
    assert "gcloud services enable serviceusage.googleapis.com cloudresourcemanager.googleapis.com" in section
    steps = [line.split("**")[1] for line in section.splitlines() if re.match(r"^\d+\. \*\*", line)]
    assert len(steps) == 8
    assert "kubectl kustomize infra/config-connector" in section and "kubectl kustomize infra/flux" in section
    for needed in ("terraform output -raw api_ip", "ssl-certificates", "cloudbuild-functions.yaml",
                   "cloudbuild-infra.yaml", "--secret=operator-client", "/.well-known/openid-configuration"):
        assert needed in section, needed
    assert section.index("api_ip") < section.index("ACTIVE") < section.index("triggers run")
    assert "(docs/runbook.md)" in readme
    # The service account the infrastructure pipeline applies as is the one the README creates.
    assert 'gcloud iam service-accounts create "terraform-$ENV"' in section


def test_the_readme_says_to_commit_the_billing_account_the_shipped_values_leave_empty():
    declared = {name: body for block in plain(terraform(INFRA / "platform" / "variables.tf"))["variable"]
                for name, body in block.items()}
    pattern = declared["billing_account"]["validation"][0]["condition"].split('regex("')[1].split('", var.')[0]
    for environment in ("dev", "staging", "production"):
        value = plain(terraform(INFRA / "environments" / environment / "terraform.tfvars"))["billing_account"]
        assert not re.fullmatch(pattern, value), "shipped values are refused until someone sets the real account"
    assert re.fullmatch(pattern, "01A2B3-C4D5E6-F7A8B9")
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying an environment from zero")[1].split("### What it costs")[0]
    values = section.split("2. **The values.**")[1].split("3. **")[0]
    assert 'billing_account = ""' in values and "**Set them and commit them**" in values
    assert section.index("**Set them and commit them**") < section.index("gcloud builds triggers create")


def test_no_tenant_s_pods_are_among_any_control_plane_s_authorized_networks():
    declared = {name: body for block in plain(terraform(INFRA / "platform" / "variables.tf"))["variable"]
                for name, body in block.items()}
    conditions = [rule["condition"] for rule in declared["admin_cidrs"]["validation"]]
    assert "${length(var.admin_cidrs) > 0}" in conditions  # an empty list would leave kubectl no way in
    assert any("cidrhost(cidr, 0)" in condition for condition in conditions)
    assert any("203.0.113." in condition for condition in conditions)  # documentation ranges stay refused
    for environment in ("dev", "staging", "production"):  # shipped empty: refused until set, like billing_account
        assert plain(terraform(INFRA / "environments" / environment / "terraform.tfvars"))["admin_cidrs"] == []
    # The platform cluster admits the operators only.
    cluster = module_resources("gke", "google_container_cluster")["primary"]
    blocks = cluster["master_authorized_networks_config"][0]["dynamic"][0]["cidr_blocks"]
    assert blocks["for_each"] == "${var.admin_cidrs}"
    # Cloud NAT's addresses, which every Pod's traffic to the internet may leave by, are no one's authorized network.
    for path in sorted(INFRA.rglob("*.tf")):
        if path.parent.name != "networking":
            assert "nat_ips" not in path.read_text().replace('output "nat_ips"', ""), path
    # A dedicated control plane answers on its private endpoint only, to Flux's Pods: the platform pool's range, which
    # no tenant's Pod shares (the shared cluster's and the dedicated clusters' Pods have ranges of their own) and which
    # only tolerating Pods reach (the pool's taint; README step 5 schedules kustomize-controller there).
    platform = Platform("p")
    networking = module_variables("networking")
    flux = ipaddress.ip_network(networking["platform_pods_cidr"]["default"])
    assert list(platform.authorized_networks) == [str(flux)]
    tenant_pods = [networking["pods_cidr"]["default"], networking["nodes_cidr"]["default"], platform.pods_pool]
    assert not any(flux.overlaps(ipaddress.ip_network(other)) for other in tenant_pods)
    pool = module_resources("gke", "google_container_node_pool")["platform"]
    assert pool["network_config"][0]["pod_range"] == "${var.platform_pods_range}"
    assert module_variables("gke")["platform_pods_range"]["default"] == "platform-pods"
    subnetwork = module_resources("networking", "google_compute_subnetwork")["gke"]
    assert {"range_name": "platform-pods", "ip_cidr_range": "${var.platform_pods_cidr}", "__is_block__": True} in (
        subnetwork["secondary_ip_range"])
    taint = pool["node_config"][0]["taint"][0]
    assert (taint["key"], taint["effect"]) == ("energent.ai/platform", "NO_SCHEDULE")
    readme = (ROOT / "README.md").read_text()
    step = readme.split("5. **Config Connector and Flux on the cluster.**")[1].split("6. **")[0]
    patch = step.split("kubectl -n flux-system patch deployment kustomize-controller")[1].split("\n")[0]
    assert '"energent.ai/pool":"platform"' in patch and '"key":"energent.ai/platform"' in patch
    assert pool["node_config"][0]["labels"]["energent.ai/pool"] == "platform"
    # The provisioner learns the tenants' project from Terraform and Cloud Build alike (no list of addresses).
    functions_env = module_locals("functions")["common_env"]
    assert "AUTHORIZED_NETWORKS" not in functions_env
    assert functions_env["TENANTS_PROJECT"] == "${var.tenants_project_id}"
    section = readme.split("## Deploying an environment from zero")[1].split("### What it costs")[0]
    assert "TENANTS_PROJECT=$(terraform -chdir=infra/platform output -raw tenants_project)" in section
    assert "_TENANTS_PROJECT=$TENANTS_PROJECT" in section and "_AUTHORIZED_NETWORKS" not in section


def test_the_readme_names_what_the_deployment_needs_before_it_starts():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying an environment from zero")[1].split("### What it costs")[0]
    needs = section.split("You need:")[1].split("1. **")[0]
    for needed in ("gke-gcloud-auth-plugin", "rbac_security_group", "Cloud Build GitHub App", "FLUX_VERSION"):
        assert needed in needs, needed
    group = module_variables("gke")["rbac_security_group"]["default"]
    assert group.startswith("gke-security-groups@") and f"`{group}`" in needs  # the name GKE requires
    # Flux is pinned, at 2.7 or later (dedicated clusters through kubeConfig.configMapRef), on the cluster.
    version = re.search(r"^FLUX_VERSION=v(\d+)\.(\d+)\.(\d+)\s", section, re.MULTILINE)
    assert version and (int(version.group(1)), int(version.group(2))) >= (2, 7)
    assert 'flux install --version="$FLUX_VERSION"' in section and "flux install\n" not in section


def test_every_schedule_the_runbook_runs_by_hand_is_one_terraform_creates():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    named = re.findall(r"gcloud scheduler jobs run energent-([a-z0-9-]+)-\$ENV", runbook)
    assert "usage-rollup" in named and "spend-month-start" in named
    assert set(named) <= {schedule.name for schedule in registry.load().schedules}


def test_the_runbook_names_what_terraform_and_the_registry_create():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    assert "--backup-time" not in runbook.replace("no `gcloud firestore databases restore --backup-time`", "")
    assert "gcloud firestore databases clone --source-database=" in runbook and "--snapshot-time=" in runbook
    assert "gcloud firestore databases restore --source-backup=" in runbook
    gke = (INFRA / "modules" / "gke" / "main.tf").read_text()
    assert 'name     = "energent-gke-daily-${var.environment}"' in gke and "energent-gke-daily-$ENV" in runbook
    assert "--selected-namespaces=" in runbook
    shipped = registry.load()
    assert f"--secret={shipped.secrets['OPERATOR_CLIENT_SECRET']}" in runbook
    assert f"versions list {shipped.secrets['SIGNING_KEY_SECRET']}" in runbook
    assert "python -m tools.replay_dead_letters" in runbook and (ROOT / "tools" / "replay_dead_letters.py").exists()
    functions = (INFRA / "modules" / "functions" / "main.tf").read_text()
    # A new operator secret: a new version from a new ephemeral password, the old one destroyed.
    assert 'resource "google_secret_manager_secret_version" "operator"' in functions
    assert 'ephemeral "random_password" "operator"' in functions
    assert "-replace=module.functions.google_secret_manager_secret_version.operator" in runbook
    assert 'module "functions"' in (INFRA / "platform" / "main.tf").read_text()
    # Re-rendering goes through the API (the CLI), whose paths the gateway serves.
    assert "energent tenants rerender" in runbook and "POST /v1/tenants:rerender" in runbook
    assert "/v1/tenants:rerender" in (ROOT / "api-spec.yaml").read_text()
    for section in ("Restore Firestore", "Restore a tenant namespace", "Replay a dead-letter topic",
                    "Rotate the signing key after a compromise", "Re-render every tenant"):
        assert f"## {section}" in runbook
    # The dedicated clusters answer Flux alone: an operator reaches one only by opening its DNS endpoint for a while.
    dedicated = runbook.split("## Reach a dedicated tenant's cluster")[1]
    assert "--enable-dns-access" in dedicated and "--no-enable-dns-access" in dedicated
    assert "energent-dev-tenants" not in dedicated and '--project="$TENANTS_PROJECT"' in dedicated
