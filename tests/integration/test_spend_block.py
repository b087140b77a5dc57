"""The spend block on the Firestore, Cloud Storage and Pub/Sub emulators: billing's blocked and unblocked events,
applied by the provisioner in generation order, render a concurrent-workflow limit of 0 (then the tier's again) into
the manifests in the bucket, read back from it; the tenant's status never changes."""

import pytest

from energent_shared.errors import Unavailable
from local.flux import documents
from provisioner.store import ManifestStore
from tests.integration.test_provisioner import bucket, make, subscription  # noqa: F401 - fixtures

BODY = {"tenant_id": "acme", "display_name": "Acme", "tier": "premium"}


@pytest.fixture
def provisioner(firestore_db, bucket, subscription):  # noqa: F811 - the fixtures above
    return make(firestore_db, bucket, subscription)


def limits(provisioner) -> dict:
    """The tenant-limits ConfigMap as the bucket holds it."""
    for content in provisioner.manifests.read("acme").values():
        for document in documents(content):
            if document.get("kind") == "ConfigMap" and document["metadata"]["name"] == "tenant-limits":
                return document["data"]
    raise AssertionError("no tenant-limits ConfigMap in the bucket")


def test_a_blocked_tenant_s_manifests_carry_a_limit_of_0_until_unblocked(provisioner, firestore_db):
    provisioner.create(BODY)
    assert limits(provisioner) == {"concurrent_workflows": "4", "tier": "premium"}
    assert provisioner.get("acme")["status"] == "provisioning"
    assert provisioner.spend_block("acme", True, 1) == "blocked"
    assert limits(provisioner) == {"concurrent_workflows": "0", "tier": "premium", "spend_state": "blocked"}
    record = provisioner.get("acme")
    assert record["status"] == "provisioning" and record["spend_state"] == "blocked"
    assert record["manifest_generation"] == 2
    from provisioner.service import view

    assert view(record)["spend_state"] == "blocked"
    assert provisioner.spend_block("acme", False, 2) == "ok"
    assert limits(provisioner) == {"concurrent_workflows": "4", "tier": "premium"}
    assert view(provisioner.get("acme"))["spend_state"] == "ok"


def test_an_older_or_repeated_generation_changes_nothing(provisioner):
    provisioner.create(BODY)
    provisioner.spend_block("acme", True, 3)
    assert provisioner.spend_block("acme", False, 2) == "stale"  # arrived late
    assert provisioner.spend_block("acme", True, 3) == "stale"  # arrived twice
    assert limits(provisioner)["concurrent_workflows"] == "0"
    assert provisioner.get("acme")["manifest_generation"] == 2


def test_a_tier_change_while_blocked_keeps_the_block(provisioner):
    provisioner.create(BODY)
    provisioner.spend_block("acme", True, 1)
    provisioner.patch("acme", {"tier": "basic"})
    assert limits(provisioner) == {"concurrent_workflows": "0", "tier": "basic", "spend_state": "blocked"}
    provisioner.spend_block("acme", False, 2)
    assert limits(provisioner) == {"concurrent_workflows": "1", "tier": "basic"}


class FailingOnce(ManifestStore):
    """A bucket whose next write fails once (storage unavailable)."""

    fail = False

    def apply(self, tenant_id, files, generation):
        if FailingOnce.fail:
            FailingOnce.fail = False
            raise ConnectionError("storage unavailable")
        return super().apply(tenant_id, files, generation)


def test_a_block_whose_write_failed_is_not_in_force_and_is_lifted_after_its_redelivery(
        firestore_db, bucket, subscription):  # noqa: F811 - the fixtures above
    provisioner = make(firestore_db, bucket, subscription, store_class=FailingOnce)
    provisioner.create(BODY)
    FailingOnce.fail = True
    with pytest.raises(Unavailable):  # the delivery fails; Pub/Sub delivers it again
        provisioner.spend_block("acme", True, 1)
    record = provisioner.get("acme")
    assert record.get("spend_state") != "blocked" and limits(provisioner)["concurrent_workflows"] != "0"
    assert provisioner.spend_block("acme", True, 1) == "blocked"  # the redelivery applies it
    assert limits(provisioner)["concurrent_workflows"] == "0"
    assert provisioner.spend_block("acme", False, 2) == "ok"
    assert limits(provisioner)["concurrent_workflows"] != "0" and provisioner.get("acme")["spend_state"] == "ok"
