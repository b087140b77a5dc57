"""The provisioner's pure parts: request rules, the status machine, manifest rendering, Flux events."""

import datetime
import json
import re

import pytest
import yaml

from energent_shared.errors import Invalid
from local.flux import documents
from local.schemas import InvalidManifest, validate
from provisioner import flux, manifests, tenants
from tests.conftest import ROOT, example

ROOT_INFRA = ROOT / "infra"

PLATFORM = manifests.Platform.for_environment("energent-prod", "production", tenants_project="energent-prod-tenants",
                                              authorized_networks=("10.12.0.0/20",),
                                              manifest_bucket="energent-manifests-production-energent-prod")
TODAY = datetime.date(2026, 11, 29)


def files(tenant_id="acme", tier="basic", model="multi-tenant", removing=False) -> dict[str, bytes]:
    ranges = tenants.cluster_ranges(PLATFORM, 2) if model == "dedicated" else {}
    return manifests.render(tenants.TenantSpec(tenant_id, tier, model, **ranges), PLATFORM, removing=removing)


def rendered(tenant_id="acme", tier="basic", model="multi-tenant") -> dict[str, dict]:
    """Every object the tenant's files hold, by `Kind/name` (the kustomize files by their path)."""
    found = {}
    for path, content in files(tenant_id, tier, model).items():
        for document in documents(content):
            name = (document.get("metadata") or {}).get("name")
            found[f"{document['kind']}/{name}" if name else path] = document
    return found


def test_rendering_is_byte_identical_for_the_same_input():
    spec = tenants.TenantSpec("acme", "premium", "dedicated", **tenants.cluster_ranges(PLATFORM, 0))
    assert manifests.render(spec, PLATFORM) == manifests.render(spec, PLATFORM)
    other = tenants.TenantSpec("acme", "basic", "dedicated", **tenants.cluster_ranges(PLATFORM, 0))
    assert manifests.render(spec, PLATFORM) != manifests.render(other, PLATFORM)


@pytest.mark.parametrize("tier", ["basic", "standard", "premium", "enterprise"])
@pytest.mark.parametrize("model", ["multi-tenant", "dedicated"])
def test_every_object_validates_against_its_schema(tier, model):
    for name, document in rendered(tier=tier, model=model).items():
        validate(document)  # Kubernetes 1.30 strict for built-ins, published API shapes for the rest
        assert name


def test_a_typo_in_a_built_in_object_is_caught_by_the_strict_schema():
    quota = rendered()["ResourceQuota/tenant-quota"]
    quota["spec"]["hrad"] = quota["spec"].pop("hard")
    with pytest.raises(InvalidManifest, match="hrad"):
        validate(quota)


@pytest.mark.parametrize("tier, cpu, memory, storage, workflows", [
    ("basic", "1", "2Gi", "10Gi", "1"), ("standard", "2", "4Gi", "25Gi", "2"),
    ("premium", "4", "8Gi", "50Gi", "4"), ("enterprise", "8", "16Gi", "100Gi", "8")])
def test_quota_and_workflow_limit_equal_the_tier_row(tier, cpu, memory, storage, workflows):
    objects = rendered(tier=tier)
    hard = objects["ResourceQuota/tenant-quota"]["spec"]["hard"]
    assert (hard["limits.cpu"], hard["limits.memory"], hard["requests.storage"]) == (cpu, memory, storage)
    assert objects["ConfigMap/tenant-limits"]["data"]["concurrent_workflows"] == workflows
    limits = {item["type"]: item for item in objects["LimitRange/tenant-limits"]["spec"]["limits"]}
    assert limits["Container"]["max"] == {"cpu": cpu, "memory": memory}
    assert limits["PersistentVolumeClaim"]["max"] == {"storage": storage}


def test_namespace_is_labelled_and_pod_security_restricted():
    labels = rendered(tier="standard")["Namespace/tenant-acme"]["metadata"]["labels"]
    assert labels["energent.ai/tenant"] == "acme" and labels["energent.ai/tier"] == "standard"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert rendered()["Namespace/tenant-acme"]["metadata"]["name"] == "tenant-acme"


