"""Hybrid tenants on the Firestore, Cloud Storage and Pub/Sub emulators, the Secret Manager stand-in and the local
Flux stand-in: sites claimed race-free, link-local ranges never handed out twice, the objects read back from the
bucket and validated, the tunnel keys nowhere but in Secret Manager, and the lifecycle from request to deleted."""

import base64
import json
import logging
import threading
import uuid

import pytest
import requests
from google.api_core.exceptions import NotFound

from energent_shared import clients, events, firestore
from energent_shared.errors import DomainError
from local.compute import ComputeStandIn
from local.flux import FluxStandIn, documents, secret_manager_lookup
from local.schemas import validate
from provisioner import flux, routes, sites
from provisioner.manifests import Platform
from provisioner.psks import PreSharedKeys
from provisioner.service import Provisioner
from provisioner.store import ManifestStore, RerenderRuns, TenantStore
from tests.conftest import PROJECT
from tests.integration.test_provisioner import FailingManifestStore, refuse_hand_on
from tests.support import run_threads

PLATFORM = Platform(project=PROJECT, vpn_addresses=("192.0.2.10", "192.0.2.11"), max_sites=5)
SITE = {"peer_ips": ["145.100.10.1", "145.100.10.2"], "peer_asn": 65010, "cidrs": ["10.200.0.0/16"]}
HYBRID = {"tenant_id": "acme", "display_name": "Acme BV", "tier": "standard", "deployment_model": "hybrid",
          "site": SITE}


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"manifests-{uuid.uuid4().hex[:10]}").name


@pytest.fixture
def topic(emulators):
    """A topic with a pull subscription of the same name, for tenant events and for the Flux stand-in's."""
    name = f"events-{uuid.uuid4().hex[:8]}"
    base = f"http://{emulators['pubsub'].host}/v1/projects/{PROJECT}"
    requests.put(f"{base}/topics/{name}", timeout=10).raise_for_status()
    requests.put(f"{base}/subscriptions/{name}", json={"topic": f"projects/{PROJECT}/topics/{name}"},
                 timeout=10).raise_for_status()
    return name


def pulled(emulators, subscription) -> list[bytes]:
    base = f"http://{emulators['pubsub'].host}/v1/projects/{PROJECT}/subscriptions/{subscription}"
    received = requests.post(f"{base}:pull", json={"maxMessages": 1000, "returnImmediately": True},
                             timeout=10).json().get("receivedMessages", [])
    if received:
        requests.post(f"{base}:acknowledge", json={"ackIds": [m["ackId"] for m in received]}, timeout=10)
    return [base64.b64decode(m["message"]["data"]) for m in received]


def make(firestore_db, bucket, topic, secret_manager, store_class=ManifestStore, tenant_store=TenantStore,
         platform=PLATFORM) -> Provisioner:
    from energent_shared.clients import secret_manager_at

    return Provisioner(tenant_store(firestore_db), store_class(bucket), platform, topic, events.publish,
                       RerenderRuns(firestore_db), refuse_hand_on,
                       PreSharedKeys(PROJECT, lambda: secret_manager_at(secret_manager.address)))


@pytest.fixture
def provisioner(firestore_db, bucket, topic, secret_manager):
    return make(firestore_db, bucket, topic, secret_manager)


def objects(provisioner, tenant_id="acme") -> dict[str, dict]:
    found = {}
    for content in provisioner.manifests.read(tenant_id).values():
        for document in documents(content):
            name = (document.get("metadata") or {}).get("name")
            if name:
                found[f"{document['kind']}/{name}"] = document
    return found


