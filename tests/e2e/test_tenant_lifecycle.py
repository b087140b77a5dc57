"""The tenant lifecycle through the gateway, the emulators and the local Flux stand-in."""

import json
import time

import requests
import yaml

from local.flux import flux_event, reconcile
from tests.support import wait_until

TIMEOUT_S = 30


def tenant(stack, tenant_id: str) -> dict:
    return requests.get(f"{stack.url}/v1/tenants/{tenant_id}", headers=stack.operator(), timeout=10).json()


def wait_for_status(stack, tenant_id: str, status: str) -> dict:
    return wait_until(lambda: current if (current := tenant(stack, tenant_id))["status"] == status else None,
                      TIMEOUT_S, what=f"{tenant_id} to become {status}")


def bucket_objects(stack, tenant_id: str) -> list[tuple[str, str]]:
    listing = requests.get(f"{stack.values['STORAGE_EMULATOR_HOST']}/storage/v1/b/{stack.values['MANIFEST_BUCKET']}/o",
                           params={"prefix": f"tenants/{tenant_id}/"}, timeout=10).json()
    return [(item["name"], item["generation"]) for item in listing.get("items", [])]


def bucket_files(stack, tenant_id: str) -> list[str]:
    return [name for name, _generation in bucket_objects(stack, tenant_id)]


def settled(stack, tenant_id: str, quiet_s: float = 2.0) -> None:
    """Wait until the tenant's files have not changed for `quiet_s`: the Flux stand-in (polling every 0.5 s)
    has then reported on the last of them, and no success event of its is still on the way."""
    last, since = None, time.monotonic()

    def quiet():
        nonlocal last, since
        current = bucket_objects(stack, tenant_id)
        if current != last:
            last, since = current, time.monotonic()
        return time.monotonic() - since >= quiet_s

    wait_until(quiet, TIMEOUT_S, what=f"{tenant_id}'s files to settle")


def bucket_yaml(stack, path: str) -> dict:
    url = f"{stack.values['STORAGE_EMULATOR_HOST']}/storage/v1/b/{stack.values['MANIFEST_BUCKET']}/o/" \
          f"{requests.utils.quote(path, safe='')}"
    return yaml.safe_load(requests.get(url, params={"alt": "media"}, timeout=10).content)


def test_create_update_fail_recover_and_delete(stack):
    auth = stack.operator()
    created = requests.post(f"{stack.url}/v1/tenants", headers=auth, timeout=10,
                            json={"tenant_id": "lifecycle", "display_name": "Lifecycle BV", "tier": "basic"})
    assert created.status_code == 202 and created.json()["status"] == "provisioning"
    assert "tenants/lifecycle/manifests/objects.json" in bucket_files(stack, "lifecycle")
    active = wait_for_status(stack, "lifecycle", "active")
    assert active["billing_start"] is not None

    patched = requests.patch(f"{stack.url}/v1/tenants/lifecycle", json={"tier": "enterprise"}, headers=auth,
                             timeout=10)
    assert patched.status_code == 202 and patched.json()["status"] == "updating"
    wait_for_status(stack, "lifecycle", "active")
    [quota] = [item for item in bucket_yaml(stack, "tenants/lifecycle/manifests/objects.json")["items"]
               if item["kind"] == "ResourceQuota"]
    assert quota["spec"]["hard"]["limits.cpu"] == "8"

    settled(stack, "lifecycle")  # else a late success for the new files could overtake the failure below
    failure = flux_event("tenant-lifecycle", False, "HealthCheckFailed: Deployment/tenant-lifecycle/agent not ready",
                         revision="x", sequence=99)
    stack.publish("provisioning-events", json.dumps(failure).encode(), {})
    failed = wait_for_status(stack, "lifecycle", "failed")
    assert "not ready" in failed["status_message"]

    for garbage in (b"not json", b"{}", json.dumps({**failure, "involvedObject": {"kind": "Kustomization",
                                                                                  "name": "flux-system"}}).encode()):
        stack.publish("provisioning-events", garbage, {})
    # A sentinel after the garbage: once its message shows, the garbage before it has been handled as well.
    sentinel = flux_event("tenant-lifecycle", False, "HealthCheckFailed: sentinel", revision="x", sequence=100)
    stack.publish("provisioning-events", json.dumps(sentinel).encode(), {})
    wait_until(lambda: "sentinel" in tenant(stack, "lifecycle").get("status_message", ""), TIMEOUT_S,
               what="the sentinel event to be handled")
    assert tenant(stack, "lifecycle")["status"] == "failed"

    deleted = requests.delete(f"{stack.url}/v1/tenants/lifecycle", headers=auth, timeout=10)
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    wait_for_status(stack, "lifecycle", "deleted")
    wait_until(lambda: bucket_files(stack, "lifecycle") == [], TIMEOUT_S, what="the tenant's files to go")
    again = requests.post(f"{stack.url}/v1/tenants", headers=auth, timeout=10,
                          json={"tenant_id": "lifecycle", "display_name": "Again", "tier": "basic"})
    assert again.status_code == 409