def test_network_policies_deny_by_default_and_allow_only_what_the_platform_needs():
    objects = rendered()
    deny = objects["NetworkPolicy/default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = objects["NetworkPolicy/allow-dns"]["spec"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}
    platform = objects["NetworkPolicy/allow-platform"]["spec"]
    assert platform["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "energent-platform"}
    https = objects["NetworkPolicy/allow-https-egress"]["spec"]["egress"][0]
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "169.254.0.0/16" in https["to"][0]["ipBlock"]["except"]


def test_workload_identity_binds_the_service_account_to_a_google_service_account():
    objects = rendered()
    sa = objects["ServiceAccount/workflow-runner"]
    # The account lives in the tenants' project; the pods that use it run on the shared cluster (its pool).
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        "tenant-acme@energent-prod-tenants.iam.gserviceaccount.com")
    binding = objects["IAMPolicyMember/tenant-acme-wi"]["spec"]
    assert binding["member"] == "serviceAccount:energent-prod.svc.id.goog[tenant-acme/workflow-runner]"
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert objects["IAMServiceAccount/tenant-acme"]["metadata"]["name"] == "tenant-acme"
    # A dedicated tenant's pods run on its own cluster, whose pool is the tenants' project's.
    dedicated = rendered(model="dedicated")["IAMPolicyMember/tenant-acme-wi"]["spec"]
    assert dedicated["member"] == "serviceAccount:energent-prod-tenants.svc.id.goog[tenant-acme/workflow-runner]"


def test_flux_may_act_on_a_dedicated_tenant_s_cluster_and_no_other():
    objects = rendered(model="dedicated", tier="enterprise")
    grant = objects["IAMPolicyMember/tenant-acme-flux"]["spec"]
    cluster = "projects/energent-prod-tenants/locations/europe-west4/clusters/tenant-acme"
    assert grant == {
        "member": "serviceAccount:flux-kustomize-production@energent-prod.iam.gserviceaccount.com",
        "role": "roles/container.developer",
        "resourceRef": {"kind": "Project", "external": "projects/energent-prod-tenants"},
        "condition": {"title": "tenant-acme only",
                      "expression": f'resource.name == "{cluster}" || resource.name.startsWith("{cluster}/")'}}
    assert objects["ConfigMap/tenant-acme-cluster"]["data"]["cluster"] == cluster  # the cluster Flux signs in to
    # A cluster whose name extends this one's is not covered.
    import celpy

    environment = celpy.Environment()
    program = environment.program(environment.compile(grant["condition"]["expression"]))
    for name, covered in ((cluster, True), (f"{cluster}/k8s/namespaces/tenant-acme", True),
                          (f"{cluster}2", False), (cluster.replace("tenant-acme", "tenant-bravo"), False)):
        assert bool(program.evaluate({"resource": celpy.json_to_cel({"name": name})})) is covered, name


def test_google_service_account_ids_fit_in_30_characters():
    longest = "a" + "b" * 30 + "c"
    for tenant_id in ("abcd", "acme-corporation-europe", longest, "a" + "-x" * 15 + "z", "a" * 27, "a" * 28):
        for account in (tenants.google_service_account_id(tenant_id), tenants.node_service_account_id(tenant_id)):
            assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account), account
    assert tenants.google_service_account_id(longest) != tenants.google_service_account_id(longest[:-1] + "d")
    assert tenants.node_service_account_id(longest) != tenants.node_service_account_id(longest[:-1] + "d")
    # Names the admission policy can tie to their tenant where they fit, a hash beyond; the four forms never meet.
    assert tenants.google_service_account_id("a" * 23) == "tenant-" + "a" * 23
    assert tenants.node_service_account_id("a" * 27) == "nd-" + "a" * 27
    assert tenants.google_service_account_id("a" * 24).startswith("tn-")
    assert tenants.node_service_account_id("a" * 28).startswith("nh-")


def test_a_collision_ground_against_the_old_24_bit_ids_does_not_collide_now():
    import hashlib
    import itertools

    def old(tenant_id):  # what ids longer than 23 characters used to get: 16 characters and 24 bits of hash
        return f"tenant-{tenant_id[:16].rstrip('-')}-{hashlib.sha256(tenant_id.encode()).hexdigest()[:6]}"

    seen, pair = {}, None
    for n in itertools.count():  # a birthday search: a few thousand ids
        candidate = f"victim-corporation-{n:08d}"
        if (account := old(candidate)) in seen:
            pair = seen[account], candidate
            break
        seen[account] = candidate
    assert old(pair[0]) == old(pair[1])
    assert tenants.google_service_account_id(pair[0]) != tenants.google_service_account_id(pair[1])