class Flux:
    """The local Flux stand-in on a topic of its own, its events handed to the provisioner as Pub/Sub would."""

    def __init__(self, emulators, provisioner, bucket, topic, secret_manager):
        self.emulators, self.provisioner, self.topic = emulators, provisioner, topic
        self.stand_in = FluxStandIn(bucket, topic, PROJECT, retry_s=0, secret_lookup=secret_manager_lookup(
            secret_manager.address, {"hybrid-psks": PROJECT}))

    def poll(self) -> list[dict]:
        """One poll; every event it published, after the provisioner took it."""
        self.stand_in.poll()
        published = [json.loads(body) for body in pulled(self.emulators, self.topic)]
        for event in published:
            try:
                self.provisioner.on_flux(flux.parse(json.dumps(event).encode()))
            except flux.Ignored:
                pass
        return published

    def settle(self, polls: int = 4) -> list[dict]:
        return [event for _ in range(polls) for event in self.poll()]


@pytest.fixture
def flux_stand_in(emulators, provisioner, bucket, topic, secret_manager):
    name = f"flux-{uuid.uuid4().hex[:8]}"
    base = f"http://{emulators['pubsub'].host}/v1/projects/{PROJECT}"
    requests.put(f"{base}/topics/{name}", timeout=10).raise_for_status()
    requests.put(f"{base}/subscriptions/{name}", json={"topic": f"projects/{PROJECT}/topics/{name}"},
                 timeout=10).raise_for_status()
    return Flux(emulators, provisioner, bucket, name, secret_manager)


