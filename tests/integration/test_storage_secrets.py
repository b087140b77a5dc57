"""Cloud Storage emulator preconditions and the Secret Manager stand-in through the real clients."""

import uuid

import pytest
from google.api_core import exceptions

from energent_shared import clients, secrets


@pytest.fixture
def bucket(emulators):
    return clients.storage().create_bucket(f"b-{uuid.uuid4().hex[:10]}")


def test_create_only_uploads_are_enforced(bucket):
    blob = bucket.blob("tenants/acme/namespace.yaml")
    blob.upload_from_string("first", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("tenants/acme/namespace.yaml").upload_from_string("second", if_generation_match=0)
    assert blob.download_as_text() == "first"


def test_compare_and_swap_on_generation_refuses_a_stale_writer(bucket):
    blob = bucket.blob("tenants/acme/quota.yaml")
    blob.upload_from_string("v1", if_generation_match=0)
    blob.reload()
    seen = blob.generation
    bucket.blob("tenants/acme/quota.yaml").upload_from_string("v2", if_generation_match=seen)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("tenants/acme/quota.yaml").upload_from_string("v2-stale", if_generation_match=seen)
    assert bucket.blob("tenants/acme/quota.yaml").download_as_text() == "v2"


def make_secret(secret_manager, payload: bytes) -> str:
    client = clients.secret_manager()
    secret = client.create_secret(request={"parent": "projects/p", "secret_id": f"s-{uuid.uuid4().hex[:8]}",
                                           "secret": {"replication": {"automatic": {}}}})
    client.add_secret_version(request={"parent": secret.name, "payload": {"data": payload}})
    return secret.name


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_secret_read_twice_inside_the_ttl_costs_one_call(secret_manager):
    name = make_secret(secret_manager, b"s3cr3t")
    clock = Clock()
    cache = secrets.SecretCache(ttl_s=60, clock=clock)
    assert not cache.is_fresh(name)
    assert cache.access(name) == b"s3cr3t"
    clock.now += 59
    assert cache.is_fresh(name) and cache.access(name) == b"s3cr3t"
    assert secret_manager.store.calls["AccessSecretVersion"] == 1
    clock.now += 2
    assert not cache.is_fresh(name)
    cache.access(name)
    assert secret_manager.store.calls["AccessSecretVersion"] == 2


def test_latest_follows_a_new_version_once_the_ttl_passes(secret_manager):
    name = make_secret(secret_manager, b"old")
    clock = Clock()
    cache = secrets.SecretCache(ttl_s=30, clock=clock)
    assert cache.access(name) == b"old"
    clients.secret_manager().add_secret_version(request={"parent": name, "payload": {"data": b"new"}})
    assert cache.access(name) == b"old"
    assert cache.access(name, 2) == b"new"
    clock.now += 31
    assert cache.access(name) == b"new"


def test_disabled_versions_cannot_be_read_and_leave_latest(secret_manager):
    name = make_secret(secret_manager, b"v1")
    client = clients.secret_manager()
    client.add_secret_version(request={"parent": name, "payload": {"data": b"v2"}})
    client.disable_secret_version(request={"name": f"{name}/versions/2"})
    with pytest.raises(exceptions.FailedPrecondition):
        client.access_secret_version(request={"name": f"{name}/versions/2"})
    assert secrets.SecretCache(ttl_s=0).access(name) == b"v1"
    states = {v.name.rsplit("/", 1)[1]: v.state.name for v in client.list_secret_versions(request={"parent": name})}
    assert states == {"1": "ENABLED", "2": "DISABLED"}


def test_unknown_secrets_are_not_found(secret_manager):
    with pytest.raises(exceptions.NotFound):
        secrets.access("projects/p/secrets/missing")
    with pytest.raises(ValueError):
        secrets.version_name("projects/p/secrets/bad name")