def test_the_flux_kustomization_is_per_tenant_and_prunes():
    kustomization = rendered()["Kustomization/tenant-acme"]
    assert kustomization["spec"]["prune"] is True
    assert kustomization["spec"]["path"] == "./tenants/acme/manifests"
    assert "kubeConfig" not in kustomization["spec"]  # a multi-tenant tenant lives on the platform's cluster


def test_one_file_holds_every_object_of_the_tenant():
    rendering = files()
    assert set(rendering) == {"tenants/acme/manifests/objects.json", "tenants/acme/manifests/kustomization.yaml",
                              "tenants/acme/sync/flux-kustomization.yaml", "tenants/acme/sync/flux-source.yaml"}
    listed = json.loads(rendering["tenants/acme/manifests/objects.json"])
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List") and len(listed["items"]) == 12
    assert yaml.safe_load(rendering["tenants/acme/manifests/kustomization.yaml"])["resources"] == ["objects.json"]
    # A tier change rewrites that one file: every other file stays byte-identical.
    changed = {path for path, content in files(tier="premium").items() if rendering[path] != content}
    assert changed == {"tenants/acme/manifests/objects.json"}


def test_each_tenant_reads_its_manifests_from_a_flux_source_of_its_own():
    objects = rendered()
    source, kustomization = objects["Bucket/tenant-acme"], objects["Kustomization/tenant-acme"]
    validate(source)
    assert source["spec"]["prefix"] == "tenants/acme/manifests/"
    assert source["spec"]["bucketName"] == PLATFORM.manifest_bucket
    assert kustomization["spec"]["sourceRef"] == {"kind": "Bucket", "name": "tenant-acme"}
    other = rendered(tenant_id="bravo")["Bucket/tenant-bravo"]
    assert other["spec"]["prefix"] == "tenants/bravo/manifests/"  # one tenant's change is not the other's


def test_dedicated_tenants_get_their_own_cluster_and_node_pool():
    objects = rendered(model="dedicated", tier="enterprise")
    assert objects["ContainerCluster/tenant-acme"]["spec"]["location"] == PLATFORM.region
    pool = objects["ContainerNodePool/tenant-acme-pool"]["spec"]
    assert pool["clusterRef"] == {"name": "tenant-acme"}
    # Totals for the regional pool: a per-zone minNodeCount would make three times as many nodes.
    assert pool["autoscaling"] == {"totalMinNodeCount": 2, "totalMaxNodeCount": 4, "locationPolicy": "BALANCED"}
    assert not any(key.startswith("ContainerCluster/") for key in rendered())


def test_a_dedicated_tenants_namespace_objects_go_to_its_own_cluster_and_its_cloud_objects_to_the_platforms():
    rendering = files(model="dedicated", tier="enterprise")
    on_its_cluster = {d["kind"] for d in documents(rendering["tenants/acme/manifests/objects.json"])}
    on_the_platform = {d["kind"] for d in documents(rendering["tenants/acme/manifests/cloud/objects.json"])}
    assert on_its_cluster == {"Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "ConfigMap",
                              "NetworkPolicy"}
    assert on_the_platform == {"IAMServiceAccount", "IAMPolicyMember", "ContainerCluster", "ContainerNodePool"}
    # ... all made in the tenants' project, none in the platform's.
    assert {d["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"] for d in documents(
        rendering["tenants/acme/manifests/cloud/objects.json"])} == {"energent-prod-tenants"}
    objects = rendered(model="dedicated", tier="enterprise")
    tenant, cloud = objects["Kustomization/tenant-acme"], objects["Kustomization/cloud-tenant-acme"]
    assert tenant["spec"]["kubeConfig"] == {"configMapRef": {"name": "tenant-acme-cluster"}}
    assert objects["ConfigMap/tenant-acme-cluster"]["data"] == {
        "provider": "gcp", "cluster": "projects/energent-prod-tenants/locations/europe-west4/clusters/tenant-acme"}
    assert objects["ConfigMap/tenant-acme-cluster"]["metadata"]["namespace"] == tenant["metadata"]["namespace"]
    assert tenant["spec"]["dependsOn"] == [{"name": "cloud-tenant-acme"}]
    assert cloud["spec"]["path"] == "./tenants/acme/manifests/cloud" and "kubeConfig" not in cloud["spec"]
    assert cloud["spec"]["sourceRef"] == tenant["spec"]["sourceRef"]
    # The cloud Kustomization's events can never be read as another tenant's (tenant-<id> names a tenant).
    assert not cloud["metadata"]["name"].startswith("tenant-")
    for document in objects.values():
        validate(document)