def test_a_hybrid_tenant_goes_from_request_to_active_to_deleted(provisioner, flux_stand_in, secret_manager):
    created = provisioner.create(dict(HYBRID))
    assert created["status"] == "provisioning" and created["site"] == SITE
    assert created["deployment_model"] == "hybrid"
    record = provisioner.tenants.get("acme")
    assert record["bgp_ranges"] == ["169.254.0.0/30", "169.254.0.4/30"]
    assert firestore.directory_doc("acme", db=provisioner.tenants.db).get().get("tenants")["acme"] is None
    assert provisioner.tenants.live_sites() == {"acme": ["10.200.0.0/16"]}
    # What the bucket holds validates, object by object, against the published schemas.
    found = objects(provisioner)
    for document in found.values():
        validate(document)
    assert {"ComputeExternalVPNGateway/tenant-acme", "ComputeVPNTunnel/tenant-acme-0", "ComputeVPNTunnel/tenant-acme-1",
            "ComputeRouterInterface/tenant-acme-1", "ComputeRouterPeer/tenant-acme-0", "ExternalSecret/tenant-acme-vpn",
            "NetworkPolicy/allow-site", "Kustomization/cloud-tenant-acme"} <= set(found)

    reported = flux_stand_in.settle()
    assert [e["involvedObject"]["name"] for e in reported] == ["cloud-tenant-acme", "tenant-acme"]  # in order
    assert all(e["reason"] == "ReconciliationSucceeded" for e in reported)
    assert "Secret/energent-infra/tenant-acme-vpn synced" in reported[0]["message"]
    assert provisioner.tenants.get("acme")["status"] == "active"

    # GET .../site: everything the customer's network team configures.
    site = provisioner.site("acme")
    keys = PreSharedKeys(PROJECT, lambda: clients.secret_manager_at(secret_manager.address)).read("acme")
    assert site["platform"] == {"asn": 64514, "vpn_addresses": ["192.0.2.10", "192.0.2.11"],
                                "advertised_ranges": ["10.4.0.0/14"]}
    assert [t["pre_shared_key"] for t in site["tunnels"]] == keys and keys[0] != keys[1]
    assert all(len(key) >= 43 for key in keys)
    assert [(t["platform_vpn_address"], t["peer_ip"], t["bgp"]) for t in site["tunnels"]] == [
        ("192.0.2.10", "145.100.10.1", {"link_local_range": "169.254.0.0/30", "platform_address": "169.254.0.1",
                                        "peer_address": "169.254.0.2"}),
        ("192.0.2.11", "145.100.10.2", {"link_local_range": "169.254.0.4/30", "platform_address": "169.254.0.5",
                                        "peer_address": "169.254.0.6"})]

    # A site change re-renders: updating, then active once Flux applied it. Its old ranges stay held until then:
    # the namespace may still have the NetworkPolicy that opens them, so no other site may take them yet.
    status, changed = provisioner.patch("acme", {"site": {**SITE, "cidrs": ["10.201.0.0/16", "192.168.4.0/24"]}})
    assert (status, changed["status"]) == (202, "updating")
    assert objects(provisioner)["NetworkPolicy/allow-site"]["spec"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "10.201.0.0/16"}}, {"ipBlock": {"cidr": "192.168.4.0/24"}}]
    assert provisioner.tenants.live_sites() == {"acme": ["10.201.0.0/16", "192.168.4.0/24", "10.200.0.0/16"]}
    with pytest.raises(DomainError) as held:
        provisioner.create({**HYBRID, "tenant_id": "early", "site": {**SITE, "cidrs": ["10.200.0.0/16"]}})
    assert held.value.status == 409 and "hybrid tenant acme" in str(held.value)
    flux_stand_in.settle()
    assert provisioner.tenants.get("acme")["status"] == "active"
    assert provisioner.tenants.live_sites() == {"acme": ["10.201.0.0/16", "192.168.4.0/24"]}
    assert provisioner.tenants.get("acme")["retiring_cidrs"] == []
    # The customer's gateway addresses cannot change (Compute Engine keeps them fixed): 400, nothing changes.
    with pytest.raises(DomainError) as fixed:
        provisioner.patch("acme", {"site": {**SITE, "peer_ips": ["145.100.10.9"], "cidrs": ["10.201.0.0/16"]}})
    assert fixed.value.status == 400 and "site.peer_ips cannot change" in str(fixed.value)
    assert provisioner.tenants.get("acme")["site"]["peer_ips"] == SITE["peer_ips"]
    assert provisioner.site("acme")["tunnels"][0]["pre_shared_key"] == keys[0]  # a key is made once, kept

    # Deletion removes the tunnels first, then the namespace's objects; then the tenant is deleted, its ranges free.
    assert provisioner.delete("acme")["status"] == "deleting"
    cloud = json.loads(provisioner.manifests.read("acme")["tenants/acme/manifests/cloud/objects.json"])
    assert [o["kind"] for o in cloud["items"]] == ["ExternalSecret"]  # the keys outlive the tunnels
    reported = flux_stand_in.settle()
    assert [e["involvedObject"]["name"] for e in reported] == ["cloud-tenant-acme", "tenant-acme"]
    on_cluster = {key for key in flux_stand_in.stand_in.cluster.live
                  if key[2] == "tenant-acme" or key[3].startswith("tenant-acme")}
    assert on_cluster == set()  # the last files gone, Flux pruned the ExternalSecret with its Kustomization
    assert provisioner.tenants.get("acme")["status"] == "deleted"
    assert provisioner.manifests.read("acme") == {}
    assert provisioner.tenants.live_sites() == {}
    with pytest.raises(DomainError) as gone:
        provisioner.site("acme")
    assert gone.value.status == 404
    with pytest.raises(NotFound):  # its keys went with it
        PreSharedKeys(PROJECT, lambda: clients.secret_manager_at(secret_manager.address)).read("acme")
    # Its /30s stay retired; its ranges are another tenant's to take now.
    provisioner.create({**HYBRID, "tenant_id": "beta", "site": {**SITE, "cidrs": ["10.201.0.0/16"]}})
    assert provisioner.tenants.get("beta")["bgp_ranges"] == ["169.254.0.8/30", "169.254.0.12/30"]


