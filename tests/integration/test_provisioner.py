"""The tenant lifecycle on the Firestore, Cloud Storage and Pub/Sub emulators."""

import base64
import datetime
import json
import time
import uuid

import pytest
import requests

from benchmarks.firestore_ops import count
from energent_shared import clients, events, firestore
from energent_shared.errors import DomainError
from local.flux import FluxStandIn, documents, flux_event
from provisioner import flux
from provisioner import service as service_module
from provisioner.manifests import Platform
from provisioner.service import Provisioner
from provisioner.store import ManifestStore, RerenderRuns, TenantStore
from tests.conftest import PROJECT
from tests.support import run_threads


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"manifests-{uuid.uuid4().hex[:10]}").name


@pytest.fixture
def subscription(emulators):
    """A topic for tenant events and a pull subscription to read what was published."""
    name = f"tenant-events-{uuid.uuid4().hex[:6]}"
    base = f"http://{emulators['pubsub'].host}/v1/projects/{PROJECT}"
    requests.put(f"{base}/topics/{name}", timeout=10).raise_for_status()
    requests.put(f"{base}/subscriptions/{name}", json={"topic": f"projects/{PROJECT}/topics/{name}"},
                 timeout=10).raise_for_status()
    return name


def published(emulators, subscription) -> list:
    base = f"http://{emulators['pubsub'].host}/v1/projects/{PROJECT}/subscriptions/{subscription}"
    received = requests.post(f"{base}:pull", json={"maxMessages": 100, "returnImmediately": True},
                             timeout=10).json().get("receivedMessages", [])
    if received:
        requests.post(f"{base}:acknowledge", json={"ackIds": [m["ackId"] for m in received]}, timeout=10)
    return [events.from_http(events.STRUCTURED, {}, base64.b64decode(m["message"]["data"]))[0] for m in received]


def make(firestore_db, bucket, subscription, store_class=ManifestStore) -> Provisioner:
    return Provisioner(TenantStore(firestore_db), store_class(bucket), Platform(project="p"), subscription,
                       events.publish, RerenderRuns(firestore_db), refuse_hand_on)


def refuse_hand_on(step: dict) -> None:
    raise AssertionError(f"no re-render run was started here, yet step {step} was handed on")


@pytest.fixture
def provisioner(firestore_db, bucket, subscription):
    return make(firestore_db, bucket, subscription)