def test_dedicated_clusters_use_the_platform_network_a_range_of_their_own_and_their_own_node_identity():
    longest = "a" + "b" * 30 + "c"
    objects = rendered(tenant_id=longest, model="dedicated", tier="enterprise")
    name = f"tenant-{longest}"
    cluster = objects[f"ContainerCluster/{name}"]
    assert len(cluster["metadata"]["name"]) <= 40  # GKE's limit for a cluster name
    spec = cluster["spec"]
    # The platform's network (the Shared VPC host's), in the tenants' project.
    assert spec["networkRef"]["external"] == "projects/energent-prod/global/networks/energent-vpc-production"
    assert spec["subnetworkRef"]["external"] == (
        "projects/energent-prod/regions/europe-west4/subnetworks/energent-gke-production")
    assert cluster["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"] == "energent-prod-tenants"
    assert spec["privateClusterConfig"] == {"enablePrivateNodes": True, "enablePrivateEndpoint": True,
                                            "masterIpv4CidrBlock": "172.20.0.32/28"}
    assert spec["masterAuthorizedNetworksConfig"]["cidrBlocks"] == [{"cidrBlock": "10.12.0.0/20",
                                                                     "displayName": "flux"}]
    # Its own pool, the tenants' project's: no platform account is bound there.
    assert spec["workloadIdentityConfig"] == {"workloadPool": "energent-prod-tenants.svc.id.goog"}
    pool = objects[f"ContainerNodePool/{name}-pool"]["spec"]
    account = pool["nodeConfig"]["serviceAccountRef"]["name"]
    assert spec["nodeConfig"]["serviceAccountRef"] == {"name": account}  # the short-lived default pool too
    assert objects[f"IAMServiceAccount/{account}"] and len(account) <= 30
    assert account != tenants.google_service_account_id(longest)
    roles = sorted(o["spec"]["role"] for key, o in objects.items() if key.startswith(f"IAMPolicyMember/{account}-"))
    assert roles == ["roles/artifactregistry.reader", "roles/container.defaultNodeServiceAccount"]
    for document in objects.values():
        validate(document)


def test_control_plane_ranges_are_distinct_and_never_meet_the_shared_cluster():
    import ipaddress

    blocks = [ipaddress.ip_network(tenants.master_cidr("172.20.0.0/14", n, "172.16.0.0/28")) for n in range(300)]
    assert all(b.prefixlen == 28 for b in blocks) and len(set(blocks)) == 300
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    assert not any(b.overlaps(ipaddress.ip_network("172.16.0.0/28")) for b in blocks)
    with pytest.raises(ValueError, match="overlaps"):
        tenants.master_cidr("172.16.0.0/12", 0, "172.16.0.0/28")
    with pytest.raises(ValueError, match="a /28 or more"):
        tenants.master_cidr("172.20.0.0/29", 0, "172.16.0.0/28")
    with pytest.raises(ValueError, match="no /28 left"):
        tenants.master_cidr("172.20.0.0/27", 2, "172.16.0.0/28")
    shared = ROOT_INFRA.joinpath("modules/gke/variables.tf").read_text()
    assert '"172.16.0.0/28"' in shared  # the shared cluster's range the default pool keeps clear of


def test_dedicated_clusters_get_pod_and_service_ranges_of_their_own_clear_of_the_shared_cluster():
    import dataclasses
    import ipaddress

    wide = dataclasses.replace(PLATFORM, dedicated_slots=100)
    allocated = [tenants.cluster_ranges(wide, n) for n in range(100)]
    for kind, size in (("pods_cidr", 17), ("services_cidr", 22)):
        blocks = [ipaddress.ip_network(ranges[kind]) for ranges in allocated]
        assert all(b.prefixlen == size for b in blocks) and len(set(blocks)) == 100
        assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
        assert not any(b.overlaps(ipaddress.ip_network("10.0.0.0/12")) for b in blocks)
    every = [ipaddress.ip_network(r[k]) for r in allocated for k in ("master_cidr", "pods_cidr", "services_cidr")]
    assert not any(a.overlaps(b) for i, a in enumerate(every) for b in every[i + 1:])
    cluster = rendered(model="dedicated")["ContainerCluster/tenant-acme"]["spec"]
    # The third of each pool, by the names the platform's subnetwork gives them (a Shared VPC subnetwork: GKE
    # cannot add ranges of its own there).
    assert cluster["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "dedicated-pods-10-65-0-0-17",
                                             "servicesSecondaryRangeName": "dedicated-services-10-128-8-0-22"}
    assert "minMasterVersion" not in cluster  # the release channel keeps it on a version GKE offers
    networking = ROOT_INFRA.joinpath("modules/networking/variables.tf").read_text()
    for shared in ('"10.0.0.0/20"', '"10.4.0.0/14"', '"10.8.0.0/20"', '"10.8.16.0/28"',
                   '"10.12.0.0/20"'):  # inside 10.0.0.0/12
        assert shared in networking