def test_a_tenant_reads_itself_but_never_acts_as_the_operator(stack):
    auth = stack.operator()
    requests.post(f"{stack.url}/v1/tenants", headers=auth, timeout=10,
                  json={"tenant_id": "reader", "display_name": "Reader", "tier": "standard"})
    wait_for_status(stack, "reader", "active")
    client = requests.post(f"{stack.url}/v1/tenants/reader/clients", json={"scopes": ["usage:read"]}, headers=auth,
                           timeout=10).json()
    token = requests.post(f"{stack.url}/v1/oauth/token", data={"grant_type": "client_credentials"}, timeout=10,
                          auth=(client["client_id"], client["client_secret"])).json()["access_token"]
    mine = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{stack.url}/v1/tenants/reader", headers=mine, timeout=10).json()["tier"] == "standard"
    assert requests.get(f"{stack.url}/v1/tenants", headers=mine, timeout=10).status_code == 403
    assert requests.post(f"{stack.url}/v1/tenants", headers=mine, timeout=10,
                         json={"tenant_id": "sneaky", "display_name": "S", "tier": "basic"}).status_code == 403
    assert requests.patch(f"{stack.url}/v1/tenants/reader", json={"tier": "enterprise"}, headers=mine,
                          timeout=10).status_code == 403
    assert requests.get(f"{stack.url}/v1/tenants/lifecycle", headers=mine, timeout=10).status_code == 403
    assert requests.post(f"{stack.url}/v1/tenants:rerender", headers=mine, timeout=10).status_code == 403


def test_an_operator_renders_every_tenant_again_and_follows_the_run(stack):
    auth = stack.operator()
    requests.post(f"{stack.url}/v1/tenants", headers=auth, timeout=10,
                  json={"tenant_id": "rerendered", "display_name": "Rerendered", "tier": "basic"})
    started = requests.post(f"{stack.url}/v1/tenants:rerender", json={"reason": "tier table v2"}, headers=auth,
                            timeout=10)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running" and started.json()["reason"] == "tier table v2"
    location = started.headers["Location"]
    assert location == f"/v1/rerenders/{started.json()['run_id']}"

    def finished():
        run = requests.get(f"{stack.url}{location}", headers=auth, timeout=10).json()
        return run if run["status"] == "done" else None

    run = wait_until(finished, TIMEOUT_S, what="the re-render run to finish")
    assert run["tenants"] >= 1 and run["failed"] == 0 and run["rerendered"] + run["unchanged"] == run["tenants"]
    assert requests.post(f"{stack.url}/v1/tenants:rerender", headers=auth, timeout=10).status_code == 202  # no body
    assert requests.get(f"{stack.url}/v1/rerenders/{'0' * 32}", headers=auth, timeout=10).status_code == 404
    bad = requests.get(f"{stack.url}/v1/rerenders/not-a-run", headers=auth, timeout=10)
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"


