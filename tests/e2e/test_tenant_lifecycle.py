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
                                                "deployment_model": "hybrid"}, timeout=10), 400, "deployment_model"),
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