def test_a_dedicated_tenant_beyond_the_subnetwork_s_slots_is_refused_before_anything_is_made():
    last = tenants.cluster_ranges(PLATFORM, PLATFORM.dedicated_slots - 1)
    assert last["pods_cidr"] == "10.69.128.0/17"
    with pytest.raises(ValueError, match="dedicated cluster slots is taken"):
        tenants.cluster_ranges(PLATFORM, PLATFORM.dedicated_slots)


@pytest.mark.parametrize("model", ["multi-tenant", "dedicated"])
def test_removal_empties_the_tenants_namespace_and_keeps_a_dedicated_cluster_until_the_end(model):
    live, removing = files(model=model), files(model=model, removing=True)
    assert set(removing) == set(live)
    assert json.loads(removing["tenants/acme/manifests/objects.json"])["items"] == []
    if model == "dedicated":  # its cluster, and all in it, goes with the last files
        cloud = "tenants/acme/manifests/cloud/objects.json"
        assert removing[cloud] == live[cloud]
        # tenant-T reports the removal from the platform's cluster: never waiting on a cluster that may be broken
        [cloud_kustomization, tenant] = documents(removing["tenants/acme/sync/flux-kustomization.yaml"])
        assert tenant["metadata"]["name"] == "tenant-acme"
        assert "kubeConfig" not in tenant["spec"] and "dependsOn" not in tenant["spec"]
        assert cloud_kustomization["metadata"]["name"] == "cloud-tenant-acme"


@pytest.mark.parametrize("body, message", [
    ({"tenant_id": "Acme", "display_name": "A", "tier": "basic"}, "tenant_id 'Acme' must match"),
    ({"tenant_id": "acme", "display_name": " ", "tier": "basic"}, "display_name must be"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "gold"}, "tier must be one of basic"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "deployment_model": "onsite"}, "deployment_model"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "billing_start": "2026-13-01"}, "YYYY-MM-DD"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "billing_start": "2027-01-01"}, "future"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "billing_start": "2024-W01-1"}, "YYYY-MM-DD"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "billing_start": "20240101"}, "YYYY-MM-DD"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "billing_start": "٢٠٢٤-01-01"}, "YYYY-MM-DD"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "billing_start": 20240101}, "YYYY-MM-DD"),
    ({"tenant_id": "acme", "display_name": "A", "tier": "basic", "status": "active"}, "unknown field(s): status"),
])
def test_create_requests_are_validated_with_precise_messages(body, message):
    with pytest.raises(Invalid) as caught:
        tenants.validate_create(body, TODAY)
    assert message in str(caught.value)


def test_a_valid_create_gets_defaults_and_keeps_an_earlier_billing_start():
    fields = tenants.validate_create({"tenant_id": "acme", "display_name": " Acme ", "tier": "basic",
                                      "billing_start": "2026-01-01"}, TODAY)
    assert fields["deployment_model"] == "multi-tenant" and fields["display_name"] == "Acme"
    assert fields["billing_start"] == "2026-01-01"


def test_patch_changes_only_tier_display_name_and_billing_start():
    assert tenants.validate_patch({"tier": "premium"}, TODAY) == {"tier": "premium"}
    assert tenants.validate_patch({"billing_start": "2025-02-28"}, TODAY) == {"billing_start": "2025-02-28"}
    for body in ({}, {"tenant_id": "other"}, {"tier": "gold"}, {"billing_start": "2025-02-30"},
                 {"billing_start": "2024-W01-1"}):
        with pytest.raises(Invalid):
            tenants.validate_patch(body, TODAY)


