"""Google Cloud clients, created on first use and reused for the life of the instance.

Creating a client costs an import (hundreds of milliseconds for Firestore) and a channel; doing it lazily
keeps cold starts short, and caching it lets every invocation on a warm instance reuse the connection.
The emulators are found through the clients' own variables (`FIRESTORE_EMULATOR_HOST`, `PUBSUB_EMULATOR_HOST`,
`STORAGE_EMULATOR_HOST`); Secret Manager has no such variable, so `SECRET_MANAGER_EMULATOR_HOST` is ours.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import cache, wraps

from energent_shared.config import settings


@cache
def firestore():
    from google.cloud import firestore as firestore_lib

    return firestore_lib.Client(project=settings().project)


def per_event_loop(factory: Callable) -> Callable:
    """`cache` for objects bound to the running event loop (asyncio clients, locks): one per loop."""
    made: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @wraps(factory)
    def get():
        import asyncio  # only auth runs an event loop; the import would cost every other cold start

        loop = asyncio.get_running_loop()
        if loop not in made:
            made[loop] = factory()
        return made[loop]

    return get


@per_event_loop
def firestore_async():
    from google.cloud import firestore as firestore_lib

    return firestore_lib.AsyncClient(project=settings().project)


@cache
def publisher():
    import google.cloud.pubsub_v1 as pubsub_v1

    return pubsub_v1.PublisherClient()


@cache
def storage():
    import google.cloud.storage as storage_lib

    if settings().storage_emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage_lib.Client(project=settings().project, credentials=AnonymousCredentials())
    return storage_lib.Client(project=settings().project)


@cache
def secret_manager():
    host = settings().secret_manager_emulator_host
    if host:
        return secret_manager_at(host)
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient()


def secret_manager_at(host: str):
    """The real Secret Manager client on a plaintext channel to `host`: the local stand-in speaks the real gRPC
    API without TLS, so only the channel differs from production."""
    import grpc
    from google.cloud import secretmanager
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    return secretmanager.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(host)))


def reset() -> None:
    """Forget every client (tests that point the process at another emulator)."""
    for factory in (firestore, publisher, storage, secret_manager):
        factory.cache_clear()
    settings.cache_clear()