def test_a_site_overlapping_a_live_site_is_refused_naming_it_and_nothing_is_made(provisioner, secret_manager):
    provisioner.create(dict(HYBRID))
    for cidrs in (["10.200.7.0/24"], ["10.200.0.0/16"], ["10.220.0.0/16", "10.200.0.0/16"]):
        with pytest.raises(DomainError) as caught:
            provisioner.create({**HYBRID, "tenant_id": "beta", "site": {**SITE, "cidrs": cidrs}})
        assert caught.value.status == 409 and "of hybrid tenant acme" in str(caught.value), cidrs
    assert provisioner.tenants.get("beta") is None and provisioner.manifests.read("beta") == {}
    assert provisioner.tenants.live_sites() == {"acme": ["10.200.0.0/16"]}
    # A change of site is checked the same way, and a refused one changes nothing.
    provisioner.create({**HYBRID, "tenant_id": "beta", "site": {**SITE, "cidrs": ["10.210.0.0/16"]}})
    # A refused request handed out no link-local ranges: beta has the second site's.
    assert provisioner.tenants.get("beta")["bgp_ranges"] == ["169.254.0.8/30", "169.254.0.12/30"]
    with pytest.raises(DomainError) as caught:
        provisioner.patch("beta", {"site": {**SITE, "cidrs": ["10.200.128.0/17"]}})
    assert caught.value.status == 409 and "10.200.0.0/16 of hybrid tenant acme" in str(caught.value)
    assert provisioner.tenants.get("beta")["site"]["cidrs"] == ["10.210.0.0/16"]
    assert provisioner.tenants.live_sites()["beta"] == ["10.210.0.0/16"]
    # A deleting tenant is still live: its ranges are still its own.
    provisioner.delete("acme")
    with pytest.raises(DomainError) as caught:
        provisioner.create({**HYBRID, "tenant_id": "gamma", "site": {**SITE, "cidrs": ["10.200.0.0/24"]}})
    assert caught.value.status == 409


def test_the_platform_s_router_takes_so_many_sites(provisioner):
    for n in range(PLATFORM.max_sites):
        provisioner.create({**HYBRID, "tenant_id": f"site-{n}", "site": {**SITE, "cidrs": [f"10.{200 + n}.0.0/16"]}})
    with pytest.raises(DomainError) as caught:
        provisioner.create({**HYBRID, "tenant_id": "one-too-many", "site": {**SITE, "cidrs": ["10.250.0.0/16"]}})
    assert caught.value.status == 409 and "holds 5 sites" in str(caught.value)


class RacingPlatform:
    """Holds every transaction's claim on the registry between its read and its write until both racers have read it
    (once per thread), so two requests overlap exactly where a lost update would happen."""

    def __init__(self, monkeypatch):
        self.barrier = threading.Barrier(2, timeout=20)
        self.seen = threading.local()
        real = TenantStore._claim

        def claim(store, transaction, decide):
            def held(live):
                if not getattr(self.seen, "waited", False):
                    self.seen.waited = True
                    self.barrier.wait()
                return decide(live)

            return real(store, transaction, held)

        monkeypatch.setattr(TenantStore, "_claim", claim)


@pytest.mark.parametrize("second", [["10.200.0.0/16"], ["10.200.64.0/18"], ["10.200.0.0/17", "10.201.0.0/16"]])
def test_two_concurrent_requests_for_overlapping_ranges_one_wins_the_other_is_told_whose(provisioner, monkeypatch,
                                                                                       second):
    RacingPlatform(monkeypatch)

    def request(i):
        tenant_id = ("alpha", "bravo")[i]
        try:
            return provisioner.create({**HYBRID, "tenant_id": tenant_id,
                                       "site": {**SITE, "cidrs": (["10.200.0.0/16"], second)[i]}})["tenant_id"]
        except DomainError as refused:
            return refused

    outcomes = run_threads(2, request)
    won = [o for o in outcomes if isinstance(o, str)]
    lost = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert lost[0].status == 409 and f"of hybrid tenant {won[0]}" in str(lost[0])
    assert list(provisioner.tenants.live_sites()) == won
    loser = {"alpha", "bravo"} - set(won)
    assert provisioner.tenants.get(loser.pop()) is None