def test_a_tier_change_extends_the_history_billing_prorates_by():
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    record = {"tier": "basic", "created_at": created}
    later = created + datetime.timedelta(days=3)
    assert tenants.tier_change(record, "premium", later) == [{"tier": "basic", "at": created},
                                                             {"tier": "premium", "at": later}]


@pytest.mark.parametrize("status, succeeded, expected", [
    ("provisioning", True, "active"), ("updating", True, "active"), ("failed", True, "active"),
    ("active", True, None), ("deleting", True, "deleted"), ("deleted", True, None),
    ("provisioning", False, "failed"), ("updating", False, "failed"), ("active", False, "failed"),
    ("deleting", False, None), ("deleted", False, None)])
def test_status_machine(status, succeeded, expected):
    assert tenants.on_flux_outcome(status, succeeded) == expected


def test_flux_success_and_failure_events_parse():
    ok = flux.parse(example("flux-event-succeeded.json"))
    assert (ok.tenant_id, ok.succeeded, ok.reason) == ("acme", True, "ReconciliationSucceeded")
    bad = flux.parse(example("flux-event-failed.json"))
    assert not bad.succeeded and "admission webhook denied" in bad.message
    assert bad.timestamp == datetime.datetime(2026, 11, 29, 10, 16, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize("change, reason", [
    (lambda e: e.update(reason="Progressing", severity="info"), "progress"),
    (lambda e: e["involvedObject"].update(kind="HelmRelease"), "not a Kustomization"),
    (lambda e: e["involvedObject"].update(name="flux-system"), "not a tenant's"),
    (lambda e: e.update(timestamp="yesterday"), "RFC 3339"),
    (lambda e: e.pop("involvedObject"), "no involvedObject"),
])
def test_events_that_say_nothing_about_a_tenant_are_ignored(change, reason):
    event = json.loads(example("flux-event-succeeded.json"))
    change(event)
    with pytest.raises(flux.Ignored, match=reason):
        flux.parse(json.dumps(event).encode())
    with pytest.raises(flux.Ignored):
        flux.parse(b"\xff not json")


def test_a_dedicated_clusters_failure_fails_its_tenant_and_its_readiness_or_waiting_changes_nothing():
    event = json.loads(example("flux-event-failed.json"))
    event["involvedObject"]["name"] = "cloud-tenant-acme"
    failed = flux.parse(json.dumps(event).encode())
    assert (failed.tenant_id, failed.succeeded) == ("acme", False) and failed.message.startswith("cloud objects: ")
    ready = json.loads(example("flux-event-succeeded.json"))
    ready["involvedObject"]["name"] = "cloud-tenant-acme"
    with pytest.raises(flux.Ignored, match="cloud objects are ready"):
        flux.parse(json.dumps(ready).encode())
    waiting = json.loads(example("flux-event-succeeded.json"))
    waiting.update(reason="DependencyNotReady", message="dependency 'flux-system/cloud-tenant-acme' is not ready")
    with pytest.raises(flux.Ignored, match="progress"):
        flux.parse(json.dumps(waiting).encode())


def test_events_older_than_the_second_of_the_last_change_are_stale():
    outcome = flux.parse(example("flux-event-succeeded.json"))  # 10:15:42
    changed = datetime.datetime(2026, 11, 29, 10, 15, 42, 900000, tzinfo=datetime.UTC)
    assert not flux.is_stale(outcome, changed)  # same second: about the current manifests
    assert flux.is_stale(outcome, changed + datetime.timedelta(seconds=1))


def test_every_file_is_json_that_yaml_readers_read_the_same():
    spec = tenants.TenantSpec("acme", "enterprise", "dedicated", **tenants.cluster_ranges(PLATFORM, 1))
    for path, content in manifests.render(spec, PLATFORM).items():
        assert json.loads(content) == yaml.safe_load(content), path


GOOD_ADDRESS = {"line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}


@pytest.mark.parametrize("profile, message", [
    ({"legal_name": "X GmbH", "address": {**GOOD_ADDRESS, "country": "XX"}}, "billing_profile.address.country"),
    ({"legal_name": "X GmbH", "address": {**GOOD_ADDRESS, "country": "de"}}, "billing_profile.address.country"),
    ({"legal_name": "X GmbH", "address": GOOD_ADDRESS}, "billing_profile.vat_id is required"),
    ({"legal_name": "X GmbH", "address": GOOD_ADDRESS, "vat_id": "BE0123456749"}, "must start with DE"),
    ({"legal_name": "X GmbH", "address": GOOD_ADDRESS, "vat_id": "DE123456789"}, "not a valid DE VAT number"),
    ({"legal_name": "X", "address": {**GOOD_ADDRESS, "country": "GR"}, "vat_id": "GR123456783"}, "start with EL"),
    ({"legal_name": " ", "address": GOOD_ADDRESS, "vat_id": "DE123456788"}, "billing_profile.legal_name"),
    ({"legal_name": "X", "address": {"line1": "a", "city": "b", "country": "NL"}}, "address.postal_code"),
    ({"legal_name": "X", "address": {**GOOD_ADDRESS, "country": "US"}, "vat_id": "x" * 33}, "billing_profile.vat_id"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "email": "no"}, "billing_profile.email"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "iban": "x"}, "unknown field(s): iban"),
    ({"legal_name": "X", "address": [], "vat_id": "DE123456788"}, "billing_profile.address must be an object"),
    ([], "billing_profile must be an object"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "136695976"}, "not a valid DE VAT number"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "US1"}, "not a valid DE VAT number"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE\uff11\uff12\uff13456788"}, "ASCII"),
    ({"legal_name": "X", "address": {**GOOD_ADDRESS, "country": "MC"}, "vat_id": "DE123456788"}, "start with FR"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "language": "de"},
     "billing_profile.language must be one of en, nl"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "language": ["nl"]},
     "billing_profile.language"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "peppol_id": "9930:DE123456788"},
     "billing_profile.peppol_id must be an object"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "peppol_id": {"scheme": "1234",
                                                                                         "id": "x"}},
     "billing_profile.peppol_id.scheme must be a code of Peppol's Electronic Address Scheme list"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "peppol_id": {"scheme": 9930,
                                                                                         "id": "x"}},
     "billing_profile.peppol_id.scheme"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "peppol_id": {"scheme": "9930"}},
     "billing_profile.peppol_id.id must be a non-blank string"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "peppol_id": {
        "scheme": "9930", "id": "x", "extra": 1}}, "billing_profile.peppol_id has unknown field(s): extra"),
    ({"legal_name": "X", "address": GOOD_ADDRESS, "vat_id": "DE123456788", "buyer_reference": "\u0000"},
     "billing_profile.buyer_reference"),
])
def test_billing_profiles_are_validated_naming_the_field(profile, message):
    with pytest.raises(Invalid) as caught:
        tenants.billing_profile(profile)
    assert message in str(caught.value)


