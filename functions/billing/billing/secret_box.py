"""Webhook secrets at rest: encrypted with a key that lives in Secret Manager, never in Firestore.

A webhook's secret must be usable at every delivery (HMAC needs it in full: a hash would not do), so it is sealed
with AES-256-GCM under a key derived (SHA-256) from the payload of the Secret Manager secret WEBHOOK_KEY_SECRET.
The sealed form records the key's version, so the key can be rotated (a new version seals new secrets, old ones
still open with theirs), and is bound to its tenant and webhook as associated data, so a sealed secret copied to
another webhook's record does not open. Whoever reads Firestore (an export, a backup, another function, an operator
with datastore.viewer) sees only ciphertext; only the deployments granted the secret (billing, which seals at
creation, and billing-webhooks, which opens at delivery) can use it. One key in Secret Manager rather than a secret
per webhook keeps the functions from needing the right to create secrets, and a delivery from a Secret Manager call
per webhook. Plaintext secrets are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from collections.abc import Callable

_VERSION = re.compile(r"/versions/([0-9]+)$")


class SecretBox:
    def __init__(self, secret_name: str, access: Callable[[str], tuple[str, bytes]] | None = None):
        """`secret_name`: projects/P/secrets/S; `access(version name)` -> (resolved version name, payload)."""
        self.secret_name = secret_name
        self._access = access or _access
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _key(self, version: str) -> tuple[str, bytes]:
        with self._lock:
            if version != "latest" and version in self._keys:
                return version, self._keys[version]
        name, payload = self._access(f"{self.secret_name}/versions/{version}")
        found = _VERSION.search(name)
        resolved = found.group(1) if found else version
        key = hashlib.sha256(payload).digest()
        with self._lock:
            self._keys[resolved] = key
        return resolved, key

    def seal(self, plaintext: str, context: str) -> dict:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        version, key = self._key("latest")
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
        return {"key_version": version, "nonce": base64.b64encode(nonce).decode(),
                "ciphertext": base64.b64encode(sealed).decode()}

    def open(self, sealed: dict, context: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        _, key = self._key(str(sealed["key_version"]))
        return AESGCM(key).decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]),
                                   context.encode()).decode()


def _access(name: str) -> tuple[str, bytes]:
    from energent_shared import clients

    response = clients.secret_manager().access_secret_version(request={"name": name})
    return response.name, response.payload.data