def test_a_change_of_site_racing_a_create_for_the_same_ranges_lets_one_through(provisioner, monkeypatch):
    provisioner.create({**HYBRID, "tenant_id": "alpha", "site": {**SITE, "cidrs": ["10.210.0.0/16"]}})
    RacingPlatform(monkeypatch)

    def request(i):
        try:
            if i == 0:
                return provisioner.patch("alpha", {"site": {**SITE, "cidrs": ["10.200.0.0/16"]}})[1]["tenant_id"]
            return provisioner.create({**HYBRID, "tenant_id": "bravo"})["tenant_id"]
        except DomainError as refused:
            return refused

    outcomes = run_threads(2, request)
    won = [o for o in outcomes if isinstance(o, str)]
    assert len(won) == 1 and isinstance(next(o for o in outcomes if not isinstance(o, str)), DomainError)
    live = provisioner.tenants.live_sites()
    holders = [tenant for tenant, ranges in live.items() if "10.200.0.0/16" in ranges]
    assert holders == won


def test_link_local_ranges_are_never_handed_out_twice_even_when_created_at_once(provisioner):
    names = [f"hybrid-{n}" for n in range(5)]
    run_threads(len(names), lambda i: provisioner.create({**HYBRID, "tenant_id": names[i], "site": {
        **SITE, "cidrs": [f"10.{200 + i}.0.0/16"]}}))
    handed = [r for name in names for r in provisioner.tenants.get(name)["bgp_ranges"]]
    assert len(set(handed)) == len(handed) == 10
    for name in names:
        peer = objects(provisioner, name)[f"ComputeRouterPeer/tenant-{name}-0"]["spec"]
        assert peer["ipAddress"]["external"] == sites.session(provisioner.tenants.get(name)["bgp_ranges"][0])[0]


def test_the_deployment_model_never_changes_and_a_site_is_for_hybrid_tenants(provisioner):
    provisioner.create({"tenant_id": "plain", "display_name": "Plain", "tier": "basic"})
    provisioner.create(dict(HYBRID))
    for tenant_id, body, detail in (
            ("plain", {"deployment_model": "hybrid"}, "deployment_model cannot change"),
            ("acme", {"deployment_model": "multi-tenant"}, "deployment_model cannot change"),
            ("plain", {"site": SITE}, "site is for hybrid tenants only"),
            ("acme", {"site": {**SITE, "cidrs": ["10.4.0.0/16"]}}, "overlaps the platform's range")):
        with pytest.raises(DomainError) as caught:
            provisioner.patch(tenant_id, body)
        assert caught.value.status == 400 and detail in str(caught.value), body
    assert provisioner.patch("acme", {"deployment_model": "hybrid"})[0] == 200  # as it is: nothing to do
    with pytest.raises(DomainError) as caught:
        provisioner.site("plain")
    assert caught.value.status == 404


def test_a_hybrid_create_that_fails_midway_gives_its_ranges_and_keys_back(firestore_db, bucket, topic,
                                                                         secret_manager):
    FailingManifestStore.writes = 0
    failing = make(firestore_db, bucket, topic, secret_manager, FailingManifestStore)
    with pytest.raises(DomainError) as caught:
        failing.create(dict(HYBRID))
    assert caught.value.status == 503
    assert failing.tenants.get("acme") is None and failing.tenants.live_sites() == {}
    listed = secret_manager.store.secrets
    assert not any("hybrid-psk-acme" in name for name in listed)
    assert failing.create(dict(HYBRID))["status"] == "provisioning"  # the id and the ranges are free


def test_a_tunnel_whose_key_is_missing_fails_its_tenant_with_the_reason(provisioner, flux_stand_in, secret_manager):
    provisioner.create(dict(HYBRID))
    # The key's secret is gone before the operator could sync it (deleted by hand, say).
    client = clients.secret_manager_at(secret_manager.address)
    client.delete_secret(request={"name": f"projects/{PROJECT}/secrets/hybrid-psk-acme-1"})
    reported = flux_stand_in.settle()
    assert reported[0]["involvedObject"]["name"] == "cloud-tenant-acme" and reported[0]["reason"] == (
        "ReconciliationFailed")
    record = provisioner.tenants.get("acme")
    assert record["status"] == "failed"
    assert "SecretSyncedError" in record["status_message"] and "hybrid-psk-acme-1" in record["status_message"]
    assert record["status_message"].startswith("cloud objects: ")
    # The next delivery makes the missing key again (another one: no tunnel was made with the lost one), and Flux's
    # retry of the failed Kustomization finds it.
    assert provisioner.rerender("acme", "platform change") is False  # same files: delivered again, keys first
    flux_stand_in.settle()
    assert provisioner.tenants.get("acme")["status"] == "active"