def test_valid_billing_profiles_in_and_outside_the_eu():
    assert tenants.billing_profile({"legal_name": "X GmbH", "address": GOOD_ADDRESS,
                                    "vat_id": "DE 123 456 788"})["vat_id"] == "DE123456788"
    greek = {"legal_name": "X", "address": {**GOOD_ADDRESS, "country": "GR"}, "vat_id": "EL123456783"}
    assert tenants.billing_profile(greek)["vat_id"] == "EL123456783"
    dutch = tenants.billing_profile({"legal_name": "Acme B.V.", "address": {**GOOD_ADDRESS, "country": "NL"}})
    assert "vat_id" not in dutch  # a Dutch customer may have none
    swiss = {"legal_name": "AG", "address": {**GOOD_ADDRESS, "country": "CH"}, "vat_id": "CHE-123.456.789 MWST"}
    assert tenants.billing_profile(swiss)["vat_id"] == "CHE-123.456.789 MWST"  # free text outside the EU
    assert tenants.validate_patch({"billing_profile": swiss}, TODAY)["billing_profile"]["address"]["country"] == "CH"
    monaco = {"legal_name": "SAM", "address": {**GOOD_ADDRESS, "country": "MC"}, "vat_id": "FR40303265045"}
    assert tenants.billing_profile(monaco)["vat_id"] == "FR40303265045"  # Monaco is France for VAT
    dutch_public_body = tenants.billing_profile({
        "legal_name": "Gemeente Utrecht", "address": {**GOOD_ADDRESS, "country": "NL"}, "language": "nl",
        "peppol_id": {"scheme": "0190", "id": "00000001001234567000"}, "buyer_reference": " PO-2026-17 ",
        "order_reference": "4500012345"})
    assert (dutch_public_body["language"], dutch_public_body["peppol_id"], dutch_public_body["buyer_reference"],
            dutch_public_body["order_reference"]) == (
        "nl", {"scheme": "0190", "id": "00000001001234567000"}, "PO-2026-17", "4500012345")