def test_bad_input_gets_a_precise_4xx(stack):
    auth = stack.operator()
    url = f"{stack.url}/v1/tenants"
    cases = [
        (requests.post(url, headers=auth, json={"tenant_id": "x", "display_name": "X", "tier": "basic"}, timeout=10),
         400, "tenant_id 'x' must match"),
        (requests.post(url, headers=auth, json={"tenant_id": "okay", "display_name": "X", "tier": "gold"},
                       timeout=10), 400, "tier must be one of"),
        (requests.post(url, headers=auth, json={"tenant_id": "okay", "display_name": "X", "tier": "basic",
                                                "deployment_model": "onsite"}, timeout=10), 400, "deployment_model"),
        (requests.post(url, headers=auth, json={"tenant_id": "okay", "display_name": "X", "tier": "basic",
                                                "deployment_model": "hybrid"}, timeout=10), 400, "site is required"),
        (requests.post(url, headers={**auth, "Content-Type": "application/json"}, data=b"{not json", timeout=10),
         400, "not valid JSON"),
        (requests.post(url, headers=auth, json=["a"], timeout=10), 400, "must be a JSON object"),
        (requests.post(url, headers={**auth, "Content-Type": "application/json"}, data=b" " * (1024 * 1024 + 1),
                       timeout=10), 413, "limit"),
        (requests.post(url, json={"tenant_id": "okay"}, timeout=10), 401, "access token"),
        (requests.get(f"{url}/NOT_AN_ID", headers=auth, timeout=10), 400, "invalid tenant id"),
        (requests.get(f"{url}/nobody", headers=auth, timeout=10), 404, "does not exist"),
    ]
    for response, status, detail in cases:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        assert detail in response.json()["detail"], response.text


def test_the_flux_stand_in_reports_what_does_not_validate():
    kustomization = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                     "metadata": {"name": "tenant-t1"},
                     "spec": {"interval": "10m", "prune": True, "path": "./tenants/t1/manifests",
                              "sourceRef": {"kind": "Bucket", "name": "tenant-t1"}}}
    artifact = {"tenants/t1/manifests/kustomization.yaml": b"apiVersion: kustomize.config.k8s.io/v1beta1\n"
                                                           b"kind: Kustomization\nresources: [objects.json]\n",
                "tenants/t1/manifests/objects.json": json.dumps({"apiVersion": "v1", "kind": "List", "items": [
                    {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "t1"},
                     "spec": {"hard": {"cpu": "1"}, "bogus": True}}]}).encode()}
    succeeded, message = reconcile(kustomization, artifact, {})
    assert not succeeded and "bogus" in message
    elsewhere = {**kustomization, "spec": {**kustomization["spec"], "path": "./tenants/t2/manifests"}}
    assert reconcile(elsewhere, artifact, {}) == (False, "kustomization build failed: kustomization path not "
                                                         "found: tenants/t2/manifests")
    missing = {"tenants/t1/manifests/kustomization.yaml": artifact["tenants/t1/manifests/kustomization.yaml"]}
    assert "objects.json: no such file" in reconcile(kustomization, missing, {})[1]
    remote = {**kustomization, "spec": {**kustomization["spec"], "kubeConfig": {"configMapRef": {"name": "c"}}}}
    valid = {**artifact, "tenants/t1/manifests/objects.json": artifact["tenants/t1/manifests/objects.json"].replace(
        b', "bogus": true', b"")}
    assert reconcile(kustomization, valid, {})[0]
    assert "ConfigMap naming the target GKE cluster" in reconcile(remote, valid, {})[1]


def test_a_dedicated_tenant_validates_and_becomes_active(stack):
    response = requests.post(f"{stack.url}/v1/tenants", headers=stack.operator(), timeout=10, json={
        "tenant_id": "dedicated-corp", "display_name": "Dedicated", "tier": "enterprise",
        "deployment_model": "dedicated"})
    assert response.status_code == 202, response.text
    assert wait_for_status(stack, "dedicated-corp", "active")["deployment_model"] == "dedicated"
    files = bucket_files(stack, "dedicated-corp")
    assert "tenants/dedicated-corp/manifests/cloud/objects.json" in files
    deleted = requests.delete(f"{stack.url}/v1/tenants/dedicated-corp", headers=stack.operator(), timeout=10)
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    wait_for_status(stack, "dedicated-corp", "deleted")  # reported from the platform's cluster
    wait_until(lambda: bucket_files(stack, "dedicated-corp") == [], TIMEOUT_S, what="the last files to go")