def every_firestore_byte(db) -> bytes:
    """Every document of every collection and subcollection, as its stored fields."""
    found = []

    def walk(collection):
        for snapshot in collection.stream():
            found.append(repr(snapshot.to_dict()).encode())
            for sub in snapshot.reference.collections():
                walk(sub)

    for collection in db.collections():
        walk(collection)
    return b"\n".join(found)


def every_bucket_byte(bucket) -> bytes:
    """Every object of the bucket, every generation of it, with its metadata."""
    found = []
    for blob in clients.storage().bucket(bucket).list_blobs(versions=True):
        found.append(blob.name.encode() + repr(blob.metadata).encode())
        found.append(clients.storage().bucket(bucket).blob(blob.name, generation=blob.generation).download_as_bytes())
    return b"\n".join(found)


def test_the_keys_are_in_secret_manager_and_in_no_stored_byte_nor_log(provisioner, flux_stand_in, firestore_db,
                                                                      bucket, topic, emulators, secret_manager,
                                                                      caplog, capsys):
    caplog.set_level(logging.DEBUG)
    provisioner.create(dict(HYBRID))
    provisioner.create({**HYBRID, "tenant_id": "beta", "site": {**SITE, "cidrs": ["10.210.0.0/16"]}})
    flux_stand_in.settle()
    provisioner.patch("acme", {"site": {**SITE, "peer_asn": 65020}, "tier": "premium"})
    flux_stand_in.settle()
    keys = [key for tenant in ("acme", "beta") for key in (t["pre_shared_key"] for t in provisioner.site(tenant)[
        "tunnels"])]
    provisioner.delete("beta")
    flux_stand_in.settle()
    assert provisioner.tenants.get("beta")["status"] == "deleted"
    published = b"\n".join(pulled(emulators, topic))  # every tenant event the provisioner announced
    stored = {"bucket": every_bucket_byte(bucket), "firestore": every_firestore_byte(firestore_db),
              "events": published, "logs": (caplog.text + "".join(capsys.readouterr())).encode()}
    # The search finds what is there: the tenant's id and its site, in every store.
    for where, data in stored.items():
        assert b"acme" in data and len(data) > 100, where
    assert b"65020" in stored["bucket"] and b"hybrid-psk-acme-0" in stored["bucket"]
    for key in keys:
        for where, data in stored.items():
            for form in (key.encode(), base64.b64encode(key.encode()), base64.urlsafe_b64encode(key.encode())):
                assert form not in data, where
    # And Secret Manager does hold them (acme's; beta's went with beta).
    payloads = [data for versions in secret_manager.store.versions.values() for _, data in versions]
    assert all(key.encode() in payloads for key in keys[:2]) and not any(key.encode() in payloads for key in keys[2:])


# --- the route watchdog ----------------------------------------------------------------------------------------

@pytest.fixture
def compute():
    server = ComputeStandIn().start()
    yield server
    server.stop()


def peers(provisioner, tenant_id="acme") -> list[bool]:
    found = objects(provisioner, tenant_id)
    return [found[f"ComputeRouterPeer/tenant-{tenant_id}-{n}"]["spec"]["enable"] for n in range(sites.TUNNELS)]


