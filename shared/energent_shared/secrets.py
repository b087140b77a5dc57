"""Secret Manager access by version or `latest`, with a short TTL cache.

The production client and the local stand-in are reached through the same code path
(`clients.secret_manager()`); only the channel differs. Payloads are never logged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from energent_shared import clients
from energent_shared.config import settings

_SECRET_NAME = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}$")
_VERSION_NAME = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}/versions/(latest|[1-9][0-9]*)$")


def secret_name(secret: str, project: str | None = None) -> str:
    """`projects/P/secrets/S` from a short id or a full name."""
    if _SECRET_NAME.match(secret):
        return secret
    name = f"projects/{project or settings().project}/secrets/{secret}"
    if not _SECRET_NAME.match(name):
        raise ValueError(f"invalid secret id {secret!r}")
    return name


def same_secret(name: str, other: str) -> bool:
    """Whether two full names are the one secret. A name may give its project by id or by number: Secret Manager's
    own notifications name it by number, the deployments' settings by id. The project number is not known here, so
    a number stands for any project; only this project's Secret Manager may publish on the topic they come on."""
    first, second = _SECRET_NAME.match(name), _SECRET_NAME.match(other)
    if first is None or second is None:
        return False
    (_, project, _, secret), (_, other_project, _, other_secret) = name.split("/"), other.split("/")
    return secret == other_secret and (project == other_project or project.isdigit() != other_project.isdigit())


def version_name(secret: str, version: str | int = "latest") -> str:
    if _VERSION_NAME.match(secret):
        return secret
    name = f"{secret_name(secret)}/versions/{version}"
    if not _VERSION_NAME.match(name):
        raise ValueError(f"invalid secret version {version!r}")
    return name


class SecretCache:
    """Payloads by version name, each kept for `ttl_s` seconds (a `latest` alias follows rotation within it)."""

    def __init__(self, ttl_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 client_factory: Callable = clients.secret_manager):
        self._ttl_s = ttl_s
        self._clock = clock
        self._client_factory = client_factory
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    @property
    def ttl_s(self) -> float:
        return self._ttl_s if self._ttl_s is not None else settings().secret_cache_ttl_s

    def access(self, secret: str, version: str | int = "latest") -> bytes:
        name = version_name(secret, version)
        now = self._clock()
        with self._lock:
            cached = self._entries.get(name)
            if cached and cached[0] > now:
                return cached[1]
        payload = self._client_factory().access_secret_version(request={"name": name}).payload.data
        with self._lock:
            self._entries[name] = (now + self.ttl_s, payload)
        return payload

    def is_fresh(self, secret: str, version: str | int = "latest") -> bool:
        """Whether `access` would answer from the cache, without calling Secret Manager."""
        name = version_name(secret, version)
        with self._lock:
            cached = self._entries.get(name)
            return cached is not None and cached[0] > self._clock()

    def invalidate(self, secret: str | None = None) -> None:
        with self._lock:
            if secret is None:
                self._entries.clear()
            else:
                prefix = secret_name(secret) + "/"
                for name in [n for n in self._entries if n.startswith(prefix)]:
                    del self._entries[name]


_default = SecretCache()


def access(secret: str, version: str | int = "latest") -> bytes:
    """The payload of `secret` at `version`, served from the process-wide cache."""
    return _default.access(secret, version)


def is_fresh(secret: str, version: str | int = "latest") -> bool:
    return _default.is_fresh(secret, version)


def invalidate(secret: str | None = None) -> None:
    _default.invalidate(secret)
