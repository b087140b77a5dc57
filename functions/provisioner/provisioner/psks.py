"""The pre-shared keys of hybrid tenants' tunnels, kept in Secret Manager and nowhere else.

Each tunnel's key is 256 random bits (43 URL-safe base64 characters: every VPN device takes them, and none of them
needs quoting), made by the provisioner and written once as version 1 of the secret `hybrid-psk-<tenant>-<tunnel>`
in the tenants' project. Nothing else holds it: not the tenant's record (Firestore), not its manifests (the bucket
holds an ExternalSecret naming the secret, never its value), not a log line.

How a key reaches the tunnel: Config Connector's ComputeVPNTunnel takes its key from a Kubernetes Secret
(`sharedSecret.valueFrom.secretKeyRef`). External Secrets Operator makes that Secret (tenant-<id>-vpn, in
energent-infra) from the tenant's ExternalSecret, reading Secret Manager through the SecretStore `hybrid-psks`
(infra/external-secrets) as its own Google account, which may read these secrets and no other; the cluster keeps
Secrets encrypted with the platform's KMS key. The alternatives weighed: SOPS-encrypted Secrets in the bucket would
put ciphertext of every key in the GitOps bucket and its object versions for ever, and would make the provisioner
both encrypt and (for GET .../site) decrypt with a KMS key; Config Connector's SecretManagerSecretVersion needs a
Kubernetes Secret itself. With Secret Manager the key has one home, whose every access is audit-logged, and
rotating it is adding a version.

The ExternalSecret names version 1, not `latest`: a tunnel's key is fixed when the tunnel is made (it is immutable
there), so a stray later version must never reach the Secret; two racing deliveries that both add a version agree
on version 1, the first one written.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Callable

from energent_shared import clients
from provisioner.sites import TUNNELS

SECRET_STORE = "hybrid-psks"  # noqa: S105 - a name: the SecretStore in energent-infra (infra/external-secrets)
PREFIX = "hybrid-psk-"
VERSION = "1"
KEY_BYTES = 32


def secret_id(tenant_id: str, tunnel: int) -> str:
    return f"{PREFIX}{tenant_id}-{tunnel}"


def secret_key(tunnel: int) -> str:
    """The key of tunnel `tunnel`'s pre-shared key in the tenant's Kubernetes Secret."""
    return f"tunnel-{tunnel}"


class PreSharedKeys:
    """The keys of every tenant's tunnels in `project`'s Secret Manager (the tenants' project)."""

    def __init__(self, project: str, client_factory: Callable = clients.secret_manager):
        self.project = project
        self._client_factory = client_factory

    def name(self, tenant_id: str, tunnel: int) -> str:
        return f"projects/{self.project}/secrets/{secret_id(tenant_id, tunnel)}"

    def ensure(self, tenant_id: str) -> None:
        """Make each tunnel's secret and its version 1, unless there already: safe to repeat, and a key once made
        is never replaced."""
        from google.api_core.exceptions import AlreadyExists, NotFound

        client = self._client_factory()
        for tunnel in range(TUNNELS):
            name = self.name(tenant_id, tunnel)
            try:
                client.create_secret(request={
                    "parent": f"projects/{self.project}", "secret_id": secret_id(tenant_id, tunnel),
                    "secret": {"replication": {"automatic": {}},
                               "labels": {"energent-tenant": tenant_id, "energent-use": "vpn-psk"}}})
            except AlreadyExists:
                pass
            try:
                client.get_secret_version(request={"name": f"{name}/versions/{VERSION}"})
                continue
            except NotFound:
                pass
            client.add_secret_version(request={"parent": name, "payload": {
                "data": random.token_urlsafe(KEY_BYTES).encode()}})

    def read(self, tenant_id: str) -> list[str]:
        """Each tunnel's key, as the tunnels use it (version 1)."""
        client = self._client_factory()
        return [client.access_secret_version(request={"name": f"{self.name(tenant_id, tunnel)}/versions/{VERSION}"})
                .payload.data.decode() for tunnel in range(TUNNELS)]

    def remove(self, tenant_id: str) -> None:
        """Delete the tenant's keys (its tunnels are gone); safe to repeat."""
        from google.api_core.exceptions import NotFound

        client = self._client_factory()
        for tunnel in range(TUNNELS):
            try:
                client.delete_secret(request={"name": self.name(tenant_id, tunnel)})
            except NotFound:
                pass