def test_a_site_announcing_routes_outside_its_ranges_is_cut_off_until_the_operator_lets_it_back(
        provisioner, flux_stand_in, compute, caplog):
    """The adapter reads the router through the real Compute client (against the local stand-in of its REST API);
    a default route from acme's second session quarantines acme alone, through the normal delivery; bravo, whose
    routes are its own, is untouched."""
    router = routes.RouterRoutes(PROJECT, PLATFORM.region, PLATFORM.vpn_router, compute.client)
    provisioner.create(dict(HYBRID))
    provisioner.create({**HYBRID, "tenant_id": "bravo", "site": {**SITE, "cidrs": ["10.201.0.0/16"]}})
    flux_stand_in.settle()
    acme, bravo = provisioner.tenants.get("acme"), provisioner.tenants.get("bravo")
    acme_peers = [sites.session(r)[1] for r in acme["bgp_ranges"]]
    bravo_peer = sites.session(bravo["bgp_ranges"][0])[1]
    announce = lambda peer, prefix, priority=100: compute.announce(  # noqa: E731
        PROJECT, PLATFORM.region, PLATFORM.vpn_router, peer, prefix, priority)
    announce(acme_peers[0], "10.200.0.0/16")
    announce(bravo_peer, "10.201.0.0/16")
    assert provisioner.check_routes(router)["quarantined"] == []
    assert peers(provisioner) == [True, True] and provisioner.tenants.get("acme").get("site_state") is None

    announce(acme_peers[1], "0.0.0.0/0", priority=0)
    announce(acme_peers[1], "10.201.5.0/24")  # a more specific of bravo's range
    with caplog.at_level(logging.ERROR, logger="provisioner"):
        result = provisioner.check_routes(router)
    assert result["strays"] == {"acme": ["0.0.0.0/0", "10.201.5.0/24"]} and result["quarantined"] == ["acme"]
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert {getattr(r, "json_fields", {}).get("event") for r in logged} == {"routes.outside_site",
                                                                           "routes.quarantined"}
    record = provisioner.tenants.get("acme")
    assert record["site_state"]["state"] == "quarantined" and record["status"] == "updating"
    assert record["site_state"]["prefixes"] == ["0.0.0.0/0", "10.201.5.0/24"]
    assert "0.0.0.0/0" in provisioner.get("acme")["site_state"]["reason"]
    assert peers(provisioner) == [False, False] and peers(provisioner, "bravo") == [True, True]
    flux_stand_in.settle()  # Config Connector ends the sessions; the routes are withdrawn
    assert provisioner.tenants.get("acme")["status"] == "active"
    assert provisioner.tenants.get("acme")["site_state"]["state"] == "quarantined"  # applied, still cut off
    for peer in acme_peers:
        compute.withdraw(PROJECT, PLATFORM.region, PLATFORM.vpn_router, peer)
    generation = provisioner.tenants.get("acme")["manifest_generation"]
    assert provisioner.check_routes(router)["quarantined"] == []  # nothing more to do: it stays off
    assert provisioner.tenants.get("acme")["manifest_generation"] == generation

    # The operator lets it back once the customer fixed its side; it is cut off again if it announces more.
    status, shown = provisioner.patch("acme", {"site_state": "enabled"})
    assert (status, shown["status"], shown["site_state"]) == (202, "updating", None)
    assert peers(provisioner) == [True, True]
    flux_stand_in.settle()
    announce(acme_peers[0], "10.200.0.0/16")
    assert provisioner.check_routes(router)["quarantined"] == []
    announce(acme_peers[0], "192.168.0.0/16")
    assert provisioner.check_routes(router)["quarantined"] == ["acme"]
    assert compute.requests == 5
    # The operator may also cut a site off by hand, and a tenant that is not hybrid has no site to cut.
    with pytest.raises(DomainError) as not_hybrid:
        provisioner.create({"tenant_id": "plain", "display_name": "Plain", "tier": "basic"})
        provisioner.patch("plain", {"site_state": "quarantined"})
    assert not_hybrid.value.status == 400


def test_a_routes_check_that_cannot_read_the_router_changes_nothing(provisioner, flux_stand_in, compute):
    provisioner.create(dict(HYBRID))
    flux_stand_in.settle()
    with pytest.raises(NotFound):
        provisioner.check_routes(routes.RouterRoutes(PROJECT, PLATFORM.region, "no-such-router", compute.client))
    assert provisioner.tenants.get("acme").get("site_state") is None and peers(provisioner) == [True, True]