def outcome(tenant_id: str, succeeded: bool = True, message: str = "applied", at: datetime.datetime | None = None):
    event = flux_event(f"tenant-{tenant_id}", succeeded, message, revision="r", sequence=1)
    if at is not None:
        event["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return flux.parse(json.dumps(event).encode())


def files(provisioner, tenant_id="acme") -> dict[str, bytes]:
    return provisioner.manifests.read(tenant_id)


def objects(provisioner, tenant_id="acme") -> dict[str, dict]:
    """The tenant's objects by `Kind/name`, as its files hold them."""
    found = {}
    for content in files(provisioner, tenant_id).values():
        for document in documents(content):
            if (document.get("metadata") or {}).get("name"):
                found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


def quota(provisioner, tenant_id="acme") -> dict:
    return objects(provisioner, tenant_id)["ResourceQuota/tenant-quota"]["spec"]["hard"]


def stamps(bucket) -> set[str]:
    """The manifest generations the tenants' object files carry."""
    return {blob.metadata["manifest-generation"] for blob in clients.storage().bucket(bucket).list_blobs()
            if blob.name.endswith("/objects.json")}


NEW = {"tenant_id": "acme", "display_name": "Acme BV", "tier": "basic"}


def test_create_writes_the_record_the_manifests_and_announces_it(provisioner, emulators, subscription):
    created = provisioner.create(dict(NEW))
    assert created["status"] == "provisioning" and created["billing_start"] is None
    assert quota(provisioner)["limits.cpu"] == "1"
    assert "tenants/acme/sync/flux-kustomization.yaml" in files(provisioner)
    [event] = published(emulators, subscription)
    assert event["type"] == "ai.energent.tenant.created.v1" and event["subject"] == "acme"
    assert event["source"] == "//energent.ai/provisioner" and event.get_data()["status"] == "provisioning"
    assert [t["to"] for t in provisioner.tenants.transitions("acme")] == ["provisioning"]


def test_ids_are_never_reused(provisioner):
    provisioner.create(dict(NEW))
    provisioner.delete("acme")
    provisioner.on_flux(outcome("acme"))
    with pytest.raises(DomainError) as caught:
        provisioner.create(dict(NEW))
    assert caught.value.status == 409


class FailingManifestStore(ManifestStore):
    """Fails the fourth file write, as a storage outage midway would."""

    writes = 0

    def _put(self, path, data, generation, current):
        FailingManifestStore.writes += 1
        if FailingManifestStore.writes == 4:
            raise ConnectionError("storage unavailable")
        super()._put(path, data, generation, current)


def test_a_create_that_fails_midway_leaves_nothing_behind(firestore_db, bucket, subscription, emulators):
    FailingManifestStore.writes = 0
    failing = make(firestore_db, bucket, subscription, FailingManifestStore)
    with pytest.raises(DomainError) as caught:
        failing.create(dict(NEW))
    assert caught.value.status == 503
    assert FailingManifestStore.writes == 4
    assert failing.tenants.get("acme") is None
    assert "acme" not in directory_entries(firestore_db, "acme")
    assert files(failing) == {}
    assert list(firestore_db.collection_group("outbox").stream()) == []
    assert published(emulators, subscription) == []
    assert failing.create(dict(NEW))["status"] == "provisioning"  # and the id is still free


def directory_entries(db, tenant_id: str) -> dict:
    """The entries of the directory shard that lists `tenant_id`: tenant id -> deleted_at."""
    return (firestore.directory_doc(tenant_id, db=db).get().to_dict() or {}).get("tenants", {})


def test_the_directory_says_what_the_record_says_from_the_commits_that_write_it(firestore_db, provisioner):
    provisioner.create(dict(NEW))
    assert directory_entries(firestore_db, "acme")["acme"] is None
    provisioner.patch("acme", {"display_name": "Acme Holding"})
    assert directory_entries(firestore_db, "acme")["acme"] is None
    provisioner.delete("acme")
    deleted_at = provisioner.tenants.get("acme")["deleted_at"]
    assert deleted_at is not None and directory_entries(firestore_db, "acme")["acme"] == deleted_at
    provisioner.create({**NEW, "tenant_id": "ab-c1"})  # an id a field path must quote
    assert directory_entries(firestore_db, "ab-c1")["ab-c1"] is None
    ops = count(firestore_db)
    provisioner.tenants.backfill_directory(["acme", "ab-c1"])  # what a re-render run does: nothing to write
    assert ops.snapshot().writes == 0
    stale = firestore_db.batch()  # what a provisioner of a release before the directory's deletes would leave
    firestore.put_directory_entry(stale, "acme", None, db=firestore_db)
    stale.commit()
    provisioner.tenants.backfill_directory(["acme", "ab-c1"])
    assert directory_entries(firestore_db, "acme")["acme"] == deleted_at
    assert ops.snapshot().writes == 2  # the stale entry, then its repair


def test_a_tier_change_that_fails_midway_is_rolled_back(firestore_db, bucket, subscription, provisioner):
    provisioner.create(dict(NEW))
    provisioner.on_flux(outcome("acme"))
    FailingManifestStore.writes = 0
    failing = make(firestore_db, bucket, subscription, FailingManifestStore)
    with pytest.raises(DomainError) as caught:
        failing.patch("acme", {"tier": "enterprise"})
    assert caught.value.status == 503
    record = provisioner.tenants.get("acme")
    assert record["tier"] == "basic" and record["status"] == "active"
    assert quota(provisioner)["limits.cpu"] == "1"
    assert stamps(bucket) == {str(record["manifest_generation"])}


def test_a_delete_that_fails_midway_is_rolled_back_and_never_announced(firestore_db, bucket, subscription, emulators,
                                                                       provisioner):
    provisioner.create(dict(NEW))
    provisioner.on_flux(outcome("acme"))
    published(emulators, subscription)
    FailingManifestStore.writes = 3  # the delete's first write fails
    failing = make(firestore_db, bucket, subscription, FailingManifestStore)
    with pytest.raises(DomainError) as caught:
        failing.delete("acme")
    assert caught.value.status == 503
    assert provisioner.tenants.get("acme")["status"] == "active"
    assert directory_entries(firestore_db, "acme") == {"acme": None}  # the rollback put its entry back too
    provisioner.patch("acme", {"display_name": "Acme again"})  # a later change flushes the outbox
    statuses = [event.get_data()["status"] for event in published(emulators, subscription)]
    assert "deleting" not in statuses  # auth would otherwise revoke the clients of a live tenant


def test_flux_success_activates_sets_billing_start_and_is_idempotent(provisioner, emulators, subscription):
    provisioner.create(dict(NEW))
    published(emulators, subscription)
    assert provisioner.on_flux(outcome("acme")) == "active"
    record = provisioner.tenants.get("acme")
    assert record["status"] == "active"
    assert record["billing_start"] == datetime.datetime.now(datetime.UTC).date().isoformat()
    assert provisioner.on_flux(outcome("acme")) == "ignored"  # redelivered
    [event] = published(emulators, subscription)
    assert event["type"] == "ai.energent.tenant.activated.v1"


def test_an_operator_set_billing_start_is_kept(provisioner):
    provisioner.create({**NEW, "billing_start": "2026-01-01"})
    provisioner.on_flux(outcome("acme"))
    assert provisioner.tenants.get("acme")["billing_start"] == "2026-01-01"


def test_failure_records_fluxs_message_and_a_later_success_recovers(provisioner):
    provisioner.create(dict(NEW))
    provisioner.on_flux(outcome("acme", succeeded=False, message="quota denied by admission webhook"))
    record = provisioner.tenants.get("acme")
    assert (record["status"], record["status_message"]) == ("failed", "quota denied by admission webhook")
    provisioner.on_flux(outcome("acme"))
    assert provisioner.tenants.get("acme")["status"] == "active"
    assert [t["to"] for t in provisioner.tenants.transitions("acme")] == ["provisioning", "failed", "active"]


def test_stale_and_unknown_events_change_nothing(provisioner):
    provisioner.create(dict(NEW))
    an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    assert provisioner.on_flux(outcome("acme", at=an_hour_ago)) == "stale"
    assert provisioner.on_flux(outcome("nobody")) == "unknown tenant"
    assert provisioner.tenants.get("acme")["status"] == "provisioning"


def test_tier_change_rerenders_and_a_name_change_does_not(provisioner, emulators, subscription):
    provisioner.create(dict(NEW))
    provisioner.on_flux(outcome("acme"))
    status, body = provisioner.patch("acme", {"display_name": "Acme Europe"})
    assert status == 200 and body["status"] == "active"
    status, body = provisioner.patch("acme", {"tier": "premium"})
    assert status == 202 and body["status"] == "updating"
    assert quota(provisioner)["limits.memory"] == "8Gi"
    assert provisioner.patch("acme", {"tier": "premium"})[0] == 200  # no change, no re-render
    provisioner.on_flux(outcome("acme"))
    assert provisioner.tenants.get("acme")["status"] == "active"
    types = [e["type"].split(".")[3] for e in published(emulators, subscription)]
    assert types == ["created", "activated", "updated", "updated", "activated"]


def test_delete_removes_the_objects_then_the_files(provisioner, emulators, subscription):
    provisioner.create(dict(NEW))
    provisioner.on_flux(outcome("acme"))
    assert provisioner.delete("acme")["status"] == "deleting"
    assert set(files(provisioner)) == {"tenants/acme/manifests/kustomization.yaml",
                                       "tenants/acme/manifests/objects.json",
                                       "tenants/acme/sync/flux-kustomization.yaml",
                                       "tenants/acme/sync/flux-source.yaml"}
    assert [key.split("/")[0] for key in objects(provisioner)] == ["Kustomization", "Bucket"]  # nothing else
    assert provisioner.delete("acme")["status"] == "deleting"  # repeated: same answer
    with pytest.raises(DomainError) as caught:
        provisioner.patch("acme", {"tier": "premium"})
    assert caught.value.status == 409
    assert provisioner.on_flux(outcome("acme")) == "deleted"
    assert files(provisioner) == {}
    assert provisioner.tenants.get("acme")["status"] == "deleted"
    kinds = [e["type"].split(".")[3] for e in published(emulators, subscription)]
    assert kinds[-2:] == ["updated", "deleted"]
    with pytest.raises(DomainError):
        provisioner.delete("acme")


def test_concurrent_changes_on_one_tenant_lose_no_update(provisioner):
    provisioner.create(dict(NEW))
    tiers = ["standard", "premium", "enterprise", "basic", "premium", "standard"]
    run_threads(len(tiers), lambda i: provisioner.patch("acme", {"tier": tiers[i]}))
    record = provisioner.tenants.get("acme")
    # Whichever change committed last is what the bucket holds, at the record's generation.
    assert quota(provisioner)["limits.cpu"] == {"basic": "1", "standard": "2", "premium": "4",
                                                "enterprise": "8"}[record["tier"]]
    assert stamps(provisioner.manifests.bucket_name) == {str(record["manifest_generation"])}
    changes = [t for t in provisioner.tenants.transitions("acme") if t["to"] == "updating"]
    assert record["manifest_generation"] == 1 + len(changes)


def test_an_older_rendering_never_overwrites_a_newer_one(provisioner, bucket):
    store = ManifestStore(bucket)
    store.apply("acme", {"tenants/acme/manifests/objects.json": b"new"}, generation=5)
    store.apply("acme", {"tenants/acme/manifests/objects.json": b"old"}, generation=4)
    assert store.read("acme") == {"tenants/acme/manifests/objects.json": b"new"}
    # The other files too (e.g. a sync file rendered under new platform settings, then under the old ones).
    store.apply("acme", {"tenants/acme/sync/flux-source.yaml": b"new settings"}, generation=7)
    store.apply("acme", {"tenants/acme/sync/flux-source.yaml": b"old settings"}, generation=6)
    assert store.read("acme") == {"tenants/acme/sync/flux-source.yaml": b"new settings"}


def test_listing_pages_through_every_tenant(provisioner):
    for name in ("alpha", "bravo", "charlie"):
        provisioner.create({**NEW, "tenant_id": name})
    first = provisioner.list("2", None)
    assert [t["tenant_id"] for t in first["tenants"]] == ["alpha", "bravo"]
    second = provisioner.list("2", first["next_page_token"])
    assert [t["tenant_id"] for t in second["tenants"]] == ["charlie"] and second["next_page_token"] == ""


def test_rerender_after_a_tier_table_change_delivers_only_what_changed(provisioner, monkeypatch):
    from types import MappingProxyType

    from energent_shared import tiers

    provisioner.create(dict(NEW))
    provisioner.create({**NEW, "tenant_id": "bigco", "tier": "enterprise"})
    for tenant_id in ("acme", "bigco"):
        provisioner.on_flux(outcome(tenant_id))
    assert provisioner.rerender("acme") is False  # nothing changed yet
    basic = tiers.TIERS["basic"]
    monkeypatch.setattr(tiers, "TIERS", MappingProxyType({**tiers.TIERS, "basic": tiers.Tier(
        "basic", "Basis", basic.cpu, 3, basic.storage_gib, basic.concurrent_workflows)}))
    assert provisioner.rerender("acme") is True
    assert provisioner.rerender("bigco") is False
    assert quota(provisioner)["limits.memory"] == "3Gi"
    assert provisioner.tenants.get("acme")["status"] == "updating"


def test_a_redelivered_older_failure_does_not_undo_a_newer_success(provisioner):
    provisioner.create(dict(NEW))
    now = datetime.datetime.now(datetime.UTC)
    failure = outcome("acme", succeeded=False, message="webhook timeout", at=now + datetime.timedelta(seconds=5))
    provisioner.on_flux(failure)
    assert provisioner.tenants.get("acme")["status"] == "failed"
    provisioner.on_flux(outcome("acme", at=now + datetime.timedelta(seconds=20)))
    assert provisioner.on_flux(failure) == "out of order"  # Pub/Sub delivered it again
    assert provisioner.tenants.get("acme")["status"] == "active"


def test_dedicated_tenants_get_distinct_control_plane_ranges_even_when_created_at_once(provisioner):
    names = [f"dedicated-{n}" for n in range(6)]
    run_threads(len(names), lambda i: provisioner.create({**NEW, "tenant_id": names[i], "tier": "enterprise",
                                                          "deployment_model": "dedicated"}))
    ranges = [provisioner.tenants.get(name)["master_cidr"] for name in names]
    assert len(set(ranges)) == len(names) and all(r.endswith("/28") for r in ranges)
    cluster = objects(provisioner, names[0])[f"ContainerCluster/tenant-{names[0]}"]
    assert cluster["spec"]["privateClusterConfig"]["masterIpv4CidrBlock"] == ranges[0]
    with pytest.raises(DomainError) as caught:  # an id that existed: its range is not handed out again either
        provisioner.create({**NEW, "tenant_id": names[0], "deployment_model": "dedicated"})
    assert caught.value.status == 409
    provisioner.create({**NEW, "tenant_id": "dedicated-late", "deployment_model": "dedicated"})
    assert provisioner.tenants.get("dedicated-late")["master_cidr"] not in ranges


def test_listing_by_status_pages_through_only_that_status(provisioner):
    for n in range(5):
        provisioner.create({**NEW, "tenant_id": f"listed-{n}"})
    for n in (1, 3):
        provisioner.on_flux(outcome(f"listed-{n}", succeeded=False, message="quota exceeded"))
    first = provisioner.list("1", None, "failed")
    second = provisioner.list("1", first["next_page_token"], "failed")
    assert [t["tenant_id"] for t in first["tenants"] + second["tenants"]] == ["listed-1", "listed-3"]
    assert second["next_page_token"] == ""
    assert len(provisioner.list("10", None, "provisioning")["tenants"]) == 3
    with pytest.raises(DomainError) as caught:
        provisioner.list(None, None, "sleeping")
    assert caught.value.status == 400


def test_a_tier_change_writes_one_object(provisioner, bucket):
    provisioner.create(dict(NEW))
    provisioner.on_flux(outcome("acme"))
    before = {blob.name: blob.generation for blob in clients.storage().bucket(bucket).list_blobs()}
    provisioner.patch("acme", {"tier": "premium"})
    after = {blob.name: blob.generation for blob in clients.storage().bucket(bucket).list_blobs()}
    assert set(after) == set(before)
    assert {name for name in after if after[name] != before[name]} == {"tenants/acme/manifests/objects.json"}


def test_old_layout_files_are_removed_when_a_tenant_is_rendered_again(provisioner, bucket):
    provisioner.create(dict(NEW))
    old = clients.storage().bucket(bucket).blob("tenants/acme/manifests/resource-quota.yaml")
    old.metadata = {"manifest-generation": "1"}
    old.upload_from_string(b"{}")
    provisioner.patch("acme", {"tier": "standard"})
    assert "tenants/acme/manifests/resource-quota.yaml" not in files(provisioner)


def flux_events(emulators, subscription) -> list[dict]:
    base = f"http://{emulators['pubsub'].host}/v1/projects/{PROJECT}/subscriptions/{subscription}"
    received = requests.post(f"{base}:pull", json={"maxMessages": 1000, "returnImmediately": True},
                             timeout=10).json().get("receivedMessages", [])
    if received:
        requests.post(f"{base}:acknowledge", json={"ackIds": [m["ackId"] for m in received]}, timeout=10)
    return [json.loads(base64.b64decode(m["message"]["data"])) for m in received]


def test_the_flux_stand_in_reconciles_only_the_tenant_whose_source_changed(provisioner, bucket, emulators):
    names = [f"fleet-{n:02d}" for n in range(20)]
    run_threads(5, lambda i: [provisioner.create({**NEW, "tenant_id": name}) for name in names[i::5]])
    topic = f"provisioning-events-{uuid.uuid4().hex[:6]}"
    base = f"http://{emulators['pubsub'].host}/v1/projects/{PROJECT}"
    requests.put(f"{base}/topics/{topic}", timeout=10).raise_for_status()
    requests.put(f"{base}/subscriptions/{topic}", json={"topic": f"projects/{PROJECT}/topics/{topic}"},
                 timeout=10).raise_for_status()
    flux_stand_in = FluxStandIn(bucket, topic, PROJECT)

    flux_stand_in.poll()
    first = flux_events(emulators, topic)
    assert sorted(e["involvedObject"]["name"] for e in first) == [f"tenant-{name}" for name in names]
    assert {e["reason"] for e in first} == {"ReconciliationSucceeded"}

    provisioner.patch("fleet-17", {"tier": "enterprise"})
    flux_stand_in.poll()
    [event] = flux_events(emulators, topic)
    assert event["involvedObject"]["name"] == "tenant-fleet-17" and "configured" in event["message"]
    flux_stand_in.poll()  # nothing changed since: no reconcile, no event
    provisioner.patch("fleet-17", {"display_name": "renamed"})  # not in the manifests: no new revision
    flux_stand_in.poll()
    assert flux_events(emulators, topic) == []
    assert flux_stand_in.published == len(names) + 1


def basic_gets_memory(monkeypatch, gib: int) -> None:
    """What a deploy of a new tier table does: basic tenants get `gib` of memory."""
    from types import MappingProxyType

    from energent_shared import tiers

    basic = tiers.TIERS["basic"]
    monkeypatch.setattr(tiers, "TIERS", MappingProxyType({**tiers.TIERS, "basic": tiers.Tier(
        "basic", "Basis", basic.cpu, gib, basic.storage_gib, basic.concurrent_workflows)}))


def fanned_out(firestore_db, bucket, subscription, hand_on) -> Provisioner:
    return Provisioner(TenantStore(firestore_db), ManifestStore(bucket), Platform(project="p"), subscription,
                       events.publish, RerenderRuns(firestore_db), hand_on)


def test_a_rerender_run_fans_out_in_chunks_and_counts_each_once_however_often_steps_arrive(
        firestore_db, bucket, subscription, monkeypatch):
    monkeypatch.setattr(service_module, "RERENDER_CHUNK", 3)
    steps: list[dict] = []
    provisioner = fanned_out(firestore_db, bucket, subscription, steps.append)
    names = [f"run-{n:02d}" for n in range(10)]
    for name in names:
        provisioner.create({**NEW, "tenant_id": name})
    provisioner.delete("run-04")  # gone: nothing to render again
    basic_gets_memory(monkeypatch, 3)
    for shard in firestore_db.collection("tenant_directory").list_documents():
        shard.delete()  # as if these tenants had been created before there was a directory

    run = provisioner.start_rerender({"reason": "tier table v2"})
    assert (run["status"], run["reason"], run["tenants"]) == ("running", "tier table v2", 0)
    def deliver(step):
        """One delivery as Pub/Sub makes it: a step that raises is delivered again."""
        while True:
            try:
                return provisioner.rerender_step(dict(step))
            except service_module.HandOnPending:
                time.sleep(0.05)

    delivered = 0
    while delivered < len(steps):  # every step delivered twice at once, as Pub/Sub may
        step = steps[delivered]
        run_threads(2, lambda _, step=step: deliver(step))
        delivered += 1
        partial = provisioner.rerender_run(run["run_id"])
        assert partial["tenants"] == min(3 * delivered, 10)  # progress, chunk by chunk
    assert [step["index"] for step in steps] == [0, 1, 2, 3]  # each chunk handed on exactly once
    final = provisioner.rerender_run(run["run_id"])
    assert {key: final[key] for key in ("status", "tenants", "rerendered", "unchanged", "failed")} == {
        "status": "done", "tenants": 10, "rerendered": 9, "unchanged": 1, "failed": 0}
    assert final["finished_at"] is not None
    assert {quota(provisioner, name)["limits.memory"] for name in names if name != "run-04"} == {"3Gi"}
    assert provisioner.tenants.get("run-07")["status"] == "updating"
    assert {name: directory_entries(firestore_db, name)[name] for name in names} == {  # the run listed them again
        name: provisioner.tenants.get(name)["deleted_at"] for name in names}
    assert directory_entries(firestore_db, "run-04")["run-04"] is not None
    provisioner.rerender_step(dict(steps[1]))  # a late redelivery counts nothing twice
    assert provisioner.rerender_run(run["run_id"])["tenants"] == 10


def test_a_step_that_cannot_hand_on_is_delivered_again_and_hands_on_then(firestore_db, bucket, subscription,
                                                                          monkeypatch):
    monkeypatch.setattr(service_module, "RERENDER_CHUNK", 2)
    steps: list[dict] = []
    outage = {"on": True}

    def hand_on(step):
        if step["index"] == 1 and outage["on"]:
            raise ConnectionError("pubsub unavailable")
        steps.append(step)

    provisioner = fanned_out(firestore_db, bucket, subscription, hand_on)
    for name in ("alpha", "bravo", "charlie"):
        provisioner.create({**NEW, "tenant_id": name})
    run = provisioner.start_rerender({})
    with pytest.raises(ConnectionError):
        provisioner.rerender_step(steps[0])
    outage["on"] = False
    provisioner.rerender_step(steps[0])  # Pub/Sub's redelivery
    provisioner.rerender_step(steps[1])
    final = provisioner.rerender_run(run["run_id"])
    assert (final["status"], final["tenants"], final["reason"]) == ("done", 3, "platform change")


def test_a_step_the_run_never_handed_on_does_nothing(firestore_db, bucket, subscription, monkeypatch):
    steps: list[dict] = []
    provisioner = fanned_out(firestore_db, bucket, subscription, steps.append)
    provisioner.create({**NEW, "tenant_id": "alpha"})
    run = provisioner.start_rerender({})
    for forged in ({**steps[0], "index": 7}, {**steps[0], "after": "alpha"}):
        with pytest.raises(service_module.InvalidStep, match="no chunk"):
            provisioner.rerender_step(forged)
    provisioner.rerender_step(steps[0])
    assert provisioner.rerender_run(run["run_id"])["tenants"] == 1
    with pytest.raises(service_module.InvalidStep):  # nor after the run is done
        provisioner.rerender_step({**steps[0], "index": 1})


def test_a_hand_on_lost_in_a_crash_is_published_again_once_abandoned(firestore_db, bucket, subscription,
                                                                     monkeypatch):
    monkeypatch.setattr(service_module, "RERENDER_CHUNK", 1)
    steps: list[dict] = []
    provisioner = fanned_out(firestore_db, bucket, subscription, steps.append)
    for name in ("alpha", "bravo"):
        provisioner.create({**NEW, "tenant_id": name})
    run = provisioner.start_rerender({})
    # The first delivery claimed step 1 and died before publishing it.
    provisioner.runs.claim_successor(run["run_id"], 1, "alpha")
    with pytest.raises(service_module.HandOnPending):  # Pub/Sub delivers step 0 again later
        provisioner.rerender_step(steps[0])
    monkeypatch.setattr(RerenderRuns, "REPUBLISH_AFTER", datetime.timedelta(0))
    provisioner.create({**NEW, "tenant_id": "aardvark"})  # meanwhile a tenant comes before the claimed boundary
    provisioner.rerender_step(steps[0])
    assert [step["index"] for step in steps] == [0, 1] and steps[1]["after"] == "alpha"  # the claim's boundary
    provisioner.rerender_step(steps[1])
    provisioner.rerender_step(steps[2])
    final = provisioner.rerender_run(run["run_id"])
    assert final["status"] == "done" and final["tenants"] == 3  # chunk 0 ends where it was first cut: none lost


@pytest.mark.parametrize("step", [
    {"run_id": "0" * 32, "index": 0, "after": ""},  # no such run
    {"run_id": "zz", "index": 0, "after": ""},
    {"run_id": "0" * 32, "index": True, "after": ""},
    {"run_id": "0" * 32, "index": 0, "after": "NOT AN ID"},
    {"run_id": "0" * 32, "index": 0},
    ["not", "a", "step"],
])
def test_malformed_steps_are_refused(firestore_db, bucket, subscription, step):
    provisioner = fanned_out(firestore_db, bucket, subscription, lambda _: None)
    with pytest.raises(service_module.InvalidStep):
        provisioner.rerender_step(step)


@pytest.mark.parametrize("body, detail", [
    ({"reason": ""}, "reason must be"), ({"reason": 7}, "reason must be"), ({"reason": "a\nb"}, "reason must be"),
    ({"why": "x"}, "unknown field(s): why")])
def test_a_rerender_with_a_bad_body_is_a_400(firestore_db, bucket, subscription, body, detail):
    provisioner = fanned_out(firestore_db, bucket, subscription, lambda _: None)
    with pytest.raises(DomainError) as caught:
        provisioner.start_rerender(body)
    assert caught.value.status == 400 and detail in str(caught.value)


class CrashingManifestStore(ManifestStore):
    """Dies after the record's commit and before a single file is written, as an instance can."""

    def apply(self, tenant_id, files, generation):
        raise SystemExit("instance stopped")


def test_a_change_lost_in_a_crash_is_delivered_by_the_next_request_or_re_render(firestore_db, bucket, subscription,
                                                                               provisioner):
    provisioner.create(dict(NEW))
    crashing = make(firestore_db, bucket, subscription, CrashingManifestStore)
    with pytest.raises(SystemExit):
        crashing.patch("acme", {"tier": "enterprise"})
    assert provisioner.tenants.get("acme")["tier"] == "enterprise" and quota(provisioner)["limits.cpu"] == "1"
    assert provisioner.patch("acme", {"tier": "enterprise"})[0] == 200  # the same request again
    assert quota(provisioner)["limits.cpu"] == "8"

    provisioner.create({**NEW, "tenant_id": "bravo"})
    with pytest.raises(SystemExit):
        crashing.patch("bravo", {"tier": "premium"})
    assert provisioner.rerender("bravo") is False  # nothing new to render, but the lost files are written
    assert quota(provisioner, "bravo")["limits.cpu"] == "4"

    with pytest.raises(SystemExit):
        crashing.delete("acme")
    assert "ResourceQuota/tenant-quota" in objects(provisioner)
    assert provisioner.delete("acme")["status"] == "deleting"  # DELETE again
    assert "ResourceQuota/tenant-quota" not in objects(provisioner)


def test_a_chunk_delivered_again_keeps_the_extent_of_its_first_delivery(firestore_db, bucket, subscription,
                                                                         monkeypatch):
    monkeypatch.setattr(service_module, "RERENDER_CHUNK", 2)
    steps: list[dict] = []
    provisioner = fanned_out(firestore_db, bucket, subscription, steps.append)
    for name in ("alpha", "bravo", "charlie"):
        provisioner.create({**NEW, "tenant_id": name})
    run = provisioner.start_rerender({})
    delivered = 0
    while delivered < len(steps):
        provisioner.rerender_step(steps[delivered])
        delivered += 1
    assert provisioner.rerender_run(run["run_id"])["status"] == "done" and len(steps) == 2
    for name in ("delta", "echo"):  # the last chunk's range fills up meanwhile
        provisioner.create({**NEW, "tenant_id": name})
    provisioner.rerender_step(steps[1])  # a late redelivery of the last chunk
    final = provisioner.rerender_run(run["run_id"])
    assert len(steps) == 2 and (final["status"], final["tenants"]) == ("done", 3)


def test_files_written_again_for_a_tenant_deleted_meanwhile_are_taken_away(provisioner):
    provisioner.create(dict(NEW))
    provisioner.delete("acme")
    deleting = provisioner.tenants.get("acme")  # what a re-render read just before Flux's word arrived
    assert provisioner.on_flux(outcome("acme")) == "deleted" and files(provisioner) == {}
    provisioner._redeliver(deleting)
    assert files(provisioner) == {}
