"""Creates the stack's cloud resources on the emulators: topics with dead-letter topics, push subscriptions,
buckets and seeded secrets. Uses the emulators' REST APIs and the real Secret Manager client."""

from __future__ import annotations

from collections.abc import Iterable

import requests

from local.services import SetupError

DEAD_LETTER_SUFFIX = "-dead-letter"
MAX_DELIVERY_ATTEMPTS = 10


def _check(response: requests.Response, what: str) -> None:
    if response.status_code >= 300 and response.status_code != 409:
        raise SetupError(f"could not create {what}: {response.status_code} {response.text[:200]}")


def topics(pubsub_url: str, project: str, names: Iterable[str]) -> None:
    for name in names:
        for topic in (name, name + DEAD_LETTER_SUFFIX):
            _check(requests.put(f"{pubsub_url}/v1/projects/{project}/topics/{topic}", timeout=10), f"topic {topic}")
        # Dead letters are kept for an operator to inspect: a topic without a subscription drops them.
        subscription = name + DEAD_LETTER_SUFFIX
        _check(requests.put(f"{pubsub_url}/v1/projects/{project}/subscriptions/{subscription}",
                            json={"topic": f"projects/{project}/topics/{name}{DEAD_LETTER_SUFFIX}"}, timeout=10),
               f"subscription {subscription}")


def push_subscriptions(pubsub_url: str, project: str, targets: Iterable[tuple[str, str, str]]) -> None:
    """One push subscription per event deployment: (deployment name, topic, function URL).

    The push path `/projects/P/topics/T` makes functions-framework report the event's source as that topic,
    as Eventarc does in the cloud.
    """
    for deployment, topic, url in targets:
        subscription = f"{deployment}-push"
        body = {
            "topic": f"projects/{project}/topics/{topic}",
            "pushConfig": {"pushEndpoint": f"{url}/projects/{project}/topics/{topic}"},
            "ackDeadlineSeconds": 60,
            "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "30s"},
            "deadLetterPolicy": {"deadLetterTopic": f"projects/{project}/topics/{topic}{DEAD_LETTER_SUFFIX}",
                                 "maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS},
        }
        _check(requests.put(f"{pubsub_url}/v1/projects/{project}/subscriptions/{subscription}", json=body,
                            timeout=10), f"subscription {subscription}")


def buckets(storage_url: str, project: str, names: Iterable[str]) -> None:
    for name in names:
        _check(requests.post(f"{storage_url}/storage/v1/b", params={"project": project},
                             json={"name": name, "versioning": {"enabled": True}}, timeout=10), f"bucket {name}")


def secrets(secret_manager_host: str, payloads: dict[str, bytes]) -> None:
    """Create each secret (full resource name) with one version holding its payload."""
    from energent_shared.clients import secret_manager_at

    client = secret_manager_at(secret_manager_host)
    for name, payload in payloads.items():
        parent, _, secret_id = name.rpartition("/secrets/")
        client.create_secret(request={"parent": parent, "secret_id": secret_id,
                                      "secret": {"replication": {"automatic": {}}}})
        client.add_secret_version(request={"parent": name, "payload": {"data": payload}})


def new_signing_key() -> bytes:
    """A P-256 private key in PKCS#8 PEM, the form Terraform's tls_private_key (ECDSA P256) produces."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