SITE = {"peer_ips": ["145.100.10.1", "145.100.10.2"], "peer_asn": 65010, "cidrs": ["10.200.0.0/16", "192.168.7.0/24"]}


def every_stored_byte(stack, monkeypatch) -> dict[str, bytes]:
    """The manifest bucket (every generation of every object), Firestore (every document) and the logs of every
    process of the stack."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    storage = f"{stack.values['STORAGE_EMULATOR_HOST']}/storage/v1/b/{stack.values['MANIFEST_BUCKET']}/o"
    listed = requests.get(storage, params={"versions": "true"}, timeout=10).json().get("items", [])
    bucket = b"\n".join(item["name"].encode() + json.dumps(item.get("metadata", {})).encode() + requests.get(
        f"{storage}/{requests.utils.quote(item['name'], safe='')}",
        params={"alt": "media", "generation": item["generation"]}, timeout=10).content for item in listed)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", stack.values["FIRESTORE_EMULATOR_HOST"])
    db = firestore.Client(project=stack.project, credentials=AnonymousCredentials())
    documents = []

    def walk(collection):
        for snapshot in collection.stream():
            documents.append(repr(snapshot.to_dict()).encode())
            for sub in snapshot.reference.collections():
                walk(sub)

    for collection in db.collections():
        walk(collection)
    logs = b"\n".join(path.read_bytes() for path in sorted((stack.env_file.parent / "logs").glob("*.log")))
    return {"bucket": bucket, "firestore": b"\n".join(documents), "logs": logs}


def test_a_hybrid_tenant_is_connected_changed_and_removed(stack, monkeypatch, tmp_path, capsys):
    from energent_cli.main import main as cli

    auth = stack.operator()
    url = f"{stack.url}/v1/tenants"
    created = requests.post(url, headers=auth, timeout=10, json={
        "tenant_id": "hybrid-corp", "display_name": "Hybrid", "tier": "premium", "deployment_model": "hybrid",
        "site": SITE})
    assert created.status_code == 202, created.text
    assert created.json()["site"] == SITE and created.json()["status"] == "provisioning"
    active = wait_for_status(stack, "hybrid-corp", "active")
    assert active["deployment_model"] == "hybrid" and active["site"] == SITE
    assert "tenants/hybrid-corp/manifests/cloud/objects.json" in bucket_files(stack, "hybrid-corp")
    kinds = {item["kind"] for item in bucket_yaml(stack, "tenants/hybrid-corp/manifests/cloud/objects.json")["items"]}
    assert {"ComputeExternalVPNGateway", "ComputeVPNTunnel", "ComputeRouterInterface", "ComputeRouterPeer",
            "ExternalSecret"} <= kinds

    site = requests.get(f"{url}/hybrid-corp/site", headers=auth, timeout=10)
    assert site.status_code == 200 and site.headers["Cache-Control"] == "no-store"
    connection = site.json()
    assert connection["platform"]["vpn_addresses"] == ["192.0.2.10", "192.0.2.11"]
    assert connection["platform"]["asn"] == 64514
    keys = [tunnel["pre_shared_key"] for tunnel in connection["tunnels"]]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert [t["bgp"]["peer_address"] for t in connection["tunnels"]] == ["169.254.0.2", "169.254.0.6"]
    # GET tenant shows the site and no key; the tenant's own clients never read the connection.
    assert not any(key in json.dumps(active) for key in keys)
    client = requests.post(f"{url}/hybrid-corp/clients", json={"scopes": ["usage:read"]}, headers=auth,
                           timeout=10).json()
    token = requests.post(f"{stack.url}/v1/oauth/token", data={"grant_type": "client_credentials"}, timeout=10,
                          auth=(client["client_id"], client["client_secret"])).json()["access_token"]
    assert requests.get(f"{url}/hybrid-corp/site", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code == 403

    # Another live tenant's ranges: 409 naming it; a site on a multi-tenant tenant, a change of model: 400.
    clash = requests.post(url, headers=auth, timeout=10, json={
        "tenant_id": "hybrid-rival", "display_name": "Rival", "tier": "basic", "deployment_model": "hybrid",
        "site": {**SITE, "cidrs": ["192.168.7.128/25"]}})
    assert clash.status_code == 409 and "hybrid tenant hybrid-corp" in clash.json()["detail"]
    for body, detail in (({"deployment_model": "multi-tenant"}, "deployment_model cannot change"),
                         ({"site": {**SITE, "cidrs": ["172.30.0.0/16"]}}, "HYBRID_SITE_RANGES")):
        refused = requests.patch(f"{url}/hybrid-corp", headers=auth, json=body, timeout=10)
        assert refused.status_code == 400 and detail in refused.json()["detail"], refused.text

    # The operator's CLI: the site as the customer's network team needs it; a change of site from a file.
    monkeypatch.setenv("ENERGENT_API_URL", stack.url)
    monkeypatch.setenv("ENERGENT_CLIENT_ID", stack.values["OPERATOR_CLIENT_ID"])
    monkeypatch.setenv("ENERGENT_CLIENT_SECRET", stack.values["OPERATOR_CLIENT_SECRET"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    capsys.readouterr()
    assert cli(["--json", "tenants", "site", "hybrid-corp"]) == 0
    assert json.loads(capsys.readouterr().out)["tunnels"][1]["pre_shared_key"] == keys[1]
    changed_site = tmp_path / "site.json"
    changed_site.write_text(json.dumps({**SITE, "cidrs": ["10.201.0.0/16"]}))
    settled(stack, "hybrid-corp")
    assert cli(["--json", "tenants", "update", "hybrid-corp", "--site", str(changed_site)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "updating"
    wait_for_status(stack, "hybrid-corp", "active")
    policy = next(item for item in bucket_yaml(stack, "tenants/hybrid-corp/manifests/objects.json")["items"]
                  if item["metadata"]["name"] == "allow-site")
    assert policy["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.201.0.0/16"}}]
    # Its old ranges are free now: another hybrid tenant, made with the CLI, takes one of them.
    rival_site = tmp_path / "rival.json"
    rival_site.write_text(json.dumps({**SITE, "peer_ips": ["145.100.20.1"], "cidrs": ["192.168.7.0/24"]}))
    assert cli(["--json", "tenants", "create", "hybrid-rival", "--name", "Rival", "--tier", "basic", "--hybrid",
                "--site", str(rival_site), "--wait", "--timeout", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "active"

    # No key in any stored byte: the bucket (every generation), Firestore, the logs of every process.
    for where, data in every_stored_byte(stack, monkeypatch).items():
        assert b"hybrid-corp" in data, where  # the search sees the tenant
        for key in keys:
            assert key.encode() not in data, where

    for tenant_id in ("hybrid-corp", "hybrid-rival"):
        deleted = requests.delete(f"{url}/{tenant_id}", headers=auth, timeout=10)
        assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    for tenant_id in ("hybrid-corp", "hybrid-rival"):
        wait_for_status(stack, tenant_id, "deleted")
        wait_until(lambda t=tenant_id: bucket_files(stack, t) == [], TIMEOUT_S, what=f"{tenant_id}'s last files to go")
    gone = requests.get(f"{url}/hybrid-corp/site", headers=auth, timeout=10)
    assert gone.status_code == 404
    keys_left = [s.name for s in stack.secret_manager().list_secrets(request={"parent": f"projects/{stack.project}"})]
    assert not any("hybrid-psk-" in name for name in keys_left)
